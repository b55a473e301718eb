"""How many tasks each queue's reviewers can decide within its SLA, and which tasks fill that.

A push sends a queue only what its rostered reviewers can decide before its SLA runs out:
each reviewer's hours on shift within the SLA times their pace, divided by the decisions each
task needs (`labeling.overlap`), less the tasks already open there. A reviewer who works
several queues is shared among them in proportion to the severity-weighted work waiting in
each. The rest waits in the lake, where the next push finds it, ordered again.

Within a queue's room, audit and gold checks (and appeals) go first, so the statistics built on
them never starve, and their inclusion probabilities stay exact: a drawn audit item not pushed
for lack of room is pushed later, never dropped. Exploration keeps its budget's share of what
is left; review tasks take the rest by expected harm (`labeling.route.harm`), and exploration's
unused share.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd

from flywheel.policy import Policy
from flywheel.roster import Roster

RESERVED = ("audit", "gold", "appeal")  # pushed first: the statistics and the users waiting


def paces(
    policy: Policy, roster: Roster, waiting: dict[str, float]
) -> dict[tuple[str, str], float]:
    """(reviewer, queue) → tasks an hour that reviewer decides in that queue while on shift:
    their pace over the decisions each task needs, shared among their queues in proportion to
    the severity-weighted work waiting in each (evenly when nothing waits)."""
    assert policy.queues is not None
    severity = {q.name: q.severity for q in policy.queues.define}
    out = {}
    for reviewer in roster.reviewers:
        demand = {q: waiting.get(q, 0.0) * severity[q] for q in reviewer.queues}
        total = sum(demand.values())
        for name in reviewer.queues:
            share = demand[name] / total if total > 0 else 1.0 / len(reviewer.queues)
            out[reviewer.id, name] = reviewer.decisions_per_hour * share / policy.labeling.overlap
    return out


def capacity(
    policy: Policy, roster: Roster, now: datetime, waiting: dict[str, float]
) -> dict[str, float]:
    """Tasks each queue's reviewers can decide within its SLA from `now`; `waiting` is the
    work waiting per queue (tasks open and not yet pushed), which shares a reviewer's hours."""
    assert policy.queues is not None
    room = {q.name: 0.0 for q in policy.queues.define}
    sla = {q.name: q.sla_hours for q in policy.queues.define}
    by_id = {r.id: r for r in roster.reviewers}
    for (reviewer, name), pace in paces(policy, roster, waiting).items():
        end = now + timedelta(hours=sla[name])
        room[name] += pace * by_id[reviewer].hours(now, end, roster.zone)
    return room


def fill(tasks: pd.DataFrame, room: dict[str, int], explore_budget: float) -> pd.DataFrame:
    """The tasks that fit each queue's room (`review_queue`, `purpose` and `harm` columns):
    reserved purposes first, then exploration within its budget, then review by harm."""
    chosen = []
    for name, group in tasks.groupby("review_queue", sort=True):
        left = max(int(room.get(name, 0)), 0)
        group = group.sort_values("harm", ascending=False, kind="stable")
        reserved = group[group["purpose"].isin(RESERVED)].head(left)
        left -= len(reserved)
        explore = group[group["purpose"].eq("explore")].head(math.floor(explore_budget * left))
        left -= len(explore)
        review = group[~group["purpose"].isin([*RESERVED, "explore"])].head(left)
        chosen.append(pd.concat([reserved, explore, review]))
    if not chosen:
        return tasks.iloc[0:0]
    return pd.concat(chosen)
