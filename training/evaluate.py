"""How good a scored set is, at the two operating points and overall.

The same figures are computed on the test split at training time and on the golden set at
promotion time, overall and per slice (each value of each categorical field), so a model that
fails one surface or one country shows it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from flywheel.policy import Policy
from flywheel.registry import Thresholds

OPERATING_POINTS = ("auto_action", "review")
CALIBRATION_BINS = 10


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def at_threshold(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Precision, recall, FPR and FNR of flagging every item scored at or above `threshold`."""
    flagged = scores >= threshold
    tp = int(np.sum(flagged & y))
    fp = int(np.sum(flagged & ~y))
    fn = int(np.sum(~flagged & y))
    tn = int(np.sum(~flagged & ~y))
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
        "flagged": tp + fp,
    }


def calibration_error(y: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error: mean |score − observed rate| over equal-width score bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.sum() * abs(scores[in_bin].mean() - y[in_bin].mean())
    return float(total / len(y))


def binary_metrics(
    y: np.ndarray, scores: np.ndarray, thresholds: Thresholds
) -> dict[str, float | None]:
    """All figures for one set: counts, ranking quality, calibration, both operating points."""
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    both_classes = 0 < y.sum() < len(y)
    metrics: dict[str, float | None] = {
        "items": len(y),
        "positives": int(y.sum()),
        "pr_auc": float(average_precision_score(y, scores)) if both_classes else None,
        "roc_auc": float(roc_auc_score(y, scores)) if both_classes else None,
        "ece": calibration_error(y, scores) if len(y) else None,
        "brier": float(np.mean((scores - y) ** 2)) if len(y) else None,
    }
    for point in OPERATING_POINTS:
        for key, value in at_threshold(y, scores, getattr(thresholds, point)).items():
            metrics[f"{point}_{key}"] = value
    return metrics


@dataclass(frozen=True)
class Paired:
    """One figure of the challenger and the champion on the same golden items, read where the
    champion operates, with how much worse the challenger is and a lower confidence bound of it."""

    name: str  # e.g. "auto_action recall"
    where: str  # e.g. "at the champion's FPR 0.0071"
    champion: float
    challenger: float
    worse_by: float  # negative when the challenger is better
    worse_by_at_least: float  # one-sided lower confidence bound of `worse_by`


def _flagged_at(
    y: np.ndarray, scores: np.ndarray, fpr: float | None = None, recall: float | None = None
) -> np.ndarray:
    """The items a model flags at its threshold that flags the most without exceeding `fpr`, or
    the least while reaching `recall` (the best it can do where another model operates)."""
    fprs, tprs, thresholds = roc_curve(y, scores)
    if fpr is not None:
        at = int(np.flatnonzero(fprs <= fpr + 1e-12).max())
    else:
        at = int(np.flatnonzero(tprs >= recall - 1e-12).min())
    return scores >= thresholds[at]


def _paired(
    name: str,
    where: str,
    new: np.ndarray,
    old: np.ndarray,
    higher_is_better: bool,
    confidence: float,
) -> Paired:
    """Difference of two paired proportions on the same items (Wald interval, as for McNemar's
    test): only the items on which the two models disagree move it."""
    n = len(new)
    new_only, old_only = int(np.sum(new & ~old)), int(np.sum(old & ~new))
    worse = (old_only - new_only) if higher_is_better else (new_only - old_only)
    variance = (new_only + old_only - worse**2 / n) / n**2
    spread = float(norm.ppf(confidence) * np.sqrt(max(variance, 0.0)))
    return Paired(name, where, float(old.mean()), float(new.mean()), worse / n, worse / n - spread)


def compare_where_champion_operates(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    champion_figures: dict,
    confidence: float,
) -> list[Paired]:
    """At each of the champion's operating points: both models' recall without flagging more
    negatives than the champion does, and both models' FPR when catching as much as it does.

    Comparing two models each at its own thresholds would mostly compare where two small
    validation samples put those thresholds; here they differ only by how they rank the golden
    items that matter, and a difference of a golden item or two is read as the noise it is.
    """
    y = np.asarray(y, dtype=bool)
    if not 0 < y.sum() < len(y):
        return []
    challenger, champion = np.asarray(challenger, float), np.asarray(champion, float)
    out = []
    for point in OPERATING_POINTS:
        fpr, recall = champion_figures[f"{point}_fpr"], champion_figures[f"{point}_recall"]
        if fpr is not None:
            new, old = (_flagged_at(y, s, fpr=fpr)[y] for s in (challenger, champion))
            where = f"at the champion's FPR {fpr:.4f}"
            out.append(_paired(f"{point} recall", where, new, old, True, confidence))
        if recall is not None:
            new, old = (_flagged_at(y, s, recall=recall)[~y] for s in (challenger, champion))
            where = f"at the champion's recall {recall:.4f}"
            out.append(_paired(f"{point} FPR", where, new, old, False, confidence))
    return out


def evaluate(
    frame: pd.DataFrame, y: np.ndarray, scores: np.ndarray, thresholds: Thresholds, policy: Policy
) -> dict:
    """Figures overall and for every value of every categorical field."""
    y = np.asarray(y, dtype=bool)
    report: dict = {"overall": binary_metrics(y, scores, thresholds), "slices": {}}
    for field in policy.fields.categorical:
        values = frame[field].to_numpy()
        report["slices"][field] = {
            str(value): binary_metrics(y[values == value], scores[values == value], thresholds)
            for value in sorted(pd.unique(values))
        }
    return report


def flatten(report: dict, prefix: str) -> dict[str, float]:
    """`{prefix}/{metric}` and `{prefix}/{field}/{value}/{metric}` → value, for MLflow metrics.
    Undefined figures (no flagged item, one class only) are left out rather than logged as 0."""
    flat = {f"{prefix}/{k}": v for k, v in report["overall"].items()}
    for field, values in report["slices"].items():
        for value, metrics in values.items():
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in value) or "_empty"
            flat.update({f"{prefix}/{field}/{safe}/{k}": v for k, v in metrics.items()})
    return {k: float(v) for k, v in flat.items() if v is not None and math.isfinite(v)}
