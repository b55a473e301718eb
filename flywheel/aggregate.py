"""Many reviewer decisions on one item become one label.

Dataset building and (later) reviewer QA both need this, so it lives here. For now the rule is a
majority vote over each reviewer's latest decision; a tie goes to the policy's `dataset.tie_label`
and is recorded, so a dataset can say how many of its labels were coin flips.
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
