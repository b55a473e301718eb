import threading

from fastapi.testclient import TestClient

from labeling.webhook import SECRET_HEADER, Puller, create_app

SECRET = {SECRET_HEADER: "s3cret"}


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
    assert _idle_within(puller, 10)
    assert len(calls) == 2


def _idle_within(puller: Puller, seconds: float) -> bool:
    """Whether the puller stops being busy within `seconds` (a stuck one never does)."""
    done = threading.Event()

    def wait() -> None:
        while puller.busy:
            threading.Event().wait(0.01)
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    return done.wait(seconds)


def test_the_receiver_answers_at_once_and_knows_its_policies():
    pulled = threading.Event()
    client = TestClient(create_app({"spam": Puller(pulled.set)}, "s3cret"))
    event = {"action": "ANNOTATION_CREATED"}
    assert client.post("/webhooks/labelstudio/spam", json=event, headers=SECRET).status_code == 202
    assert pulled.wait(5)
    assert client.post("/webhooks/labelstudio/nope", json={}, headers=SECRET).status_code == 404


def test_an_event_without_the_secret_is_refused_and_pulls_nothing():
    pulled = []
    client = TestClient(create_app({"spam": Puller(lambda: pulled.append(1))}, "s3cret"))
    for headers in ({}, {SECRET_HEADER: "guess"}, {SECRET_HEADER: "s3cr\u00e9t".encode("latin-1")}):
        answer = client.post("/webhooks/labelstudio/spam", json={}, headers=headers)
        assert answer.status_code == 401 and SECRET_HEADER in answer.json()["detail"]
    assert client.get("/healthz").json()["spam"]["pulls"] == 0 and pulled == []


def test_a_pull_that_fails_in_any_way_leaves_the_receiver_ready_for_the_next_event():
    """A bug in a pull (or Prefect missing under --via-prefect) must not kill the puller:
    it reports the error, stops being busy, and the next event pulls again."""
    outcomes = iter([KeyError("value"), SystemExit(2), None])
    pulled = []

    def pull():
        pulled.append(1)
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    puller = Puller(pull)
    client = TestClient(create_app({"spam": puller}, "s3cret"))
    for expected in ("KeyError: 'value'", "SystemExit: 2", None):
        assert client.post("/webhooks/labelstudio/spam", json={}, headers=SECRET).status_code == 202
        assert _idle_within(puller, 10), "the puller stayed busy"
        assert client.get("/healthz").json()["spam"]["last_error"] == expected
    health = client.get("/healthz").json()["spam"]
    assert (health["pulls"], health["failures"], len(pulled)) == (3, 2, 3)
    metrics = client.get("/metrics").text
    assert 'flywheel_webhook_pull_failures{policy="spam"} 2.0' in metrics
    assert 'flywheel_webhook_pull_busy{policy="spam"} 0.0' in metrics
