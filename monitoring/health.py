"""The review operation's health: backlog and its age, fallback traffic, reviewer pace and flags.

Read from the lake only: the labeling ledger (what was pushed), the decisions (what came back),
the prediction log's window (what ran on fallback) and labeling's latest QA report.
"""

from __future__ import annotations

import json

import pandas as pd

from flywheel.lake import Lake


def backlog(ledger: pd.DataFrame, decisions: pd.DataFrame, now: pd.Timestamp) -> dict:
    """Pushed tasks no reviewer has decided yet, and how long the oldest has waited."""
    if ledger.empty:
        return {"open_tasks": 0, "oldest_hours": None, "by_queue": {}}
    decided = set(decisions["task_id"]) if "task_id" in decisions else set()
    waiting = ledger[~ledger["task_id"].isin(decided)]
    if waiting.empty:
        return {"open_tasks": 0, "oldest_hours": None, "by_queue": {}}
    pushed_at = pd.to_datetime(waiting["pushed_at"], utc=True)
    return {
        "open_tasks": len(waiting),
        "oldest_hours": round((now - pushed_at.min()).total_seconds() / 3600, 2),
        "by_queue": {str(k): int(v) for k, v in waiting["queue"].value_counts().items()},
    }


def reviewer_pace(decisions: pd.DataFrame) -> dict:
    """Decisions per reviewer per active hour, and median time to decision."""
    if decisions.empty:
        return {}
    frame = decisions.assign(hour=pd.to_datetime(decisions["decided_at"], utc=True).dt.floor("h"))
    grouped = frame.groupby("reviewer_id")
    per_hour = grouped.size() / grouped["hour"].nunique()
    lead = pd.to_numeric(frame.get("lead_time_s"), errors="coerce").groupby(frame["reviewer_id"])
    return {
        str(r): {
            "decisions_per_active_hour": round(float(per_hour[r]), 2),
            "median_seconds": None if pd.isna(lead.median()[r]) else float(lead.median()[r]),
        }
        for r in per_hour.index
    }


def operational_health(lake: Lake, policy: str, window: pd.DataFrame, now: pd.Timestamp) -> dict:
    decisions = lake.decisions(policy)
    qa_path = lake.labeling_path(policy, "qa.json")
    qa = json.loads(qa_path.read_text()) if qa_path.is_file() else None
    fallback = window["fallback"].astype(bool) if not window.empty else pd.Series(dtype=bool)
    return {
        "backlog": backlog(lake.pushed_tasks(policy), decisions, now),
        "fallback_share": float(fallback.mean()) if len(fallback) else None,
        "reviewers": reviewer_pace(decisions),
        "flagged_reviewers": qa["flagged"] if qa else [],
        "qa_computed_at": qa["computed_at"] if qa else None,
    }
