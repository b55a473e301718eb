"""`flywheel stack start` (`make serve-stack`) on real servers: a Prefect server, the work pool,
every deployment of prefect.yaml, a process worker and the webhook receiver. A deployment run
through the worker completes, and Label Studio's annotation events start ingest runs that bring
the decisions into the lake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from flywheel.lake import Lake
from flywheel.settings import Settings
from tests.conftest import (
    copy_trained,
    free_port,
    log_recent_traffic,
    policy_variant,
    run_cli,
    wait_until,
)

DEPLOYMENTS = [
    f"{flow}/{flow}-{policy}"
    for flow in ("cycle", "ingest", "monitor", "retrain")
    for policy in ("scam", "spam")
] + ["tend-queues/tend-scam"]  # the queues of the one policy with queues, between cycles


def _completed_runs(api_url: str, flow: str) -> int:
    answer = httpx.post(
        f"{api_url}/flow_runs/filter",
        json={
            "flows": {"name": {"any_": [flow]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        },
        timeout=10,
    )
    answer.raise_for_status()
    return len(answer.json())


@pytest.mark.slow
def test_the_stack_runs_deployments_and_ingests_on_webhook_events(
    trained, small_world, labelstudio, tmp_path
):
    settings, _, _ = trained
    home = copy_trained(settings, tmp_path / "home").root
    # the shipped spam policy with a Label Studio project of its own, under its usual name
    policy = policy_variant(tmp_path / "policies", review_batch=40, gold_rate=0.1, overlap=1)
    log_recent_traffic(home, policy, small_world.traffic.tail(200), seed=3)
    truth = tmp_path / "truth.parquet"
    small_world.truth.to_parquet(truth)
    prefect_port, webhook_port, console_port = free_port(), free_port(), free_port()
    env = {
        "FLYWHEEL_POLICIES_DIR": str(tmp_path / "policies"),
        "FLYWHEEL_WEBHOOK_URL": f"http://127.0.0.1:{webhook_port}/webhooks/labelstudio",
        "LABEL_STUDIO_URL": labelstudio["LABEL_STUDIO_URL"],
        "LABEL_STUDIO_API_KEY": labelstudio["LABEL_STUDIO_API_KEY"],
    }
    api_url = f"http://127.0.0.1:{prefect_port}/api"
    try:
        started = run_cli(
            "stack",
            "start",
            "--prefect-port",
            str(prefect_port),
            "--webhook-port",
            str(webhook_port),
            "--console-port",
            str(console_port),
            home=home,
            **env,
        )
        for name in DEPLOYMENTS:
            assert f"  {name}\n" in started.stdout, started.stdout
        again = json.loads(
            run_cli(
                "stack", "start", "--prefect-port", str(prefect_port), "--json", home=home, **env
            ).stdout
        )
        # found running, deployed again
        assert sorted(again["deployments"]) == sorted(DEPLOYMENTS), again
        assert again["prefect_api_url"] == api_url
        # the console runs beside it, behind the key generated for this home
        console_url = f"http://127.0.0.1:{console_port}"
        assert again["console_url"] == console_url and console_url in started.stdout
        key = json.loads((home / "console" / "key.json").read_text())["key"]
        assert httpx.get(console_url, timeout=10).status_code == 401
        page = httpx.get(console_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        assert page.status_code == 200 and 'id="policy-spam"' in page.text

        # a scheduled flow, run now through the work pool by the worker, with this home
        prefect = str(Path(sys.executable).with_name("prefect"))
        run = subprocess.run(
            [prefect, "deployment", "run", "monitor/monitor-spam", "--watch"],
            env={**env, "PATH": str(Path(sys.executable).parent), "PREFECT_API_URL": api_url},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0 and "Completed" in run.stdout, run.stdout + run.stderr
        assert list((home / "lake" / "monitoring" / "spam" / "runs").glob("*/report.json"))

        # reviewers annotate in Label Studio; its webhooks start ingest runs; decisions arrive
        run_cli("label", "bootstrap", "--policy", "spam", home=home, **env)
        run_cli("label", "push", "--policy", "spam", home=home, **env)
        lake = Lake(Settings(home=home).lake_dir)
        before = len(lake.decisions("spam"))
        run_cli("label", "simulate", "--policy", "spam", "--truth", str(truth), home=home, **env)
        n_tasks = len(lake.pushed_tasks("spam"))
        assert n_tasks > 0
        wait_until(
            lambda: len(lake.decisions("spam")) >= before + n_tasks,
            300,
            "the webhook-triggered ingest runs to store every annotation",
        )
        wait_until(lambda: _completed_runs(api_url, "ingest") >= 1, 120, "an ingest run to end")
        assert (home / "lake" / "labeling" / "spam" / "qa.json").is_file()
    finally:
        stopped = run_cli("stop", home=home, **env)
    assert "the Prefect server: stopped" in stopped.stdout
    assert "the Prefect worker: stopped" in stopped.stdout
    assert "console: stopped" in stopped.stdout
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api_url}/health", timeout=2)
