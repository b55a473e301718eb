"""Error rates on the golden set: champion and challenger, at both thresholds, per slice.

The golden set is expert-labelled and never trained on, so its rates are the closest thing to
the truth a policy has. Each rate comes with its exact one-sided bounds at the policy's
confidence (`flywheel.stats`: golden sets are small, and a slice of one country is smaller),
and each value of the policy's categorical fields is a slice of its own, so a model that fails
one surface or one region shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from flywheel.policy import Policy
from flywheel.runtime import Model
from flywheel.stats import OPERATING_POINTS, Rate, operating_rates


def as_report(rates: dict[str, Rate]) -> dict:
    """`confusion_rates` as plain data, with the confusion counts they rest on."""
    tp, fp = rates["precision"].successes, rates["precision"].n - rates["precision"].successes
    fn, tn = rates["recall"].n - tp, rates["fpr"].n - fp
    report = {name: rate.as_dict() for name, rate in rates.items()}
    report["counts"] = {"tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn)}
    return report


def _slices(frame: pd.DataFrame, policy: Policy, min_items: int) -> list[tuple[str, np.ndarray]]:
    slices = [("all", np.ones(len(frame), dtype=bool))]
    for field in policy.fields.categorical:
        values = frame[field].astype("string").fillna("")
        for value, count in values.value_counts().items():
            if count >= min_items:
                slices.append((f"{field}={value}", (values == value).to_numpy()))
    return slices


@dataclass(frozen=True)
class Decided:
    """A model's decisions on the golden items, beside their truth: scored once per run, read
    by the report and by the Evidently snapshot."""

    version: int
    truth: np.ndarray
    decisions: np.ndarray


def decide(model: Model, golden: pd.DataFrame, policy: Policy) -> Decided:
    truth = golden["label"].eq(policy.labels.positive).to_numpy()
    return Decided(model.ref.version, truth, model.ref.thresholds.decide(model.score(golden)))


def golden_report(decided: Decided, golden: pd.DataFrame, policy: Policy) -> dict:
    """One model's rates on the golden set at each operating point, overall and per slice."""
    rules = policy.monitoring
    truth, decisions = decided.truth, decided.decisions
    report = {"version": decided.version, "items": len(golden), "slices": {}}
    for name, mask in _slices(golden, policy, rules.min_slice_items):
        report["slices"][name] = {
            point: as_report(rates)
            for point, rates in operating_rates(
                truth[mask], decisions[mask], rules.confidence
            ).items()
        }
    return report


def golden_snapshot(decided: Decided):
    """The model's golden-set precision and recall at each operating point as an Evidently
    snapshot (tagged `golden`), so the workspace's dashboard plots them run after run. These
    are Evidently's point estimates; the intervals are in the report and on the console."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import Precision, Recall

    frame = pd.DataFrame(
        {"truth": decided.truth.astype(int)}
        | {
            point: np.isin(decided.decisions, kinds).astype(int)
            for point, kinds in OPERATING_POINTS.items()
        }
    )
    definition = DataDefinition(
        classification=[
            BinaryClassification(name=point, target="truth", prediction_labels=point, pos_label=1)
            for point in OPERATING_POINTS
        ]
    )
    metrics = [
        measure(classification_name=point)
        for point in OPERATING_POINTS
        for measure in (Precision, Recall)
    ]
    return Report(metrics, tags=["golden"], metadata={"version": str(decided.version)}).run(
        Dataset.from_pandas(frame, data_definition=definition)
    )
