"""The monitor flow: one monitoring run of a policy (figures, reports, alerts, health page).

A thin wrapper over `monitoring.monitor.run_monitor`, so the same run works from the CLI
(`flywheel monitor`), a test or a notebook without Prefect.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flywheel.lake import Lake
from flywheel.policy import Policy, load_policy
from flywheel.settings import get_settings
from monitoring.monitor import run_monitor


@task(name="monitor-policy", cache_policy=NO_CACHE)
def monitor_task(policy: Policy, since: datetime | None = None) -> dict:
    settings = get_settings()
    report = run_monitor(
        policy,
        settings,
        Lake(settings.lake_dir),
        since=pd.Timestamp(since) if since is not None else None,
    )
    return {
        "policy": policy.name,
        "run_id": report.run_id,
        "predictions": report.window.predictions,
        "alerts_open": report.alerts.open,
        "alerts_opened": report.alerts.opened,
        "notes": report.notes,
        "report": report.files["report"],
    }


@flow(name="monitor", log_prints=True)
def monitor(policy: str) -> dict:
    """Measure a policy now; print what opened."""
    summary = monitor_task(load_policy(policy, get_settings()))
    for key in summary["alerts_opened"]:
        print(f"alert opened: {key}")
    return summary
