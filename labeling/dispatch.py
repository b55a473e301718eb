"""Send the planned tasks to the policy's review queues, within what each queue's team can do.

The push plans every candidate as before (the review band, exploration, the blind audit), then,
for a policy with `queues:`, this module:

1. routes each candidate to a queue (`labeling.route`: the first route that matches, on the
   language detected among the policy's and the roster's languages and on the latest emerging
   clusters' members);
2. ranks it by expected harm with aging, at its queue's severity and SLA;
3. gives each queue the room its rostered reviewers can decide within its SLA, less the work
   already open there (`labeling.capacity`), keeping a share of the room for the gold checks
   the push adds (`labeling.gold_rate` per other task), and fills it: the blind audit first,
   exploration within its budget, then review tasks by harm;
4. adds each queue's gold checks, drawn from golden items that route to that queue.

What does not fit stays in the prediction log and is planned again by the next push, ranked
anew (older by then). An audit item drawn but not pushed keeps its draw: its inclusion
probability is the rate it was drawn at, and it is pushed when room allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from flywheel.lake import uniform_draw
from flywheel.policy import Policy
from flywheel.roster import Roster
from labeling.capacity import capacity, fill
from labeling.route import UNSCORED, harm, languages, route
from labeling.sample import gold_sample


@dataclass(frozen=True)
class Routed:
    """What the queues got: the tasks in push order, and each queue's room and waiting work."""

    tasks: pd.DataFrame  # the plan's columns, `review_queue` and `harm`
    room: dict[str, float]  # tasks each queue's team can decide within its SLA
    open: dict[str, float]  # of which already open
    waiting: dict[str, int]  # candidates routed to each queue, pushed or not
    # the earliest traffic among the candidates: how far back the work this push saw goes
    since: pd.Timestamp | None = None


def open_tasks(ledger: pd.DataFrame, decisions: pd.DataFrame, overlap: int) -> pd.DataFrame:
    """Queued tasks still owed decisions (each needs `overlap`), with the share owed (`owed`)."""
    if ledger.empty or "review_queue" not in ledger:
        return pd.DataFrame(columns=["task_id", "review_queue", "pushed_at", "owed"])
    tasks = ledger[ledger["review_queue"].fillna("").ne("")]
    if "task_id" in decisions and not decisions.empty:
        made = decisions.groupby("task_id")["reviewer_id"].nunique()
    else:
        made = pd.Series(dtype=float)
    owed = (overlap - tasks["task_id"].map(made).fillna(0)).clip(lower=0) / overlap
    return tasks.assign(owed=owed)[owed > 0]


def open_work(ledger: pd.DataFrame, decisions: pd.DataFrame, overlap: int) -> dict[str, float]:
    """Tasks' worth of decisions still owed per queue."""
    tasks = open_tasks(ledger, decisions, overlap)
    return {str(q): float(v) for q, v in tasks.groupby("review_queue")["owed"].sum().items()}


def _severity_and_sla(queue: pd.Series, policy: Policy) -> tuple[pd.Series, pd.Series]:
    assert policy.queues is not None
    severity = {q.name: q.severity for q in policy.queues.define}
    sla = {q.name: q.sla_hours for q in policy.queues.define}
    return queue.map(severity).astype(float), queue.map(sla).astype(float)


