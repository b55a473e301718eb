"""The scoring API as a real process on a real port, with models from a real MLflow registry."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from flywheel.policy import load_policy
from flywheel.predictions import read_predictions
from tests.conftest import (
    copy_trained,
    free_port,
    run_cli,
    start_mlflow_server,
    start_scoring_api,
    wait_until,
)

KEY = {"Authorization": "Bearer test-key"}
ADMIN = {"Authorization": "Bearer admin-key"}


def spam_item(item_id: str = "it-1", **change) -> dict:
    return {
        "item_id": item_id,
        "text": "free followers click here",
        "account_age_days": 3,
        "links": 4,
        "prior_reports": 1,
        "messages_last_hour": 20,
        "surface": "dm",
        "country": "US",
        **change,
    }


def scam_fields() -> dict:
    return {"payment_requests": 0, "contacts_messaged": 2}


@pytest.fixture(scope="module")
def api(trained, tmp_path_factory):
    """One server on the session's trained home (spam has a champion, scam has none)."""
    settings, _, _ = trained
    server = start_scoring_api(
        settings.root,
        tmp_path_factory.mktemp("api"),
        FLYWHEEL_MAX_BODY_BYTES="4096",
        FLYWHEEL_MAX_BATCH_ITEMS="5",
        FLYWHEEL_MAX_TEXT_CHARS="1000",
    )
    yield server
    server.stop()


def test_scores_and_decides_with_the_champion(api):
    answer = httpx.post(
        f"{api.url}/v1/score", headers=KEY, json={"item": spam_item(), "policies": ["spam"]}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["request_id"]) == 32 and body["item_id"] == "it-1"
    [result] = body["results"]
    assert result["policy"] == "spam" and result["model_version"] == 1 and not result["fallback"]
    assert 0 <= result["score"] <= 1 and result["decision"] in {"allow", "review", "auto_action"}


def test_a_policy_without_a_model_answers_review_on_fallback(api):
    readiness = httpx.get(f"{api.url}/readyz")
    assert readiness.status_code == 503
    assert readiness.json()["fallback"] == ["scam"]
    assert readiness.json()["policies"]["spam"]["champion"] == 1
    scoring = readiness.json()["policies"]["spam"]["scoring"]["champion"]
    assert scoring == {"version": 1, "path": "compiled", "note": None}
    answer = httpx.post(
        f"{api.url}/v1/score", headers=KEY, json={"item": {**spam_item(), **scam_fields()}}
    )
    results = {r["policy"]: r for r in answer.json()["results"]}
    assert results["scam"] == {
        "policy": "scam",
        "model_version": None,
        "score": None,
        "decision": "review",
        "fallback": True,
    }
    assert results["spam"]["model_version"] == 1


def test_batches_answer_per_item(api):
    items = [spam_item(f"b{i}", links=i) for i in range(3)]
    answer = httpx.post(
        f"{api.url}/v1/score/batch", headers=KEY, json={"items": items, "policies": ["spam"]}
    )
    assert answer.status_code == 200
    assert [r["item_id"] for r in answer.json()["results"]] == ["b0", "b1", "b2"]
    assert all(r["results"][0]["model_version"] == 1 for r in answer.json()["results"])


@pytest.mark.parametrize(
    ("headers", "route", "status", "message"),
    [
        ({}, "/v1/score", 401, "Authorization: Bearer"),
        ({"Authorization": "Bearer wrong"}, "/v1/score", 401, "unknown API key"),
        (KEY, "/v1/admin/reload", 403, "needs the admin key"),
        ({"Authorization": "Bearer clé-ключ".encode()}, "/v1/score", 401, "unknown API key"),
        ({"Authorization": b"Bearer \xff\xfe"}, "/v1/score/batch", 401, "unknown API key"),
        ({"Authorization": "Bearer ключ".encode()}, "/v1/admin/reload", 403, "the admin key"),
    ],
)
def test_auth(api, headers, route, status, message):
    """Any bytes as a key are a wrong key (an anonymous 500 would let anyone flood the log)."""
    answer = httpx.post(f"{api.url}{route}", headers=headers, json={"item": spam_item()})
    assert answer.status_code == status
    assert message in answer.json()["error"]["message"] and answer.json()["request_id"]
    assert "Traceback" not in api.log.read_text()


