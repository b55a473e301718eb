"""Labeling against a real Label Studio server: lifecycle, projects, pulls and their faults."""

from __future__ import annotations

import json
import os
import subprocess

import httpx
import numpy as np
import pandas as pd
import pytest

from flywheel.errors import FlywheelError
from flywheel.lake import Lake
from flywheel.policy import parse_policy
from flywheel.services import answers
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI
from labeling.project import bootstrap, choice_result, label_config
from labeling.pull import pull
from labeling.push import push
from tests.conftest import (
    FLYWHEEL,
    free_port,
    policy_variant,
    run_cli,
    wait_until,
    write_prediction_log,
)


def test_server_lifecycle_belongs_to_its_home(tmp_path, labelstudio):
    home = tmp_path / "home"
    env = {"LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}"}
    assert run_cli("labelstudio", "status", home=home, check=False, **env).returncode == 1

    run_cli("labelstudio", "start", home=home, **env)
    first = json.loads(run_cli("labelstudio", "status", "--json", home=home, **env).stdout)
    assert first["running"] and first["detail"] == "answering"
    run_cli("labelstudio", "start", home=home, **env)  # already running: nothing new
    again = json.loads(run_cli("labelstudio", "status", "--json", home=home, **env).stdout)
    assert again["pid"] == first["pid"]

    # another home cannot start on a port that is taken, and does not touch that server
    taken = run_cli(
        "labelstudio",
        "start",
        home=tmp_path / "other",
        check=False,
        LABEL_STUDIO_URL=labelstudio["LABEL_STUDIO_URL"],
    )
    assert taken.returncode == 1 and "in use" in taken.stderr
    stopped_other = run_cli(
        "labelstudio",
        "stop",
        home=tmp_path / "other",
        LABEL_STUDIO_URL=labelstudio["LABEL_STUDIO_URL"],
    )
    assert "stopped" in stopped_other.stdout

    run_cli("labelstudio", "stop", home=home, **env)
    assert run_cli("labelstudio", "status", home=home, check=False, **env).returncode == 1
    assert httpx.get(labelstudio["LABEL_STUDIO_URL"] + "/health").status_code == 200


SIGNALS_ONLY = """\
name: fake_accounts
labels: {positive: fake, negative: genuine}
fields: {numeric: [followers], categorical: [signup_channel]}
targets: {auto_action_precision: 0.9, review_recall: 0.8}
labeling: {project_title: "fake accounts %s", overlap: 1}
"""


@pytest.fixture
def settings(home, ls_env) -> Settings:
    """Settings made after the environment points at the session's Label Studio."""
    return Settings(home=home)


def test_bootstrap_is_idempotent_and_follows_the_policy(settings, lake, tmp_path):
    policy = policy_variant(tmp_path, overlap=3)
    api = LabelStudioAPI(settings)
    first = bootstrap(policy, lake, api, settings)
    second = bootstrap(policy, lake, api, settings)
    assert first.created and not second.created and first.id == second.id
    project = api.sdk.projects.get(id=first.id)
    assert project.maximum_annotations == 3
    assert project.label_config == label_config(policy)
    assert 'value="violating"' in project.label_config

    # a policy without text fields gets a project too (Label Studio validates the config)
    signals = parse_policy(SIGNALS_ONLY % tmp_path.name)
    made = bootstrap(signals, Lake(settings.lake_dir / "other"), api, settings)
    assert made.created


@pytest.fixture
def to_review(settings, tmp_path, small_world):
    """Ten items logged in the review band of a policy with a fresh project (no model yet, so
    no assistance), not pushed yet."""
    policy = policy_variant(tmp_path, review_batch=10, gold_rate=0.0)
    items = small_world.traffic.tail(10)
    scores = np.random.default_rng(0).random(10)
    write_prediction_log(
        settings, policy, items, scores, ["review"] * 10, pd.Timestamp("2026-11-01", tz="UTC")
    )
    return policy


@pytest.fixture
def pushed(settings, lake, to_review):
    """The ten review tasks, pushed."""
    api = LabelStudioAPI(settings)
    heard = []
    report = push(to_review, settings, lake, api, lambda *said: heard.append(said))
    assert report.review == 10 and report.assisted_by is None
    assert heard == [("pushing tasks", 0, 10), ("pushing tasks", 10, 10)]
    tasks = lake.pushed_tasks("spam")
    return to_review, api, [int(t) for t in tasks["task_id"]]


