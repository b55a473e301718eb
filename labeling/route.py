"""Which queue each task goes to, and in what order its queue takes it.

Routes (`queues.routes` in the policy) are tried in order and the first whose condition holds
wins; the last has no condition, so every task has a queue. A condition can test the task's
purpose, the champion's decision and score, the item's fields, the language detected in its
text (`flywheel.language`) and whether it belongs to the latest emerging cluster. Audit, gold
and exploration tasks are routed like review tasks (unless a route tests the purpose), so they
reach the reviewers of the queues their items belong to, indistinguishable from the rest.

Within a queue, tasks are taken by expected harm: the probability that the item violates (the
champion's calibrated score) times the queue's severity, plus an age term that grows by
`queues.age_weight` times the severity for each SLA's length waited, so that nothing waits for
ever. It is small: the tasks harm's order leaves behind near their SLA are escalated
(`labeling.escalate`), and strong aging would make a queue short of hands work oldest first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flywheel.conditions import fields_hold
from flywheel.language import detect_languages
from flywheel.policy import Condition, Policy

UNSCORED = 0.5  # a task with no score (a gold check, a fallback) counts as an even chance


def languages(items: pd.DataFrame, policy: Policy, codes: list[str]) -> pd.Series:
    """Each item's detected language (None when unsure), from its text fields joined."""
    text = policy.fields.text
    if not text:
        return pd.Series(None, index=items.index, dtype=object)
    joined = items[text].fillna("").astype(str).agg(" ".join, axis=1)
    return detect_languages(joined, codes)


def _holds(when: Condition, tasks: pd.DataFrame, language: pd.Series, emerging: set[str]):
    """Where `when` holds for each task (a boolean array)."""
    hold = np.ones(len(tasks), dtype=bool)
    score = pd.to_numeric(tasks.get("score"), errors="coerce") if "score" in tasks else None
    if when.purpose is not None:
        hold &= tasks["purpose"].isin(when.purpose).to_numpy()
    if when.decision is not None:
        hold &= tasks["decision"].isin(when.decision).to_numpy()
    if when.score_at_least is not None:
        hold &= (score >= when.score_at_least).to_numpy() if score is not None else False
    if when.score_below is not None:
        hold &= (score < when.score_below).to_numpy() if score is not None else False
    if when.language is not None:
        hold &= language.isin(when.language).to_numpy()
    if when.emerging is not None:
        hold &= tasks["item_id"].isin(emerging).to_numpy() == when.emerging
    return hold & fields_hold(when, tasks)


def route(
    tasks: pd.DataFrame, policy: Policy, language: pd.Series, emerging: set[str]
) -> pd.Series:
    """Each task's queue: the first route whose condition holds. `tasks` carries `purpose`,
    `item_id`, `decision`, `score` and the item's fields; `language` is aligned with it."""
    assert policy.queues is not None
    queue = pd.Series(None, index=tasks.index, dtype=object)
    for rule in policy.queues.routes:
        open_ = queue.isna().to_numpy()
        if not open_.any():
            break
        hit = open_ & _holds(rule.when, tasks, language, emerging)
        queue[hit] = rule.queue
    return queue


def probability(score) -> np.ndarray:
    """Each task's violation probability: its calibrated score, clipped to [0, 1]; a task with
    none (a gold check, a fallback) counts as `UNSCORED`."""
    values = pd.to_numeric(pd.Series(score, dtype=object), errors="coerce")
    return values.astype(float).fillna(UNSCORED).clip(0.0, 1.0).to_numpy()


def harm(
    score: pd.Series, severity: pd.Series, age_hours: pd.Series, sla_hours: pd.Series, weight: float
) -> pd.Series:
    """Expected harm of leaving a task undecided, with aging: (p + weight × age / SLA) ×
    severity, p the violation probability (`probability`)."""
    p = pd.Series(probability(score), index=score.index)
    waited = age_hours.clip(lower=0.0) / sla_hours
    return (p + weight * waited) * severity
