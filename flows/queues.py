"""The tend flow: a policy's review queues between cycles (pull, escalate, status).

Deployed as `tend-<policy>` for policies with queues, every 15 minutes, so that a task nearing
its SLA is escalated within a quarter of an hour whatever the cycle's schedule. A thin wrapper
over `labeling.tend.tend`, which `flywheel queues tend` runs without Prefect.
"""

from __future__ import annotations

from prefect import flow

from flywheel.lake import Lake, utc_now
from flywheel.policy import load_policy
from flywheel.settings import get_settings
from labeling.client import LabelStudioAPI
from labeling.tend import tend


@flow(name="tend-queues", log_prints=True)
def tend_queues(policy: str) -> dict:
    """Pull, escalate, write the queues' status; print what was escalated."""
    settings = get_settings()
    loaded = load_policy(policy, settings)
    tended = tend(loaded, settings, Lake(settings.lake_dir), LabelStudioAPI(settings), utc_now())
    if tended.escalated:
        print(f"escalated {tended.escalated} task(s) nearing their SLA")
    return {
        "policy": policy,
        "decisions_added": tended.decisions_added,
        "escalated": tended.escalated,
    }
