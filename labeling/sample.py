"""What reviewers see: the review queue, the blind audit and gold checks, drawn from the log
(exploration, the fourth queue, is `labeling.explore`).

Pure functions over DataFrames, so the probabilities can be tested without a server.

- The *review queue* is every item the model sent to `review`, ordered by a priority that grows
  with the score (likely harm first) and with the time it has waited (nothing starves), up to
  the review capacity that exploration leaves.
- The *blind audit* is a Poisson sample stratified by decision: each item is drawn independently
  with its decision's rate, sized to the window's traffic so that its estimates reach the
  policy's half-widths (`flywheel.audit`, never below `labeling.audit_rates`), and that rate
  is recorded as its inclusion probability, so later estimates weight each audited item by 1/p
  and stay unbiased. The draw is a hash of the item id, so the same item is drawn the same way
  however often the log is sampled.
- *Gold checks* are golden items, at the policy's rate per other task, to measure reviewers.
An item already pushed to a queue is never drawn for it again.
"""

from __future__ import annotations

import pandas as pd

from flywheel.lake import uniform_draw
from flywheel.policy import Policy

QUEUES = ("review", "explore", "audit", "gold", "appeal")
DECISIONS = ("allow", "review", "auto_action")


def review_queue(
    predictions: pd.DataFrame,
    policy: Policy,
    now: pd.Timestamp,
    pushed: set[str],
    limit: int | None = None,
) -> pd.DataFrame:
    """Items the model sent to review and no reviewer has been asked about, highest priority
    first, at most `limit` (default `labeling.review_batch`)."""
    queue = predictions[predictions["decision"].eq("review") & ~predictions["item_id"].isin(pushed)]
    age_hours = (now - pd.to_datetime(queue["scored_at"], utc=True)).dt.total_seconds() / 3600.0
    score = queue["score"].astype(float).fillna(0.5)  # a fallback item has no score: mid-queue
    priority = score + policy.labeling.review_age_weight * age_hours.clip(lower=0.0)
    queue = queue.assign(priority=priority.round(6), sampling_prob=1.0)
    return queue.sort_values(["priority", "item_id"], ascending=[False, True]).head(
        policy.labeling.review_batch if limit is None else max(limit, 0)
    )


def audit_sample(
    predictions: pd.DataFrame,
    policy: Policy,
    pushed: set[str],
    rates: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Each item drawn with its decision's rate (the policy's `labeling.audit_rates` unless
    sized rates are given); the rate is kept as its inclusion probability.

    The draw compares a fixed hash of the item id with the rate, so an item not drawn at one
    push is drawn at a later one only if the rate rose past its hash: its inclusion probability
    is then the higher rate, the one recorded."""
    rates = rates or policy.labeling.audit_rates.model_dump()
    rates = predictions["decision"].map(rates).fillna(0.0).to_numpy()
    drawn = uniform_draw(predictions["item_id"], f"audit|{policy.name}") < rates
    keep = drawn & ~predictions["item_id"].isin(pushed).to_numpy()
    return predictions[keep].assign(sampling_prob=rates[keep])


def gold_sample(
    golden: pd.DataFrame,
    policy: Policy,
    n_other: int,
    pushed: set[str],
    violating_share: float = 0.5,
) -> pd.DataFrame:
    """Golden items not yet used as checks, about `gold_rate` per other task pushed,
    `violating_share` of them violating where the golden set allows: half by default, so a
    reviewer's rate on violations and on benign items are measured equally well, which a
    rare-violation mix would not do; more where reviewer QA asks for violating checks
    (`labeling.qa.gold_mix`)."""
    wanted = round(policy.labeling.gold_rate * n_other)
    unused = golden[~golden["item_id"].isin(pushed)]
    if wanted <= 0 or unused.empty:
        return unused.iloc[0:0]
    draw = uniform_draw(unused["item_id"], f"gold|{policy.name}")
    unused = unused.assign(_draw=draw).sort_values("_draw", kind="stable")
    positive = unused["label"].eq(policy.labels.positive)
    share = round(wanted * violating_share)
    take_pos = min(int(positive.sum()), max(share, wanted - int((~positive).sum())))
    chosen = pd.concat([unused[positive].head(take_pos), unused[~positive].head(wanted - take_pos)])
    return chosen.sort_values("_draw").drop(columns="_draw").reset_index(drop=True)
