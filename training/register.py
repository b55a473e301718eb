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

from flywheel.lake import GoldenSet
from flywheel.policy import Policy
from flywheel.registry import (
    CHALLENGER,
    TAG_DATASET,
    ModelVersionRef,
    experiment_id,
    get_version,
)
from flywheel.settings import Settings
from training.dataset import SPLITS, DatasetVersion
from training.evaluate import flatten
from training.train import FittedModel

if TYPE_CHECKING:
    from mlflow import MlflowClient

RUNTIME_PACKAGES = ("scikit-learn", "lightgbm", "skops", "pandas", "numpy", "scipy")


def _requirements() -> list[str]:
    """Pinned from what is installed: MLflow's own inference imports the model in a subprocess
    and costs seconds per training."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in RUNTIME_PACKAGES]


def _trusted_types(pipeline: object) -> list[str]:
    """The types skops must be told to trust: we built this pipeline, so trust what it holds."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))


def version_tags(
    policy: Policy,
    dataset: DatasetVersion,
    fitted: FittedModel,
    reports: dict,
    golden: GoldenSet | None,
    key: str,
) -> dict[str, str]:
    """DESIGN.md's tags (thresholds, dataset version, golden-set metrics) and provenance."""
    tags = {
        **fitted.thresholds.as_tags(),
        TAG_DATASET: dataset.version,
        "golden_version": golden.version if golden is not None else "none",
        "training_key": key,
        "policy": policy.name,
    }
    if "golden" in reports:
        for metric, value in reports["golden"]["overall"].items():
            if value is not None:
                tags[f"golden_{metric}"] = f"{value:.6g}"
    return tags


def register(
    client: MlflowClient,
    policy: Policy,
    dataset: DatasetVersion,
    fitted: FittedModel,
    reports: dict,
    golden: GoldenSet | None,
    key: str,
    settings: Settings,
) -> ModelVersionRef:
    with warnings.catch_warnings():
        # MLflow hints about integer columns and ambiguous local sources: both fine here.
        warnings.simplefilter("ignore", UserWarning)
        return _register(client, policy, dataset, fitted, reports, golden, key, settings)


def _register(
    client: MlflowClient,
    policy: Policy,
    dataset: DatasetVersion,
    fitted: FittedModel,
    reports: dict,
    golden: GoldenSet | None,
    key: str,
    settings: Settings,
) -> ModelVersionRef:
    import mlflow
    import mlflow.data
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    train = dataset.split("train")
    example = train[policy.feature_columns].head(5)
    signature = infer_signature(example, fitted.pipeline.predict_proba(example))
    with mlflow.start_run(
        experiment_id=experiment_id(client, policy, settings),
        run_name=f"{policy.name}-{dataset.version}",
        tags={"policy": policy.name, TAG_DATASET: dataset.version},
    ) as run:
        mlflow.log_params(
            {
                "dataset_version": dataset.version,
                "golden_version": golden.version if golden is not None else "none",
                **{f"training.{k}": v for k, v in policy.training.model_dump().items()},
                **{f"targets.{k}": v for k, v in policy.targets.model_dump().items()},
                **{f"threshold.{k}": v for k, v in fitted.thresholds.as_tags().items()},
            }
        )
        for split in SPLITS:
            frame = train if split == "train" else dataset.split(split)
            mlflow.log_input(
                mlflow.data.from_pandas(
                    frame,
                    source=str(dataset.path / f"{split}.parquet"),
                    targets="is_positive",
                    name=f"{policy.name}-{dataset.version}-{split}",
                    digest=f"{dataset.version}-{split}",
                ),
                context=split,
            )
        metrics = {}
        for name in ("test", "golden"):
            if name in reports:
                metrics.update(flatten(reports[name], name))
        mlflow.log_metrics(metrics)
        mlflow.log_dict(reports, "evaluation.json")
        mlflow.log_dict(dataset.manifest, "dataset_manifest.json")
        mlflow.log_dict(policy.model_dump(mode="json"), "policy.json")
        info = mlflow.sklearn.log_model(
            sk_model=fitted.pipeline,
            name="model",
            signature=signature,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=_trusted_types(fitted.pipeline),
            pip_requirements=_requirements(),
        )
    try:
        client.create_registered_model(policy.name, description=policy.description or policy.name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        policy.name,
        source=info.model_uri,
        run_id=run.info.run_id,
        model_id=info.model_id,
        tags=version_tags(policy, dataset, fitted, reports, golden, key),
    )
    client.set_registered_model_alias(policy.name, CHALLENGER, str(version.version))
    ref = get_version(client, policy.name, int(version.version))
    assert ref is not None
    return ref
