"""The console's pages, key and figures on a small lake of two policies written here (no
registry: the models page is tested on the demo's home, in tests/e2e/test_demo.py)."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from console import charts
from console.app import COOKIE, create_app, hours, interval
from console.figures import Home, decision_mix, reports, series, sla_compliance
from flywheel.files import write_json_atomic
from flywheel.lake import Lake, write_parquet_atomic
from flywheel.settings import Settings
from monitoring.report import Figure

KEY = "the-console-key"


def _report(policy: str, run_id: str, at: str, precision: float, low: float) -> dict:
    rate = {"value": precision, "low": low, "high": 1.0, "n": 164}
    return {
        "policy": policy,
        "run_id": run_id,
        "computed_at": at,
        "window": {"since": at, "until": at, "predictions": 1000},
        "models": {"champion": 3},
        "promotion": {"version": 3, "verdict": "promoted"},
        "golden": {
            "champion": {
                "version": 3,
                "items": 600,
                "slices": {"all": {"auto_action": {"precision": rate}, "review": {"recall": rate}}},
            }
        },
        "drift": {
            "drifted_share": 0.25,
            "fields": {
                "links": {"drifted": True, "method": "Wasserstein", "value": 0.2, "threshold": 0.1}
            },
        },
        "emerging": {
            "clusters": [
                {
                    "top": ["whitelist", "spot"],
                    "size": 48,
                    "growth": 3.0,
                    "emerging": True,
                    "allowed_share": 0.46,
                    "bursting_share": 0.98,
                    "per_day": {"2026-12-06": 48},
                    "examples": [
                        {
                            "item_id": "x-1",
                            "text": "mint now whitelist spot",
                            "score": 0.04,
                            "decision": "allow",
                        }
                    ],
                }
            ]
        },
        "production": {
            "audit": {
                "audited_items": 388,
                "rates": {
                    "allow_fnr": {
                        "value": 0.07,
                        "low": 0.0,
                        "high": 0.2,
                        "n": 29,
                        "needs_items": 21,
                    }
                },
            }
        },
        "health": {"backlog": {"open_tasks": 2, "sla_breaches": 1}},
    }


@pytest.fixture
def two_policies(tmp_path) -> Settings:
    """A home with two policies' monitoring runs, an open and a resolved alert, two open review
    tasks (one past the SLA) and a QA report."""
    settings = Settings(home=tmp_path / "home")
    lake = Lake(settings.lake_dir)
    for policy in ("spam", "scam"):
        for i, run_id in enumerate(["20261201T000000000000Z", "20261202T000000000000Z"]):
            at = f"2026-12-0{i + 1}T00:00:00+00:00"
            report = _report(policy, run_id, at, 0.99 - i / 100, 0.97 - i / 100)
            write_json_atomic(report, lake.run_dir(policy, run_id) / "report.json")
            write_parquet_atomic(
                pd.DataFrame({"run_id": [run_id]}), lake.history_part(policy, run_id)
            )
    now = pd.Timestamp.now(tz="UTC")
    lake.record_pushed(
        "spam",
        pd.DataFrame(
            {
                "item_id": ["a", "b"],
                "queue": ["review", "audit"],
                "reason": ["in the band", ""],
                "task_id": ["11", "12"],
                "project_id": [4, 4],
                "pushed_at": [now - pd.Timedelta(hours=30), now - pd.Timedelta(hours=1)],
            }
        ),
    )
    write_json_atomic({"project_id": 4}, lake.labeling_path("spam", "state.json"))
    write_json_atomic(
        {
            "computed_at": "2026-12-02T00:00:00+00:00",
            "confidence": 0.95,
            "krippendorff_alpha": 0.7,
            "bar": {"min_balanced_accuracy": 0.9, "min_evidence_items": 20},
            "unjudged": ["rev-new"],
            "reviewers": [
                {
                    "reviewer_id": "rev-fox",
                    "flagged": True,
                    "standing": "below the bar",
                    "reason": "balanced accuracy 0.78 (at most 0.82) < 0.90",
                    "balanced_accuracy": 0.78,
                    "balanced_accuracy_ci": [0.73, 0.82],
                    "decisions": 1500,
                    "gold_checks": 164,
                },
                {
                    "reviewer_id": "auto:bank",
                    "kind": "automated",
                    "flagged": False,
                    "standing": "meets the bar",
                    "balanced_accuracy": 0.97,
                    "balanced_accuracy_ci": [0.95, 0.98],
                    "decisions": 400,
                    "failures": 37,
                    "gold_checks": 40,
                    "autonomy": {
                        "granted": [
                            {
                                "queue": "all",
                                "label": "benign",
                                "answers": 300,
                                "accuracy": 0.985,
                                "low": 0.97,
                            }
                        ],
                        "refused": [
                            {
                                "queue": "all",
                                "label": "violating",
                                "answers": 100,
                                "accuracy": 0.9,
                                "low": 0.84,
                                "reason": "accuracy at least 0.840, under 0.970",
                            }
                        ],
                        "revoked": [{"queue": "urgent", "label": "benign"}],
                    },
                },
            ],
        },
        lake.labeling_path("spam", "qa.json"),
    )
    alert = {
        "policy": "scam",
        "kind": "drift",
        "subject": "score",
        "value": 0.2,
        "threshold": 0.1,
        "opened_at": "2026-12-01T00:00:00+00:00",
        "last_seen_at": "2026-12-02T00:00:00+00:00",
        "resolved_at": None,
        "notify_error": None,
    }
    write_json_atomic(
        {
            "alerts": [
                alert | {"key": "scam:drift:score", "message": "the score distribution drifted"},
                alert
                | {
                    "key": "spam:drift:score",
                    "policy": "spam",
                    "message": "spam drifted once",
                    "resolved_at": "2026-12-02T00:00:00+00:00",
                },
            ]
        },
        lake.alerts_file,
    )
    return settings


@pytest.fixture
def client(two_policies: Settings) -> TestClient:
    return TestClient(create_app(two_policies, KEY), follow_redirects=False)


def _signed_in(client: TestClient) -> TestClient:
    assert client.post("/login", data={"key": KEY, "next": "/queues"}).status_code == 303
    return client


def test_every_page_needs_the_key(client):
    assert client.get("/").status_code == 401
    page = client.get("/reviewers", headers={"Accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/reviewers"
    wrong = client.post("/login", data={"key": "guess", "next": "/"})
    assert wrong.status_code == 401 and "That is not this console" in wrong.text
    assert COOKIE not in wrong.cookies
    assert client.get("/", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.get("/", headers={"Authorization": "Bearer guess"}).status_code == 401


def test_signing_in_keeps_a_hash_of_the_key_and_never_leaves_the_console(client):
    signed = client.post("/login", data={"key": KEY, "next": "https://elsewhere.example/"})
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.cookies[COOKIE]
    assert KEY not in cookie and "httponly" in signed.headers["set-cookie"].lower()
    assert client.post("/login", data={"key": KEY, "next": "//evil"}).headers["location"] == "/"
    assert client.get("/queues").status_code == 200
    client.get("/logout")
    assert client.get("/queues").status_code == 401


def test_the_overview_shows_every_policy(client):
    page = _signed_in(client).get("/").text
    assert 'id="policy-scam"' in page and 'id="policy-spam"' in page
    assert "1 open alert" in page  # scam's; spam's was resolved
    assert "0.980 [0.960, 1.000], n = 164" in page  # the latest run, with its interval
    assert "1 past the SLA" in page  # spam's task pushed 30 h ago against a 24 h SLA


def test_the_policy_page_plots_each_rate_with_its_interval_and_target(client):
    page = _signed_in(client).get("/policies/spam").text
    found = re.findall(r'type="application/json" id="[^"]+">(.*?)</script>', page)
    specs = [json.loads(spec) for spec in found]
    precision = next(s for s in specs if "precision" in s["layout"]["title"]["text"])
    band, value = precision["data"][1], precision["data"][2]
    assert band["fill"] == "tonexty" and value["y"] == [0.99, 0.98]
    assert precision["layout"]["shapes"][0]["y0"] == 0.9  # the spam policy's target
    assert precision["layout"]["xaxis"]["type"] == "date"
    assert "mint now whitelist spot" in page and "46.0%" in page  # a cluster, its examples
    assert "29" in page and "0.070 [0.000, 0.200], n = 29" in page  # an audit rate and its n


def test_reviewers_queues_and_alerts(client):
    _signed_in(client)
    reviewers = client.get("/reviewers").text
    assert "rev-fox" in reviewers and "0.780 [0.730, 0.820]" in reviewers
    assert "balanced accuracy 0.78 (at most 0.82)" in reviewers and "rev-new" in reviewers
    # an automated reviewer is listed with the people, marked, with what it left to them
    assert re.search(r"auto:bank <span class=\"badge\">automated</span>", reviewers)
    assert "(37 unanswered)" in reviewers and "take no part in judging people" in reviewers
    assert "all · benign (accuracy 0.985, at least 0.970 on 300)" in reviewers
    assert "revoked</span> urgent · benign" in reviewers
    assert "all · violating (accuracy at least 0.840, under 0.970)" in reviewers
    queues = client.get("/queues").text
    assert "/projects/4/data?task=11" in queues and "past SLA" in queues
    assert queues.index("task 11") < queues.index("task 12")  # the oldest first
    alerts = client.get("/alerts?policy=scam").text
    assert "the score distribution drifted" in alerts and "spam drifted once" not in alerts
    assert client.get("/policies/nope").status_code == 404


def test_a_policy_without_its_file_is_shown_without_targets(two_policies):
    lake = Lake(two_policies.lake_dir)
    run_id = "20261203T000000000000Z"
    write_json_atomic(
        _report("ghost", run_id, "2026-12-03T00:00:00+00:00", 0.9, 0.8),
        lake.run_dir("ghost", run_id) / "report.json",
    )
    write_parquet_atomic(pd.DataFrame({"run_id": [run_id]}), lake.history_part("ghost", run_id))
    client = _signed_in(TestClient(create_app(two_policies, KEY), follow_redirects=False))
    assert "No policy file named ghost" in client.get("/").text
    assert client.get("/policies/ghost").status_code == 200


def test_series_and_mix_keep_the_items_behind_each_figure(two_policies):
    frame = series(reports(Home(two_policies), "spam"))
    assert list(frame["gp_n"]) == [164, 164] and list(frame["gp_low"]) == [0.97, 0.96]
    hours = pd.to_datetime(["2026-12-01 09:00", "2026-12-01 20:00", "2026-12-02 08:00",
                            "2026-12-02 10:00"])  # fmt: skip
    traffic = pd.DataFrame(
        {
            "day": hours.floor("D"),
            "hour": hours,
            "decision": ["allow", "allow", "allow", "auto_action"],
            "fallback": [False, False, True, False],
            "predictions": [10, 4, 6, 2],
        }
    )
    # the last 24 hours from 2026-12-02 12:00 are hours, not the day that began at midnight
    mix = decision_mix(traffic, pd.Timestamp("2026-12-01 12:00", tz="UTC"))
    assert mix["predictions"] == 12 and mix["shares"]["auto_action"] == 2 / 12
    assert mix["fallback_share"] == 0.5 and mix["shares"]["review"] == 0.0


def test_formats_read_as_people_read_them():
    assert interval(Figure(value=0.5, low=0.4, high=0.6, n=12)) == "0.500 [0.400, 0.600], n = 12"
    assert interval(None) == "–" and interval(Figure(value=None)) == "–"
    assert hours(0.5) == "30 min" and hours(30) == "30.0 h" and hours(72) == "3.0 d"
    chart = charts.value_chart(
        pd.DataFrame({"computed_at": [pd.Timestamp("2026-12-01", tz="UTC")], "d": [math.nan]}),
        "d",
        "t",
        "share",
        0.5,
    )
    assert chart["data"][0]["y"] == [None] and chart["layout"]["shapes"][0]["y0"] == 0.5


def test_metrics_carry_the_latest_figures_with_bounds_and_labels(client):
    assert client.get("/metrics").status_code == 401
    text = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    golden = 'model="champion",point="auto_action",policy="spam",slice="all"'
    assert f'flywheel_golden_rate{{measure="precision",{golden}}} 0.98' in text
    assert f'flywheel_golden_rate_low{{measure="precision",{golden}}} 0.96' in text
    assert f'flywheel_golden_rate_items{{measure="precision",{golden}}} 164.0' in text
    assert 'flywheel_backlog_sla_breaches{policy="spam",queue="review"} 1.0' in text
    assert 'flywheel_backlog_open_tasks{policy="spam",queue="audit"} 1.0' in text
    assert 'flywheel_alert_open{kind="drift",policy="scam",subject="score"} 1.0' in text
    assert 'flywheel_alerts_open{policy="spam"} 0.0' in text  # its alert was resolved
    assert 'flywheel_reviewer_flagged{policy="spam",reviewer="rev-fox"} 1.0' in text
    assert 'flywheel_alert_limit{limit="max_allow_fnr",policy="spam"} 0.2' in text
    assert 'flywheel_field_drifted{field="links",policy="scam"} 1.0' in text
    assert 'flywheel_champion_info{policy="spam",verdict="promoted",version="3"} 1.0' in text
    assert "process_cpu_seconds_total" in text


def test_the_models_page_says_when_the_registry_does_not_answer(two_policies):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = two_policies.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{closed}"})
    client = TestClient(create_app(down, KEY), follow_redirects=False)
    page = client.get("/models", headers={"Authorization": f"Bearer {KEY}"})
    assert page.status_code == 200
    assert page.text.count("the model registry did not answer") == 2  # each policy says so


def test_the_queues_page_holds_each_review_queue_to_its_sla_with_forecast_and_history(tmp_path):
    from labeling.status import queue_status, write_status
    from tests.conftest import queued_policy

    policy = queued_policy(tmp_path / "policies")
    settings = Settings(home=tmp_path / "home", policies_dir=tmp_path / "policies")
    lake = Lake(settings.lake_dir)
    now = pd.Timestamp.now(tz="UTC")
    midnight = now.floor("D")
    # a: general, two days back, still open (past its 24 h); b: urgent, 5 h ago, open (past
    # its 4 h); c and d: three days back, decided after 3 h (met) and 6 h (missed its 4 h)
    pushed = [midnight - pd.Timedelta(days=d) + pd.Timedelta(hours=1) for d in (2, 0, 3, 3)]
    pushed[1] = now - pd.Timedelta(hours=5)
    ago = [now - p for p in pushed]
    lake.record_pushed(
        "spam",
        pd.DataFrame(
            {
                "item_id": ["a", "b", "c", "d"],
                "queue": ["review"] * 4,
                "review_queue": ["general", "urgent", "general", "urgent"],
                "reason": ["in the band"] * 4,
                "task_id": ["21", "22", "23", "24"],
                "project_id": [5, 6, 5, 6],
                "pushed_at": [now - a for a in ago],
            }
        ),
    )
    decided = [now - ago[2] + pd.Timedelta(hours=3), now - ago[3] + pd.Timedelta(hours=6)]
    lake.append_decisions(
        "spam",
        pd.DataFrame(
            {
                "item_id": ["c", "d"],
                "reviewer_id": ["rev-ana", "rev-bo"],
                "label": ["violating", "benign"],
                "decided_at": decided,
                "task_id": ["23", "24"],
            }
        ),
        "test",
    )
    lake.record_escalations(
        "spam",
        pd.DataFrame(
            {"task_id": ["22"], "item_id": ["b"], "review_queue": ["urgent"],
             "age_hours": [3.5], "escalated_at": [now - pd.Timedelta(hours=1.5)]}
        ),
    )  # fmt: skip
    write_status(policy, lake, queue_status(policy, lake, now, days=2, futures=10), now)

    client = TestClient(create_app(settings, KEY), follow_redirects=False)
    _signed_in(client)
    page = client.get("/queues").text
    assert "past their SLA" in page and "escalated" in page and "reviewers needed" in page
    # 21 waited past general's 24 h; 22 waited 5 h against urgent's 4, and was escalated
    assert re.search(r"<td>urgent</td><td class=\"n\">4.0 h</td>", page), page
    # every queue the policy defines is listed, the ones nothing was pushed to yet too
    assert re.search(r"<td>portuguese</td><td class=\"n\">24.0 h</td>", page), page
    assert page.count('data-chart="spec-') == 2  # a compliance chart per queue with history
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    assert 'flywheel_backlog_escalated{policy="spam",queue="urgent"} 1.0' in metrics
    assert 'flywheel_backlog_sla_breaches{policy="spam",queue="general"} 1.0' in metrics
    # general met its SLA three days back and missed it two days back; urgent missed both
    history = sla_compliance(Home(settings), "spam", policy)
    assert history["general"]["compliance"].tolist() == [1.0, 0.0]
    assert history["urgent"]["compliance"].tolist() == [0.0, 0.0]
    assert (history["general"]["compliance_n"] == 1).all()
    assert 'flywheel_queue_sla_compliance{policy="spam",queue="general"} 0.0' in metrics
    assert 'flywheel_queue_sla_compliance_high{policy="spam",queue="general"} 0.95' in metrics
    assert 'flywheel_queue_reviewers_rostered{policy="spam",queue="general"} 2.0' in metrics
    # the forecast over its whole horizon, with its band, as the page shows it
    ahead = {
        name: float(re.search(rf'{name}{{policy="spam",queue="general"}} (\S+)', metrics)[1])
        for name in (
            "flywheel_queue_forecast_horizon_sla_compliance_low",
            "flywheel_queue_forecast_horizon_sla_compliance",
            "flywheel_queue_forecast_horizon_sla_compliance_high",
        )
    }
    assert list(ahead.values()) == sorted(ahead.values())
    assert min(ahead.values()) >= 0 and max(ahead.values()) <= 1
    assert "all days" in page