def _project_tasks(api: LabelStudioAPI, lake: Lake) -> list[dict]:
    project = lake.labeling_state("spam")["project_id"]
    return [t.model_dump() for t in api.sdk.tasks.list(project=project, fields="all")]


def test_label_studio_reaches_no_reserved_network_but_the_receivers(settings, lake, pushed):
    """SSRF protection is on: a webhook to cloud metadata, a private network or another
    loopback address is refused; the receiver's address (127.0.0.1) is not."""
    from label_studio_sdk.core.api_error import ApiError

    _policy, api, _ = pushed
    project = lake.labeling_state("spam")["project_id"]
    for url in ("http://169.254.169.254/latest", "http://10.0.0.1/", "http://127.0.0.2:9/"):
        with pytest.raises(ApiError) as refused:
            api.sdk.webhooks.create(url=url, project=project, send_payload=False)
        assert refused.value.status_code in (400, 403), (url, refused.value.body)
        assert "reserved network" in str(refused.value.body), refused.value.body
    made = api.sdk.webhooks.create(url="http://127.0.0.1:9/", project=project, send_payload=False)
    api.sdk.webhooks.delete(id=made.id)


def test_an_import_whose_answer_is_lost_creates_each_task_once(settings, lake, to_review):
    """The server stores the tasks, then the answer never arrives (a read time-out): the retry
    finds them by their keys and sends nothing twice."""
    api = LabelStudioAPI(settings, backoff_s=0.05)
    real = api.sdk.projects.import_tasks
    calls = []

    def answer_lost(**kwargs):
        calls.append(len(kwargs["request"]))
        answer = real(**kwargs)
        if len(calls) == 1:
            raise httpx.ReadTimeout("timed out")
        return answer

    api.sdk.projects.import_tasks = answer_lost
    report = push(to_review, settings, lake, api)
    assert report.review == 10 and calls == [10]
    tasks = _project_tasks(api, lake)
    ledger = lake.pushed_tasks("spam")
    assert len(tasks) == 10 and sorted(ledger["task_id"]) == sorted(str(t["id"]) for t in tasks)
    assert ledger["item_id"].is_unique and lake.push_intents("spam") == []


def test_a_push_that_dies_after_importing_is_recorded_by_the_next_pull(settings, lake, to_review):
    """The process dies between Label Studio's answer and the ledger: the tasks are found by
    their keys, so their annotations are stored, and the next push does not push them again."""
    api = LabelStudioAPI(settings)
    real = api.sdk.projects.import_tasks

    def dies_after(**kwargs):
        real(**kwargs)
        raise KeyboardInterrupt  # nothing but a kill stops between the answer and the ledger

    api.sdk.projects.import_tasks = dies_after
    with pytest.raises(KeyboardInterrupt):
        push(to_review, settings, lake, api)
    assert lake.pushed_tasks("spam").empty and len(lake.push_intents("spam")) == 1

    api = LabelStudioAPI(settings)
    task = _project_tasks(api, lake)[0]
    api.sdk.annotations.create(
        id=task["id"], result=choice_result(to_review, "violating"), completed_by=_user(api, "ana")
    )
    report = pull(to_review, settings, lake, api)
    assert report.added == 1 and report.problems == []
    assert lake.decisions("spam")["task_id"].tolist() == [str(task["id"])]
    assert len(lake.pushed_tasks("spam")) == 10 and lake.push_intents("spam") == []
    assert push(to_review, settings, lake, api).total == 0
    assert len(_project_tasks(api, lake)) == 10


def test_two_pushes_at_once_push_each_task_once(settings, lake, to_review):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(
                push, to_review, settings, Lake(settings.lake_dir), LabelStudioAPI(settings)
            )
            for _ in range(2)
        ]
        totals = sorted(run.result().total for run in runs)
    assert totals == [0, 10]
    api = LabelStudioAPI(settings)
    assert len(_project_tasks(api, lake)) == 10 and len(lake.pushed_tasks("spam")) == 10


