"""The ingest flow: reviewer decisions from Label Studio into the lake, then reviewer QA.

It runs when Label Studio's webhook reports new annotations (`ingest-<policy>` deployments,
started by `flywheel label listen --via-prefect`), and as the first steps of every cycle. Both are
incremental and idempotent, so running it often costs a listing call and nothing else.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment
from pydantic import BaseModel, ConfigDict

from flywheel.errors import FlywheelError
from flywheel.lake import Lake
from flywheel.policy import Policy, load_policy
from flywheel.settings import get_settings
from labeling.client import LabelStudioAPI
from labeling.pull import pull
from labeling.qa import run_qa

RETRIES = {"retries": 2, "retry_delay_seconds": [2, 10]}


class IngestSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy: str
    decisions_added: int
    flagged_reviewers: list[str]


@task(name="pull-decisions", cache_policy=NO_CACHE, **RETRIES)
def pull_task(policy: Policy) -> int:
    settings = get_settings()
    report = pull(policy, settings, Lake(settings.lake_dir), LabelStudioAPI(settings))
    for problem in report.problems:
        print(f"skipped: {problem}")
    return report.added


@task(name="reviewer-qa", cache_policy=NO_CACHE)
def qa_task(policy: Policy) -> list[str]:
    """Reviewer quality on every decision stored, so monitoring sees the latest flags."""
    return run_qa(policy, Lake(get_settings().lake_dir))["flagged"]


@flow(name="ingest", log_prints=True)
def ingest(policy: str) -> IngestSummary:
    """New reviewer decisions in, reviewer quality recomputed."""
    loaded = load_policy(policy, get_settings())
    added = pull_task(loaded)
    flagged = qa_task(loaded)
    if flagged:
        print(f"below the quality bar: {', '.join(flagged)}")
    return IngestSummary(policy=policy, decisions_added=added, flagged_reviewers=flagged)


def run_ingest_deployment(policy: str) -> None:
    """Run the policy's ingest deployment on the Prefect server and wait for its end."""
    run = run_deployment(f"ingest/ingest-{policy}", parameters={"policy": policy})
    if run.state is None or not run.state.is_completed():
        raise FlywheelError(f"ingest of {policy} did not complete: {run.state}")
