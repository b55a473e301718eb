"""Error rates in production: from the blind audit, weighted, and from the scores alone.

The blind audit draws every logged item with a known probability that depends on its decision,
so each audited item stands for 1/p items of traffic (Horvitz-Thompson). Ratios of weighted sums
estimate the rates of the whole traffic without bias: the false-positive rate of `auto_action`
(benign items acted on, among all benign items), the false-negative rate of `allow` (violating
items let through, among all violating ones), precision of `auto_action` and prevalence. The
intervals use the linearised variance of a ratio under Poisson sampling.

Beside them, the *naive* figures are what the review queue alone would say if its items were
taken as a random sample: the queue holds only items sent to review, full of likely violations,
so some rates are far off and others (anything about `allow` or `auto_action`) cannot be
estimated from it at all; the report shows both.

Without labels, calibrated scores still say something: the expected rates if the scores are
calibrated (confidence-based performance estimation), checked against the audit when there is one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from flywheel.aggregate import aggregate_labels
from flywheel.policy import Policy
from flywheel.stats import lower_bound, upper_bound

RATES = {
    # name: (numerator, denominator), over items with decision d and truth y
    "auto_action_fpr": (lambda d, y: (d == "auto_action") & ~y, lambda d, y: ~y),
    "allow_fnr": (lambda d, y: (d == "allow") & y, lambda d, y: y),
    "auto_action_precision": (
        lambda d, y: (d == "auto_action") & y,
        lambda d, y: d == "auto_action",
    ),
    "prevalence": (lambda d, y: y, lambda d, y: np.ones_like(y)),
}


def ratio_estimate(
    numerator: np.ndarray, denominator: np.ndarray, probability: np.ndarray, confidence: float
) -> dict:
    """Horvitz-Thompson ratio sum(y/p) / sum(x/p) with its one-sided bounds at `confidence`.

    The linearised bounds collapse to a point when the audit saw no (or every) case, the usual
    situation for rare misses; so each bound is widened to cover the exact (Clopper-Pearson)
    bound on the effective sample size (Kish) of the weighted denominator as well. A bar
    outside the bounds is crossed at the confidence; an audit that saw no violating allowed
    item shows an allow FNR of 0 with an upper bound that says how little that means.
    """
    y, x = numerator.astype(float), denominator.astype(float)
    weight = 1.0 / probability
    total = float((weight * x).sum())
    if total == 0:
        return {"value": None, "low": None, "high": None, "n": int(x.sum())}
    ratio = float((weight * y).sum()) / total
    residual = y - ratio * x
    variance = float(((1 - probability) / probability**2 * residual**2).sum()) / total**2
    half = norm.ppf(confidence) * np.sqrt(variance)
    effective = total**2 / float((weight**2 * x).sum())
    low = lower_bound(ratio * effective, effective, confidence)
    high = upper_bound(ratio * effective, effective, confidence)
    return {
        "value": ratio,
        "low": float(max(0.0, min(ratio - half, low))),
        "high": float(min(1.0, max(ratio + half, high))),
        "n": int(x.sum()),
        "effective_n": round(effective, 1),
    }


def _plain_share(numerator: np.ndarray, denominator: np.ndarray) -> float | None:
    n = int(denominator.sum())
    return float(numerator.sum()) / n if n else None


def labelled_tasks(ledger: pd.DataFrame, decisions: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Pushed review and audit items with their reviewers' label (one per item)."""
    if ledger.empty or decisions.empty:
        return pd.DataFrame(columns=["item_id", "queue", "decision", "sampling_prob", "truth"])
    tasks = ledger[ledger["queue"].isin(["review", "audit"])]
    decided = decisions[decisions["item_id"].isin(tasks["item_id"])]
    if decided.empty:
        return pd.DataFrame(columns=["item_id", "queue", "decision", "sampling_prob", "truth"])
    labels = aggregate_labels(decided, policy).set_index("item_id")["is_positive"]
    tasks = tasks[tasks["item_id"].isin(labels.index)]
    return tasks.assign(truth=tasks["item_id"].map(labels).astype(bool))[
        ["item_id", "queue", "decision", "sampling_prob", "truth"]
    ].reset_index(drop=True)


