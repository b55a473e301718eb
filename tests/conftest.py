"""Fixtures shared by every test layer.

Each test that writes gets its own Flywheel home (lake + SQLite MLflow) under pytest's tmp dir.
Worlds are small but real simulator output; a trained home is built once per session for the
tests that only read a registered model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="flywheel-tests-"))
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("PREFECT_API_URL", None)
os.environ["FLYWHEEL_HOME"] = str(_SESSION_DIR / "default-home")
os.environ["PREFECT_HOME"] = str(_SESSION_DIR / "prefect")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"

from flywheel.lake import Lake  # noqa: E402
from flywheel.policy import Policy, load_policy  # noqa: E402
from flywheel.settings import Settings  # noqa: E402
from simulation.world import World, WorldConfig, simulate, write_world  # noqa: E402

SMALL_WORLD = WorldConfig(
    days=14, items_per_day=600, emerging_day=14, golden_items=240, review_fraction=0.5
)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _mlflow_environment() -> Iterator[None]:
    """`mlflow.set_tracking_uri` exports the URI to the environment; a test that calls it must not
    point the next test's Settings (or servers) at its store."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    for name in names:
        os.environ.pop(name, None)
    yield
    for name in names:
        os.environ.pop(name, None)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Flywheel home, also set in the environment for code that reads it there."""
    path = tmp_path / "home"
    monkeypatch.setenv("FLYWHEEL_HOME", str(path))
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home)


@pytest.fixture
def lake(settings: Settings) -> Lake:
    return Lake(settings.lake_dir)


@pytest.fixture(scope="session")
def spam() -> Policy:
    return load_policy("spam")


@pytest.fixture(scope="session")
def small_world(spam: Policy) -> World:
    return simulate(spam, SMALL_WORLD)


@pytest.fixture(scope="session")
def world_files(small_world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_world(small_world, tmp_path_factory.mktemp("world"))


def stock(lake: Lake, policy: Policy, files: dict[str, Path]) -> None:
    """Import a world's golden set and decisions, as a user would."""
    from flywheel.ingest import import_decisions, import_golden

    import_golden(files["golden"], policy, lake)
    import_decisions(files["decisions"], policy, lake)


@pytest.fixture
def stocked(lake: Lake, spam: Policy, world_files: dict[str, Path]) -> Lake:
    stock(lake, spam, world_files)
    return lake


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, spam: Policy, world_files: dict[str, Path]):
    """A home where spam has been trained and promoted once, as the retrain flow does it
    (reviewer QA first, so the dataset leaves flagged reviewers out); tests only read from it."""
    from labeling.qa import run_qa
    from training.promote import promote
    from training.train import train

    settings = Settings(home=tmp_path_factory.mktemp("trained") / "home")
    stock(Lake(settings.lake_dir), spam, world_files)
    run_qa(spam, Lake(settings.lake_dir))
    result = train(spam, settings)
    verdict = promote(spam, settings)
    return settings, result, verdict


def answer_gold_checks(lake: Lake, policy: Policy, per_reviewer: int, seed: int = 0) -> None:
    """The simulator's reviewers answer gold checks, half of them on violating golden items,
    as the push sends them; their decisions go to the lake like any others."""
    import numpy as np

    from flywheel.records import validate_decisions
    from simulation.world import DEFAULT_REVIEWERS, verdicts

    golden = lake.golden(policy.name).frame
    rng = np.random.default_rng(seed)
    violating = golden["label"].eq(policy.labels.positive).to_numpy()
    rows = []
    for reviewer in DEFAULT_REVIEWERS:
        half = per_reviewer // 2
        picks = np.r_[
            rng.choice(np.flatnonzero(violating), half, replace=False),
            rng.choice(np.flatnonzero(~violating), per_reviewer - half, replace=False),
        ]
        says, _ = verdicts(
            [reviewer] * len(picks), violating[picks], np.zeros(len(picks), bool), 0.15, rng
        )
        rows.append(
            golden.iloc[picks].assign(
                label=np.where(says, policy.labels.positive, policy.labels.negative),
                reviewer_id=reviewer.reviewer_id,
                decided_at="2026-02-01T00:00:00Z",
                source="gold",
            )
        )
    frame = validate_decisions(pd.concat(rows, ignore_index=True), policy, "gold checks").frame
    lake.append_decisions(policy.name, frame, "gold checks")


def copy_trained(trained_settings: Settings, home: Path) -> Settings:
    """A private copy of the trained home, without its prediction log: the scoring API tests
    serve from the trained home, and their items (`it-1`, `b0`...) belong to no test's world,
    so a push sampled from them would wait for decisions nobody makes."""
    import shutil

    shutil.copytree(trained_settings.root, home, ignore=shutil.ignore_patterns("predictions"))
    return Settings(home=home)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


FLYWHEEL = str(Path(sys.executable).with_name("flywheel"))


