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
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from flywheel.policy import Policy
from flywheel.registry import Thresholds
from flywheel.stats import confusion_rates

OPERATING_POINTS = ("auto_action", "review")
CALIBRATION_BINS = 10


def at_threshold(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Precision, recall, FPR and FNR of flagging every item scored at or above `threshold`
    (the one error-rate rule, `flywheel.stats.confusion_rates`), as plain values."""
    flagged = scores >= threshold
    rates = confusion_rates(y, flagged, confidence=0.95)  # the values do not depend on it
    return {name: rate.value for name, rate in rates.items()} | {"flagged": int(flagged.sum())}


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
    champion operates, with how much worse the challenger is and a lower confidence bound of it
    (a bootstrap quantile)."""

    name: str  # e.g. "auto_action recall"
    measure: str  # "recall" (higher is better) or "fpr" (lower is better)
    where: str  # e.g. "at the champion's FPR 0.0071"
    champion: float
    challenger: float
    worse_by: float  # negative when the challenger is better
    worse_by_at_least: float  # one-sided lower confidence bound of `worse_by`


RESAMPLES = 1000  # bootstrap resamples of the golden set for a comparison's bound


def _read(y: np.ndarray, scores: np.ndarray, levels: list[tuple[str, float]]) -> np.ndarray:
    """Each (kind, level): the best recall at FPR <= level ("recall") or the lowest FPR at
    recall >= level ("fpr"), read off the model's ROC curve on these items."""
    fprs, tprs, _ = roc_curve(y, scores)
    return np.array(
        [
            tprs[fprs <= level + 1e-12].max()
            if kind == "recall"
            else fprs[tprs >= level - 1e-12].min()
            for kind, level in levels
        ]
    )


def compare_where_champion_operates(
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    champion_figures: dict,
    confidence: float,
    resamples: int = RESAMPLES,
) -> list[Paired]:
    """At each of the champion's operating points: both models' recall without flagging more
    negatives than the champion does, and both models' FPR when catching as much as it does.

    Comparing two models each at its own thresholds would mostly compare where two small
    validation samples put those thresholds; here they differ only by how they rank the golden
    items that matter. How sure the difference is comes from a stratified bootstrap of the
    golden set, both models on the same resampled items: it carries the noise of which items
    are flagged and of where the matched threshold falls, which at a recall of 179 out of 180
    positives is one item's score. The resampling is seeded, so a verdict is reproducible.
    """
    y = np.asarray(y, dtype=bool)
    if not 0 < y.sum() < len(y):
        return []
    challenger, champion = np.asarray(challenger, float), np.asarray(champion, float)
    checks: list[tuple[str, str, str, float]] = []  # name, where, kind, level
    for point in OPERATING_POINTS:
        fpr, recall = champion_figures[f"{point}_fpr"], champion_figures[f"{point}_recall"]
        if fpr is not None:
            checks.append((f"{point} recall", f"at the champion's FPR {fpr:.4f}", "recall", fpr))
        if recall is not None:
            checks.append((f"{point} FPR", f"at the champion's recall {recall:.4f}", "fpr", recall))
    levels = [(kind, level) for _, _, kind, level in checks]
    worse_is_lower = np.array([kind == "recall" for kind, _ in levels])

    def worse_by(old: np.ndarray, new: np.ndarray) -> np.ndarray:
        return np.where(worse_is_lower, old - new, new - old)

    def resampled(items: np.ndarray) -> np.ndarray:
        return worse_by(
            _read(y[items], champion[items], levels), _read(y[items], challenger[items], levels)
        )

    rng = np.random.default_rng(0)
    positives, negatives = np.flatnonzero(y), np.flatnonzero(~y)
    samples = np.array(
        [
            resampled(
                np.concatenate(
                    [rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))]
                )
            )
            for _ in range(resamples)
        ]
    )
    bounds = np.quantile(samples, 1.0 - confidence, axis=0)
    old, new = _read(y, champion, levels), _read(y, challenger, levels)
    point = worse_by(old, new)
    return [
        Paired(name, kind, where, float(old[i]), float(new[i]), float(point[i]), float(bounds[i]))
        for i, (name, where, kind, _) in enumerate(checks)
    ]


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
