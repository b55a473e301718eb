"""Faults leave the lake and the registry as they were."""

import time

import pytest

from flywheel.errors import FlywheelError
from flywheel.registry import connect
from flywheel.settings import Settings
from training import register as register_module
from training.train import train


def test_unreachable_mlflow_fails_fast_and_writes_nothing(stocked, home, spam):
    settings = Settings(
        home=home, mlflow_tracking_uri="http://127.0.0.1:9", mlflow_connect_timeout_s=2
    )
    started = time.monotonic()
    with pytest.raises(FlywheelError, match=r"MLflow is unreachable at http://127\.0\.0\.1:9"):
        train(spam, settings)
    assert time.monotonic() - started < 30, "no minutes of silent retries"
    assert stocked.dataset_versions("spam") == []


def test_a_failed_registration_leaves_no_version(stocked, settings, spam, monkeypatch):
    def broken_tags(*_args, **_kwargs):
        raise RuntimeError("tag store exploded")

    monkeypatch.setattr(register_module, "version_tags", broken_tags)
    with pytest.raises(
        FlywheelError, match="registering spam in MLflow failed: tag store exploded"
    ):
        train(spam, settings)
    client = connect(settings)
    assert client.search_model_versions("name = 'spam'") == []


def test_too_little_data_registers_nothing(settings, spam, lake, small_world):
    from flywheel.records import validate_decisions

    few = small_world.decisions.head(150)
    lake.append_decisions("spam", validate_decisions(few, spam, "few").frame, "few")
    with pytest.raises(FlywheelError, match="dataset too small for spam"):
        train(spam, settings)
    assert lake.dataset_versions("spam") == []
    assert connect(settings).search_registered_models() == []
