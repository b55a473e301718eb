"""How good a scored set is, at the two operating points and overall.

The same figures are computed on the test split at training time and on the golden set at
promotion time, overall and per slice (each value of each categorical field), so a model that
fails one surface or one country shows it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

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
