"""Many reviewer decisions on one item become one label, and each reviewer gets a fitted
confusion matrix.

Dataset building, reviewer QA and monitoring all need this, so it lives here. Each reviewer counts
once per item, with their latest word. The default rule weighs reviewers by their estimated
reliability (Dawid-Skene: each reviewer's sensitivity and specificity learnt from where they
overlap with others and from items whose answer is known), so one careless reviewer cannot
outvote a careful one on the items they share. Plain Dawid-Skene is only identified up to a
swap of the two classes within each connected group of reviewers and items, and a group that
shares nothing with the rest (a new team on a new queue) can come out swapped, its labels all
flipped. So the fit here is built so that it cannot flip:

- it starts from the majority vote;
- every reviewer is held better than chance (sensitivity + specificity above 1 by a margin), and
  a weak Beta prior keeps the estimates of a reviewer with few decisions near "fairly reliable";
- the share of violations is learnt per connected component of the reviewer graph, so a new
  team deciding mostly violating review-queue items is not pulled to the history's base rate;
- items whose answer is known (golden items used as gold checks) are clamped to it, which also
  pins the confusion matrices of the reviewers who saw them;
- the fit may not overturn a unanimous vote of two or more reviewers, and a component whose
  labels would contradict most of its clear majorities falls back to the vote. Both are counted.

crowd-kit's DawidSkene (used here before, and still the benchmark's peer in
`benchmarks/aggregation.py`) takes known labels and a starting confusion matrix, but has no
prior on the confusion matrices, no bound on them and one share of violations for all items:
what lets a disconnected group flip. Hence this short EM of its own, vectorised over all
components at once.

The majority vote is the rule with `dataset.aggregation: majority`; a vote tie goes to the
policy's `dataset.tie_label`. Every label records its vote agreement and the method that made it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, logit

from flywheel.policy import Policy

LABEL_COLUMNS = [
    "item_id",
    "label",
    "is_positive",
    "n_reviews",
    "agreement",
    "tie",
    "method",
    "p_positive",
]
# Beta prior on each reviewer's sensitivity and specificity: mean 0.8, worth five decisions
PRIOR_RIGHT, PRIOR_WRONG = 4.0, 1.0
PRIOR_PREVALENCE = (1.0, 1.0)  # uniform prior on a component's share of violations
BETTER_THAN_CHANCE = 0.05  # sensitivity + specificity >= 1 + this, for every reviewer
MAX_ITERATIONS, TOLERANCE = 200, 1e-6
CLIP = 1e-4


def latest_per_reviewer(decisions: pd.DataFrame) -> pd.DataFrame:
    """A reviewer who changed their mind counts once, with their last word."""
    ordered = decisions.sort_values(["item_id", "reviewer_id", "decided_at"], kind="stable")
    return ordered.drop_duplicates(["item_id", "reviewer_id"], keep="last")


def majority_labels(decisions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One row per item: the majority label, vote agreement, and whether it was a tie."""
    votes = latest_per_reviewer(decisions)
    positive = votes["label"].eq(policy.labels.positive)
    counts = (
        pd.DataFrame({"item_id": votes["item_id"], "pos": positive.astype(int)})
        .groupby("item_id", sort=True)["pos"]
        .agg(["sum", "count"])
    )
    pos, n = counts["sum"].to_numpy(), counts["count"].to_numpy()
    neg = n - pos
    tie = pos == neg
    is_positive = np.where(tie, policy.dataset.tie_label == "positive", pos > neg)
    return pd.DataFrame(
        {
            "item_id": counts.index.to_numpy(),
            "label": np.where(is_positive, policy.labels.positive, policy.labels.negative),
            "is_positive": is_positive,
            "n_reviews": n,
            "agreement": np.maximum(pos, neg) / n,
            "tie": tie,
            "method": "majority",
            "p_positive": pos / n,
        }
    )[LABEL_COLUMNS]


@dataclass
class Reliability:
    """A fitted Dawid-Skene model: each item's posterior, each reviewer's confusion matrix, and
    what each vote says once that reviewer's own vote is left out (for judging reviewers)."""

    items: pd.Index  # item ids, sorted
    p_positive: np.ndarray  # per item: P(violating | all votes), 0/1 where known
    component: np.ndarray  # per item: its connected component of the reviewer graph
    reviewers: pd.DataFrame  # per reviewer: sensitivity, specificity
    votes: pd.DataFrame  # item_id, reviewer_id, says_positive, p_others (leave-one-out), known


def components(
    item_idx: np.ndarray, reviewer_idx: np.ndarray, n_items: int, n_reviewers: int
) -> np.ndarray:
    """Each item's connected component of the bipartite graph of items and their reviewers."""
    graph = coo_matrix(
        (np.ones(len(item_idx)), (item_idx, n_items + reviewer_idx)),
        shape=(n_items + n_reviewers, n_items + n_reviewers),
    )
    _, labels = connected_components(graph, directed=False)
    return labels[:n_items]


