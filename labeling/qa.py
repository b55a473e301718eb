"""Reviewer quality: accuracy on gold checks, agreement between reviewers, speed, and flags.

Accuracy is measured where the answer is known, on golden items, with a Wilson interval, since a
reviewer with a dozen gold checks has a wide one. Golden sets are enriched in violations, so plain
accuracy depends on the mix a reviewer happened to get; the bar applies to balanced accuracy (the
mean of the rates on violating and on benign gold items), plain accuracy when a reviewer has seen
only one kind. A reviewer is flagged with at least the policy's minimum of gold checks and a
balanced accuracy below its bar. Agreement beside it:
each reviewer against the reliability-weighted label of the items they shared with others,
Cohen's kappa for every pair with shared items, and Krippendorff's alpha for the whole team.
The report goes to the lake (`labeling/<policy>/qa.json`), where monitoring reads it.
"""

from __future__ import annotations

from itertools import combinations

import krippendorff
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from flywheel.aggregate import aggregate_labels, latest_per_reviewer, reviewer_speed
from flywheel.files import write_json_atomic
from flywheel.lake import Lake, utc_now
from flywheel.policy import Policy

MIN_SHARED_ITEMS = 5  # a kappa on fewer shared items says nothing


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), digits)


def _gold(votes: pd.DataFrame, golden: pd.DataFrame | None, policy: Policy) -> pd.DataFrame:
    columns = ["n_gold", "correct", "n_pos", "tp", "n_neg", "tn"]
    if golden is None or golden.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="reviewer_id"))
    checked = votes.merge(golden[["item_id", "label"]], on="item_id", suffixes=("", "_gold"))
    positive = checked["label_gold"].eq(policy.labels.positive)
    correct = checked["label"].eq(checked["label_gold"])
    return (
        pd.DataFrame(
            {
                "reviewer_id": checked["reviewer_id"],
                "n_gold": 1,
                "correct": correct.astype(int),
                "n_pos": positive.astype(int),
                "tp": (correct & positive).astype(int),
                "n_neg": (~positive).astype(int),
                "tn": (correct & ~positive).astype(int),
            }
        )
        .groupby("reviewer_id")[columns]
        .sum()
    )


def _consensus(votes: pd.DataFrame, policy: Policy) -> pd.Series:
    """Each reviewer's agreement with the label of items someone else also decided."""
    shared = votes[votes.groupby("item_id")["reviewer_id"].transform("size") > 1]
    if shared.empty:
        return pd.Series(dtype=float)
    labels = aggregate_labels(shared, policy).set_index("item_id")["label"]
    agrees = shared["label"].eq(shared["item_id"].map(labels))
    return agrees.groupby(shared["reviewer_id"]).mean()


def _pairs(votes: pd.DataFrame) -> list[dict]:
    table = votes.pivot(index="item_id", columns="reviewer_id", values="label")
    pairs = []
    for a, b in combinations(sorted(table.columns), 2):
        both = table[[a, b]].dropna()
        if len(both) < MIN_SHARED_ITEMS:
            continue
        kappa = cohen_kappa_score(both[a], both[b])
        pairs.append(
            {
                "reviewers": [a, b],
                "shared_items": len(both),
                "agreement": _round(both[a].eq(both[b]).mean()),
                "cohen_kappa": _round(kappa),
            }
        )
    return pairs


def _alpha(votes: pd.DataFrame, policy: Policy) -> float | None:
    shared = votes[votes.groupby("item_id")["reviewer_id"].transform("size") > 1]
    if shared.empty or shared["label"].nunique() < 2:
        return None
    coded = shared.assign(code=shared["label"].eq(policy.labels.positive).astype(float))
    matrix = coded.pivot(index="reviewer_id", columns="item_id", values="code").to_numpy()
    return _round(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


def reviewer_quality(decisions: pd.DataFrame, golden: pd.DataFrame | None, policy: Policy) -> dict:
    """The QA report of a policy's reviewers, as plain data."""
    rules = policy.labeling
    report = {
        "policy": policy.name,
        "computed_at": utc_now().isoformat(),
        "bar": {
            "min_accuracy": rules.min_reviewer_accuracy,
            "min_gold_checks": rules.min_gold_checks,
        },
        "confidence": rules.confidence,
        "reviewers": [],
        "pairs": [],
        "krippendorff_alpha": None,
        "flagged": [],
    }
    if decisions.empty:
        return report
    votes = latest_per_reviewer(decisions)
    gold = _gold(votes, golden, policy)
    consensus = _consensus(votes, policy)
    speed = reviewer_speed(votes)
    for reviewer in sorted(speed.index):
        g = gold.loc[reviewer] if reviewer in gold.index else pd.Series(0, index=gold.columns)
        n_gold = int(g["n_gold"])
        accuracy = g["correct"] / n_gold if n_gold else None
        low, high = (
            proportion_confint(
                int(g["correct"]), n_gold, alpha=1 - rules.confidence, method="wilson"
            )
            if n_gold
            else (None, None)
        )
        sensitivity = g["tp"] / g["n_pos"] if g["n_pos"] else None
        specificity = g["tn"] / g["n_neg"] if g["n_neg"] else None
        balanced = (
            (sensitivity + specificity) / 2
            if sensitivity is not None and specificity is not None
            else accuracy
        )
        flagged = (
            n_gold >= rules.min_gold_checks
            and balanced is not None
            and balanced < rules.min_reviewer_accuracy
        )
        row = speed.loc[reviewer]
        report["reviewers"].append(
            {
                "reviewer_id": reviewer,
                "decisions": int(row["decisions"]),
                "gold_checks": n_gold,
                "gold_accuracy": _round(accuracy),
                "gold_accuracy_ci": [_round(low), _round(high)],
                "gold_sensitivity": _round(sensitivity),
                "gold_specificity": _round(specificity),
                "gold_balanced_accuracy": _round(balanced),
                "consensus_agreement": _round(consensus.get(reviewer)),
                "decisions_per_active_hour": _round(row["decisions"] / row["active_hours"], 2),
                "median_seconds_per_decision": _round(row["median_seconds"], 1),
                "p90_seconds_per_decision": _round(row["p90_seconds"], 1),
                "flagged": bool(flagged),
                "reason": (
                    f"balanced gold accuracy {balanced:.2f} < {rules.min_reviewer_accuracy:.2f} "
                    f"on {n_gold} checks"
                    if flagged
                    else ""
                ),
            }
        )
    report["pairs"] = _pairs(votes)
    report["krippendorff_alpha"] = _alpha(votes, policy)
    report["flagged"] = [r["reviewer_id"] for r in report["reviewers"] if r["flagged"]]
    return report


def run_qa(policy: Policy, lake: Lake) -> dict:
    """Compute the report from the lake and store it there for monitoring."""
    golden = lake.golden(policy.name)
    report = reviewer_quality(
        lake.decisions(policy.name), golden.frame if golden is not None else None, policy
    )
    write_json_atomic(report, lake.labeling_path(policy.name, "qa.json"))
    return report
