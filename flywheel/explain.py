"""Why the model scored an item high: the features that pushed its score up.

Reviewers see these beside a review-queue task. They are LightGBM's own per-feature contributions
(TreeSHAP, `pred_contrib=True`) on the uncalibrated margin; calibration is monotone, so the
features that raise the margin are the ones that raise the score. Any registered pipeline of
`features` then a (calibrated) LightGBM classifier works; other models get no explanation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from flywheel.records import feature_frame
from flywheel.runtime import Model


def _booster(classifier: Any) -> Any | None:
    """The LightGBM model inside a calibrated (and frozen) classifier, if there is one."""
    calibrated = getattr(classifier, "calibrated_classifiers_", None)
    inner = calibrated[0].estimator if calibrated else classifier
    inner = getattr(inner, "estimator", inner)  # FrozenEstimator
    return inner if hasattr(inner, "booster_") else None


def _readable(name: str, row: pd.Series, categorical: list[str]) -> str:
    """`text_words__free money` -> `text contains "free money"`; a signal shows its value."""
    block, _, feature = name.partition("__")
    for suffix in ("_words", "_chars"):
        if block.endswith(suffix):
            return f'{block.removesuffix(suffix)} contains "{feature.strip()}"'
    if feature in row.index:
        return f"{feature} = {row[feature]}"
    for column in categorical:
        if feature.startswith(f"{column}_"):
            return f"{column} = {feature[len(column) + 1 :]}"
    return feature


def top_contributions(model: Model, items: pd.DataFrame, k: int) -> list[list[dict]]:
    """For each item, up to `k` features with the largest positive contribution, largest first."""
    booster = _booster(model.pipeline[-1])
    if booster is None or k <= 0 or items.empty:
        return [[] for _ in range(len(items))]
    features = model.pipeline[:-1]
    frame = feature_frame(items, model.policy)
    matrix = features.transform(frame)
    names = features.get_feature_names_out()
    contrib = booster.predict(matrix, pred_contrib=True)
    contrib = contrib.toarray() if hasattr(contrib, "toarray") else np.asarray(contrib)
    contrib = contrib[:, :-1]  # the last column is the expected value, not a feature
    categorical = model.policy.fields.categorical
    explained = []
    for i in range(len(frame)):
        row = contrib[i]
        top = np.argsort(-row, kind="stable")[:k]
        explained.append(
            [
                {
                    "feature": _readable(str(names[j]), frame.iloc[i], categorical),
                    "weight": round(float(row[j]), 3),
                }
                for j in top
                if row[j] > 0
            ]
        )
    return explained
