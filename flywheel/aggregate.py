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


def _log_likelihoods(votes: pd.DataFrame, errors: pd.DataFrame, priors: pd.Series) -> pd.DataFrame:
    """Per item, log P(true class) + sum of log P(each vote | true class): the Dawid-Skene
    posterior up to a constant, for every item, vectorised. A reviewer the fit never saw gets
    the team's average confusion."""
    log_errors = np.log(errors.clip(lower=1e-6))
    keys = pd.MultiIndex.from_arrays([votes["reviewer_id"], votes["label"]])
    rows = log_errors.reindex(keys)
    unseen = rows.isna().any(axis=1).to_numpy()
    if unseen.any():
        average = log_errors.groupby(level=1).mean()
        rows.iloc[unseen] = average.reindex(votes["label"].to_numpy()[unseen]).to_numpy()
    summed = rows.groupby(votes["item_id"].to_numpy(), sort=True).sum()
    return summed + np.log(priors.reindex(summed.columns).clip(lower=1e-6)).to_numpy()


def reliability_labels(decisions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Dawid-Skene labels; the majority vote where reliability cannot be learnt.

    Reliability is learnt where it shows, on items several reviewers decided (fitting on all
    items costs ~4x the time for the same estimates); every item's label is then the posterior
    under those estimates, so a lone vote from an unreliable reviewer counts for less.
    """
    majority = majority_labels(decisions, policy)
    votes = latest_per_reviewer(decisions)
    overlapping = votes[votes.groupby("item_id")["reviewer_id"].transform("size") > 1]
    if overlapping["label"].nunique() < 2:
        return majority
    from crowdkit.aggregation import DawidSkene

    try:
        fitted = DawidSkene(n_iter=50, tol=1e-4).fit(_votes_frame(overlapping))
    except (ValueError, FloatingPointError, ZeroDivisionError):
        return majority
    if set(fitted.priors_.index) != {policy.labels.positive, policy.labels.negative}:
        return majority
    likelihood = _log_likelihoods(votes, fitted.errors_, fitted.priors_).reindex(
        majority["item_id"]
    )
    is_positive = (
        likelihood[policy.labels.positive] > likelihood[policy.labels.negative]
    ).to_numpy()
    final = pd.Series(
        np.where(is_positive, policy.labels.positive, policy.labels.negative),
        index=majority["item_id"].to_numpy(),
    )
    agreement = (
        votes["label"]
        .eq(votes["item_id"].map(final))
        .groupby(votes["item_id"].to_numpy(), sort=True)
        .mean()
        .reindex(majority["item_id"])
        .to_numpy()
    )
    return majority.assign(
        label=final.to_numpy(),
        is_positive=is_positive,
        agreement=agreement,
        method="dawid_skene",
    )[LABEL_COLUMNS]


def aggregate_labels(decisions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One label per item by the policy's rule (`dataset.aggregation`)."""
    if policy.dataset.aggregation == "majority":
        return majority_labels(decisions, policy)
    return reliability_labels(decisions, policy)


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
