"""Log a trained model to MLflow and register it as the policy's `challenger`.

One run per training: parameters, the dataset version as MLflow dataset inputs, every test and
golden figure as metrics, the full reports as JSON, the pipeline with `mlflow.sklearn` (predicting
probabilities through pyfunc). The registered version is created together with its tags in one
call, so no version ever exists without its thresholds and dataset version.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import TYPE_CHECKING

import pandas as pd

from flywheel.registry import (
    CHALLENGER,
    TAG_DATASET,
    TRUSTED_TYPES,
    ModelVersionRef,
    experiment_id,
    get_version,
)
from flywheel.settings import Settings
from training.candidate import Candidate
from training.dataset import SPLITS
from training.evaluate import flatten

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.models.model import ModelInfo

RUNTIME_PACKAGES = ("scikit-learn", "lightgbm", "skops", "pandas", "numpy", "scipy")


def _requirements() -> list[str]:
    """Pinned from what is installed: MLflow's own inference imports the model in a subprocess
    and costs seconds per training."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in RUNTIME_PACKAGES]


def _dataset_class() -> type:
    """A pandas dataset whose MLflow schema comes from the column types, not from the values.

    MLflow infers a frame's schema by visiting every value of every text column: 15 s of the
    benchmark's 200k-decision path. Dataset frames have declared types, so read them instead.
    """
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.types import ColSpec, DataType, Schema

    def kind(dtype: object) -> DataType:
        if pd.api.types.is_bool_dtype(dtype):
            return DataType.boolean
        if pd.api.types.is_integer_dtype(dtype):
            return DataType.long
        if pd.api.types.is_float_dtype(dtype):
            return DataType.double
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return DataType.datetime
        return DataType.string

    class DeclaredSchemaDataset(PandasDataset):
        @property
        def schema(self) -> Schema:
            frame = self.df
            return Schema([ColSpec(kind(frame[c].dtype), str(c)) for c in frame.columns])

    return DeclaredSchemaDataset


def version_tags(candidate: Candidate) -> dict[str, str]:
    """The version's tags of the MLflow contract (docs/architecture.md): thresholds, dataset
    version, golden-set metrics, and provenance."""
    tags = {
        **candidate.fitted.thresholds.as_tags(),
        **candidate.fitted.operating.as_tags(),
        TAG_DATASET: candidate.dataset.version,
        "golden_version": candidate.golden_version or "none",
        "training_key": candidate.training_key,
        "policy": candidate.policy.name,
    }
    if "golden" in candidate.reports:
        for metric, value in candidate.reports["golden"]["overall"].items():
            if value is not None:
                tags[f"golden_{metric}"] = f"{value:.6g}"
    return tags


def log_run(
    client: MlflowClient, candidate: Candidate, settings: Settings
) -> tuple[str, ModelInfo]:
    """One MLflow run: parameters, dataset inputs, metrics, reports and the model itself."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.models import infer_signature

    policy, dataset, fitted = candidate.policy, candidate.dataset, candidate.fitted
    train = dataset.split("train")
    example = train[policy.feature_columns].head(5)
    with mlflow.start_run(
        experiment_id=experiment_id(client, policy, settings),
        run_name=f"{policy.name}-{dataset.version}",
        tags={"policy": policy.name, TAG_DATASET: dataset.version},
    ) as run:
        mlflow.log_params(
            {
                "dataset_version": dataset.version,
                "golden_version": candidate.golden_version or "none",
                **{f"training.{k}": v for k, v in policy.training.model_dump().items()},
                **{f"targets.{k}": v for k, v in policy.targets.model_dump().items()},
                **{f"threshold.{k}": v for k, v in fitted.thresholds.as_tags().items()},
                "boosting_rounds": fitted.boosting_rounds,
                "best_round": fitted.best_round,
            }
        )
        dataset_class = _dataset_class()
        for split in SPLITS:
            frame = train if split == "train" else dataset.split(split)
            mlflow.log_input(
                dataset_class(
                    frame,
                    source=resolve_dataset_source(str(dataset.path / f"{split}.parquet")),
                    targets="is_positive",
                    name=f"{policy.name}-{dataset.version}-{split}",
                    digest=f"{dataset.version}-{split}",
                ),
                context=split,
            )
        metrics = {}
        for name in ("test", "golden"):
            if name in candidate.reports:
                metrics.update(flatten(candidate.reports[name], name))
        mlflow.log_metrics(metrics)
        mlflow.log_dict(candidate.reports, "evaluation.json")
        mlflow.log_dict(dataset.manifest, "dataset_manifest.json")
        mlflow.log_dict(policy.model_dump(mode="json"), "policy.json")
        info = mlflow.sklearn.log_model(
            sk_model=fitted.pipeline,
            name="model",
            signature=infer_signature(example, fitted.pipeline.predict_proba(example)),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=list(TRUSTED_TYPES),
            pip_requirements=_requirements(),
        )
    return run.info.run_id, info


def register(client: MlflowClient, candidate: Candidate, settings: Settings) -> ModelVersionRef:
    """Log the run, then create the version with all its tags at once and make it `challenger`."""
    from mlflow.exceptions import MlflowException

    policy = candidate.policy
    with warnings.catch_warnings():
        # MLflow hints about integer columns and ambiguous local sources: both fine here.
        warnings.simplefilter("ignore", UserWarning)
        run_id, info = log_run(client, candidate, settings)
    try:
        client.create_registered_model(policy.name, description=policy.description or policy.name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        policy.name,
        source=info.model_uri,
        run_id=run_id,
        model_id=info.model_id,
        tags=version_tags(candidate),
    )
    client.set_registered_model_alias(policy.name, CHALLENGER, str(version.version))
    ref = get_version(client, policy.name, int(version.version))
    assert ref is not None
    return ref
