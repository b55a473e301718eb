"""Train a policy's classifier: features → LightGBM → calibration → operating thresholds.

The model is fitted on the train split (stopping early when validation log-loss stops improving);
its probabilities are calibrated on the validation split (a frozen LightGBM under
`CalibratedClassifierCV`), and the two thresholds are read off validation from the policy's targets. Test and golden figures are computed once the model is fixed.
`train()` runs the whole step, from the stored decisions to a registered `challenger`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, early_stopping
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from flywheel.errors import FlywheelError
from flywheel.lake import Lake, content_hash
from flywheel.policy import Policy, Targets
from flywheel.registry import (
    CHALLENGER,
    CHAMPION,
    ModelVersionRef,
    Thresholds,
    connect,
    find_versions,
)
from flywheel.settings import Settings
from training.dataset import DatasetVersion, build_dataset, load_dataset
from training.evaluate import evaluate
from training.features import build_features


@dataclass
class FittedModel:
    pipeline: Pipeline
    thresholds: Thresholds
    boosting_rounds: int  # trees LightGBM built (early stopping included)
    best_round: int  # trees the model predicts with


@dataclass(frozen=True)
class Candidate:
    """A trained model and everything its registration records."""

    policy: Policy
    dataset: DatasetVersion
    fitted: FittedModel
    reports: dict
    golden_version: str | None
    training_key: str


@dataclass(frozen=True)
class TrainResult:
    model: ModelVersionRef
    dataset: DatasetVersion
    reused: bool  # an identical training had already registered this version


def choose_thresholds(y: np.ndarray, scores: np.ndarray, targets: Targets) -> Thresholds:
    """Operating points from validation scores.

    auto_action: the lowest score whose precision (of everything at or above it) meets the
    target, or `inf` when none does. review: the highest score that keeps recall at the target;
    never above auto_action, so every auto-actioned item would also have been reviewed.
    """
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], y[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold flags all tied scores
    tp = np.cumsum(hits)[last_of_tie]
    flagged = np.flatnonzero(last_of_tie) + 1
    candidates = ranked[last_of_tie]
    precision = tp / flagged
    recall = tp / max(int(y.sum()), 1)
    meets_precision = np.flatnonzero(precision >= targets.auto_action_precision)
    auto = float(candidates[meets_precision.max()]) if meets_precision.size else math.inf
    meets_recall = np.flatnonzero(recall >= targets.review_recall)
    review = float(candidates[meets_recall.min()])
    return Thresholds(auto_action=auto, review=min(review, auto))


def _xy(frame: pd.DataFrame, policy: Policy) -> tuple[pd.DataFrame, np.ndarray]:
    return frame[policy.feature_columns], frame["is_positive"].to_numpy(dtype=int)


def lightgbm(policy: Policy, n_estimators: int | None = None) -> LGBMClassifier:
    """The classifier with the policy's parameters (the benchmark fits this same one bare)."""
    p = policy.training
    return LGBMClassifier(
        n_estimators=n_estimators or p.n_estimators,
        max_bin=p.max_bin,
        learning_rate=p.learning_rate,
        num_leaves=p.num_leaves,
        min_child_samples=p.min_child_samples,
        colsample_bytree=p.colsample_bytree,
        random_state=p.seed,
        verbose=-1,
    )


def drop_pruned_vocabulary(features: ColumnTransformer) -> None:
    """TF-IDF keeps every term it pruned in `stop_words_`, for introspection only; it can hold
    far more terms than the model uses and made saving the model take seconds (scikit-learn
    documents it as safe to delete)."""
    for _, transformer, _ in features.transformers_:
        if isinstance(transformer, TfidfVectorizer) and hasattr(transformer, "stop_words_"):
            del transformer.stop_words_


def fit(policy: Policy, dataset: DatasetVersion) -> FittedModel:
    """Fit, calibrate and pick thresholds; the result scores raw items end to end."""
    x_train, y_train = _xy(dataset.split("train"), policy)
    x_val, y_val = _xy(dataset.split("validation"), policy)
    features = build_features(policy)
    train_matrix = features.fit_transform(x_train)
    drop_pruned_vocabulary(features)
    validation = features.transform(x_val)
    rounds = policy.training.early_stopping_rounds
    classifier = lightgbm(policy).fit(
        train_matrix,
        y_train,
        eval_X=(validation,),
        eval_y=(y_val,),
        callbacks=[early_stopping(rounds, verbose=False)] if rounds else None,
    )
    calibrated = CalibratedClassifierCV(
        FrozenEstimator(classifier), method=policy.training.calibration
    )
    calibrated.fit(validation, y_val)
    thresholds = choose_thresholds(
        y_val, calibrated.predict_proba(validation)[:, 1], policy.targets
    )
    return FittedModel(
        Pipeline([("features", features), ("classifier", calibrated)]),
        thresholds,
        boosting_rounds=int(classifier.n_iter_),
        best_round=int(classifier.best_iteration_ or classifier.n_iter_),
    )


def score_set(
    fitted: FittedModel, frame: pd.DataFrame, labelled_as: np.ndarray, policy: Policy
) -> dict:
    """The evaluation report of a fitted model on one labelled set."""
    scores = fitted.pipeline.predict_proba(frame[policy.feature_columns])[:, 1]
    return evaluate(frame, labelled_as, scores, fitted.thresholds, policy)


def training_key(policy: Policy, dataset: DatasetVersion, golden_version: str | None) -> str:
    """What determines a trained version; the same key again means nothing new to train."""
    return content_hash(
        extra={
            "dataset": dataset.version,
            "golden": golden_version,
            "training": policy.training.model_dump(),
            "targets": policy.targets.model_dump(),
            "fields": policy.fields.model_dump(),
        }
    )


def train(
    policy: Policy, settings: Settings, dataset_version: str | None = None, force: bool = False
) -> TrainResult:
    """From stored decisions to a registered `challenger` (reusing an identical earlier training)."""
    from training.register import register

    client = connect(settings)  # fail before touching the lake when MLflow is down
    lake = Lake(settings.lake_dir)
    dataset = (
        load_dataset(policy, lake, dataset_version)
        if dataset_version
        else build_dataset(policy, lake)
    )
    golden = lake.golden(policy.name)
    key = training_key(policy, dataset, golden.version if golden else None)
    if not force:
        existing = find_versions(client, policy.name, training_key=key)
        if existing:
            ref = existing[0]
            if CHAMPION not in ref.aliases:
                client.set_registered_model_alias(policy.name, CHALLENGER, str(ref.version))
            return TrainResult(ref, dataset, reused=True)

    fitted = fit(policy, dataset)
    test = dataset.split("test")
    reports = {"test": score_set(fitted, test, test["is_positive"].to_numpy(), policy)}
    if golden is not None:
        truth = golden.frame["label"].eq(policy.labels.positive).to_numpy()
        reports["golden"] = score_set(fitted, golden.frame, truth, policy)
    if math.isinf(fitted.thresholds.auto_action):
        reports["warnings"] = [
            f"no validation score reaches precision {policy.targets.auto_action_precision}: "
            "this version never auto-actions"
        ]
    candidate = Candidate(policy, dataset, fitted, reports, golden.version if golden else None, key)
    try:
        ref = register(client, candidate, settings)
    except FlywheelError:
        raise
    except Exception as exc:
        raise FlywheelError(f"registering {policy.name} in MLflow failed: {exc}") from exc
    return TrainResult(ref, dataset, reused=False)
