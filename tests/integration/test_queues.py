"""Review queues against a real Label Studio: routing to one project per queue, capacity from
the roster, the blind audit's inclusion probabilities intact."""

from __future__ import annotations

import copy
import json

import httpx
import numpy as np
import pandas as pd
import pytest

from flywheel.lake import uniform_draw
from flywheel.roster import load_roster
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI
from labeling.project import HARM_TAB
from labeling.push import push
from tests.conftest import (
    ROSTER,
    queued_policy,
    run_cli,
    start_scoring_api,
    write_prediction_log,
)

KEY = {"Authorization": "Bearer test-key"}

PORTUGUESE = [
    "Ganhe seguidores grátis agora, clique aqui no link da promoção",
    "Obrigado pela ajuda de ontem, até amanhã no trabalho",
    "Desconto imperdível, compre já com o código promocional",
    "Feliz aniversário, que o seu dia seja muito especial",
]
ALL_DAY = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
]
QUEUES = {
    "roster": "roster.yaml",
    "define": [
        {"name": "general", "sla_hours": 24},
        {"name": "portuguese", "sla_hours": 12, "severity": 2, "skills": ["pt"]},
    ],
    "routes": [{"queue": "portuguese", "when": {"language": ["pt"]}}, {"queue": "general"}],
}


def _roster(pace_ana: float, pace_bo: float) -> dict:
    roster = copy.deepcopy(ROSTER)
    ana, bo = roster["reviewers"]
    ana.update(queues=["portuguese"], decisions_per_hour=pace_ana, shifts=ALL_DAY)
    bo.update(queues=["general"], skills=[], decisions_per_hour=pace_bo, shifts=ALL_DAY)
    return roster


@pytest.fixture
def settings(home, ls_env) -> Settings:
    """The session's Label Studio, where the roster's reviewers have users."""
    settings = Settings(home=home)
    api = LabelStudioAPI(settings)
    have = {u.email for u in api.sdk.users.list()}
    for reviewer in ROSTER["reviewers"]:
        if reviewer["user"] not in have:
            api.sdk.users.create(email=reviewer["user"], username=reviewer["id"])
    return settings


def _log(settings, policy, small_world) -> pd.DataFrame:
    """Forty items in the review band (a quarter in Portuguese) and sixty allowed ones."""
    items = small_world.traffic.head(100).reset_index(drop=True).copy()
    items.loc[:9, "text"] = [PORTUGUESE[k % 4] + f" {k}" for k in range(10)]
    decisions = ["review"] * 40 + ["allow"] * 60
    scores = np.r_[np.linspace(0.9, 0.3, 40), np.linspace(0.2, 0.0, 60)]
    now = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
    return write_prediction_log(settings, policy, items, scores, decisions, now)


def test_each_queue_is_a_project_and_gets_what_routes_to_it(
    settings, lake, tmp_path, small_world, world_files
):
    from flywheel.ingest import import_golden

    policy = queued_policy(
        tmp_path, QUEUES, _roster(1000, 1000), gold_rate=0.1, overlap=1,
        audit_rates={"allow": 0.3, "review": 0.2, "auto_action": 0.05},
    )  # fmt: skip
    import_golden(world_files["golden"], policy, lake)
    log = _log(settings, policy, small_world)
    api = LabelStudioAPI(settings)
    report = push(policy, settings, lake, api)

    ledger = lake.pushed_tasks("spam")
    projects = lake.labeling_state("spam")["projects"]
    assert set(projects) == {"general", "portuguese"}
    portuguese = set(log["item_id"].head(10))
    routed = ledger[ledger["queue"] != "gold"]
    assert set(routed.loc[routed["review_queue"] == "portuguese", "item_id"]) <= portuguese
    assert portuguese & set(routed.loc[routed["queue"] == "review", "item_id"]) <= set(
        routed.loc[routed["review_queue"] == "portuguese", "item_id"]
    )
    # every review-band item went out (ample room), each to its queue's project
    assert set(ledger.loc[ledger["queue"] == "review", "item_id"]) == set(log["item_id"].head(40))
    for name, project in projects.items():
        in_ls = {t.data["item_id"] for t in api.sdk.tasks.list(project=project, fields="all")}
        assert in_ls == set(ledger.loc[ledger["review_queue"] == name, "item_id"])
        views = api.sdk.views.list(project=project)
        assert any((v.data or {}).get("title") == HARM_TAB for v in views)
    # the blind audit: drawn by the item's hash against its decision's rate, that rate kept
    audit = ledger[ledger["queue"] == "audit"].set_index("item_id")
    rates = log.set_index("item_id")["decision"].map({"allow": 0.3, "review": 0.2})
    drawn = uniform_draw(pd.Series(rates.index), "audit|spam") < rates.to_numpy()
    assert set(audit.index) == set(rates.index[drawn])
    assert np.allclose(audit["sampling_prob"], rates.loc[audit.index])
    # gold checks: about gold_rate per other task of each queue, from golden items routed there
    assert report.gold == int((ledger["queue"] == "gold").sum()) > 0
    assert report.routed["general"]["pushed"] == int((ledger["review_queue"] == "general").sum())


