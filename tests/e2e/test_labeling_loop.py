"""The labeling loop end to end, on real servers and the commands a user runs.

Items scored through the HTTP API reach a real Label Studio project (review queue, blind audit,
gold checks), simulated reviewers decide them there, the decisions come back into a new dataset
version, and `flywheel label qa` flags the unreliable reviewer.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest

from flywheel.lake import Lake
from flywheel.policy import load_policy
from flywheel.predictions import read_predictions
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI
from tests.conftest import copy_trained, policy_variant, run_cli, start_scoring_api

KEY = {"Authorization": "Bearer test-key"}
OVERLAP = 3
LABELING = {
    "overlap": OVERLAP,
    "review_batch": 30,  # fewer than the items sent to review: the cap is exercised
    "audit_rates": {"allow": 0.08, "review": 0.2, "auto_action": 0.2},
    "gold_rate": 1.0,  # many gold checks, so that each reviewer gets enough in one round
}


def small_world_reviewers() -> list[str]:
    from simulation.world import DEFAULT_REVIEWERS

    return [r.reviewer_id for r in DEFAULT_REVIEWERS]


def _json_items(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


@pytest.fixture(scope="module")
def loop(trained, small_world, labelstudio, tmp_path_factory):
    """A copy of the trained home whose API scored 600 new items, and a policy of its own."""
    settings, _, _ = trained
    tmp = tmp_path_factory.mktemp("loop")
    home = copy_trained(settings, tmp / "home").root
    policy = policy_variant(tmp / "policies", **LABELING)
    truth = tmp / "truth.parquet"
    small_world.truth.to_parquet(truth)
    traffic = small_world.traffic.tail(600)
    columns = ["item_id", *policy.feature_columns]
    server = start_scoring_api(home, tmp, FLYWHEEL_LOG_SEGMENT_RECORDS="100")
    try:
        for start in range(0, len(traffic), 200):
            batch = _json_items(traffic.iloc[start : start + 200][columns])
            answer = httpx.post(
                f"{server.url}/v1/score/batch",
                headers=KEY,
                json={"items": batch, "policies": ["spam"]},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    env = {k: labelstudio[k] for k in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY")}
    return home, policy, truth, env


def test_scored_items_go_round_the_reviewers_into_a_new_dataset(loop, monkeypatch):
    home, policy, truth, env = loop
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(home=home)
    lake = Lake(settings.lake_dir)
    before = set(lake.dataset_versions("spam"))
    path = str(home.parent / "policies" / "spam.yaml")

    boot = run_cli("label", "bootstrap", "--policy", path, home=home, **env)
    assert "created" in boot.stdout
    again = json.loads(
        run_cli("label", "bootstrap", "--policy", path, "--json", home=home, **env).stdout
    )
    assert again["created"] is False and again["url"].endswith(f"/projects/{again['id']}")
    assert f"project {again['id']} " in boot.stdout

    pushed = json.loads(
        run_cli("label", "push", "--policy", path, "--json", home=home, **env).stdout
    )
    # exploration takes its share of the review capacity, the review queue the rest
    assert pushed["review"] + pushed["explore"] == LABELING["review_batch"]
    assert pushed["audit"] > 0 and pushed["gold"] > 0
    assert pushed["assisted_by"] == "spam v1"
    # the rest of the queue in later pushes, then nothing: no item goes to a queue twice
    later: list[dict] = []
    while not later or later[-1]["review"] > 0:
        assert len(later) < 20, later
        push = run_cli("label", "push", "--policy", path, "--json", home=home, **env)
        later.append(json.loads(push.stdout))
    assert later[0]["review"] > 0 and all(p["audit"] == 0 for p in later)
    assert later[-1]["review"] == later[-1]["audit"] == later[-1]["gold"] == 0
    assert later[-1]["explore"] == 0  # nothing scored since the last push: nothing to explore
    sent_to_review = read_predictions(settings, policy).query("decision == 'review'")
    assert pushed["review"] + sum(p["review"] for p in later) == sent_to_review["item_id"].nunique()
    assert not lake.pushed_tasks("spam").duplicated(["item_id", "queue"]).any()
    total = sum(p["review"] + p["explore"] + p["audit"] + p["gold"] for p in (pushed, *later))

    api = LabelStudioAPI(settings)
    project = lake.labeling_state("spam")["project_id"]
    listed = [t["id"] for t in api.iter_tasks(project)]
    tasks = {str(t["id"]): t for t in api.export_tasks(project, listed)}
    ledger = lake.pushed_tasks("spam").set_index("task_id")
    assert set(tasks) == set(ledger.index)
    assert len(tasks) == total
    for task_id, row in ledger.iterrows():
        task = tasks[task_id]
        assert task["data"]["item_id"] == row["item_id"]
        if row["queue"] == "audit":  # blind: no score, no pre-annotation
            assert task["data"]["assist"] == ""
        else:  # review and gold look alike: the model's score and its reasons
            assert task["data"]["assist"].startswith("Model score")
    audit = ledger[ledger["queue"] == "audit"]
    # sized to the window's traffic: never below the policy's rate, never above its cap
    cap = load_policy(path).monitoring.audit_max_rate
    floor = audit["decision"].map(LABELING["audit_rates"])
    assert (audit["sampling_prob"] >= floor).all()
    assert (audit["sampling_prob"] <= np.maximum(floor, cap)).all()

    made = run_cli("label", "simulate", "--policy", path, "--truth", str(truth), home=home, **env)
    assert f"made {len(tasks) * OVERLAP} annotations" in made.stdout

    pulled = json.loads(
        run_cli("label", "pull", "--policy", path, "--json", home=home, **env).stdout
    )
    assert pulled["added"] == len(tasks) * OVERLAP and pulled["problems"] == [], pulled
    decisions = lake.decisions("spam")
    from_ls = decisions[decisions["annotation_id"].fillna("").ne("")]
    # every queue's decisions keep their queue as source, exploration included
    assert set(from_ls["source"]) == set(ledger["queue"])
    assert {"review", "audit", "gold"} <= set(from_ls["source"])
    assert set(from_ls["reviewer_id"]) == set(small_world_reviewers())

    nothing = json.loads(
        run_cli("label", "pull", "--policy", path, "--json", home=home, **env).stdout
    )
    # only tasks touched in the seconds before the last pull are read again, and add nothing
    assert nothing["added"] == 0 and nothing["retracted"] == 0
    assert nothing["tasks_seen"] < len(tasks)

    built = run_cli("dataset", "build", "--policy", path, "--json", home=home)
    version = json.loads(built.stdout)["version"]
    assert version not in before

    qa = json.loads(run_cli("label", "qa", "--policy", path, "--json", home=home).stdout)
    assert qa["flagged"] == ["rev-fox"]
    assert (lake.labeling_path("spam", "qa.json")).is_file()
