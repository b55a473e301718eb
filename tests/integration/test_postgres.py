"""The scale-out path's database: MLflow's tracking store and registry and the Prefect server
both on a real PostgreSQL (Debian's package, started here), and a cycle run on them through a
deployment and the worker. Only the connection URLs differ from the embedded defaults."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from flywheel.lake import Lake
from flywheel.settings import Settings
from tests.conftest import free_port, log_recent_traffic, policy_variant, run_cli, stock

USER = "flywheel"


def _server_binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    assert found, "no PostgreSQL server under /usr/lib/postgresql (`make test` installs it)"
    return found[-1].parent


def _as_postgres() -> None:
    """PostgreSQL refuses to run as root; when the tests do, its processes run as `postgres`."""
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway cluster on a free port with the `mlflow` and `prefect` databases; its URL."""
    binaries = _server_binaries()
    base = Path(tempfile.mkdtemp(prefix="flywheel-pg-"))  # outside pytest's root-only tmp
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
    port = free_port()
    data = base / "data"

    def run(*args: str) -> None:
        done = subprocess.run(
            args, preexec_fn=_as_postgres, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}{done.stderr}"

    run(str(binaries / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "--no-sync")
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = str(binaries / "pg_ctl")
    run(pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-o", options, "-w", "start")
    try:
        for database in ("mlflow", "prefect"):
            run(
                str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, database
            )
        yield f"{USER}@127.0.0.1:{port}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _completed_cycle_runs(server: str) -> int:
    """Read from the Prefect server's own tables: the run really went through PostgreSQL."""
    import psycopg

    with psycopg.connect(f"postgresql://{server}/prefect") as connection:
        return connection.execute(
            "SELECT count(*) FROM flow_run JOIN flow ON flow.id = flow_run.flow_id "
            "WHERE flow.name = 'cycle' AND flow_run.state_type = 'COMPLETED'"
        ).fetchone()[0]


@pytest.mark.slow
def test_a_cycle_runs_on_postgresql(
    postgres, spam, world_files, small_world, labelstudio, tmp_path
):
    home = tmp_path / "home"
    settings = Settings(home=home)
    stock(Lake(settings.lake_dir), spam, world_files)
    policy = policy_variant(tmp_path / "policies", review_batch=40, gold_rate=0.1, overlap=1)
    log_recent_traffic(home, policy, small_world.traffic.tail(200), seed=5)
    tracking = f"postgresql://{postgres}/mlflow"
    env = {
        "FLYWHEEL_POLICIES_DIR": str(tmp_path / "policies"),
        "LABEL_STUDIO_URL": labelstudio["LABEL_STUDIO_URL"],
        "LABEL_STUDIO_API_KEY": labelstudio["LABEL_STUDIO_API_KEY"],
        "MLFLOW_TRACKING_URI": tracking,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://{postgres}/prefect",
    }
    prefect_port = free_port()
    api_url = f"http://127.0.0.1:{prefect_port}/api"
    try:
        run_cli("stack", "start", "--prefect-port", str(prefect_port), "--webhook-port",
                str(free_port()), home=home, **env)  # fmt: skip
        run = subprocess.run(
            [str(Path(sys.executable).with_name("prefect")), "deployment", "run",
             "cycle/cycle-spam", "--watch"],
            env={**os.environ, **env, "FLYWHEEL_HOME": str(home), "PREFECT_API_URL": api_url},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
        assert _completed_cycle_runs(postgres) == 1

        client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
        champion = client.get_model_version_by_alias("spam", "champion")
        assert champion.tags["promotion_verdict"] == "promoted"
        assert champion.tags["dataset_version"] in Lake(settings.lake_dir).dataset_versions("spam")
        # with a database store, the model files stay in the home, not in the working directory
        assert list((settings.artifacts_dir / "spam").rglob("MLmodel"))
        assert len(Lake(settings.lake_dir).pushed_tasks("spam")) > 0
    finally:
        run_cli("stop", home=home, **env)
