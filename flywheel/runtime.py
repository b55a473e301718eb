"""The model runtime: one way to load a policy's model and one way to score with it.

Serving, the promotion gate, monitoring, the push, the rescoring job and the demo all load
"policy P's model, by alias or version, with its thresholds" here, and score through
`Model.score`. A model of Flywheel's own pipeline shape is compiled (`flywheel.compiled`): at
load the compiled path is checked against `predict_proba` on rows made from the model's own
vocabulary and categories, and on any difference, or for any other shape, the model scores
through `predict_proba` (the reference path) and says why: `Model.path` and `Model.note`, which
serving exports as a metric and on `/readyz`, and monitoring writes in its report. A wrong fast
score is never served in silence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from flywheel.compiled import compile_pipeline
from flywheel.policy import Policy
from flywheel.records import feature_frame
from flywheel.registry import ModelVersionRef, Thresholds, connect, get_version, load_pipeline
from flywheel.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

COMPILED, REFERENCE = "compiled", "reference"
CHECK_ROWS = 64  # items the compiled path must score exactly as predict_proba does at load


@dataclass
class Model:
    """A registered version of a policy's model, ready to score and decide."""

    ref: ModelVersionRef
    policy: Policy
    pipeline: Any = field(repr=False)
    fast: Callable[[Sequence[dict]], np.ndarray] | None = field(default=None, repr=False)
    note: str | None = None  # why it scores through the reference path (None: compiled)

    @property
    def version(self) -> int:
        return self.ref.version

    @property
    def thresholds(self) -> Thresholds:
        return self.ref.thresholds

    @property
    def path(self) -> str:
        return COMPILED if self.fast is not None else REFERENCE

    def score(self, items: pd.DataFrame | Sequence[dict]) -> np.ndarray:
        """Calibrated probability that each item violates the policy. A frame is typed here by
        the one item rule (`flywheel.records.feature_frame`); rows come typed already
        (`flywheel.records.ItemValidator`, the same rule)."""
        if isinstance(items, pd.DataFrame):
            if items.empty:
                return np.empty(0)
            frame = feature_frame(items, self.policy)
            if self.fast is None:
                return self.pipeline.predict_proba(frame)[:, 1]
            return self.fast(frame.to_dict("records"))
        if not len(items):
            return np.empty(0)
        if self.fast is not None:
            return self.fast(items)
        frame = pd.DataFrame.from_records(items, columns=self.policy.feature_columns)
        return self.pipeline.predict_proba(frame)[:, 1]

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """allow, review or auto_action for each score, by this version's thresholds."""
        return self.thresholds.decide(scores)

    def describe(self) -> dict[str, object]:
        """What serves: the version, the scoring path and why (for `/readyz` and reports)."""
        return {"version": self.version, "path": self.path, "note": self.note}


def load_model(
    client: MlflowClient, ref: ModelVersionRef, policy: Policy, allow_pickle: bool = False
) -> Model:
    """A registered version with its thresholds, loaded with the project's own trust
    (`flywheel.registry.load_pipeline`) and checked (`from_pipeline`)."""
    ref.thresholds  # noqa: B018 - refuse a version without thresholds before the slow load
    return from_pipeline(ref, policy, load_pipeline(ref.uri, allow_pickle))


def load(settings: Settings, policy: Policy, alias_or_version: str | int) -> Model | None:
    """The version an alias (`champion`, `challenger`) or number names; None if there is none."""
    client = connect(settings)
    ref = get_version(client, policy.name, alias_or_version)
    if ref is None:
        return None
    return load_model(client, ref, policy, settings.allow_pickle_models)


def from_pipeline(ref: ModelVersionRef, policy: Policy, pipeline: Any) -> Model:
    """A model on its compiled path when its shape allows it and the compiled path scores the
    check rows exactly as `predict_proba` does; else on the reference path, with the reason."""
    try:
        fast = compile_pipeline(pipeline)
    except Exception as exc:  # a library change the compiled path does not know
        return Model(ref, policy, pipeline, None, f"the compiled path did not build: {exc}")
    if fast is None:
        return Model(
            ref, policy, pipeline, None, "its pipeline is not a shape the compiled path knows"
        )
    rows = check_rows(pipeline, policy)
    frame = pd.DataFrame.from_records(rows, columns=policy.feature_columns)
    expected = pipeline.predict_proba(frame)[:, 1]
    try:
        got = np.asarray(fast(rows), dtype=float)
    except Exception as exc:
        note = f"the compiled path failed the load check: {type(exc).__name__}: {exc}"
        return Model(ref, policy, pipeline, None, note)
    if got.shape != expected.shape or not np.array_equal(got, expected):
        worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else np.inf
        note = f"the compiled path differed from predict_proba at the load check (by {worst:.3g})"
        return Model(ref, policy, pipeline, None, note)
    return Model(ref, policy, pipeline, fast, None)


def check_rows(pipeline: Any, policy: Policy, n: int = CHECK_ROWS) -> list[dict]:
    """Typed items that exercise a pipeline: its own words, n-grams and categories, unknown
    ones, empty and missing values, numbers of every sign and size (seeded: the same pipeline
    always gets the same rows)."""
    rng = np.random.default_rng(0)
    vocabularies, categories = _known_values(pipeline, rng)
    numbers = np.array([0.0, 1.0, 2.0, 3.5, 14.0, 700.0, -1.0, 1e6, np.nan])
    rows = []
    for i in range(n):
        row: dict[str, object] = {"item_id": f"check-{i}"}
        for name in policy.fields.text:
            known = vocabularies.get(name) or ["hello"]
            picks = rng.choice(known, size=rng.integers(0, 8)).tolist()
            words = [*picks, "zzqx"] if i % 3 == 0 else picks
            text = " ".join(str(w) for w in words)
            row[name] = text.upper() if i % 5 == 0 else text
        for name in policy.fields.categorical:
            known = [*categories.get(name, []), "", "unseen-value"]
            row[name] = str(known[rng.integers(len(known))])
        for name in policy.fields.numeric:
            row[name] = float(numbers[rng.integers(len(numbers))])
        rows.append(row)
    return rows


def _known_values(
    pipeline: Any, rng: np.random.Generator
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Some of the vocabulary of a pipeline's text columns (all n-gram kinds), and the
    categories of its categorical ones."""
    features = pipeline[0] if hasattr(pipeline, "__getitem__") else None
    vocabularies: dict[str, list[str]] = {}
    categories: dict[str, list[str]] = {}
    for _, transformer, columns in getattr(features, "transformers_", []):
        vocabulary = getattr(transformer, "vocabulary_", None)
        if vocabulary is not None and isinstance(columns, str):
            terms = sorted(t for t in vocabulary if t.strip())
            some = rng.choice(terms, size=min(500, len(terms)), replace=False) if terms else []
            vocabularies.setdefault(columns, []).extend(str(t) for t in some)
        for column, values in zip(
            columns if isinstance(columns, list) else [],
            getattr(transformer, "categories_", []),
            strict=False,
        ):
            categories[column] = [str(v) for v in values]
    return vocabularies, categories
