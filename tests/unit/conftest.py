"""Fixtures of the unit layer: no services, and no model trained per test.

Tests that need a fitted model share `tiny_models`: the training pipeline of each calibration
method, fitted once per session with a handful of trees on the small world. Exactness and
shape (bit-for-bit scores, trusted types, pruned vocabularies) do not need a good model.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.lake import Lake
from flywheel.policy import Policy
from tests.conftest import stock

TINY_TREES = 20


def tiny(policy: Policy, calibration: str = "sigmoid") -> Policy:
    """The policy with a tiny model of the given calibration."""
    training = policy.training.model_copy(
        update={"n_estimators": TINY_TREES, "calibration": calibration}
    )
    return policy.model_copy(update={"training": training})


@pytest.fixture(scope="session")
def tiny_models(
    spam: Policy, world_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, object]:
    """calibration -> the FittedModel of the spam policy with that calibration, on the small
    world's decisions."""
    from training.dataset import build_dataset
    from training.train import fit

    lake = Lake(tmp_path_factory.mktemp("tiny-lake"))
    stock(lake, spam, world_files)
    return {
        calibration: fit(tiny(spam, calibration), build_dataset(tiny(spam, calibration), lake))
        for calibration in ("sigmoid", "isotonic")
    }
