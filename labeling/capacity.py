"""How many tasks each queue's reviewers can decide within its SLA, and which tasks fill that.

A push sends a queue only what its rostered reviewers can decide before its SLA runs out:
each reviewer's hours on shift within the SLA times their pace, divided by the decisions each
task needs (`labeling.overlap`), less the tasks already open there. A reviewer who works
several queues is shared among them in proportion to each one's pressure: its
severity-weighted work waiting over what its whole team could decide within its SLA; a queue
given more than its work gives the rest back to the others. The rest of the work waits in the
lake, where the next push finds it, ordered again.

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


def _pressure(
    policy: Policy, roster: Roster, now: datetime, waiting: dict[str, float]
) -> dict[str, float]:
    """Each queue's severity-weighted work waiting over what its whole team could decide
    within its SLA (0 for a queue nobody can work in that time)."""
    assert policy.queues is not None
    supply = _supply(policy, roster, now)
    return {
        q.name: waiting.get(q.name, 0.0) * q.severity / supply[q.name] if supply[q.name] else 0.0
        for q in policy.queues.define
    }


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
    """Tasks each queue's reviewers can decide within its SLA from `now`, with their hours
    shared among the queues; `waiting` is the work waiting per queue (tasks open and not yet
    pushed).

    Each reviewer's hours go to their queues in proportion to each one's pressure (evenly when
    nothing waits): a reader of a rare language spends them where nobody else can stand in,
    rather than in the general queue only because more waits there. A queue given more than
    its work then gives the rest back, to its reviewers' other queues by their pressure, until
    none has more than it can use: hours are not held for work that is not there."""
    assert policy.queues is not None
    pressure = _pressure(policy, roster, now, waiting)
    share: dict[tuple[str, str], float] = {}
    for reviewer in roster.reviewers:
        total = sum(pressure[q] for q in reviewer.queues)
        for q in reviewer.queues:
            share[reviewer.id, q] = pressure[q] / total if total else 1.0 / len(reviewer.queues)
    sla = {q.name: q.sla_hours for q in policy.queues.define}
    # tasks a reviewer's whole pace decides for a queue within its SLA
    reach = {
        (r.id, q): r.decisions_per_hour
        / policy.labeling.overlap
        * r.hours(now, now + timedelta(hours=sla[q]), roster.zone)
        for r in roster.reviewers
        for q in r.queues
    }

    def rooms() -> dict[str, float]:
        room = dict.fromkeys(sla, 0.0)
        for (reviewer, q), part in share.items():
            room[q] += part * reach[reviewer, q]
        return room

    room, settled = rooms(), set()
    while over := [q for q in room if q not in settled and room[q] > waiting.get(q, 0.0)]:
        settled |= set(over)
        for q in over:
            keep = waiting.get(q, 0.0) / room[q]
            for reviewer in roster.working(q):
                freed = share[reviewer.id, q] * (1 - keep)
                share[reviewer.id, q] -= freed
                others = [o for o in reviewer.queues if o not in settled and pressure[o] > 0]
                total = sum(pressure[o] for o in others)
                for o in others:
                    share[reviewer.id, o] += freed * pressure[o] / total
        room = rooms()
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
