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


def test_an_automated_reviewer_is_asked_about_what_was_pushed_and_judged_with_people(
    prefect_harness, trained, small_world, ls_env, tmp_path, monkeypatch
):
    """An llm reviewer behind the project's own OpenAI-compatible server (real HTTP), right on
    most items: asked after the push, kept out of the decisions, judged by QA once people have
    decided, and granted autonomy where its bound holds."""
    from simulation.chat_server import ChatServer, Reply, answer

    truth = small_world.truth.drop_duplicates("item_id").set_index("item_id")["is_violating"]
    rng = {"k": 0}

    def reply(item: dict) -> Reply:
        rng["k"] += 1
        if rng["k"] % 10 == 0:
            return Reply(status=503)  # an endpoint that fails now and then
        violating = bool(truth.get(item["item_id"], False))
        return Reply(answer("violating" if violating else "benign", 0.9))

    settings, _, _ = trained
    home = copy_trained(settings, tmp_path / "home").root
    monkeypatch.setenv("FLYWHEEL_HOME", str(home))
    monkeypatch.setenv("FLYWHEEL_TEST_LLM_KEY", "local-key")
    with ChatServer(reply) as server:
        reviewer = {
            "name": "gpt", "kind": "llm", "base_url": server.base_url, "model": "local",
            "api_key_env": "FLYWHEEL_TEST_LLM_KEY", "share": 0.5, "max_retries": 0,
            "autonomy": {"min_accuracy": 0.8, "min_checks": 20},
        }  # fmt: skip
        sections = {
            "definition": "Spam is unsolicited bulk or deceptive messaging.",
            "automated_reviewers": [reviewer],
        }
        # a bar the hundred-odd tasks of one push can show met (people are held to it too)
        policy = policy_variant(
            tmp_path / "policy", sections=sections, review_batch=300, gold_rate=0.2, overlap=1,
            min_reviewer_accuracy=0.85,
        )  # fmt: skip
        log_recent_traffic(home, policy, small_world.traffic.tail(300), seed=2)
        path = str(tmp_path / "policy" / "spam.yaml")
        first = cycle(path)
        lake = Lake(Settings(home=home).lake_dir)
        verdicts = lake.verdicts("spam")
        pushed = lake.pushed_tasks("spam")
        assert first.automated_answers["auto:gpt"] == int(verdicts["label"].notna().sum()) > 0
        # every gold check pushed was put to it; a failed call is recorded, not decided
        gold = set(pushed.loc[pushed["queue"].eq("gold"), "item_id"])
        assert gold <= set(verdicts["item_id"])
        assert verdicts.loc[verdicts["label"].isna(), "failure"].str.startswith("HTTP 503").all()
        made = work(
            policy, LabelStudioAPI(Settings(home=home)), lake.labeling_state("spam")["project_id"],
            _reviewers(), small_world.truth,
        )  # fmt: skip
        assert made > 0
        cycle(path)
    qa = read_qa(policy, lake)
    row = next(r for r in qa["reviewers"] if r["reviewer_id"] == "auto:gpt")
    assert row["kind"] == "automated" and row["standing"] == "meets the bar", row
    assert row["autonomy"]["granted"], row["autonomy"]
    assert not lake.decisions("spam")["reviewer_id"].str.startswith("auto:").any()