def test_a_queue_gets_no_more_than_its_team_can_decide_within_its_sla(
    settings, lake, tmp_path, small_world
):
    """Bo decides 1 task an hour on general: its 24-hour SLA holds about 24 tasks; Ana's
    portuguese queue has room for all. The audit goes first, then review by harm; what does
    not fit waits, and a second push with nothing decided sends nothing more."""
    rates = {"allow": 0.1, "review": 0.05, "auto_action": 0.05}
    policy = queued_policy(
        tmp_path, QUEUES, _roster(1000, 1.0), gold_rate=0.0, overlap=1, audit_rates=rates
    )
    log = _log(settings, policy, small_world)
    api = LabelStudioAPI(settings)
    now = pd.Timestamp.now(tz="UTC")
    report = push(policy, settings, lake, api)
    roster = load_roster(policy)
    bo_hours = roster.reviewers[1].hours(now, now + pd.Timedelta(hours=24), roster.zone)
    general = report.routed["general"]
    assert general["room"] == pytest.approx(bo_hours, abs=0.2)
    ledger = lake.pushed_tasks("spam")
    mine = ledger[ledger["review_queue"] == "general"]
    assert len(mine) == general["pushed"] <= general["room"] < general["candidates"]
    # every audit item drawn for general went out (the audit is reserved room), drawn at the
    # rate the push sized for its decision (never under the policy's) and recorded with it
    english = log.iloc[10:]
    audit = ledger[ledger["queue"] == "audit"].merge(log[["item_id", "decision"]], on="item_id")
    sized = audit.groupby("decision_y")["sampling_prob"].agg(["min", "max"])
    floor = pd.Series(rates).reindex(sized.index)
    assert (sized["min"] == sized["max"]).all() and (sized["min"] >= floor).all()
    draw = uniform_draw(english["item_id"], "audit|spam")
    drawn = draw < english["decision"].map(sized["min"]).fillna(0).to_numpy()
    assert set(mine.loc[mine["queue"] == "audit", "item_id"]) == set(english["item_id"][drawn])
    # review by harm: every review task pushed scores above any review-band item left waiting
    band = english[english["decision"] == "review"]
    pushed = band[band["item_id"].isin(mine.loc[mine["queue"] == "review", "item_id"])]
    waiting = band[~band["item_id"].isin(ledger["item_id"])]
    assert not pushed.empty and not waiting.empty
    assert pushed["score"].min() > waiting["score"].max()

    again = push(policy, settings, lake, api)
    assert again.routed["general"]["pushed"] == 0 and again.routed["general"]["open"] == len(mine)

    # what the operations lead sees: the backlog now, and whether the SLA will hold
    path = str(tmp_path / "spam.yaml")
    status = json.loads(
        run_cli("queues", "status", "--policy", path, "--json", home=settings.home).stdout
    )
    by_queue = {s["queue"]: s for s in status}
    assert by_queue["general"]["open"] == len(mine) and by_queue["general"]["past_sla"] == 0
    assert by_queue["general"]["waiting_in_log"] == again.routed["general"]["waiting"] > 0
    assert by_queue["general"]["on_shift"] == 1 == by_queue["general"]["rostered"]
    shown = run_cli("queues", "forecast", "--policy", path, "--days", "2", home=settings.home,
                    COLUMNS="80").stdout  # fmt: skip
    assert "general" in shown and max(len(line) for line in shown.splitlines()) <= 80
    ahead = json.loads(run_cli("queues", "forecast", "--policy", path, "--days", "2", "--json",
                               home=settings.home).stdout)  # fmt: skip
    general_ahead = next(s for s in ahead if s["queue"] == "general")
    assert len(general_ahead["days"]) == 2 and 0 <= general_ahead["expected_compliance"] <= 1
    assert (
        general_ahead["compliance_low"]
        <= general_ahead["expected_compliance"]
        <= general_ahead["compliance_high"]
    )
    # one decision an hour cannot hold the backlog and the week's arrivals within a day
    assert general_ahead["reviewers_needed"] > 1
    assert (lake.labeling_path("spam", "queues.json")).is_file()