def item_strata(
    items: pd.Index,
    strata: pd.Series | None,
    item_idx: np.ndarray,
    reviewer_idx: np.ndarray,
    n_reviewers: int,
) -> np.ndarray:
    """Each item's stratum, the group that shares one share of violations: the reviewer
    graph's connected components by default, else `strata` (item id → stratum), with the items
    it does not name in one more."""
    if strata is None:
        return components(item_idx, reviewer_idx, len(items), n_reviewers)
    codes = pd.factorize(strata.reindex(items))[0]  # an item it does not name: -1
    return np.where(codes < 0, codes.max() + 1, codes)


def _better_than_chance(sensitivity: np.ndarray, specificity: np.ndarray):
    """Move any reviewer estimated at or below chance up to the margin, keeping their lean."""
    youden = sensitivity + specificity - 1.0
    low = youden < BETTER_THAN_CHANCE
    lean = (sensitivity - specificity) / 2.0
    middle = (1.0 + BETTER_THAN_CHANCE) / 2.0
    sensitivity = np.where(low, middle + lean, sensitivity)
    specificity = np.where(low, middle - lean, specificity)
    return np.clip(sensitivity, CLIP, 1 - CLIP), np.clip(specificity, CLIP, 1 - CLIP)


def fit_reliability(
    votes: pd.DataFrame,
    policy: Policy,
    known: pd.Series | None = None,
    strata: pd.Series | None = None,
) -> Reliability:
    """The constrained Dawid-Skene fit described in the module docstring, on each reviewer's
    latest vote per item; `known` maps item ids to their known truth (bool); `strata` groups
    the items that share a share of violations (`item_strata`; components by default)."""
    votes = latest_per_reviewer(votes)
    items = pd.Index(np.sort(votes["item_id"].unique()))
    reviewers = pd.Index(np.sort(votes["reviewer_id"].unique()))
    item_idx = items.get_indexer(votes["item_id"])
    rev_idx = reviewers.get_indexer(votes["reviewer_id"])
    says = votes["label"].eq(policy.labels.positive).to_numpy(dtype=float)
    n_items, n_reviewers = len(items), len(reviewers)
    item_component = item_strata(items, strata, item_idx, rev_idx, n_reviewers)
    n_components = int(item_component.max()) + 1 if n_items else 0

    truth = np.full(n_items, np.nan)
    if known is not None and len(known):
        mapped = known.astype(float).reindex(items)
        truth = mapped.to_numpy(dtype=float)
    clamped = ~np.isnan(truth)

    # start from the vote share (a tie is undecided), known items at their truth
    votes_per_item = np.bincount(item_idx, minlength=n_items).astype(float)
    positive_share = np.bincount(item_idx, weights=says, minlength=n_items) / votes_per_item
    posterior = np.where(clamped, truth, positive_share)
    log_odds = np.zeros(n_items)
    for _ in range(MAX_ITERATIONS):
        t = posterior[item_idx]
        sensitivity = (PRIOR_RIGHT + np.bincount(rev_idx, t * says, n_reviewers)) / (
            PRIOR_RIGHT + PRIOR_WRONG + np.bincount(rev_idx, t, n_reviewers)
        )
        specificity = (PRIOR_RIGHT + np.bincount(rev_idx, (1 - t) * (1 - says), n_reviewers)) / (
            PRIOR_RIGHT + PRIOR_WRONG + np.bincount(rev_idx, 1 - t, n_reviewers)
        )
        sensitivity, specificity = _better_than_chance(sensitivity, specificity)
        free = ~clamped
        prevalence = (
            PRIOR_PREVALENCE[0] + np.bincount(item_component[free], posterior[free], n_components)
        ) / (sum(PRIOR_PREVALENCE) + np.bincount(item_component[free], minlength=n_components))
        prevalence = np.clip(prevalence, CLIP, 1 - CLIP)
        contribution = _contributions(says, sensitivity[rev_idx], specificity[rev_idx])
        log_odds = logit(prevalence)[item_component] + np.bincount(item_idx, contribution, n_items)
        updated = np.where(clamped, truth, expit(log_odds))
        change = float(np.max(np.abs(updated - posterior))) if n_items else 0.0
        posterior = updated
        if change < TOLERANCE:
            break

    contribution = _contributions(says, sensitivity[rev_idx], specificity[rev_idx])
    others = np.where(clamped[item_idx], truth[item_idx], expit(log_odds[item_idx] - contribution))
    alone = (votes_per_item[item_idx] == 1) & ~clamped[item_idx]
    table = pd.DataFrame(
        {
            "item_id": items[item_idx],
            "reviewer_id": reviewers[rev_idx],
            "says_positive": says.astype(bool),
            # what the other votes (and the component's prior) say of the item; NaN where the
            # reviewer decided it alone, so the item says nothing about them
            "p_others": np.where(alone, np.nan, others),
            "known": clamped[item_idx],
        }
    )
    reviewer_table = pd.DataFrame(
        {"sensitivity": sensitivity, "specificity": specificity}, index=reviewers
    )
    return Reliability(items, posterior, item_component, reviewer_table, table)


