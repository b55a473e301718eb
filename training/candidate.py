"""What passes between training's steps: a fitted model, a candidate to register, the result.

Plain records, so that `train` (fit and the whole step) and `register` (log to MLflow) each
import them from here and neither imports the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.pipeline import Pipeline

from flywheel.policy import Policy
from flywheel.registry import ModelVersionRef, Thresholds
from training.dataset import DatasetVersion
from training.thresholds import OperatingPoints


@dataclass
class FittedModel:
    pipeline: Pipeline
    operating: OperatingPoints  # the thresholds and the evidence behind them
    boosting_rounds: int  # trees the early-stopped fit built
    best_round: int  # trees the model predicts with
    # the labelled items the thresholds were read on, with their held-out scores (`item_id`,
    # `score`): reviewer QA bands its noise model by them (`flywheel.noise.score_strata`)
    labelled_scores: pd.DataFrame | None = None

    @property
    def thresholds(self) -> Thresholds:
        return self.operating.thresholds


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