def test_tasks_near_their_sla_go_to_the_head_of_their_queue_and_raise_an_alert(
    settings, lake, tmp_path, small_world
):
    from labeling.escalate import ESCALATED, escalate
    from monitoring.health import operational_health
    from monitoring.monitor import conditions

    policy = queued_policy(tmp_path, QUEUES, _roster(1000, 1000), gold_rate=0.0, overlap=1)
    _log(settings, policy, small_world)
    api = LabelStudioAPI(settings)
    push(policy, settings, lake, api)
    ledger = lake.pushed_tasks("spam")
    portuguese = ledger[ledger["review_queue"] == "portuguese"]
    # 10 hours on: past 75% of portuguese's 12-hour SLA, not of general's 24 hours
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=10)
    assert escalate(policy, lake, api, later) == len(portuguese) > 0
    assert escalate(policy, lake, api, later) == 0  # once
    for task_id in portuguese["task_id"]:
        assert api.sdk.tasks.get(id=task_id).data["priority"] >= ESCALATED
    general = ledger[ledger["review_queue"] == "general"]["task_id"].iloc[0]
    assert api.sdk.tasks.get(id=general).data["priority"] < ESCALATED

    # monitoring holds each task to its queue's SLA and alerts on the escalated ones
    health = operational_health(lake, policy, pd.DataFrame(), later + pd.Timedelta(hours=3))
    assert health["backlog"]["sla_breaches"] == len(portuguese)
    assert health["backlog"]["escalated"] == {"portuguese": len(portuguese)}
    report = _report_with(health)
    found = [c for c in conditions(policy, report) if c.kind == "escalated"]
    assert [(c.subject, c.value) for c in found] == [("portuguese", len(portuguese))]


def test_tending_on_a_simulated_clock_escalates_what_is_late_and_not_what_was_decided(
    settings, lake, tmp_path, small_world
):
    """The home's clock jumps ten hours after a push; a reviewer decides one Portuguese task
    in Label Studio (stamped on the wall clock, stored on the home's); `flywheel queues tend`
    pulls it, escalates the other Portuguese tasks (past 75% of their 12-hour SLA) and not
    it, and writes the status the console reads."""
    from flywheel import clock
    from labeling.escalate import ESCALATED
    from labeling.project import choice_result

    policy = queued_policy(tmp_path, QUEUES, _roster(1000, 1000), gold_rate=0.0, overlap=1)
    _log(settings, policy, small_world)
    api = LabelStudioAPI(settings)
    push(policy, settings, lake, api)
    ledger = lake.pushed_tasks("spam")
    portuguese = ledger[ledger["review_queue"] == "portuguese"]["task_id"].astype(int).tolist()
    assert len(portuguese) > 1
    pushed_at = pd.to_datetime(ledger["pushed_at"], utc=True).max()
    clock.advance(settings, (pushed_at + pd.Timedelta(hours=10)).to_pydatetime())
    ana = next(u.id for u in api.sdk.users.list() if u.email == ROSTER["reviewers"][0]["user"])
    api.sdk.annotations.create(
        id=portuguese[0],
        result=choice_result(policy, policy.labels.positive),
        completed_by=ana,
        lead_time=30.0,
    )

    path = str(tmp_path / "spam.yaml")
    tended = json.loads(
        run_cli("queues", "tend", "--policy", path, "--json", home=settings.home).stdout
    )
    assert tended["decisions_added"] == 1 and tended["escalated"] == len(portuguese) - 1
    decided = lake.decisions("spam")
    assert (decided["decided_at"] - pushed_at).min() >= pd.Timedelta(hours=10), (
        "the decision is not on the home's clock"
    )
    escalated = set(lake.escalations("spam")["task_id"].astype(int))
    assert escalated == set(portuguese[1:])
    assert api.sdk.tasks.get(id=portuguese[0]).data["priority"] < ESCALATED
    status = json.loads(lake.labeling_path("spam", "queues.json").read_text())
    assert pd.Timestamp(status["computed_at"]) >= pushed_at + pd.Timedelta(hours=10)
    shown = run_cli("queues", "tend", "--policy", path, home=settings.home, COLUMNS="80").stdout
    assert "0 task(s) escalated" in shown and max(len(x) for x in shown.splitlines()) <= 80


def _report_with(health: dict):
    """A monitoring report holding only this health (the alert rules read nothing else)."""
    from monitoring.report import MonitoringReport

    return MonitoringReport.model_validate(
        {
            "policy": "spam", "run_id": "r", "computed_at": "2026-12-07T00:00:00+00:00",
            "window": {"since": "2026-12-01T00:00:00+00:00", "until": "2026-12-07T00:00:00+00:00",
                       "predictions": 0},
            "production": {"audit": {"audited_items": 0}},
            "health": health,
        }
    )  # fmt: skip