def _user(api: LabelStudioAPI, name: str) -> int:
    from simulation.reviewers import ensure_users
    from simulation.world import Reviewer

    return ensure_users(api, [Reviewer(name, 0.9, 0.9, 10.0)])[name]


def test_pull_follows_updates_deletions_and_skips(settings, lake, pushed):
    policy, api, task_ids = pushed
    ana, bo = _user(api, "rev-ana"), _user(api, "rev-bo")
    first = api.sdk.annotations.create(
        id=task_ids[0], result=choice_result(policy, "violating"), completed_by=ana, lead_time=4.0
    )
    api.sdk.annotations.create(
        id=task_ids[1], result=choice_result(policy, "benign"), completed_by=bo, lead_time=2.0
    )
    api.sdk.annotations.create(
        id=task_ids[2],
        result=[],
        completed_by=bo,
        was_cancelled=True,  # a skip
    )
    heard = []
    report = pull(policy, settings, lake, api, lambda *said: heard.append(said))
    assert (report.added, report.skipped, report.problems) == (2, 1, [])
    assert heard[-1] == ("reading their annotations", report.tasks_seen, report.tasks_seen)
    assert ("listing changed tasks", report.tasks_seen) in heard
    stored = lake.decisions("spam")
    assert set(stored["reviewer_id"]) == {"rev-ana", "rev-bo"}
    assert set(stored["source"]) == {"review"}
    assert stored["task_id"].isin([str(t) for t in task_ids]).all()

    again = pull(policy, settings, lake, api)
    assert again.added == 0  # idempotent

    # ana changes her mind: a newer decision, and hers is the one that counts
    api.sdk.annotations.update(id=first.id, result=choice_result(policy, "benign"))
    changed = pull(policy, settings, lake, api)
    assert changed.added == 1
    from flywheel.aggregate import latest_per_reviewer

    latest = latest_per_reviewer(lake.decisions("spam"))
    assert latest.loc[latest["reviewer_id"] == "rev-ana", "label"].tolist() == ["benign"]

    # then deletes it: both versions stop counting
    api.sdk.annotations.delete(id=first.id)
    deleted = pull(policy, settings, lake, api)
    assert deleted.retracted == 1
    assert set(lake.decisions("spam")["reviewer_id"]) == {"rev-bo"}


def test_an_answer_skipped_then_given_again_counts_again(settings, lake, pushed):
    """A retraction applies to the decisions stored before it, not to a later answer of the
    same annotation."""
    policy, api, task_ids = pushed
    ana = _user(api, "rev-ana")
    made = api.sdk.annotations.create(
        id=task_ids[3], result=choice_result(policy, "violating"), completed_by=ana
    )
    assert pull(policy, settings, lake, api).added == 1
    api.sdk.annotations.update(id=made.id, result=[], was_cancelled=True)
    skipped = pull(policy, settings, lake, api)
    assert skipped.retracted == 1 and lake.decisions("spam").empty
    api.sdk.annotations.update(
        id=made.id, result=choice_result(policy, "benign"), was_cancelled=False
    )
    answered = pull(policy, settings, lake, api)
    assert (answered.added, answered.retracted) == (1, 0)
    stored = lake.decisions("spam")
    assert stored[["annotation_id", "label"]].values.tolist() == [[str(made.id), "benign"]]


def test_unexpected_answers_are_reported_and_skipped(settings, lake, pushed):
    policy, api, task_ids = pushed
    ana = _user(api, "rev-ana")
    odd = [{**choice_result(policy, "benign")[0], "value": {"choices": ["maybe"]}}]
    api.sdk.annotations.create(id=task_ids[3], result=odd, completed_by=ana)
    extra = [
        {"from_name": "mood", "to_name": "text", "type": "choices", "value": {"choices": ["x"]}}
    ]
    api.sdk.annotations.create(id=task_ids[4], result=extra, completed_by=ana)
    api.sdk.annotations.create(
        id=task_ids[5], result=choice_result(policy, "violating"), completed_by=ana
    )
    report = pull(policy, settings, lake, api)
    assert report.added == 1
    assert len(report.problems) == 2
    assert any("unexpected choice 'maybe'" in p for p in report.problems)
    assert any("unexpected field mood" in p for p in report.problems)