def _contributions(says: np.ndarray, sensitivity: np.ndarray, specificity: np.ndarray):
    """Each vote's log likelihood ratio, violating against benign."""
    return np.where(
        says > 0.5,
        np.log(sensitivity) - np.log(1 - specificity),
        np.log(1 - sensitivity) - np.log(specificity),
    )


def reliability_labels(
    decisions: pd.DataFrame, policy: Policy, known: pd.Series | None = None
) -> pd.DataFrame:
    """Dawid-Skene labels that cannot flip (module docstring), with the vote as the guard rail."""
    majority = majority_labels(decisions, policy).set_index("item_id")
    if majority.empty:
        return majority.reset_index()[LABEL_COLUMNS]
    fitted = fit_reliability(decisions, policy, known)
    p = pd.Series(fitted.p_positive, index=fitted.items).reindex(majority.index).to_numpy()
    component = pd.Series(fitted.component, index=fitted.items).reindex(majority.index).to_numpy()
    is_positive = p > 0.5
    vote = majority["is_positive"].to_numpy()
    n, agreement = majority["n_reviews"].to_numpy(), majority["agreement"].to_numpy()
    unanimous = (n >= 2) & (agreement == 1.0)
    overruled = unanimous & (is_positive != vote)
    # a component that would contradict most of its clear majorities is flipped, not learnt
    clear = (n >= 2) & ~majority["tie"].to_numpy()
    contradicted = pd.Series(clear & (is_positive != vote)).groupby(component).sum()
    clear_count = pd.Series(clear).groupby(component).sum()
    flipped = contradicted[(clear_count > 0) & (contradicted > clear_count / 2)].index
    pinned = (
        known.reindex(majority.index).notna().to_numpy()
        if known is not None
        else np.zeros(len(majority), dtype=bool)
    )
    fallback = (overruled | np.isin(component, flipped)) & ~pinned
    final = np.where(fallback, vote, is_positive)
    votes = latest_per_reviewer(decisions)
    label = pd.Series(
        np.where(final, policy.labels.positive, policy.labels.negative), index=majority.index
    )
    agrees = (
        votes["label"]
        .eq(votes["item_id"].map(label))
        .groupby(votes["item_id"].to_numpy(), sort=True)
        .mean()
        .reindex(majority.index)
        .to_numpy()
    )
    labels = majority.assign(
        label=label.to_numpy(),
        is_positive=final,
        agreement=agrees,
        method=np.where(fallback, "majority", "dawid_skene"),
        p_positive=np.where(fallback, majority["p_positive"].to_numpy(), p),
    ).reset_index()[LABEL_COLUMNS]
    # how often the vote overruled the fit, for the dataset's manifest
    labels.attrs["fallbacks"] = {
        "unanimous_votes_kept": int(overruled.sum()),
        "components_voted": len(flipped),
        "components": int(fitted.component.max()) + 1,
    }
    return labels


def aggregate_labels(
    decisions: pd.DataFrame, policy: Policy, known: pd.Series | None = None
) -> pd.DataFrame:
    """One label per item by the policy's rule (`dataset.aggregation`); `known` (item id →
    truth) pins items whose answer is known, such as golden items used as gold checks."""
    if policy.dataset.aggregation == "majority":
        return majority_labels(decisions, policy)
    return reliability_labels(decisions, policy, known)


def reviewer_speed(votes: pd.DataFrame) -> pd.DataFrame:
    """Per reviewer: decisions, distinct hours with a decision, median and p90 seconds per
    decision. Reviewer QA and monitoring's review health both report it."""
    decided = pd.to_datetime(votes["decided_at"], utc=True)
    lead = pd.to_numeric(votes.get("lead_time_s"), errors="coerce")
    frame = pd.DataFrame(
        {"reviewer_id": votes["reviewer_id"], "hour": decided.dt.floor("h"), "lead": lead}
    )
    grouped = frame.groupby("reviewer_id")
    return pd.DataFrame(
        {
            "decisions": grouped.size(),
            "active_hours": grouped["hour"].nunique(),
            "median_seconds": grouped["lead"].median(),
            "p90_seconds": grouped["lead"].quantile(0.9),
        }
    )