def run_cli(*args: str, home: Path, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    """Run the installed `flywheel` command as a user would, in its own process."""
    environment = {**os.environ, "FLYWHEEL_HOME": str(home), **env}
    done = subprocess.run(
        [FLYWHEEL, *args], capture_output=True, text=True, env=environment, timeout=900
    )
    if check and done.returncode != 0:
        raise AssertionError(f"flywheel {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def http_stub(answer: Callable[[BaseHTTPRequestHandler, bytes], int]) -> Iterator[str]:
    """A real HTTP server on loopback whose every GET and POST `answer(handler, body)` handles,
    returning the status (a JSON body may be written after it); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(answer(self, body))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = _reply

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def wait_until(check, timeout: float, what: str) -> None:
    """Poll `check` until it returns true; fail with `what` after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def answers(url: str) -> bool:
    import httpx

    try:
        httpx.get(url, timeout=1.0)
        return True
    except httpx.HTTPError:
        return False


class Server:
    """A real process on a real port, started as users start it, stopped or killed by tests."""

    def __init__(
        self, args: list[str], env: dict[str, str], health: str, port: int, log: Path
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.process = subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(
                lambda: self.process.poll() is None and answers(self.url + health),
                120,
                f"{args[0]} on {port}",
            )
        except AssertionError:
            self.stop()
            raise AssertionError(f"server did not start:\n{log.read_text()}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait()


def start_scoring_api(home: Path, tmp: Path, **env: str) -> Server:
    port = free_port()
    environment = {
        "FLYWHEEL_HOME": str(home),
        "FLYWHEEL_API_KEYS": "test-key",
        "FLYWHEEL_ADMIN_KEY": "admin-key",
        **env,
    }
    return Server(
        [FLYWHEEL, "serve", "--port", str(port)],
        environment,
        "/healthz",
        port,
        tmp / f"serve-{port}.log",
    )


def start_mlflow_server(backend: str, tmp: Path, port: int | None = None) -> Server:
    """`mlflow server` on a SQLite store: the registry as a network service that can go down."""
    port = port or free_port()
    bin_dir = str(Path(sys.executable).parent)
    return Server(
        [
            str(Path(bin_dir) / "mlflow"),
            "server",
            "--backend-store-uri",
            backend,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        {"PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"},
        "/health",
        port,
        tmp / f"mlflow-{port}.log",
    )


@pytest.fixture(scope="session")
def labelstudio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One real Label Studio for the session, installed, started and stopped by the project's
    own commands (the install is cached, so only the first run on a machine pays for it)."""
    import json

    home = tmp_path_factory.mktemp("labelstudio") / "home"
    env = {"LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}"}
    run_cli("labelstudio", "start", home=home, **env)
    token = json.loads((home / "labelstudio" / "credentials.json").read_text())["token"]
    yield {**env, "LABEL_STUDIO_API_KEY": token, "FLYWHEEL_LABELSTUDIO_HOME": str(home)}
    run_cli("labelstudio", "stop", home=home, **env)


@pytest.fixture
def ls_env(labelstudio: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test's settings at the session's Label Studio."""
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
        monkeypatch.setenv(name, labelstudio[name])
    return labelstudio


def policy_variant(
    folder: Path, name: str = "spam", sections: dict | None = None, **labeling: object
) -> Policy:
    """A copy of a shipped policy with its own Label Studio project (and labeling overrides,
    and top-level `sections` set), so tests sharing one Label Studio never share a project."""
    import shutil
    import uuid

    import yaml

    raw = yaml.safe_load((REPO / "policies" / f"{name}.yaml").read_text())
    raw["labeling"] = {
        **raw.get("labeling", {}),
        "project_title": f"{name} test {uuid.uuid4().hex[:8]}",
        **labeling,
    }
    raw.update(sections or {})
    folder.mkdir(parents=True, exist_ok=True)
    # the rosters a policy with queues points to, beside it as in policies/
    shutil.copytree(REPO / "policies" / "rosters", folder / "rosters", dirs_exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_policy(str(path))


def two_reviewer_votes(
    n_items: int, positive_rate: float, seed: int
) -> tuple[Policy, pd.DataFrame, pd.Series]:
    """Spam decisions by the simulator's reviewers, two distinct ones per item (so that
    disagreements, where reliability matters, are common), with each item's truth."""
    import numpy as np

    from simulation.world import DEFAULT_REVIEWERS, verdicts

    policy = load_policy("spam")
    rng = np.random.default_rng(seed)
    truly = rng.random(n_items) < positive_rate
    borderline = rng.random(n_items) < 0.1
    pool = list(DEFAULT_REVIEWERS)
    picks = np.argsort(rng.random((n_items, len(pool))), axis=1)[:, :2]
    reviewers = [pool[i] for i in picks.ravel()]
    says, lead = verdicts(reviewers, np.repeat(truly, 2), np.repeat(borderline, 2), 0.15, rng)
    items = [f"i{k}" for k in range(n_items)]
    votes = pd.DataFrame(
        {
            "item_id": np.repeat(items, 2),
            "reviewer_id": [r.reviewer_id for r in reviewers],
            "label": np.where(says, policy.labels.positive, policy.labels.negative),
            "decided_at": pd.Timestamp("2026-11-01", tz="UTC")
            + pd.to_timedelta(np.arange(2 * n_items) * 30, unit="s"),
            "lead_time_s": lead,
        }
    )
    return policy, votes, pd.Series(truly, index=items)


LOGGED_ITEM = {
    "text": "hello",
    "account_age_days": None,
    "links": 2,
    "prior_reports": 0,
    "messages_last_hour": 1,
    "surface": "dm",
    "country": "US",
}


def log_line(*keys, score=0.2):
    """One batch's predictions of `spam` for (request id, item index) keys, as the scoring
    server writes them to its log: one line, its predictions as columns."""
    from flywheel.predictions import PREDICTIONS, line

    return line(
        kind=PREDICTIONS,
        policy="spam",
        version=3,
        threshold_review=0.1,
        threshold_auto_action=None,
        fallback=False,
        at=1_790_000_000.5,
        request_ids=[rid for rid, _ in keys],
        indexes=[i for _, i in keys],
        item_ids=[f"item-{rid}-{i}" for rid, i in keys],
        scores=[score] * len(keys),
        decisions=["allow"] * len(keys),
        items=[LOGGED_ITEM] * len(keys),
    )


def write_prediction_log(
    settings: Settings,
    policy: Policy,
    items: pd.DataFrame,
    scores,
    decisions,
    scored_at,
    name: str = "test",
) -> pd.DataFrame:
    """A compacted prediction-log part, as the scoring API and its compactor leave it."""
    import numpy as np

    from flywheel.lake import write_parquet_atomic
    from flywheel.predictions import COLUMNS, policy_dir

    items = items.reset_index(drop=True)
    log = pd.DataFrame({column: None for column in COLUMNS}, index=items.index).assign(
        request_id=f"req-{name}",
        item_index=np.arange(len(items)),
        item_id=items["item_id"],
        policy=policy.name,
        model_name=policy.name,
        model_version=1,
        score=np.asarray(scores, dtype=float),
        decision=np.asarray(decisions),
        fallback=False,
        scored_at=scored_at,
        **{c: items[c] for c in policy.feature_columns},
    )
    write_parquet_atomic(log, policy_dir(settings, policy.name) / f"part-{name}.parquet")
    return log


def log_recent_traffic(home: Path, policy: Policy, items: pd.DataFrame, seed: int) -> None:
    """Log `items` as scored just now, with spread scores, so a push has every queue to fill."""
    import numpy as np

    scores = np.random.default_rng(seed).beta(0.6, 4, len(items))
    decisions = np.where(scores >= 0.7, "auto_action", np.where(scores >= 0.2, "review", "allow"))
    write_prediction_log(
        Settings(home=home), policy, items, scores, decisions, pd.Timestamp.now(tz="UTC")
    )


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's chromium (installed by `make test-tools`), headless, driven by its chromedriver, with
    the page console's messages kept for `get_log("browser")`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not look for a driver online
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        yield driver
    finally:
        driver.quit()


QUEUES = {
    "roster": "roster.yaml",
    "define": [
        {"name": "general", "sla_hours": 24},
        {"name": "portuguese", "sla_hours": 24, "skills": ["pt"]},
        {"name": "urgent", "sla_hours": 4, "severity": 3},
        {"name": "appeals", "sla_hours": 48, "severity": 2, "skills": ["senior"]},
    ],
    "routes": [
        {"queue": "appeals", "when": {"purpose": ["appeal"]}},
        {"queue": "portuguese", "when": {"language": ["pt"]}},
        {"queue": "urgent", "when": {"score_at_least": 0.8, "field": {"surface": ["dm"]}}},
        {"queue": "general"},
    ],
    "appeals": "appeals",
}
ROSTER = {
    "timezone": "UTC",
    "reviewers": [
        {
            "id": "rev-ana",
            "user": "ana@example.org",
            "languages": ["en", "pt"],
            "queues": ["portuguese", "general"],
            "decisions_per_hour": 20,
            "shifts": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
            ],
        },
        {
            "id": "rev-bo",
            "user": "bo@example.org",
            "languages": ["en", "es"],
            "skills": ["senior"],
            "queues": ["general", "urgent", "appeals"],
            "decisions_per_hour": 30,
            "shifts": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "06:00"}
            ],
        },
    ],
}


def queued_policy(
    folder: Path, queues: dict | None = None, roster: dict | None = None, **labeling: object
) -> Policy:
    """The shipped spam policy with review queues and a roster file beside it, its projects
    titled apart from every other test's (and labeling overrides)."""
    import copy
    import uuid

    import yaml

    raw = yaml.safe_load((REPO / "policies" / "spam.yaml").read_text())
    raw["queues"] = copy.deepcopy(queues or QUEUES)
    raw["labeling"] = {
        **raw.get("labeling", {}),
        "project_title": f"spam queues {uuid.uuid4().hex[:8]}",
        **labeling,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "roster.yaml").write_text(yaml.safe_dump(copy.deepcopy(roster or ROSTER)))
    path = folder / "spam.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_policy(str(path))
