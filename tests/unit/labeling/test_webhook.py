import threading

from fastapi.testclient import TestClient

from labeling.webhook import Puller, create_app


def test_events_during_a_pull_coalesce_into_one_more_pull():
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow_pull():
        calls.append(1)
        started.set()
        release.wait(5)

    puller = Puller(slow_pull)
    puller.request()
    assert started.wait(5)
    for _ in range(10):  # a burst of events while the first pull runs
        puller.request()
    release.set()
    done = threading.Event()
    threading.Thread(target=lambda: (_wait_idle(puller), done.set())).start()
    assert done.wait(10)
    assert len(calls) == 2


def _wait_idle(puller: Puller) -> None:
    while puller.busy:
        threading.Event().wait(0.01)


def test_the_receiver_answers_at_once_and_knows_its_policies():
    pulled = threading.Event()
    client = TestClient(create_app({"spam": Puller(pulled.set)}))
    assert (
        client.post("/webhooks/labelstudio/spam", json={"action": "ANNOTATION_CREATED"}).status_code
        == 202
    )
    assert pulled.wait(5)
    assert client.post("/webhooks/labelstudio/nope", json={}).status_code == 404
