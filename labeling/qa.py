"""Reviewer quality: judged on all the evidence, with flags that mean evidence.

A reviewer's sensitivity (right on violating items) and specificity (right on benign ones) are
measured on two kinds of evidence: gold checks, where the answer is known (exact counts), and
items other reviewers also decided, where the answer is what the others' votes say once the
reviewer's own vote is left out (soft counts from the fitted Dawid-Skene model of
`flywheel.aggregate`, which weighs each of those reviewers by their own reliability). That holds
for imported history as well as Label Studio decisions: a careless reviewer with no gold checks
is still judged on the items they shared. The bar applies to balanced accuracy (the mean of the
two rates: golden sets are enriched in violations, traffic is not, so plain accuracy would
depend on the mix a reviewer happened to get), with bounds at `labeling.confidence`: a flag
opens when the upper bound is under the bar and clears only when the lower bound is over it
(`judge`). A reviewer without enough evidence either way is reported as unjudged.

Beside it: accuracy on gold checks alone with its bounds, the fitted confusion matrix,
agreement with the consensus, Cohen's kappa for every pair with shared items, Krippendorff's
alpha for the whole team, and pace. The report goes to the lake (`labeling/<policy>/qa.json`),
where monitoring and dataset building read it.
"""

from __future__ import annotations

import json
from itertools import combinations

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from flywheel.aggregate import Reliability, fit_reliability, latest_per_reviewer, reviewer_speed
from flywheel.files import write_json_atomic
from flywheel.lake import Lake, utc_now
from flywheel.policy import Policy
from flywheel.stats import Rate, lower_bound, upper_bound

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


def _consensus(fitted: Reliability) -> pd.Series:
    """Each reviewer's agreement with the label of items someone else also decided: the label
    the other votes give (leave-one-out), so a reviewer is not measured against themselves."""
    shared = fitted.votes[~fitted.votes["known"] & fitted.votes["p_others"].notna()]
    if shared.empty:
        return pd.Series(dtype=float)
    agrees = shared["says_positive"] == (shared["p_others"] > 0.5)
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


def _evidence(fitted: Reliability, iterations: int = 50) -> pd.DataFrame:
    """Per reviewer, how often they are right on violating and on benign items, as counts.

    Each item the reviewer decided that is known (a gold check) or that others also decided
    comes with a prior of being violating: the truth, or what the others' votes say once the
    reviewer's own vote is left out. The reviewer's sensitivity and specificity are those that
    best explain their votes given those priors (the maximum-likelihood fit of one annotator,
    by EM), and the counts are the expected violating and benign items among them with the
    expected number answered right. A noisy peer thus spreads an item's weight between the
    classes instead of counting a careful reviewer wrong on it.
    """
    votes = fitted.votes[fitted.votes["p_others"].notna()]
    index = fitted.reviewers.index
    reviewer = index.get_indexer(votes["reviewer_id"])
    prior = votes["p_others"].to_numpy(dtype=float)
    says = votes["says_positive"].to_numpy(dtype=float)
    n = len(index)
    sensitivity, specificity = np.full(n, 0.8), np.full(n, 0.8)
    for _ in range(iterations):
        if_positive = np.where(says > 0, sensitivity[reviewer], 1 - sensitivity[reviewer])
        if_negative = np.where(says > 0, 1 - specificity[reviewer], specificity[reviewer])
        q = prior * if_positive / np.maximum(prior * if_positive + (1 - prior) * if_negative, 1e-12)
        positives = np.bincount(reviewer, q, n)
        negatives = np.bincount(reviewer, 1 - q, n)
        sensitivity = np.bincount(reviewer, q * says, n) / np.maximum(positives, 1e-12)
        specificity = np.bincount(reviewer, (1 - q) * (1 - says), n) / np.maximum(negatives, 1e-12)
        sensitivity = np.clip(sensitivity, 1e-6, 1 - 1e-6)
        specificity = np.clip(specificity, 1e-6, 1 - 1e-6)
    shared = ~votes["known"].to_numpy()
    return pd.DataFrame(
        {
            "overlap_items": np.bincount(reviewer[shared], minlength=n),
            "pos": positives,
            "tp": sensitivity * positives,
            "neg": negatives,
            "tn": specificity * negatives,
        },
        index=index,
    )


def judge(
    sensitivity: Rate, specificity: Rate, evidence_items: int, rules, was_flagged: bool
) -> tuple[str, float | None, float | None]:
    """A reviewer's standing from the bounds of their balanced accuracy.

    The bounds combine the two rates' one-sided bounds, each at half the error allowance
    (Bonferroni), so the balanced accuracy lies under its upper bound (and over its lower one)
    with at least the stated confidence. A flag opens when the upper bound is under the bar
    (the evidence shows the reviewer below it) and clears only when the lower bound is over it;
    in between the reviewer keeps the standing they had, so a flag does not flicker on noise.
    With less evidence than `labeling.min_gold_checks` items, or none on one of the classes,
    the reviewer is unjudged, not fine.
    """
    if evidence_items < rules.min_gold_checks or sensitivity.n < 1 or specificity.n < 1:
        return ("flagged" if was_flagged else "unjudged"), None, None
    bar = rules.min_reviewer_accuracy
    half = 1.0 - (1.0 - rules.confidence) / 2.0
    low = (
        lower_bound(sensitivity.successes, sensitivity.n, half)
        + lower_bound(specificity.successes, specificity.n, half)
    ) / 2.0
    high = (
        upper_bound(sensitivity.successes, sensitivity.n, half)
        + upper_bound(specificity.successes, specificity.n, half)
    ) / 2.0
    if high < bar:
        return "flagged", low, high
    if low > bar:
        return "meets the bar", low, high
    return ("flagged" if was_flagged else "unjudged"), low, high


