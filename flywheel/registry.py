"""The MLflow registry as Flywheel sees it: names, aliases, versions, their tags and thresholds,
and the trusted loading of a version's pipeline.

Every consumer reaches a model through `flywheel.runtime`, which builds on this module, so they
agree on names, tags, the decision rule and what an artifact is trusted to contain.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flywheel.errors import FlywheelError
from flywheel.policy import Policy
from flywheel.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"
DECISIONS = ("allow", "review", "auto_action")
TAG_AUTO_ACTION = "threshold_auto_action"
TAG_REVIEW = "threshold_review"
TAG_DATASET = "dataset_version"
TAG_VERDICT = "promotion_verdict"  # promoted, rejected or overridden (training.promote)
TAG_OVERRIDE_REASON = "promotion_override_reason"
# What skops does not trust by default in the pipelines training builds (either calibration
# method): the whole trust list, for saving and loading alike. A model's own MLmodel file also
# names a trust list, but whoever can write the artifact store writes that one too. A test checks
# this list against skops on real pipelines, so a library upgrade that changes it fails there.
TRUSTED_TYPES = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
)
PICKLE_FORMATS = ("pickle", "cloudpickle")


@dataclass(frozen=True)
class Thresholds:
    """A model version's operating points. `auto_action` is `inf` when no score on validation
    reached the policy's precision target: that model never acts on its own."""

    auto_action: float
    review: float

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """allow below `review`, review from `review`, auto_action from `auto_action` (inclusive)."""
        scores = np.asarray(scores, dtype=float)
        return np.where(
            scores >= self.auto_action,
            "auto_action",
            np.where(scores >= self.review, "review", "allow"),
        )

    def as_tags(self) -> dict[str, str]:
        return {TAG_AUTO_ACTION: repr(self.auto_action), TAG_REVIEW: repr(self.review)}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Thresholds:
        try:
            return cls(float(tags[TAG_AUTO_ACTION]), float(tags[TAG_REVIEW]))
        except (KeyError, ValueError) as exc:
            raise FlywheelError(
                f"model version has no valid {TAG_AUTO_ACTION}/{TAG_REVIEW} tags"
            ) from exc

    def describe(self) -> str:
        auto = "off" if math.isinf(self.auto_action) else f"{self.auto_action:.4f}"
        return f"review ≥ {self.review:.4f}, auto_action ≥ {auto}"


@dataclass(frozen=True)
class ModelVersionRef:
    """One registered version of a policy's model and what its tags say."""

    name: str
    version: int
    run_id: str | None
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds.from_tags(self.tags)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def check_reachable(settings: Settings) -> str:
    """Fail fast, with one line, when the tracking store cannot be reached.

    MLflow's own client retries an unreachable HTTP server for minutes; a user deserves to
    know at once, before anything is written.
    """
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif uri.startswith(("http://", "https://")):
        import httpx  # user info in the URI (user:password@) is sent as basic auth

        try:
            httpx.get(uri.rstrip("/") + "/health", timeout=settings.mlflow_connect_timeout_s)
        except httpx.HTTPError as exc:
            raise FlywheelError(f"MLflow is unreachable at {uri} ({exc})") from exc
    return uri


def connect(settings: Settings) -> MlflowClient:
    """An MLflow client on the configured store, checked to answer."""
    import mlflow

    uri = check_reachable(settings)
    exported = {
        name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # MLflow also exports the URIs to the environment; undo that, so that the environment keeps
    # meaning "what the user configured" and a later Settings() is not pinned to this store.
    for name, value in exported.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:
        raise FlywheelError(f"MLflow is unreachable at {uri} ({_first_line(exc)})") from exc
    return client


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def experiment_id(client: MlflowClient, policy: Policy, settings: Settings) -> str:
    """The policy's experiment, created where the settings keep artifacts."""
    name = f"flywheel-{policy.name}"
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=settings.artifact_location(policy.name))


def _ref(version: Any) -> ModelVersionRef:
    return ModelVersionRef(
        name=version.name,
        version=int(version.version),
        run_id=version.run_id,
        tags=dict(version.tags),
        aliases=tuple(getattr(version, "aliases", ()) or ()),
    )


def get_version(
    client: MlflowClient, name: str, alias_or_version: str | int
) -> ModelVersionRef | None:
    """A version by alias (`champion`, `challenger`) or number; None when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        if isinstance(alias_or_version, int) or str(alias_or_version).isdigit():
            return _ref(client.get_model_version(name, str(alias_or_version)))
        return _ref(client.get_model_version_by_alias(name, str(alias_or_version)))
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}:
            return None
        raise


def find_versions(client: MlflowClient, name: str, **tags: str) -> list[ModelVersionRef]:
    """Versions of a model whose tags match, newest first."""
    query = " and ".join([f"name = '{name}'", *(f"tags.`{k}` = '{v}'" for k, v in tags.items())])
    found = [_ref(v) for v in client.search_model_versions(query)]
    return sorted(found, key=lambda r: r.version, reverse=True)


def load_pipeline(uri: str, allow_pickle: bool = False) -> Any:
    """A version's scikit-learn pipeline, trusted no further than this code says.

    skops files are loaded with the project's own trust list (`TRUSTED_TYPES`), whatever the
    artifact's MLmodel file lists, and pickle, which runs any code at load, only when
    `allow_pickle` (the setting `FLYWHEEL_ALLOW_PICKLE_MODELS`) says so. MLflow's own loader
    takes both from the artifact, so whoever can write the artifact store could run code here.
    """
    try:
        return _trusted_pipeline(uri, allow_pickle)
    except FlywheelError:
        raise
    except Exception as exc:
        raise FlywheelError(f"cannot load {uri}: {_first_line(exc)}") from exc


def _trusted_pipeline(uri: str, allow_pickle: bool) -> Any:
    import mlflow.artifacts
    import yaml

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri)).resolve()
    flavor = yaml.safe_load((local / "MLmodel").read_text()).get("flavors", {}).get("sklearn")
    if not isinstance(flavor, dict) or not isinstance(flavor.get("pickled_model"), str):
        raise FlywheelError(f"cannot load {uri}: it is no scikit-learn model")
    path = (local / flavor["pickled_model"]).resolve()
    if not path.is_relative_to(local):
        raise FlywheelError(f"cannot load {uri}: its model file lies outside the model")
    kind = flavor.get("serialization_format", "pickle")
    if kind == "skops":
        import skops.io

        return skops.io.load(path, trusted=list(TRUSTED_TYPES))
    if kind in PICKLE_FORMATS:
        if not allow_pickle:
            raise FlywheelError(
                f"cannot load {uri}: it is saved with {kind}, which runs code from the "
                "artifact store as it loads; set FLYWHEEL_ALLOW_PICKLE_MODELS=true to load "
                "it anyway"
            )
        import cloudpickle

        with path.open("rb") as handle:
            return cloudpickle.load(handle)
    raise FlywheelError(f"cannot load {uri}: unknown serialisation format {kind!r}")
