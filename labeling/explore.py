"""The exploration queue: allowed items the model cannot vouch for, shown to reviewers.

Reviewers otherwise see what the model already suspects (the review band) and a thin blind
audit, so a campaign the champion scores low is never reviewed and never learnt. Each push spends
`labeling.explore_budget` of its review capacity here, split (`labeling.explore_split`) into
three strata of the window's allowed items that no queue has had yet, filled in this order:

- *clusters*: representatives of the latest monitoring run's emerging clusters
  (`monitoring.emerging`), all of them while they fit, so a campaign reaches people at once;
- *novel*: items far from the training data (`flywheel.novelty`, at least
  `monitoring.novelty`), drawn with probability proportional to their novelty;
- *near_threshold*: the other allowed items, drawn with probability proportional to their score
  (the calibrated chance of a miss), which puts most draws just under the review threshold.

A share its candidates cannot fill passes to the next stratum. Each item belongs to one stratum
and is drawn independently with its probability (a fixed hash of its id, as in the audit), which
is recorded with the reason it was chosen. Exploration is its own queue: the blind audit's
estimates never use it, and its decisions train the next model like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from flywheel.lake import uniform_draw
from flywheel.policy import Policy

STRATA = ("clusters", "novel", "near_threshold")


@dataclass(frozen=True)
class ExploreInputs:
    """What the push knows beyond the log: each item's novelty, the emerging clusters'
    representatives (item id -> the cluster's top terms) and the champion's review threshold."""

    novelty: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    representatives: dict[str, str] = field(default_factory=dict)
    review_threshold: float | None = None


def proportional_probabilities(weights: np.ndarray, n: float) -> np.ndarray:
    """Inclusion probabilities proportional to the weights, capped at 1, summing to `n` (or to
    the number of positive weights when fewer): the capped items' excess goes to the others."""
    weights = np.clip(np.nan_to_num(np.asarray(weights, dtype=float)), 0.0, None)
    probs = np.zeros_like(weights)
    free = weights > 0
    if n <= 0 or not free.any():
        return probs
    if n >= free.sum():
        return free.astype(float)
    remaining = float(n)
    while True:
        scaled = weights[free] * remaining / weights[free].sum()
        over = scaled >= 1.0
        if not over.any():
            probs[np.flatnonzero(free)] = scaled
            return probs
        capped = np.flatnonzero(free)[over]
        probs[capped] = 1.0
        free[capped] = False
        remaining -= len(capped)


def exploration_sample(
    allowed: pd.DataFrame,
    policy: Policy,
    inputs: ExploreInputs,
    pushed: set[str],
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The exploration tasks of one push, with `stratum`, `reason` and `sampling_prob`.

    Novel and near-threshold items are drawn from the traffic scored after `since` (the last
    exploration push), so each push spends its budget on new traffic and a push repeated with
    nothing new adds nothing; cluster representatives come from the whole window."""
    budget = policy.labeling.explore_tasks
    split = policy.labeling.explore_split
    pool = allowed[~allowed["item_id"].isin(pushed)].drop_duplicates("item_id")
    if since is not None:
        fresh = pd.to_datetime(pool["scored_at"], utc=True) > since
        pool = pool[fresh | pool["item_id"].isin(inputs.representatives)]
    if budget == 0 or pool.empty:
        return pool.iloc[0:0].assign(stratum=[], reason=[], sampling_prob=[])
    ids = pool["item_id"]
    novelty = ids.map(inputs.novelty).fillna(0.0).to_numpy(dtype=float)
    in_cluster = ids.isin(inputs.representatives).to_numpy()
    is_novel = ~in_cluster & (novelty >= policy.monitoring.novelty)
    rest = ~in_cluster & ~is_novel
    score = pool["score"].astype(float).fillna(0.0).to_numpy()
    members = {"clusters": in_cluster, "novel": is_novel, "near_threshold": rest}
    weights = {"clusters": in_cluster.astype(float), "novel": novelty, "near_threshold": score}
    probs = np.zeros(len(pool))
    carried = 0.0
    for stratum in STRATA:
        wanted = getattr(split, stratum) * budget + carried
        mask = members[stratum]
        probs[mask] = proportional_probabilities(weights[stratum][mask], wanted)
        carried = wanted - probs[mask].sum()
    drawn = uniform_draw(ids, f"explore|{policy.name}") < probs
    chosen = pool[drawn].assign(
        sampling_prob=probs[drawn].round(6),
        stratum=np.select(
            [in_cluster[drawn], is_novel[drawn]], ["clusters", "novel"], "near_threshold"
        ),
    )
    reasons = [
        _reason(row.stratum, row.item_id, n, s, inputs)
        for row, n, s in zip(chosen.itertuples(), novelty[drawn], score[drawn], strict=True)
    ]
    return chosen.assign(reason=reasons)


def _reason(stratum: str, item_id: str, novelty: float, score: float, inputs: ExploreInputs):
    if stratum == "clusters":
        return f"emerging cluster ({inputs.representatives[item_id]})"
    if stratum == "novel":
        return f"far from the training data (novelty {novelty:.2f})"
    threshold = (
        f", under the review threshold {inputs.review_threshold:.3f}"
        if inputs.review_threshold is not None
        else ""
    )
    return f"allowed at score {score:.3f}{threshold}"