def audit_estimates(labelled: pd.DataFrame, confidence: float) -> dict:
    """Unbiased production rates from the audit, and the naive ones from the review queue."""
    audit = labelled[labelled["queue"] == "audit"]
    d, y = audit["decision"].to_numpy(), audit["truth"].to_numpy(dtype=bool)
    p = audit["sampling_prob"].to_numpy(dtype=float)
    queue = labelled[labelled["queue"] == "review"]
    rd, ry = queue["decision"].to_numpy(), queue["truth"].to_numpy(dtype=bool)
    report = {"audited_items": len(audit), "review_queue_items": len(queue), "rates": {}}
    for name, (num, den) in RATES.items():
        weighted = (
            ratio_estimate(num(d, y), den(d, y), p, confidence) if len(audit) else {"value": None}
        )
        naive = _plain_share(num(rd, ry), den(rd, ry)) if len(queue) else None
        bias = (
            naive - weighted["value"]
            if naive is not None and weighted["value"] is not None
            else None
        )
        report["rates"][name] = {**weighted, "naive": naive, "naive_bias": bias}
    return report


def score_estimates(scores: np.ndarray, decisions: np.ndarray) -> dict:
    """Expected rates if the scores are calibrated: each score is P(violating) for its item."""
    s = np.asarray(scores, dtype=float)
    d = np.asarray(decisions)
    keep = ~np.isnan(s)
    s, d = s[keep], d[keep]
    positives, negatives = s.sum(), (1 - s).sum()
    auto, allow = d == "auto_action", d == "allow"

    def share(numerator: float, denominator: float) -> float | None:
        return float(numerator / denominator) if denominator > 0 else None

    return {
        "items": len(s),
        "rates": {
            "auto_action_fpr": share((1 - s[auto]).sum(), negatives),
            "allow_fnr": share(s[allow].sum(), positives),
            "auto_action_precision": share(s[auto].sum(), auto.sum()),
            "prevalence": share(positives, len(s)),
        },
    }


def compare(scores: dict, audit: dict) -> dict:
    """How far the label-free estimates are from the audit's, and whether they sit inside its
    interval: a calibration check in production."""
    checked = {}
    for name, expected in scores["rates"].items():
        measured = audit["rates"].get(name) or {}
        if expected is None or measured.get("value") is None:
            continue
        checked[name] = {
            "difference": expected - measured["value"],
            "within_audit_interval": measured["low"] <= expected <= measured["high"],
        }
    return checked


SELF_SELECTED = (
    "appealed items select themselves (users appeal what they think wrong): the overturn rate "
    "says how often appeals are right, not how often auto-action is wrong; the blind audit's "
    "auto_action FPR says that"
)


def appeal_rates(appeals: pd.DataFrame, outcomes: pd.DataFrame, confidence: float) -> dict:
    """Per model version: appeals received and decided, and the share overturned with exact
    bounds at `confidence`; with the note that appealed items are not a sample."""
    from flywheel.stats import Rate

    received = (
        appeals["model_version"].astype(int).value_counts() if not appeals.empty else pd.Series()
    )
    versions = sorted(set(received.index) | set(outcomes["model_version"].astype(int)))
    by_version = {}
    for version in versions:
        mine = outcomes[outcomes["model_version"].astype(int) == version]
        overturned = int(mine["outcome"].eq("overturned").sum())
        rate = Rate(overturned, len(mine), confidence).as_dict()
        by_version[str(version)] = {
            "received": int(received.get(version, 0)),
            "decided": len(mine),
            "overturned": overturned,
            "overturn_rate": rate,
        }
    return {"by_version": by_version, "note": SELF_SELECTED}