@pytest.mark.parametrize("route", ["/v1/score", "/v1/score/batch"])
def test_the_key_is_checked_before_the_body_is_read(api, route):
    """An anonymous client announcing a body and sending none is refused at once: the server
    does not wait for (or read) a body from someone without a key."""
    host, port = api.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            f"POST {route} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
            "Content-Type: application/json\r\nContent-Length: 3000\r\n\r\n".encode()
        )
        head = conn.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 401"), head


@pytest.mark.parametrize(
    ("body", "route", "status", "field", "message"),
    [
        (
            {"item": spam_item(), "policies": ["hate"]},
            "/v1/score",
            404,
            "policies",
            "unknown policy 'hate'",
        ),
        (
            {"items": [spam_item(), spam_item(links="many")], "policies": ["spam"]},
            "/v1/score/batch",
            422,
            "items[1].links",
            "expected a number",
        ),
        (
            {"item": {"item_id": "x"}, "policies": ["spam"]},
            "/v1/score",
            422,
            "item.text",
            "required by policy spam",
        ),
        (
            {"items": [spam_item(), spam_item(text="x" * 1001)], "policies": ["spam"]},
            "/v1/score/batch",
            422,
            "items[1].text",
            "longer than 1,000 characters",
        ),
        (
            {"items": [spam_item()] * 6, "policies": ["spam"]},
            "/v1/score/batch",
            413,
            "items",
            "the limit is 5",
        ),
        (
            {"item": spam_item(text="x" * 5000), "policies": ["spam"]},
            "/v1/score",
            413,
            None,
            "over 4096 bytes",
        ),
    ],
)
def test_bad_requests_are_named(api, body, route, status, field, message):
    answer = httpx.post(f"{api.url}{route}", headers=KEY, json=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert message in error["message"] and error.get("field") == field


def test_invalid_json_is_a_400(api):
    answer = httpx.post(
        f"{api.url}/v1/score", headers={**KEY, "content-type": "application/json"}, content=b"{nope"
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"


def test_a_streamed_body_is_cut_off_at_the_limit(api):
    """No Content-Length (chunked upload): the server stops reading once past the limit."""

    def chunks():
        yield b'{"item": {"item_id": "big", "text": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    answer = httpx.post(
        f"{api.url}/v1/score", headers={**KEY, "content-type": "application/json"}, content=chunks()
    )
    assert answer.status_code == 413 and "over 4096 bytes" in answer.json()["error"]["message"]
    assert answer.json()["request_id"]


def test_the_directly_answered_routes_stay_fastapi_routes(api):
    """POSTs to the scoring routes skip FastAPI, yet the routes stay in `/docs` and any other
    method still reaches FastAPI's routing."""
    spec = httpx.get(f"{api.url}/openapi.json").json()["paths"]
    assert {"/v1/score", "/v1/score/batch"} <= set(spec)
    answer = httpx.get(f"{api.url}/v1/score", headers=KEY)
    assert answer.status_code == 405, "only POST scores"


def test_open_endpoints_and_metrics(api):
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    assert "/v1/score" in httpx.get(f"{api.url}/openapi.json").json()["paths"]
    httpx.post(f"{api.url}/v1/score", headers=KEY, json={"item": {**spam_item(), **scam_fields()}})
    metrics = httpx.get(f"{api.url}/metrics").text
    assert "flywheel_decisions_total{decision=" in metrics and 'model_version="1"' in metrics
    assert 'flywheel_fallbacks_total{policy="scam"}' in metrics
    assert (
        "flywheel_request_seconds_bucket" in metrics
        and "flywheel_prediction_log_lag_seconds" in metrics
    )
    assert 'flywheel_model_version{policy="spam"} 1.0' in metrics
    assert 'flywheel_model_compiled{alias="champion",policy="spam"} 1.0' in metrics
    assert 'flywheel_model_info{alias="champion",policy="spam",version="1"} 1.0' in metrics
    assert 'flywheel_model_info{alias="champion",policy="scam"' not in metrics  # no model
    assert "process_resident_memory_bytes" in metrics and "python_gc_collections_total" in metrics
    assert "python_info{" in metrics


def test_refusals_are_timed_under_their_status(api):
    httpx.post(f"{api.url}/v1/score", json={"item": spam_item()})  # no key
    httpx.post(f"{api.url}/v1/score", headers=KEY, json={"item": {"item_id": "x"}})  # fields
    metrics = httpx.get(f"{api.url}/metrics").text
    for status in ("401", "422"):
        count = f'flywheel_request_seconds_count{{route="/v1/score",status="{status}"}}'
        assert count in metrics, metrics
        assert float(metrics.split(count, 1)[1].split()[0]) >= 1


def test_answered_predictions_are_exported(api, trained, tmp_path):
    settings, _, _ = trained
    answer = httpx.post(
        f"{api.url}/v1/score",
        headers=KEY,
        json={"item": spam_item("exported"), "policies": ["spam"]},
    )
    request_id = answer.json()["request_id"]
    out = tmp_path / "predictions.csv"
    run_cli("predictions", "export", "--out", str(out), "--policy", "spam", home=settings.root)
    exported = out.read_text()
    assert request_id in exported and "exported" in exported


def _load(
    url: str, stop: threading.Event, item_prefix: str
) -> tuple[list[int], list[str], list[int]]:
    """Eight clients scoring one item at a time until told to stop."""
    statuses, request_ids, versions = [], [], []
    lock = threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(timeout=10) as session:
            i = 0
            while not stop.is_set():
                i += 1
                answer = session.post(
                    f"{url}/v1/score",
                    headers=KEY,
                    json={"item": spam_item(f"{item_prefix}-{n}-{i}"), "policies": ["spam"]},
                )
                with lock:
                    statuses.append(answer.status_code)
                    if answer.status_code == 200:
                        request_ids.append(answer.json()["request_id"])
                        versions.append(answer.json()["results"][0]["model_version"])

    with ThreadPoolExecutor(8) as pool:
        for n in range(8):
            pool.submit(client, n)
    return statuses, request_ids, versions


class BackgroundLoad:
    """`_load` in a thread: `with BackgroundLoad(url, "x") as load:` ... `load.outcome` after."""

    def __init__(self, url: str, prefix: str) -> None:
        self.stop = threading.Event()
        self.outcome: dict = {}
        self.thread = threading.Thread(
            target=lambda: self.outcome.update(
                zip(("statuses", "ids", "versions"), _load(url, self.stop, prefix), strict=True)
            )
        )

    def __enter__(self) -> BackgroundLoad:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _own_home(trained, tmp_path):
    """A private copy of the trained home (the registry's artifacts stay where they are)."""
    return copy_trained(trained[0], tmp_path / "home")


def _serving(server, alias: str) -> int | None:
    """The spam version the server has loaded under an alias (from /readyz)."""
    return httpx.get(f"{server.url}/readyz").json()["policies"]["spam"][alias]


@pytest.mark.slow
def test_hot_reload_under_load_fails_no_request_and_shadows_the_challenger(trained, spam, tmp_path):
    from training.promote import promote
    from training.train import train

    settings = _own_home(trained, tmp_path)
    server = start_scoring_api(settings.root, tmp_path, FLYWHEEL_POLL_INTERVAL_S="0.3")
    try:
        with BackgroundLoad(server.url, "reload") as load:
            challenger = train(spam, settings, force=True).model
            wait_until(
                lambda: _serving(server, "challenger") == challenger.version,
                60,
                "the challenger to load",
            )
            assert promote(spam, settings).promoted
            wait_until(
                lambda: _serving(server, "champion") == challenger.version,
                60,
                "the new champion to serve",
            )
            answer = httpx.post(f"{server.url}/v1/admin/reload", headers=ADMIN).json()
            assert answer["policies"]["spam"]["champion"] == challenger.version
            info = [
                line
                for line in httpx.get(f"{server.url}/metrics").text.splitlines()
                if line.startswith('flywheel_model_info{alias="champion",policy="spam"')
            ]
            assert info == [
                'flywheel_model_info{alias="champion",policy="spam",'
                f'version="{challenger.version}"}} 1.0'
            ], "the version that left is no longer shown"
    finally:
        server.stop()
    outcome = load.outcome
    assert outcome["statuses"] and set(outcome["statuses"]) == {200}, (
        "no request failed during the swaps"
    )
    assert {1, challenger.version} <= set(outcome["versions"])
    logged = read_predictions(settings, spam)
    assert set(outcome["ids"]) <= set(logged["request_id"])
    shadowed = logged[logged["shadow_version"] == challenger.version]
    assert len(shadowed) > 0 and shadowed["shadow_score"].between(0, 1).all()


@pytest.mark.slow
def test_kill_9_loses_no_answered_prediction(trained, spam, tmp_path):
    settings = _own_home(trained, tmp_path)
    server = start_scoring_api(settings.root, tmp_path, FLYWHEEL_LOG_SEGMENT_RECORDS="300")
    try:
        with BackgroundLoad(server.url, "kill") as load:
            wait_until(lambda: len(read_predictions(settings, spam)) > 600, 60, "some load")
            server.kill9()
    finally:
        server.stop()
    outcome = load.outcome
    answered = set(outcome["ids"])
    assert len(answered) > 600
    logged = set(read_predictions(settings, spam)["request_id"])
    assert answered <= logged, f"{len(answered - logged)} answered predictions missing from the log"


@pytest.mark.slow
def test_registry_down_at_start_and_at_reload(stocked, settings, spam, tmp_path):
    from training.promote import promote
    from training.train import train

    train(spam, settings)
    promote(spam, settings)
    port = free_port()
    server = start_scoring_api(
        settings.root,
        tmp_path,
        # a password in the URI: no open endpoint, log line or error may show it
        MLFLOW_TRACKING_URI=f"http://flywheel:hunter2@127.0.0.1:{port}",
        FLYWHEEL_MLFLOW_CONNECT_TIMEOUT_S="1",
        FLYWHEEL_POLL_INTERVAL_S="3600",
        FLYWHEEL_SERVE_POLICIES="spam",
    )
    registry = None
    try:
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.json()["fallback"] == ["spam"] and "unreachable" in ready.text
        assert "hunter2" not in ready.text and "flywheel:***@" in ready.text
        down = httpx.post(f"{server.url}/v1/score", headers=KEY, json={"item": spam_item()}).json()[
            "results"
        ][0]
        assert down["decision"] == "review" and down["fallback"]

        registry = start_mlflow_server(settings.tracking_uri, tmp_path, port)
        reload = httpx.post(f"{server.url}/v1/admin/reload", headers=ADMIN, timeout=60).json()
        assert reload["changed"]["spam"] == "champion v1" and not reload["errors"]
        assert httpx.get(f"{server.url}/readyz").status_code == 200

        registry.stop()
        again = httpx.post(f"{server.url}/v1/admin/reload", headers=ADMIN, timeout=60).json()
        assert "unreachable" in again["errors"]["spam"]
        assert "hunter2" not in json.dumps(again)
        kept = httpx.post(f"{server.url}/v1/score", headers=KEY, json={"item": spam_item()}).json()[
            "results"
        ][0]
        assert kept["model_version"] == 1 and not kept["fallback"], (
            "the last good model keeps serving"
        )
    finally:
        server.stop()
        if registry is not None:
            registry.stop()
    assert "hunter2" not in server.log.read_text()


def test_a_segment_the_compactor_cannot_file_is_kept_reported_and_filed_later(trained, tmp_path):
    """A policy file broken while the server runs: the compactor (a child reading the policies
    afresh) keeps the segments it cannot file, `/readyz` and `/metrics` say so, and once the
    file is fixed the next compaction files them: every answered prediction is in the log."""
    settings = _own_home(trained, tmp_path)
    policies = tmp_path / "policies"
    shutil.copytree(settings.policies_dir, policies)
    good = (policies / "scam.yaml").read_text()
    server = start_scoring_api(
        settings.root,
        tmp_path,
        FLYWHEEL_POLICIES_DIR=str(policies),
        FLYWHEEL_LOG_SEGMENT_RECORDS="1",
        # the poll starts a compaction a roll found busy when no request follows to do it
        FLYWHEEL_POLL_INTERVAL_S="1",
    )

    def score(n: int) -> list[str]:
        item = {**spam_item(), **scam_fields()}
        return [
            httpx.post(f"{server.url}/v1/score", headers=KEY, json={"item": item}).json()[
                "request_id"
            ]
            for _ in range(n)
        ]

    def unfiled() -> list[dict]:
        return httpx.get(f"{server.url}/readyz").json()["prediction_log"]["unfiled_segments"]

    try:
        (policies / "scam.yaml").write_text(good.replace("name: scam", "name: [scam"))
        answered = score(3)
        wait_until(lambda: unfiled(), 60, "a kept segment on /readyz")
        assert "scam" in unfiled()[0]["policies"]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert "flywheel_prediction_log_unfiled_segments 0.0" not in metrics
        assert "flywheel_prediction_log_unfiled_segments" in metrics

        (policies / "scam.yaml").write_text(good)
        answered += score(3)
        wait_until(lambda: not unfiled(), 60, "the kept segments filed")
    finally:
        server.stop()
    logged = set(read_predictions(settings, load_policy("scam", settings))["request_id"])
    assert set(answered) <= logged, "an answered prediction of the broken policy was lost"


# 413 is how the API refuses a body over FLYWHEEL_MAX_BODY_BYTES (4096 here): a limit on bytes
# that no JSON Schema can state, declared as the routes' 413 response.
FUZZER_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = [200, 413]

[checks.negative_data_rejection]
expected-statuses = [400, 401, 404, 413, 422]
"""


def test_a_schema_driven_fuzzer_finds_nothing_against_the_openapi(api, tmp_path):
    """schemathesis generates requests from `/openapi.json` (valid ones and, in its negative
    mode, invalid ones) and runs every check on each answer: no 5xx, a status, content type and
    body that the document declares, schema-valid requests accepted, invalid ones refused.
    Deterministic generation, so a failure repeats."""
    spec = httpx.get(f"{api.url}/openapi.json").json()
    body = spec["paths"]["/v1/score"]["post"]
    assert set(body["responses"]) == {"200", "400", "401", "404", "413", "422", "500", "503"}
    assert body["security"] == [{"bearer": []}]
    spam = spec["components"]["schemas"]["Item_spam"]
    assert spam["properties"]["account_age_days"]["type"] == ["number", "null"]
    assert "messages_last_hour" in spam["required"]
    decision = spec["components"]["schemas"]["PolicyResult"]["properties"]["decision"]
    assert decision["enum"] == ["allow", "review", "auto_action"]

    _fuzz(api.url, "^/v1/score", FUZZER_CONFIG, tmp_path)


def _fuzz(url: str, paths: str, config_text: str, folder: Path, missing_data: bool = False) -> None:
    """schemathesis on the routes matching `paths`: every check, deterministic generation.
    `missing_data`: its warning that valid requests mostly found nothing (404) is expected."""
    config = folder / "schemathesis.toml"
    config.write_text(config_text)
    fuzzer = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert fuzzer, "schemathesis is a test dependency (pyproject.toml)"
    done = subprocess.run(
        [
            fuzzer,
            "--no-color",
            "--config-file",
            str(config),
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: {KEY['Authorization']}",
            "--include-path-regex",
            paths,
            "--checks",
            "all",
            "--max-examples",
            "60",
            "--generation-deterministic",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=folder,
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    if missing_data:
        warned = re.findall(r"Warnings:\n((?:\s+⚠️.*\n)+)", done.stdout)
        assert warned and all("Missing test data" in w for w in warned), done.stdout[-3000:]
        assert re.search(r"(\d+) generated, \1 passed", done.stdout), done.stdout[-3000:]
    else:
        assert "No issues found" in done.stdout, done.stdout[-3000:]


# a valid appeal of an item never scored is a 404: the fuzzer's items were never scored
APPEAL_FUZZER_CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = [200, 201, 404, 413]

[checks.negative_data_rejection]
expected-statuses = [400, 401, 404, 413, 422]
"""


def test_an_auto_actioned_item_can_be_appealed_once_and_nothing_else_can(trained, tmp_path):
    from flywheel.lake import Lake

    home = _own_home(trained, tmp_path)
    server = start_scoring_api(home.root, tmp_path)
    try:
        items = [spam_item(f"ap-{i}", links=i, messages_last_hour=5 * i) for i in range(8)]
        items.append(spam_item("calm", text="see you at lunch", links=0, account_age_days=900,
                               prior_reports=0, messages_last_hour=1, surface="post"))  # fmt: skip
        scored = httpx.post(
            f"{server.url}/v1/score/batch", headers=KEY, json={"items": items, "policies": ["spam"]}
        ).json()["results"]
        decided = {r["item_id"]: r["results"][0] for r in scored}
        actioned = [i for i, r in decided.items() if r["decision"] == "auto_action"]
        allowed = [i for i, r in decided.items() if r["decision"] != "auto_action"]
        assert actioned and allowed

        def appeal(body: dict, key: dict = KEY) -> httpx.Response:
            return httpx.post(f"{server.url}/v1/appeals", headers=key, json=body)

        body = {"policy": "spam", "item_id": actioned[0], "reason": "I sell my own art here"}
        first = appeal(body)
        assert first.status_code == 201 and first.json()["created"]
        kept = first.json()["appeal"]
        assert kept["decision"] == "auto_action" and kept["model_version"] == 1
        assert kept["score"] == pytest.approx(decided[actioned[0]]["score"])
        again = appeal({**body, "reason": "please"})
        assert again.status_code == 200 and not again.json()["created"]
        assert again.json()["appeal"]["appeal_id"] == kept["appeal_id"]
        assert again.json()["appeal"]["reason"] == "I sell my own art here"

        refusals = [
            ({**body, "item_id": "never-scored"}, 404, "unknown_item", "item_id"),
            ({**body, "item_id": allowed[0]}, 409, "not_auto_actioned", "item_id"),
            ({**body, "reason": "   "}, 422, "invalid_request", "reason"),
            ({**body, "policy": "nope"}, 404, "unknown_policy", "policy"),
        ]
        for sent, status, code, field in refusals:
            answer = appeal(sent)
            assert answer.status_code == status, (sent, answer.text)
            assert answer.json()["error"]["code"] == code
            assert answer.json()["error"]["field"] == field
        assert appeal(body, key={}).status_code == 401
        assert (
            "not auto-actioned"
            in appeal({**body, "item_id": allowed[0]}).json()["error"]["message"]
        )
        _fuzz(server.url, "^/v1/appeals", APPEAL_FUZZER_CONFIG, tmp_path, missing_data=True)
    finally:
        server.stop()
    assert Lake(home.lake_dir).appeals("spam")["item_id"].tolist() == [actioned[0]]