def test_a_roster_user_unknown_to_label_studio_or_a_deleted_project_stops_the_push(
    settings, lake, tmp_path, small_world
):
    from flywheel.errors import FlywheelError

    roster = _roster(1000, 1000)
    roster["reviewers"][1]["user"] = "nobody@example.org"
    policy = queued_policy(tmp_path / "a", QUEUES, roster, gold_rate=0.0)
    _log(settings, policy, small_world)
    api = LabelStudioAPI(settings)
    with pytest.raises(
        FlywheelError, match=r"reviewers\[1\] \(rev-bo\).*no user 'nobody@example.org'"
    ):
        push(policy, settings, lake, api)
    assert lake.pushed_tasks("spam").empty

    policy = queued_policy(tmp_path / "b", QUEUES, _roster(1000, 1000), gold_rate=0.0)
    push(policy, settings, lake, api)
    before = lake.pushed_tasks("spam")
    gone = lake.labeling_state("spam")["projects"]["portuguese"]
    api.sdk.projects.delete(id=gone)
    with pytest.raises(FlywheelError, match=rf"project {gone} .*portuguese.* is gone"):
        push(policy, settings, lake, api)
    assert len(lake.pushed_tasks("spam")) == len(before)


def test_an_appeal_through_the_api_reaches_the_appeals_queue_and_an_overturn_is_heard(
    settings, lake, tmp_path, small_world
):
    from labeling.project import choice_result
    from labeling.pull import pull
    from tests.conftest import http_stub

    heard = []
    with http_stub(lambda handler, body: heard.append(json.loads(body)) or 200) as hook:
        queues = {**QUEUES, "define": [*QUEUES["define"], {"name": "appeals", "sla_hours": 48,
                  "skills": ["senior"]}], "appeals": "appeals"}  # fmt: skip
        roster = _roster(1000, 1000)
        roster["reviewers"][1]["queues"].append("appeals")
        roster["reviewers"][1]["skills"] = ["senior"]
        policy = queued_policy(
            tmp_path, queues, roster, gold_rate=0.0, overlap=1, reinstate_webhook=hook
        )
        items = small_world.traffic.head(3).reset_index(drop=True)
        now = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
        write_prediction_log(
            settings, policy, items, [0.99, 0.97, 0.2], ["auto_action"] * 2 + ["allow"], now
        )
        appealed = items["item_id"].iloc[0]
        # through the real scoring API, as a client forwards a user's appeal
        server = start_scoring_api(
            settings.home,
            tmp_path,
            FLYWHEEL_POLICIES_DIR=str(tmp_path),
            FLYWHEEL_SERVE_POLICIES="spam",
        )
        try:
            sent = {"policy": "spam", "item_id": appealed, "reason": "this is my own shop"}
            answer = httpx.post(f"{server.url}/v1/appeals", headers=KEY, json=sent, timeout=30)
            assert answer.status_code == 201 and answer.json()["created"], answer.text
            again = httpx.post(f"{server.url}/v1/appeals", headers=KEY, json=sent, timeout=30)
            assert again.status_code == 200 and not again.json()["created"]
        finally:
            server.stop()
        api = LabelStudioAPI(settings)
        report = push(policy, settings, lake, api)
        assert report.appeal == 1
        ledger = lake.pushed_tasks("spam")
        task = ledger[ledger["queue"] == "appeal"].iloc[0]
        assert task["review_queue"] == "appeals" and task["item_id"] == appealed
        shown = api.sdk.tasks.get(id=task["task_id"]).data
        assert shown["assist"].startswith("Appeal of auto_action by spam v1 (score 0.99)")
        assert "this is my own shop" in shown["assist"]
        bo = next(u.id for u in api.sdk.users.list() if u.email == ROSTER["reviewers"][1]["user"])
        api.sdk.annotations.create(
            id=int(task["task_id"]), result=choice_result(policy, "benign"), completed_by=bo
        )
        pulled = pull(policy, settings, lake, api)
        assert pulled.added == 1 and pulled.problems == []
        decision = lake.decisions("spam").iloc[0]
        assert decision["source"] == "appeal" and decision["label"] == "benign"
    outcomes = lake.appeal_outcomes("spam")
    assert outcomes["outcome"].tolist() == ["overturned"] and outcomes["notified"].all()
    assert heard == [{"policy": "spam", "item_id": appealed, "appeal_id": outcomes["appeal_id"][0],
                      "model_version": 1, "outcome": "overturned"}]  # fmt: skip
