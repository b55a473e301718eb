"""Train a policy's classifier: features → LightGBM → calibration → operating thresholds.

The model is fitted on the train split (stopping early when validation log-loss stops improving).
Its probabilities are calibrated, and its two thresholds chosen with the guarantee of
`training.thresholds`, on scores of labelled items it did not train on: the validation split
when that alone holds enough positives, else out-of-fold scores over train and validation
(cross-fitting). Test and golden figures are computed once the model is fixed. `train()` runs
the whole step, from the stored decisions to a registered `challenger`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, early_stopping
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from flywheel.errors import FlywheelError
from flywheel.lake import Lake, content_hash, utc_now
from flywheel.policy import Policy
from flywheel.predictions import latest_per_item, read_predictions
from flywheel.progress import Progress, quiet
from flywheel.records import feature_frame
from flywheel.registry import CHALLENGER, CHAMPION, connect, find_versions
from flywheel.settings import Settings
from training.candidate import Candidate, FittedModel, TrainResult
from training.dataset import DatasetVersion, build_dataset, load_dataset
from training.evaluate import evaluate
from training.features import build_features
from training.register import register
from training.thresholds import choose_operating_points, draw_truth


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


def _early_stopped(policy: Policy, train: pd.DataFrame, validation: pd.DataFrame):
    """Features and LightGBM fitted on the train split, stopping when validation log-loss stops
    improving; also returns the validation matrix and labels."""
    x_train, y_train = _xy(train, policy)
    x_val, y_val = _xy(validation, policy)
    features = build_features(policy)
    train_matrix = features.fit_transform(x_train)
    drop_pruned_vocabulary(features)
    validation_matrix = features.transform(x_val)
    rounds = policy.training.early_stopping_rounds
    classifier = lightgbm(policy).fit(
        train_matrix,
        y_train,
        eval_X=(validation_matrix,),
        eval_y=(y_val,),
        callbacks=[early_stopping(rounds, verbose=False)] if rounds else None,
    )
    return features, classifier, validation_matrix, y_val


def _calibrated(classifier: LGBMClassifier, matrix, y: np.ndarray, method: str):
    """The fitted classifier under a calibrator fitted on (`matrix`, `y`)."""
    return CalibratedClassifierCV(FrozenEstimator(classifier), method=method).fit(matrix, y)


def _cross_fitted(
    policy: Policy, pool: pd.DataFrame, rounds: int, folds: int
) -> tuple[ColumnTransformer, CalibratedClassifierCV, np.ndarray, np.ndarray]:
    """Cross-fitting: every labelled item of `pool` gets a score from a model that never saw it.

    Each fold's model is the final model's recipe (same features, parameters and rounds) fitted
    on the other folds; the calibrator is fitted on those out-of-fold margins and then put over
    the final model, fitted on the whole pool (what `CalibratedClassifierCV(ensemble=False)`
    does, done here by hand because the out-of-fold scores are needed too). Returns the
    features, the calibrated final model, and the out-of-fold calibrated scores with labels.
    """
    x_pool, y_pool = _xy(pool, policy)
    features = build_features(policy)
    # TF-IDF vocabularies and one-hot categories see no labels, so fitting them on the whole
    # pool leaks nothing into the out-of-fold scores
    matrix = features.fit_transform(x_pool)
    drop_pruned_vocabulary(features)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=policy.training.seed)
    margins = cross_val_predict(
        lightgbm(policy, n_estimators=rounds),
        matrix,
        y_pool,
        cv=splitter,
        method="decision_function",
    )
    final = lightgbm(policy, n_estimators=rounds).fit(matrix, y_pool)
    calibrated = _calibrated(final, matrix, y_pool, policy.training.calibration)
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    calibrator.fit(margins, y_pool)  # in-sample margins would be overconfident: refit on these
    return features, calibrated, calibrator.predict(margins), y_pool


def fit(policy: Policy, dataset: DatasetVersion) -> FittedModel:
    """Fit, calibrate and choose thresholds with a guarantee; the result scores raw items.

    LightGBM is first fitted on the train split with early stopping on validation, which fixes
    the number of rounds. When the validation split holds `training.crossfit_below_positives`
    positives, that model is calibrated on validation and the thresholds are read there (one
    held-out split is plenty). Otherwise train and validation are pooled and cross-fitted, so
    the thresholds rest on every labelled item rather than one small split. The rules count
    the truth as drawn from the dataset's votes and the reviewers' errors, not the labels.
    """
    train, validation = dataset.split("train"), dataset.split("validation")
    features, classifier, validation_matrix, y_val = _early_stopped(policy, train, validation)
    rounds = int(classifier.best_iteration_ or classifier.n_iter_)
    pool = pd.concat([train, validation], ignore_index=True)
    minority = int(min(pool["is_positive"].sum(), (~pool["is_positive"].astype(bool)).sum()))
    folds = min(policy.training.cv_folds, minority)
    if y_val.sum() >= policy.training.crossfit_below_positives or folds < 2:
        calibrated = _calibrated(classifier, validation_matrix, y_val, policy.training.calibration)
        scores, labels = calibrated.predict_proba(validation_matrix)[:, 1], y_val
        scored, source = validation["item_id"], "validation split"
    else:
        features, calibrated, scores, labels = _cross_fitted(policy, pool, rounds, folds)
        scored, source = pool["item_id"], f"out-of-fold, {folds} folds over train and validation"
    truth, noise = draw_truth(dataset.votes(), policy, scored, scores, labels)
    operating = choose_operating_points(scores, labels, policy.targets, source, truth, noise)
    return FittedModel(
        Pipeline([("features", features), ("classifier", calibrated)]),
        operating,
        boosting_rounds=int(classifier.n_iter_),
        best_round=rounds,
        labelled_scores=pd.DataFrame({"item_id": scored.to_numpy(), "score": scores}),
    )


def score_set(
    fitted: FittedModel, frame: pd.DataFrame, labelled_as: np.ndarray, policy: Policy
) -> dict:
    """The evaluation report of a fitted model on one labelled set."""
    scores = fitted.pipeline.predict_proba(frame[policy.feature_columns])[:, 1]
    return evaluate(frame, labelled_as, scores, fitted.thresholds, policy)


TRAFFIC_SAMPLE = 20_000  # logged items scored to estimate a new version's decision shares


def recent_traffic(settings: Settings, policy: Policy) -> pd.DataFrame:
    """A sample of the items logged in the last monitoring window, each once: the traffic whose
    decision shares a new version is expected to have (empty before any traffic)."""
    log = read_predictions(settings, policy)
    if log.empty:
        return log
    since = pd.Timestamp(utc_now()) - pd.Timedelta(days=policy.monitoring.window_days)
    recent = latest_per_item(log[pd.to_datetime(log["scored_at"], utc=True) >= since])
    return recent.sample(min(len(recent), TRAFFIC_SAMPLE), random_state=0)


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
    policy: Policy,
    settings: Settings,
    dataset_version: str | None = None,
    force: bool = False,
    dataset: DatasetVersion | None = None,
    progress: Progress = quiet,
) -> TrainResult:
    """From stored decisions to a registered `challenger` (reusing an identical earlier training):
    on `dataset` when given (a flow's previous step built it), else the version named, else the
    one built from the decisions stored now."""

    def phase(number: int, what: str) -> None:
        progress(f"training {policy.name}: {what}", number, 4)

    client = connect(settings)  # fail before touching the lake when MLflow is down
    lake = Lake(settings.lake_dir)
    phase(0, "the dataset")
    if dataset is None:
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

    phase(1, "fitting and calibrating")
    fitted = fit(policy, dataset)
    phase(2, "operating points and evaluation")
    traffic = recent_traffic(settings, policy)
    if len(traffic):
        scores = fitted.pipeline.predict_proba(feature_frame(traffic, policy))[:, 1]
        fitted.operating = fitted.operating.on_traffic(scores)
    test = dataset.split("test")
    reports = {"test": score_set(fitted, test, test["is_positive"].to_numpy(), policy)}
    if golden is not None:
        truth = golden.frame["label"].eq(policy.labels.positive).to_numpy()
        reports["golden"] = score_set(fitted, golden.frame, truth, policy)
    reports["operating_points"] = fitted.operating.as_dict()
    if fitted.operating.notes:
        reports["warnings"] = fitted.operating.notes
    candidate = Candidate(policy, dataset, fitted, reports, golden.version if golden else None, key)
    phase(3, "registering in MLflow")
    try:
        ref = register(client, candidate, settings)
    except FlywheelError:
        raise
    except Exception as exc:
        raise FlywheelError(f"registering {policy.name} in MLflow failed: {exc}") from exc
    lake.write_labelled_scores(
        policy.name, fitted.labelled_scores.assign(model_version=int(ref.version))
    )
    phase(4, "done")
    return TrainResult(ref, dataset, reused=False)