def dispatch(
    candidates: pd.DataFrame,
    golden: pd.DataFrame,
    pushed_gold: set[str],
    policy: Policy,
    roster: Roster,
    owed: dict[str, float],
    emerging: set[str],
    now: datetime,
    violating_gold: float = 0.5,
) -> Routed:
    """The candidates (and gold checks) that go out now, each with its queue and harm, by
    queue and then harm (the order Label Studio's queue view shows them in)."""
    assert policy.queues is not None
    codes = sorted({*policy.queues.languages, *roster.languages})
    tasks = candidates.assign(purpose=candidates["queue"])
    tasks["review_queue"] = route(tasks, policy, languages(tasks, policy, codes), emerging)
    if policy.queues.appeals is not None:  # appeals go to their queue, whatever the routes say
        tasks.loc[tasks["purpose"].eq("appeal"), "review_queue"] = policy.queues.appeals
    severity, sla = _severity_and_sla(tasks["review_queue"], policy)
    scored = pd.to_datetime(tasks["scored_at"], utc=True)
    age = (pd.Timestamp(now) - scored).dt.total_seconds().div(3600).fillna(0.0)
    tasks["harm"] = harm(tasks["score"], severity, age, sla, policy.queues.age_weight)
    names = [q.name for q in policy.queues.define]
    waiting = tasks["review_queue"].value_counts()
    # the work each queue could use: its candidates with the gold checks a push adds to them
    # (gold_rate per other task), and what is already open there
    per_other = 1 + policy.labeling.gold_rate
    work = {q: float(waiting.get(q, 0)) * per_other + owed.get(q, 0.0) for q in names}
    room = capacity(policy, roster, now, work)
    free = {q: max(math.floor((room[q] - owed.get(q, 0.0)) / per_other + 1e-9), 0) for q in names}
    chosen = fill(tasks, free, policy.labeling.explore_budget)
    gold = _gold(golden, pushed_gold, chosen, policy, codes, emerging, violating_gold)
    out = pd.concat([chosen, gold], ignore_index=True)
    out["harm"] = _blind(out, policy)
    out = out.sort_values(["review_queue", "harm"], ascending=[True, False], kind="stable")
    return Routed(
        out.drop(columns="purpose").reset_index(drop=True),
        room,
        {q: owed.get(q, 0.0) for q in names},
        {q: int(waiting.get(q, 0)) for q in names},
        _earliest(tasks),
    )


def _earliest(tasks: pd.DataFrame) -> pd.Timestamp | None:
    scored = pd.to_datetime(tasks.get("scored_at", pd.Series(dtype=object)), utc=True).min()
    return None if pd.isna(scored) else scored


def _blind(tasks: pd.DataFrame, policy: Policy) -> pd.Series:
    """Harm as Label Studio's queue view orders by it: audit tasks and gold checks take the
    harm of a review task of their queue drawn by their item id, so that neither the blind
    audit's score nor a gold check stands out by its place. In a queue this push gives no
    review task, they take an unscored task's harm there (an even chance times the queue's
    severity): neither last, which would leave a severe queue's audit for when all else is
    done, nor their own score's."""
    out = tasks["harm"].astype(float).copy()
    blind = tasks["purpose"].isin(["audit", "gold"]).to_numpy()
    severity, _ = _severity_and_sla(tasks["review_queue"], policy)
    for name in tasks.loc[blind, "review_queue"].unique():
        mine = (tasks["review_queue"] == name).to_numpy()
        pool = np.sort(out[mine & ~blind].to_numpy())
        pick = mine & blind
        if len(pool) == 0:
            out[pick] = UNSCORED * severity[pick]
            continue
        draw = uniform_draw(tasks.loc[pick, "item_id"], f"place|{name}")
        out[pick] = pool[np.minimum((draw * len(pool)).astype(int), len(pool) - 1)]
    return out.round(6)


def _gold(
    golden: pd.DataFrame,
    pushed: set[str],
    chosen: pd.DataFrame,
    policy: Policy,
    codes: list[str],
    emerging: set[str],
    violating_share: float,
) -> pd.DataFrame:
    """Each queue's gold checks, from the golden items that route to it, about `gold_rate` per
    other task it got."""
    unused = golden[~golden["item_id"].isin(pushed)]
    if unused.empty or chosen.empty:
        return chosen.iloc[0:0]
    probe = unused.assign(purpose="gold", decision=None, score=np.nan)
    probe["review_queue"] = route(probe, policy, languages(probe, policy, codes), emerging)
    parts = [
        gold_sample(
            probe[probe["review_queue"] == name], policy, len(others), set(), violating_share
        )
        for name, others in chosen.groupby("review_queue")
    ]
    gold = pd.concat(parts, ignore_index=True).drop(columns=["label"], errors="ignore")
    return gold.assign(
        queue="gold", reason="gold check", sampling_prob=1.0, priority=np.nan, harm=0.0
    )
