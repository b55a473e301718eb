"""How many tasks each queue's reviewers can decide within its SLA, and which tasks fill that.

A push sends a queue only what its rostered reviewers can decide before its SLA runs out:
each reviewer's hours on shift within the SLA times their pace, divided by the decisions each
task needs (`labeling.overlap`), less the tasks already open there. A reviewer who works
several queues is shared among them in proportion to each one's pressure: its
severity-weighted work waiting over what its whole team could decide within its SLA. The rest
waits in the lake, where the next push finds it, ordered again.

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
    policy: Policy, roster: Roster, now: datetime, waiting: dict[str, float]
) -> dict[tuple[str, str], float]:
    """(reviewer, queue) → tasks an hour that reviewer decides in that queue while on shift:
    their pace over the decisions each task needs, shared among their queues in proportion to
    each queue's pressure (evenly when nothing waits).

    A queue's pressure is its severity-weighted work waiting over what its whole team could
    decide within its SLA. A reviewer who works a rare language's queue and the general one
    thus spends most of their hours where nobody else can stand in, rather than in the general
    queue only because more waits there; a queue nobody can work within its SLA takes none."""
    assert policy.queues is not None
    severity = {q.name: q.severity for q in policy.queues.define}
    supply = _supply(policy, roster, now)
    pressure = {
        q: waiting.get(q, 0.0) * severity[q] / supply[q] if supply[q] > 0 else 0.0 for q in severity
    }
    out = {}
    for reviewer in roster.reviewers:
        total = sum(pressure[q] for q in reviewer.queues)
        for name in reviewer.queues:
            share = pressure[name] / total if total > 0 else 1.0 / len(reviewer.queues)
            out[reviewer.id, name] = reviewer.decisions_per_hour * share / policy.labeling.overlap
    return out


def _supply(policy: Policy, roster: Roster, now: datetime) -> dict[str, float]:
    """Tasks each queue's team could decide within its SLA from `now`, each reviewer whole."""
    assert policy.queues is not None
    supply = {}
    for queue in policy.queues.define:
        end = now + timedelta(hours=queue.sla_hours)
        supply[queue.name] = sum(
            r.decisions_per_hour / policy.labeling.overlap * r.hours(now, end, roster.zone)
            for r in roster.working(queue.name)
        )
    return supply


def capacity(
    policy: Policy, roster: Roster, now: datetime, waiting: dict[str, float]
) -> dict[str, float]:
    """Tasks each queue's reviewers can decide within its SLA from `now`; `waiting` is the
    work waiting per queue (tasks open and not yet pushed), which shares a reviewer's hours."""
    assert policy.queues is not None
    room = {q.name: 0.0 for q in policy.queues.define}
    sla = {q.name: q.sla_hours for q in policy.queues.define}
    by_id = {r.id: r for r in roster.reviewers}
    for (reviewer, name), pace in paces(policy, roster, now, waiting).items():
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
