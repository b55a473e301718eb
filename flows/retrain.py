"""The retrain flow: reviewer QA → build the dataset → train a challenger → gate it for promotion.

QA runs first so that the dataset leaves out the decisions of reviewers it flags, imported
history included, and once more after training (`settled_training`).

Each task is a thin wrapper over the plain function of the same name in `training/`, so the
same step runs from the CLI, a test or a notebook without Prefect.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict

from flows.ingest import qa_task
from flywheel.lake import Lake
from flywheel.policy import Policy, load_policy
from flywheel.registry import check_reachable
from flywheel.settings import get_settings
from training.candidate import TrainResult
from training.dataset import DatasetVersion, build_dataset
from training.promote import Verdict, promote
from training.train import train


class RetrainSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy: str
    dataset_version: str
    model_version: int
    reused_model: bool
    outcome: str
    reasons: list[str] = []
    verdict: Verdict | None = None


@task(name="check-registry", cache_policy=NO_CACHE)
def check_registry_task() -> str:
    """Fail the run before anything is written when MLflow cannot be reached."""
    return check_reachable(get_settings())


@task(name="build-dataset", cache_policy=NO_CACHE)
def build_dataset_task(policy: Policy) -> DatasetVersion:
    return build_dataset(policy, Lake(get_settings().lake_dir))


@task(name="train", cache_policy=NO_CACHE)
def train_task(policy: Policy, dataset: DatasetVersion) -> TrainResult:
    return train(policy, get_settings(), dataset=dataset)


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(policy: Policy, dry_run: bool = False) -> Verdict:
    return promote(policy, get_settings(), dry_run=dry_run)


def settled_training(policy: Policy) -> tuple[list[str], DatasetVersion, TrainResult]:
    """Reviewer QA, the dataset it leaves, a challenger trained on it, and the flagged reviewers.

    A model's held-out scores let QA judge reviewers that the votes alone cannot (they band its
    noise model), so the QA after a policy's first training can flag a reviewer the one before
    could not. The dataset is then built and trained once more, within the run: the model that
    goes to the gate is trained without them, and a rerun with nothing new finds the same
    dataset (QA keeps its judgement of unchanged evidence) and reuses the model."""
    flagged = qa_task(policy)
    dataset = build_dataset_task(policy)
    trained = train_task(policy, dataset)
    settled = qa_task(policy)
    if settled != flagged:
        print(f"QA on the model's scores flags {', '.join(settled) or 'nobody'}: training again")
        dataset = build_dataset_task(policy)
        trained = train_task(policy, dataset)
    return settled, dataset, trained


@flow(name="retrain", log_prints=True)
def retrain(policy: str, dry_run: bool = False) -> RetrainSummary:
    """One policy from its stored decisions to a gated challenger (and maybe a new champion).
    The policy is read once and handed to every task, and each task's result to the next."""
    check_registry_task()
    loaded = load_policy(policy, get_settings())
    _, dataset, trained = settled_training(loaded)
    verdict = promote_task(loaded, dry_run=dry_run)
    return RetrainSummary(
        policy=policy,
        dataset_version=dataset.version,
        model_version=trained.model.version,
        reused_model=trained.reused,
        outcome=verdict.note or verdict.outcome,
        reasons=verdict.reasons,
        verdict=verdict,
    )
