"""The review operation's health: backlog and its age, fallback traffic, reviewer pace and flags.

Read from the lake only: the labeling ledger (what was pushed), the decisions (what came back),
the prediction log's window (what ran on fallback) and labeling's latest QA report.
"""

from __future__ import annotations

import json

import pandas as pd

from flywheel.aggregate import reviewer_speed
from flywheel.lake import Lake
from flywheel.policy import Policy


def backlog(
    ledger: pd.DataFrame,
    decisions: pd.DataFrame,
    now: pd.Timestamp,
    sla_hours: float,
    queue_slas: dict[str, float] | None = None,
    escalated: set[str] | frozenset = frozenset(),
) -> dict:
    """Pushed tasks no reviewer has decided yet, their age against the SLA, and how long
    decided tasks took (first decision after the push). With review queues (`queue_slas`,
    name → SLA hours), each task is held to its queue's SLA and counted by queue, and the
    escalated tasks (ids in `escalated`) still undecided are counted per queue."""
    empty = {
        "open_tasks": 0, "oldest_hours": None, "sla_breaches": 0, "by_queue": {}, "escalated": {},
    }  # fmt: skip
    if ledger.empty:
        return empty | {"median_hours_to_decision": None}
    first = first_decisions(ledger, decisions)
    pushed = pd.to_datetime(ledger.set_index("task_id")["pushed_at"], utc=True)
    took = (first - pushed.reindex(first.index)).dt.total_seconds() / 3600
    waiting = ledger[~ledger["task_id"].isin(first.index)]
    summary = {"median_hours_to_decision": None if took.empty else round(float(took.median()), 2)}
    if waiting.empty:
        return empty | summary
    age = (now - pd.to_datetime(waiting["pushed_at"], utc=True)).dt.total_seconds() / 3600
    queued = bool(queue_slas) and "review_queue" in waiting
    by = waiting["review_queue"] if queued else waiting["queue"]
    limit = by.map(queue_slas).fillna(sla_hours) if queued else sla_hours
    late = waiting["task_id"].astype(str).isin(escalated)
    return summary | {
        "open_tasks": len(waiting),
        "oldest_hours": round(float(age.max()), 2),
        "sla_breaches": int((age > limit).sum()),
        "by_queue": {str(k): int(v) for k, v in by.value_counts().items()},
        "escalated": {str(k): int(v) for k, v in by[late].value_counts().items()},
    }


def first_decisions(ledger: pd.DataFrame, decisions: pd.DataFrame) -> pd.Series:
    """When each pushed task got its first decision, by task id; a task not in it is open."""
    if "task_id" not in decisions:  # no decision yet, or only imported ones
        return pd.Series([], index=pd.Index([], name="task_id"), dtype="datetime64[ns, UTC]")
    decided = decisions[decisions["task_id"].isin(ledger["task_id"])]
    return pd.to_datetime(decided.groupby("task_id")["decided_at"].min(), utc=True)


def reviewer_pace(decisions: pd.DataFrame) -> dict:
    """Decisions per reviewer per active hour, and median time to decision."""
    if decisions.empty:
        return {}
    speed = reviewer_speed(decisions)
    return {
        str(r): {
            "decisions_per_active_hour": round(float(row["decisions"] / row["active_hours"]), 2),
            "median_seconds": None
            if pd.isna(row["median_seconds"])
            else float(row["median_seconds"]),
        }
        for r, row in speed.iterrows()
    }


def operational_health(lake: Lake, policy: Policy, window: pd.DataFrame, now: pd.Timestamp) -> dict:
    decisions = lake.decisions(policy.name)
    qa_path = lake.labeling_path(policy.name, "qa.json")
    qa = json.loads(qa_path.read_text()) if qa_path.is_file() else None
    fallback = window["fallback"].astype(bool) if not window.empty else pd.Series(dtype=bool)
    slas = {q.name: q.sla_hours for q in policy.queues.define} if policy.queues else None
    escalated = set(lake.escalations(policy.name)["task_id"].astype(str))
    ledger = lake.pushed_tasks(policy.name)
    return {
        "backlog": backlog(ledger, decisions, now, policy.monitoring.sla_hours, slas, escalated),
        "fallback_share": float(fallback.mean()) if len(fallback) else None,
        "reviewers": reviewer_pace(decisions),
        "flagged_reviewers": qa["flagged"] if qa else [],
        "flag_evidence": {
            r["reviewer_id"]: r.get("reason", "")
            for r in (qa or {}).get("reviewers", [])
            if r.get("flagged")
        },
        "unjudged_reviewers": (qa or {}).get("unjudged", []),
        "qa_computed_at": qa["computed_at"] if qa else None,
    }
