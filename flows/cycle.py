"""One turn of the wheel for a policy: pull → reviewer QA → build dataset → train → promote →
monitor → push → the automated reviewers asked about what was pushed.

Every step is idempotent on its own (the pull's watermark, content-addressed datasets, a model
trained on the same data is reused, the gate knows its champion, the push's ledger), so a cycle
that crashed at any step is finished by running it again, with no duplicates. Steps that talk to
services retry on transient faults. One cycle per policy runs at a time: a second one started
meanwhile fails at once instead of racing the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from automation.ask import AskReport, ask
from flows.ingest import RETRIES, pull_task
from flows.monitor import monitor_task
from flows.retrain import check_registry_task, promote_task, settled_training
from flywheel.errors import FlywheelError
from flywheel.lake import Lake
from flywheel.policy import Policy, load_policy
from flywheel.settings import get_settings
from labeling.client import LabelStudioAPI
from labeling.push import PushReport, push


class CycleSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy: str  # as given: a name or a policy file's path
    decisions_added: int
    dataset_version: str
    model_version: int
    reused_model: bool
    promotion: str
    alerts_open: list[str]
    tasks_pushed: int
    flagged_reviewers: list[str]
    tasks_by_queue: dict[str, int]  # the tasks pushed, per queue
    report: str  # the monitoring run's report.json
    automated_answers: dict[str, int] = {}  # per automated reviewer, tasks it answered


@contextmanager
def one_cycle_at_a_time(policy: str) -> Iterator[None]:
    """Hold the policy's cycle lock for the whole turn, or fail at once if another holds it."""
    settings = get_settings()
    with Lake(settings.lake_dir).lock(policy, "cycle", wait=False) as held:
        if not held:
            raise FlywheelError(f"a cycle of {policy} is already running")
        yield


@task(name="push-tasks", cache_policy=NO_CACHE, **RETRIES)
def push_task(policy: Policy) -> PushReport:
    settings = get_settings()
    return push(policy, settings, Lake(settings.lake_dir), LabelStudioAPI(settings))


@task(name="ask-automated-reviewers", cache_policy=NO_CACHE)
def ask_task(policy: Policy) -> AskReport:
    """The tasks just pushed, put to the policy's automated reviewers too (never deciding
    them: people do), so that QA measures them like people."""
    return ask(policy, Lake(get_settings().lake_dir))


@flow(name="cycle", log_prints=True)
def cycle(policy: str, since: datetime | None = None) -> CycleSummary:
    """Reviewer decisions in, a gated model, a monitoring run, and the next review tasks out.

    `since` starts the monitoring window (default: the policy's `monitoring.window_days`)."""
    loaded = load_policy(policy, get_settings())
    with one_cycle_at_a_time(loaded.name):
        check_registry_task()
        added = pull_task(loaded)
        flagged, dataset, trained = settled_training(loaded)
        verdict = promote_task(loaded)
        monitored = monitor_task(loaded, since)
        pushed = push_task(loaded)
        asked = ask_task(loaded)
    return CycleSummary(
        policy=policy,
        decisions_added=added,
        dataset_version=dataset.version,
        model_version=trained.model.version,
        reused_model=trained.reused,
        promotion=verdict.note or verdict.outcome,
        alerts_open=monitored["alerts_open"],
        tasks_pushed=pushed.total,
        flagged_reviewers=flagged,
        tasks_by_queue=pushed.by_queue,
        report=monitored["report"],
        automated_answers=asked.answered,
    )
