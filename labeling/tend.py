"""Tend the review queues between cycles: decisions in, late tasks escalated, status fresh.

An SLA of a few hours cannot wait for the next cycle, which retrains and may run once a day.
`tend` is cheap and runs often (the `tend-<policy>` deployments, every 15 minutes;
`flywheel queues tend`): it pulls the decisions made since the last pull (so that a task a
reviewer decided is not escalated), escalates the tasks due (`labeling.escalate`), and writes
each queue's status and forecast (`labeling.status`) for the console and Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flywheel.errors import FlywheelError
from flywheel.lake import Lake
from flywheel.policy import Policy
from flywheel.roster import load_roster
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI
from labeling.escalate import escalate
from labeling.pull import pull
from labeling.status import QueueStatus, queue_status, write_status


@dataclass(frozen=True)
class Tended:
    policy: str
    decisions_added: int
    escalated: int
    queues: list[QueueStatus]


def tend(
    policy: Policy,
    settings: Settings,
    lake: Lake,
    api: LabelStudioAPI,
    now: datetime,
    days: int = 3,
) -> Tended:
    """Pull, escalate what is due at `now`, and write the queues' status with a forecast over
    `days` (with `days` 0, the status is returned and the last one written stays: the
    forecast is the costly part, seconds where the rest takes a fraction of one)."""
    if policy.queues is None:
        raise FlywheelError(f"policy {policy.name} has no queues: section: nothing to tend")
    added = pull(policy, settings, lake, api).added
    with lake.lock(policy.name, "push"):  # a push escalates too: one at a time
        escalated = escalate(policy, lake, api, now)
    statuses = queue_status(policy, lake, now, days=days, roster=load_roster(policy))
    if days:
        write_status(policy, lake, statuses, now)
    return Tended(policy.name, added, escalated, statuses)
