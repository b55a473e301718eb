"""Escalate the tasks about to breach their SLA: to the head of their queue, with an alert.

A task that no reviewer has decided when `queues.escalate_at` of its queue's SLA has passed,
and whose SLA can still be met, gets the highest priority in its project (`data.priority`, which
the "By harm" tab orders by), so whoever opens the queue next takes it, and it is recorded in
the lake, where monitoring raises an alert for every queue with escalated tasks still
undecided (`monitoring.alerts.escalations`). A task is escalated once; one that a reviewer has
started (a decision of an overlap of several) has already been seen within its SLA.

Only in a queue that is keeping its SLA, with no open task past it: there escalation saves a
task that the harm order left behind. A queue with a task already late is short of hands (a
push sends a queue only what its reviewers can decide within its SLA, so the hours were not
there: reviewers off sick, a slower week); putting its due tasks first there would delay
fresher, more harmful ones until they are due in turn, and the queue would work oldest first,
with harm exposure and SLA compliance both worse (`benchmarks/queues.py` measured it). Its
tasks keep harm's order; monitoring's `breaches` alert and the queue's forecast and staffing
(`flywheel queues forecast`) say what it lacks.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from flywheel.lake import Lake
from flywheel.policy import Policy
from labeling.client import LabelStudioAPI
from labeling.dispatch import open_tasks

ESCALATED = 1e6  # above any harm: escalated tasks first, the oldest of them first


def due(policy: Policy, lake: Lake, now: datetime) -> pd.DataFrame:
    """Open, undecided tasks past `escalate_at` of their SLA, not escalated before, in queues
    with no open task past its SLA, with their age in hours."""
    assert policy.queues is not None
    tasks = open_tasks(lake.pushed_tasks(policy.name), lake.decisions(policy.name), 1)
    if tasks.empty:
        return tasks.assign(age_hours=[])
    sla = tasks["review_queue"].map({q.name: q.sla_hours for q in policy.queues.define})
    age = (pd.Timestamp(now) - pd.to_datetime(tasks["pushed_at"], utc=True)).dt.total_seconds()
    tasks = tasks.assign(age_hours=age / 3600)
    done = set(lake.escalations(policy.name)["task_id"].astype(str))
    # past escalate_at of the SLA and not past the SLA: a task already late is a breach,
    # which escalating cannot undo, and it says its queue is short of hands
    late = tasks["age_hours"] >= sla
    keeping = ~tasks["review_queue"].isin(set(tasks.loc[late, "review_queue"]))
    near = (tasks["age_hours"] >= policy.queues.escalate_at * sla) & ~late
    return tasks[near & keeping & ~tasks["task_id"].astype(str).isin(done)]


def escalate(policy: Policy, lake: Lake, api: LabelStudioAPI, now: datetime) -> int:
    """Move every task due to the head of its queue; returns how many."""
    late = due(policy, lake, now)
    if late.empty:
        return 0
    for row in late.itertuples():
        task = api.call(
            f"reading task {row.task_id}", lambda t=row.task_id: api.sdk.tasks.get(id=t)
        )
        data = {**(task.data or {}), "priority": ESCALATED + float(row.age_hours)}
        api.call(
            f"escalating task {row.task_id}",
            lambda t=row.task_id, d=data: api.sdk.tasks.update(id=t, data=d),
        )
    lake.record_escalations(
        policy.name,
        late[["task_id", "item_id", "review_queue", "age_hours"]].assign(
            task_id=lambda f: f["task_id"].astype(str),
            escalated_at=pd.Timestamp(now),
        ),
    )
    return len(late)
