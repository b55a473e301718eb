"""The cycle flow on a real Prefect (test) server, a real registry and a real Label Studio."""

from __future__ import annotations

import pytest

from flows.cycle import cycle, one_cycle_at_a_time
from flywheel.lake import Lake
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI
from labeling.qa import read_qa
from simulation.reviewers import work
from tests.conftest import copy_trained, log_recent_traffic, policy_variant


@pytest.fixture
def wheel(trained, small_world, ls_env, tmp_path, monkeypatch):
    """A copy of the trained home whose API logged 300 new items, with a project of its own."""
    settings, _, _ = trained
    home = copy_trained(settings, tmp_path / "home").root
    monkeypatch.setenv("FLYWHEEL_HOME", str(home))
    policy = policy_variant(tmp_path / "policy", review_batch=500, gold_rate=0.1, overlap=1)
    log_recent_traffic(home, policy, small_world.traffic.tail(300), seed=1)
    return Settings(home=home), policy, str(tmp_path / "policy" / "spam.yaml")


def test_a_cycle_turns_the_wheel_and_a_rerun_adds_nothing(prefect_harness, wheel, small_world):
    settings, policy, path = wheel
    trained_flags = read_qa(policy, Lake(settings.lake_dir))["flagged"]
    first = cycle(path)
    assert first.decisions_added == 0
    # Nothing decided yet: the model is reused unless the trained model's scores let QA judge
    # a reviewer the history alone could not (then it is trained again without them).
    assert first.reused_model == (first.flagged_reviewers == trained_flags)
    assert first.tasks_pushed > 0

    lake = Lake(settings.lake_dir)
    api = LabelStudioAPI(settings)
    made = work(
        policy, api, lake.labeling_state("spam")["project_id"], _reviewers(), small_world.truth
    )
    assert made == first.tasks_pushed

    second = cycle(path)
    assert second.decisions_added == made
    assert second.dataset_version != first.dataset_version and not second.reused_model

    third = cycle(path)
    assert third.decisions_added == 0 and third.tasks_pushed == 0
    assert third.dataset_version == second.dataset_version and third.reused_model


def test_one_cycle_per_policy_at_a_time(prefect_harness, wheel):
    _, _, path = wheel
    with one_cycle_at_a_time("spam"):
        state = cycle(path, return_state=True)
    assert state.is_failed()
    assert "a cycle of spam is already running" in str(state.result(raise_on_failure=False))


def _reviewers():
    from simulation.world import DEFAULT_REVIEWERS

    return list(DEFAULT_REVIEWERS)