def test_malformed_annotations_are_reported_and_never_block_later_pulls(settings, lake, pushed):
    """Answers Label Studio 1.23 stores but its labeling interface never makes (from a
    script or an import; shapes it refuses outright are in tests/unit/labeling/test_pull.py):
    each is reported with its task and left out, the pull stores the rest and
    moves the watermark, and the next pull reads a later answer on the same tasks."""
    policy, api, task_ids = pushed
    ana = _user(api, "rev-ana")
    good = choice_result(policy, "violating")
    one = [{**good[0], "value": {"choices": "violating"}}]
    api.sdk.annotations.create(id=task_ids[0], result=one, completed_by=ana)
    api.sdk.annotations.create(id=task_ids[1], result=[{**good[0], "value": {}}], completed_by=ana)
    api.sdk.annotations.create(id=task_ids[2], result=good, completed_by=ana, lead_time=-5.0)
    report = pull(policy, settings, lake, api)
    assert report.added == 1, report.problems
    assert any(f"task {task_ids[0]}," in p and "skipped" in p for p in report.problems)
    assert any(f"task {task_ids[1]}," in p and "skipped" in p for p in report.problems)
    assert any(f"task {task_ids[2]}," in p and "lead_time" in p for p in report.problems)
    assert np.isnan(lake.decisions("spam")["lead_time_s"]).all()
    assert lake.labeling_state("spam")["watermark"] == report.watermark is not None

    api.sdk.annotations.create(id=task_ids[0], result=good, completed_by=ana, lead_time=3.0)
    later = pull(policy, settings, lake, api)
    assert later.added == 1
    assert set(lake.decisions("spam")["task_id"]) == {str(task_ids[0]), str(task_ids[2])}


def test_a_server_lost_mid_pull_leaves_lake_and_watermark_alone(settings, lake, pushed):
    policy, api, task_ids = pushed
    ana = _user(api, "rev-ana")
    api.sdk.annotations.create(
        id=task_ids[6], result=choice_result(policy, "benign"), completed_by=ana
    )
    state = lake.labeling_state("spam")
    # the listing answers, then the server is gone for the full reads (a real refused connection)
    api.http = httpx.Client(base_url=f"http://127.0.0.1:{free_port()}")
    api.retries, api.backoff_s = 2, 0.05
    with pytest.raises(FlywheelError, match="did not answer exporting 10 tasks"):
        pull(policy, settings, lake, api)
    assert lake.labeling_state("spam") == state
    assert lake.decisions("spam").empty

    unreachable = Settings(home=settings.home, labelstudio_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(FlywheelError, match="did not answer"):
        pull(policy, unreachable, lake, LabelStudioAPI(unreachable, backoff_s=0.05))
    assert lake.labeling_state("spam") == state

    recovered = pull(policy, settings, lake, LabelStudioAPI(settings))
    assert recovered.added == 1


def test_a_webhook_event_triggers_a_pull(settings, lake, pushed, tmp_path):
    policy, api, task_ids = pushed
    port = free_port()
    env = {
        "FLYWHEEL_HOME": str(settings.home),
        "FLYWHEEL_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks/labelstudio",
        "FLYWHEEL_POLICIES_DIR": str(tmp_path),
    }
    listener = subprocess.Popen(
        [FLYWHEEL, "label", "listen", "--port", str(port)],
        env={**os.environ, **env},
        stdout=(tmp_path / "listen.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 60, "the listener")
        bootstrap(
            policy, lake, api, Settings(home=settings.home, webhook_url=env["FLYWHEEL_WEBHOOK_URL"])
        )
        ana = _user(api, "rev-ana")
        api.sdk.annotations.create(
            id=task_ids[7], result=choice_result(policy, "violating"), completed_by=ana
        )
        wait_until(lambda: not lake.decisions("spam").empty, 60, "the pull an event starts")
        assert lake.decisions("spam")["task_id"].tolist() == [str(task_ids[7])]
        # Label Studio sent the secret; anyone else is refused
        stranger = httpx.post(f"{env['FLYWHEEL_WEBHOOK_URL']}/spam", json={})
        assert stranger.status_code == 401
        assert answers(f"http://127.0.0.1:{port}/healthz")
    finally:
        listener.terminate()
        listener.wait(10)
