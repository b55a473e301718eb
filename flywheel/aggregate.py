"""Many reviewer decisions on one item become one label.

Dataset building and reviewer QA both need this, so it lives here. Each reviewer counts once per
item, with their latest word. The default rule weighs reviewers by their estimated reliability
(Dawid-Skene, from crowd-kit: each reviewer's confusion matrix is learnt from where reviewers
overlap), so one careless reviewer cannot outvote a careful one on the items they share. Where
there is nothing to learn reliability from (a single label value, no item seen twice) or the
fit fails, the majority vote decides, and a vote tie goes to the policy's `dataset.tie_label`.
Every label records its vote agreement and the method that made it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from flywheel.policy import Policy

LABEL_COLUMNS = ["item_id", "label", "is_positive", "n_reviews", "agreement", "tie", "method"]


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
        }
    )[LABEL_COLUMNS]


def _votes_frame(votes: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {"task": votes["item_id"], "worker": votes["reviewer_id"], "label": votes["label"]}
    )


def reliability_labels(decisions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Dawid-Skene labels; the majority vote where reliability cannot be learnt."""
    majority = majority_labels(decisions, policy)
    votes = latest_per_reviewer(decisions)
    overlapping = votes.groupby("item_id")["reviewer_id"].transform("size") > 1
    if votes["label"].nunique() < 2 or not overlapping.any():
        return majority
    from crowdkit.aggregation import DawidSkene

    try:
        fitted = DawidSkene(n_iter=100, tol=1e-5).fit(_votes_frame(votes))
    except (ValueError, FloatingPointError, ZeroDivisionError):
        return majority
    labels = fitted.labels_.reindex(majority["item_id"])
    is_positive = labels.eq(policy.labels.positive).to_numpy()
    agreement = (
        votes.assign(final=votes["item_id"].map(labels))
        .assign(agrees=lambda f: f["label"].eq(f["final"]))
        .groupby("item_id", sort=True)["agrees"]
        .mean()
        .reindex(majority["item_id"])
        .to_numpy()
    )
    return majority.assign(
        label=np.where(is_positive, policy.labels.positive, policy.labels.negative),
        is_positive=is_positive,
        agreement=agreement,
        method="dawid_skene",
    )[LABEL_COLUMNS]


def aggregate_labels(decisions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One label per item by the policy's rule (`dataset.aggregation`)."""
    if policy.dataset.aggregation == "majority":
        return majority_labels(decisions, policy)
    return reliability_labels(decisions, policy)
