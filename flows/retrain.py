"""The retrain flow: reviewer QA → build the dataset → train a challenger → gate it for promotion.

QA runs first so that the dataset leaves out the decisions of reviewers it flags, imported
history included.

Each task is a thin wrapper over the plain function of the same name in `training/`, so the
same step runs from the CLI, a test or a notebook without Prefect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import qa_task
from flywheel.lake import Lake
from flywheel.policy import load_policy
from flywheel.registry import check_reachable
from flywheel.settings import get_settings
from training.candidate import TrainResult
from training.dataset import build_dataset
from training.promote import Verdict, promote
from training.train import train


@dataclass(frozen=True)
class RetrainSummary:
    policy: str
    dataset_version: str
    model_version: int
    reused_model: bool
    outcome: str
    reasons: list[str] = field(default_factory=list)
    verdict: Verdict | None = None


@task(name="check-registry", cache_policy=NO_CACHE)
def check_registry_task() -> str:
    """Fail the run before anything is written when MLflow cannot be reached."""
    return check_reachable(get_settings())


@task(name="build-dataset", cache_policy=NO_CACHE)
def build_dataset_task(policy: str) -> str:
    settings = get_settings()
    return build_dataset(load_policy(policy, settings), Lake(settings.lake_dir)).version


@task(name="train", cache_policy=NO_CACHE)
def train_task(policy: str, dataset_version: str) -> TrainResult:
    settings = get_settings()
    return train(load_policy(policy, settings), settings, dataset_version=dataset_version)


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(policy: str, dry_run: bool = False) -> Verdict:
    settings = get_settings()
    return promote(load_policy(policy, settings), settings, dry_run=dry_run)


@flow(name="retrain", log_prints=True)
def retrain(policy: str, dry_run: bool = False) -> RetrainSummary:
    """One policy from its stored decisions to a gated challenger (and maybe a new champion)."""
    check_registry_task()
    qa_task(policy)
    dataset_version = build_dataset_task(policy)
    trained = train_task(policy, dataset_version)
    verdict = promote_task(policy, dry_run=dry_run)
    return RetrainSummary(
        policy=policy,
        dataset_version=dataset_version,
        model_version=trained.model.version,
        reused_model=trained.reused,
        outcome=verdict.note or verdict.outcome,
        reasons=verdict.reasons,
        verdict=verdict,
    )
