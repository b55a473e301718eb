"""Drift of the policy's fields and of the score, with Evidently.

Reference: the champion's training data (its dataset version's train split) and the champion's
scores on it. Current: a window of the prediction log. Both sides are sampled to the policy's
`monitoring.drift_sample` rows (drift tests need a sample, not every row; the figure is stated in
the report). A field is drifted when its Evidently test fails: per-column values are p-values for
some methods and distances for others, so the test status is the only comparable flag.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from flywheel.policy import Policy

SCORE = "score"


@dataclass
class DriftResult:
    sample_size: int
    reference_rows: int
    current_rows: int
    fields: dict[str, dict] = field(default_factory=dict)
    score: dict | None = None
    notes: list[str] = field(default_factory=list)
    snapshot: Any = None  # the Evidently snapshot, for the HTML/JSON report

    @property
    def drifted_share(self) -> float | None:
        if not self.fields:
            return None
        return sum(f["drifted"] for f in self.fields.values()) / len(self.fields)

    def as_dict(self) -> dict:
        return {
            "sample_size": self.sample_size,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drifted_share": self.drifted_share,
            "fields": self.fields,
            "score": self.score,
            "notes": self.notes,
        }


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n, random_state=seed) if len(frame) > n else frame


def _run(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    text: list[str],
    numeric: list[str],
    categorical: list[str],
):
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    columns = [*text, *numeric, *categorical]
    definition = DataDefinition(
        numerical_columns=[*numeric, SCORE],
        categorical_columns=categorical,
        text_columns=text,
    )
    report = Report(
        [DataDriftPreset(columns=columns), ValueDrift(column=SCORE)],
        include_tests=True,
        tags=["drift"],
    )
    with warnings.catch_warnings():
        # text drift fits a small classifier per run; its convergence notes are not ours to act on
        warnings.simplefilter("ignore", ConvergenceWarning)
        return report.run(
            Dataset.from_pandas(current[[*columns, SCORE]], data_definition=definition),
            Dataset.from_pandas(reference[[*columns, SCORE]], data_definition=definition),
        )


def _column_results(snapshot) -> dict[str, dict]:
    """Per column: the method, its value, threshold and whether its test failed."""
    raw = snapshot.dict()
    values = {}
    for metric in raw["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            values[config["column"]] = {
                "method": config.get("method"),
                "value": float(metric["value"]),
                "threshold": config.get("threshold"),
            }
    for test in raw.get("tests", []):
        column = test.get("metric_config", {}).get("params", {}).get("column")
        if column in values:
            values[column]["drifted"] = str(test["status"]).endswith("FAIL")
    return values


def detect_drift(
    reference: pd.DataFrame, current: pd.DataFrame, policy: Policy, seed: int = 0
) -> DriftResult:
    """Field and score drift between two frames that hold the policy's fields and `score`."""
    n = policy.monitoring.drift_sample
    result = DriftResult(n, len(reference), len(current))
    missing = [c for c in policy.feature_columns if c not in current or current[c].isna().all()]
    if missing:
        result.notes.append(f"no values in the current window for: {', '.join(missing)}")
    kinds = {
        kind: [c for c in getattr(policy.fields, kind) if c not in missing]
        for kind in ("text", "numeric", "categorical")
    }
    if not any(kinds.values()) or reference.empty or current.empty:
        result.notes.append("nothing to compare: an empty reference or window")
        return result
    ref, cur = _sample(reference, n, seed), _sample(current, n, seed)
    try:
        snapshot = _run(ref, cur, kinds["text"], kinds["numeric"], kinds["categorical"])
    except ValueError as exc:  # e.g. "After pruning, no terms remain" on a tiny vocabulary
        result.notes.append(f"text drift skipped: {exc}")
        snapshot = _run(ref, cur, [], kinds["numeric"], kinds["categorical"])
    columns = _column_results(snapshot)
    result.score = columns.pop(SCORE, None)
    result.fields = columns
    result.snapshot = snapshot
    return result
