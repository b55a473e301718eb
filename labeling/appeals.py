"""Settle appeals: once reviewers have decided an appealed item, record whether the appeal was
upheld or overturned, and tell the product about every overturn.

An appeal is decided when its task has the policy's overlap of decisions (source `appeal`); its
outcome is their majority (a tie goes as `dataset.tie_label` says): benign overturns the
auto-action. An overturn is posted to `labeling.reinstate_webhook` (a few tries); a post that
fails is recorded and tried again at the next pull, so the product hears of every overturn
once it answers. The decisions themselves are stored like any other and train the next model.
"""

from __future__ import annotations

import pandas as pd

from flywheel.lake import Lake
from flywheel.notify import post_json
from flywheel.policy import Policy


def outcomes(policy: Policy, appeals: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """The decided appeals: item, model version, outcome and when it was decided."""
    columns = ["appeal_id", "item_id", "model_version", "outcome", "decided_at"]
    if appeals.empty or decisions.empty or "source" not in decisions:
        return pd.DataFrame(columns=columns)
    said = decisions[
        decisions["source"].eq("appeal") & decisions["item_id"].isin(appeals["item_id"])
    ]
    said = said.sort_values("decided_at").drop_duplicates(["item_id", "reviewer_id"], keep="last")
    votes = said.groupby("item_id").agg(
        n=("label", "size"),
        positive=("label", lambda x: int((x == policy.labels.positive).sum())),
        decided_at=("decided_at", "max"),
    )
    votes = votes[votes["n"] >= policy.labeling.overlap]
    tie_upholds = policy.dataset.tie_label == "positive"
    upheld = (2 * votes["positive"] > votes["n"]) | (
        (2 * votes["positive"] == votes["n"]) & tie_upholds
    )
    decided = appeals.set_index("item_id").loc[votes.index]
    return pd.DataFrame(
        {
            "appeal_id": decided["appeal_id"].to_numpy(),
            "item_id": votes.index.to_numpy(),
            "model_version": decided["model_version"].astype(int).to_numpy(),
            "outcome": ["upheld" if u else "overturned" for u in upheld],
            "decided_at": votes["decided_at"].to_numpy(),
        }
    )[columns]


def settle(policy: Policy, lake: Lake) -> int:
    """Record new outcomes and post the overturns not yet heard; returns the posts that failed."""
    known = lake.appeal_outcomes(policy.name)
    fresh = outcomes(policy, lake.appeals(policy.name), lake.decisions(policy.name))
    fresh = fresh[~fresh["appeal_id"].isin(known["appeal_id"])].assign(
        notified=lambda f: f["outcome"].ne("overturned"), notify_error=None
    )
    table = pd.concat([f for f in (known, fresh) if not f.empty] or [known], ignore_index=True)
    url = policy.labeling.reinstate_webhook
    waiting = table.index[~table["notified"].astype(bool)] if url else table.index[:0]
    failed = 0
    for i in waiting:
        row = table.loc[i]
        problem = post_json(
            url,
            {
                "policy": policy.name,
                "item_id": str(row["item_id"]),
                "appeal_id": str(row["appeal_id"]),
                "model_version": int(row["model_version"]),
                "outcome": "overturned",
            },
        )
        table.loc[i, ["notified", "notify_error"]] = [problem is None, problem]
        failed += problem is not None
    if not fresh.empty or len(waiting):
        lake.write_appeal_outcomes(policy.name, table)
    return failed