def reviewer_quality(
    decisions: pd.DataFrame,
    golden: pd.DataFrame | None,
    policy: Policy,
    previous: dict | None = None,
) -> dict:
    """The QA report of a policy's reviewers, as plain data; `previous` is the last report,
    whose open flags stay open until the evidence clears them."""
    rules = policy.labeling
    bar = rules.min_reviewer_accuracy
    report = {
        "policy": policy.name,
        "computed_at": utc_now().isoformat(),
        "bar": {"min_balanced_accuracy": bar, "min_evidence_items": rules.min_gold_checks},
        "confidence": rules.confidence,
        "reviewers": [],
        "pairs": [],
        "krippendorff_alpha": None,
        "flagged": [],
        "unjudged": [],
    }
    if decisions.empty:
        return report
    was_flagged = set((previous or {}).get("flagged", []))
    votes = latest_per_reviewer(decisions)
    known = (
        golden.set_index("item_id")["label"].eq(policy.labels.positive)
        if golden is not None and not golden.empty
        else None
    )
    fitted = fit_reliability(votes, policy, known)
    gold = _gold(votes, golden, policy)
    evidence = _evidence(fitted)
    consensus = _consensus(fitted)
    speed = reviewer_speed(votes)
    for reviewer in sorted(speed.index):
        g = gold.loc[reviewer] if reviewer in gold.index else pd.Series(0, index=gold.columns)
        n_gold = int(g["n_gold"])
        accuracy = g["correct"] / n_gold if n_gold else None
        gold_rate = Rate(int(g["correct"]), n_gold, rules.confidence)
        e = evidence.loc[reviewer]
        sensitivity = Rate(float(e["tp"]), float(e["pos"]), rules.confidence)
        specificity = Rate(float(e["tn"]), float(e["neg"]), rules.confidence)
        items = n_gold + int(e["overlap_items"])
        standing, low, high = judge(sensitivity, specificity, items, rules, reviewer in was_flagged)
        balanced = (
            (sensitivity.value + specificity.value) / 2 if sensitivity.n and specificity.n else None
        )
        said = f"{n_gold} gold checks and {int(e['overlap_items'])} items shared with others"
        if standing == "flagged" and high is not None and high < bar:
            reason = f"balanced accuracy {balanced:.2f} (at most {high:.2f}) < {bar:.2f} on {said}"
        elif standing == "flagged":
            reason = f"flagged earlier and not yet shown above {bar:.2f}, on {said}"
        elif standing == "unjudged":
            reason = f"not enough evidence either way on {said}"
        else:
            reason = ""
        row = speed.loc[reviewer]
        report["reviewers"].append(
            {
                "reviewer_id": reviewer,
                "decisions": int(row["decisions"]),
                "gold_checks": n_gold,
                "gold_accuracy": _round(accuracy),
                "gold_accuracy_ci": [_round(gold_rate.low), _round(gold_rate.high)],
                "gold_sensitivity": _round(g["tp"] / g["n_pos"] if g["n_pos"] else None),
                "gold_specificity": _round(g["tn"] / g["n_neg"] if g["n_neg"] else None),
                "overlap_items": int(e["overlap_items"]),
                "consensus_agreement": _round(consensus.get(reviewer)),
                "sensitivity": _round(sensitivity.value),
                "sensitivity_ci": [_round(sensitivity.low), _round(sensitivity.high)],
                "specificity": _round(specificity.value),
                "specificity_ci": [_round(specificity.low), _round(specificity.high)],
                "fitted_sensitivity": _round(fitted.reviewers.loc[reviewer, "sensitivity"]),
                "fitted_specificity": _round(fitted.reviewers.loc[reviewer, "specificity"]),
                "balanced_accuracy": _round(balanced),
                "balanced_accuracy_ci": [_round(low), _round(high)],
                "standing": standing,
                "decisions_per_active_hour": _round(row["decisions"] / row["active_hours"], 2),
                "median_seconds_per_decision": _round(row["median_seconds"], 1),
                "p90_seconds_per_decision": _round(row["p90_seconds"], 1),
                "flagged": standing == "flagged",
                "reason": reason,
            }
        )
    report["pairs"] = _pairs(votes)
    report["krippendorff_alpha"] = _alpha(votes, policy)
    report["flagged"] = [r["reviewer_id"] for r in report["reviewers"] if r["flagged"]]
    report["unjudged"] = [
        r["reviewer_id"] for r in report["reviewers"] if r["standing"] == "unjudged"
    ]
    return report


def run_qa(policy: Policy, lake: Lake) -> dict:
    """Compute the report from the lake and store it there, for monitoring and for dataset
    building (which leaves flagged reviewers' decisions out)."""
    golden = lake.golden(policy.name)
    path = lake.labeling_path(policy.name, "qa.json")
    previous = json.loads(path.read_text()) if path.is_file() else None
    report = reviewer_quality(
        lake.decisions(policy.name),
        golden.frame if golden is not None else None,
        policy,
        previous,
    )
    write_json_atomic(report, path)
    return report
