"""A classifier as a reviewer: a Python entry point or an MLflow model giving each item's
probability of the policy's positive label."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from automation.verdict import Verdict
from flywheel.errors import FlywheelError
from flywheel.policy import ModelReviewer, Policy

Scorer = Callable[[pd.DataFrame], "np.ndarray | pd.Series | list[float]"]


def load_scorer(spec: ModelReviewer, where: str) -> Scorer:
    """The function behind the reviewer, or a load error naming the key and the cause."""
    if spec.entry_point is not None:
        module_name, _, attribute = spec.entry_point.partition(":")
        try:
            target = importlib.import_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise FlywheelError(
                f"{where}.entry_point: {spec.entry_point!r} does not import "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        if not callable(target):
            raise FlywheelError(f"{where}.entry_point: {spec.entry_point!r} is not callable")
        return target
    import mlflow.pyfunc  # only a reviewer that names a registered model pays for the import

    try:
        model = mlflow.pyfunc.load_model(spec.model_uri)
    except Exception as exc:  # MLflow raises several kinds for a model it cannot reach
        raise FlywheelError(
            f"{where}.model_uri: {spec.model_uri!r} does not load ({type(exc).__name__}: {exc})"
        ) from exc
    return model.predict


def judge(
    spec: ModelReviewer, policy: Policy, scorer: Scorer, items: pd.DataFrame
) -> list[Verdict]:
    """Each item's verdict from its probability: the positive label at `threshold` or above,
    confident by how far the probability is from an even chance. A probability that is
    missing or outside [0, 1] is a failure for that item."""
    reviewer = f"auto:{spec.name}"
    ids = items["item_id"].astype(str).tolist()
    try:
        raw = scorer(items[policy.fields.all])
        p = np.asarray(pd.DataFrame(raw).iloc[:, -1] if np.ndim(raw) > 1 else raw, dtype=float)
    except Exception as exc:  # a third party's model: whatever it raises, people decide
        failure = f"the model failed ({type(exc).__name__}: {exc})"
        return [Verdict(i, reviewer, None, None, "", failure) for i in ids]
    if p.shape != (len(ids),):
        failure = f"the model gave {p.size} probabilities for {len(ids)} items"
        return [Verdict(i, reviewer, None, None, "", failure) for i in ids]
    verdicts = []
    for item_id, prob in zip(ids, p, strict=True):
        if not (np.isfinite(prob) and 0.0 <= prob <= 1.0):
            verdicts.append(
                Verdict(
                    item_id, reviewer, None, None, "", f"probability {float(prob)!r} outside [0, 1]"
                )
            )
            continue
        positive = prob >= spec.threshold
        verdicts.append(
            Verdict(
                item_id, reviewer, policy.label_value(bool(positive)),
                float(prob if positive else 1.0 - prob),
                f"probability {prob:.3f} of {policy.labels.positive}",
            )
        )  # fmt: skip
    return verdicts
