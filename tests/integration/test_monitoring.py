"""Monitoring runs on a real registry and lake: clean traffic, then the emerging pattern, then clean.

The champion was trained before the emerging abuse pattern existed. Traffic from a world where
it appears moves the score distribution, which opens a drift alert; the alert stays one alert
while the condition holds and is resolved by a run on clean traffic.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from flywheel.lake import Lake
from flywheel.predictions import read_predictions
from flywheel.registry import connect, get_version
from flywheel.runtime import load_model
from flywheel.settings import Settings
from labeling.qa import run_qa
from monitoring.monitor import history, run_monitor
from monitoring.report import MonitoringReport
from simulation.world import WorldConfig, simulate
from tests.conftest import (
    answer_gold_checks,
    answers,
    copy_trained,
    free_port,
    run_cli,
    wait_until,
    write_prediction_log,
)

T0 = pd.Timestamp("2027-06-01T00:00:00Z")  # after any real "now" of a test run


@pytest.fixture(scope="module")
def monitored(trained, spam, tmp_path_factory):
    """A copy of the trained home, with three weeks of logged traffic: clean, emerging, clean."""
    settings, _, _ = trained
    settings = copy_trained(settings, tmp_path_factory.mktemp("monitor") / "home")
    # the team has answered gold checks since the history was imported: reviewer QA judges
    # them on those too (the history alone shares too few violations to judge sensitivity)
    answer_gold_checks(Lake(settings.lake_dir), spam, per_reviewer=80)
    run_qa(spam, Lake(settings.lake_dir))
    client = connect(settings)
    champion = load_model(client, get_version(client, "spam", "champion"), spam)
    weeks = {
        "clean-1": simulate(spam, WorldConfig(seed=8, days=7, items_per_day=500, emerging_day=7)),
        "emerging": simulate(spam, WorldConfig(seed=9, days=7, items_per_day=500, emerging_day=0)),
        "clean-2": simulate(spam, WorldConfig(seed=10, days=7, items_per_day=500, emerging_day=7)),
    }
    for week, (name, world) in enumerate(weeks.items()):
        # each world numbers its items from zero: keep them apart from the trained home's
        items = world.traffic.assign(item_id=name + "/" + world.traffic["item_id"])
        scores = champion.score(items)
        end = T0 + pd.Timedelta(days=7 * week)
        scored_at = end - pd.to_timedelta(range(len(items)), unit="min") % pd.Timedelta(days=6)
        write_prediction_log(
            settings, spam, items, scores, champion.ref.thresholds.decide(scores), scored_at, name
        )
    return settings, spam, weeks


def test_drift_opens_an_alert_once_and_clean_traffic_resolves_it(monitored):
    settings, spam, _ = monitored
    lake = Lake(settings.lake_dir)
    clean = run_monitor(spam, settings, lake, now=T0)
    assert clean.window.predictions == 3500
    assert clean.scoring["champion"].model_dump() == {
        "version": 1,
        "path": "compiled",
        "note": None,
    }
    assert clean.drift.score.drifted is False
    # the one alert of clean traffic: QA flagged the careless reviewer on evidence
    reviewer = ["spam:reviewer:rev-fox"]
    assert clean.alerts.open == reviewer

    assert not [c for c in clean.emerging.clusters if c.emerging]

    emerging = run_monitor(spam, settings, lake, now=T0 + pd.Timedelta(days=7))
    assert emerging.drift.score.drifted is True
    opened = set(emerging.alerts.opened)
    assert "spam:drift:score" in opened
    clusters = emerging.emerging.clusters
    assert clusters and clusters[0].emerging, clusters
    # its top terms are the emerging pattern's own vocabulary
    vocabulary = " ".join(spam.simulation["text"]["emerging"])
    assert sum(term in vocabulary for term in clusters[0].top) >= 3
    assert any(key.startswith("spam:emerging:") for key in opened), (opened, clusters)
    again = run_monitor(spam, settings, lake, now=T0 + pd.Timedelta(days=7, hours=1))
    assert again.alerts.opened == [] and set(again.alerts.open) == opened | {*reviewer}

    recovered = run_monitor(spam, settings, lake, now=T0 + pd.Timedelta(days=14))
    assert set(recovered.alerts.resolved) == opened
    assert recovered.alerts.open == reviewer
    assert len(history(lake, "spam")) == 4
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(lake.workspace))
    [project] = workspace.search_project("flywheel spam")
    # every run's drift and golden snapshots; `evidently ui` opens on a dashboard with them
    assert len(workspace.list_runs(project.id)) == 8
    panels, series = _evidently_dashboard(lake.workspace)
    assert {p["title"] for p in panels} >= {
        "Share of drifted fields",
        "Golden-set precision and recall of the champion",
    }
    drawn = {(s["metric_type"].rsplit(":", 1)[1], s["params"].get("column", "")): s for s in series}
    score = [v for v in drawn[("ValueDrift", "score")]["values"] if v is not None]
    assert score == [
        pytest.approx(r.drift.score.value) for r in (clean, emerging, again, recovered)
    ]
    shares = [v for v in drawn[("DriftedColumnsCount", "")]["values"] if v is not None]
    assert shares == [
        pytest.approx(r.drift.drifted_share) for r in (clean, emerging, again, recovered)
    ]
    precision = [v for v in drawn[("Precision", "")]["values"] if v is not None]
    assert precision == [
        pytest.approx(r.champion_golden.rate("auto_action", "precision").value)
        for r in (clean, emerging, again, recovered)
    ]
    assert all(("ValueDrift", f) in drawn for f in spam.feature_columns)  # drift per field


def _evidently_dashboard(workspace) -> tuple[list[dict], list[dict]]:
    """The panels `evidently ui` serves for the spam project, and the series it draws them from."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).with_name("evidently")),
        "ui",
        "--workspace",
        str(workspace),
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: answers(f"{url}/api/projects"), 60, "evidently ui to answer")
        [project] = httpx.get(f"{url}/api/projects", timeout=10).json()
        panels = httpx.get(f"{url}/api/v2/dashboards/{project['id']}", timeout=10).json()["panels"]
        wanted = [
            {key: value[key] for key in ("tags", "metadata", "metric", "metric_labels")}
            for panel in panels
            for value in panel["values"]
        ]
        series = httpx.post(
            f"{url}/api/v2/snapshots/{project['id']}/data_series_batch",
            json={"series_filter": wanted},
            timeout=30,
        ).json()["series"]
        return panels, series
    finally:
        server.terminate()
        server.wait(30)


def test_the_report_holds_golden_rates_per_slice_and_says_what_it_could_not_measure(monitored):
    settings, spam, _ = monitored
    report = run_monitor(spam, settings, Lake(settings.lake_dir), now=T0)
    golden = report.golden["champion"]
    assert {"all", "surface=post", "country=US"} <= set(golden.slices)
    for point, measure in (("review", "recall"), ("review", "precision"), ("auto_action", "fpr")):
        overall = golden.slices["all"][point][measure]
        assert overall.low <= overall.value <= overall.high, (point, measure)
    assert any("blind-audit" in note for note in report.notes)
    saved = json.loads(Path(report.files["report"]).read_text())
    assert saved["run_id"] == report.run_id
    assert (
        Path(report.files["drift_html"]).read_text()[:200].lstrip().lower().startswith("<!doctype")
    )


def test_the_command_line_prints_and_lists_alerts(monitored):
    settings, spam, _ = monitored
    run_monitor(spam, settings, Lake(settings.lake_dir), now=T0 + pd.Timedelta(days=7))
    listed = json.loads(run_cli("alerts", "list", "--json", home=settings.root).stdout)
    assert "spam:drift:score" in [a["key"] for a in listed]

    # the real "now" is before the logged weeks: an empty window, said so, and nothing drifts
    printed = run_cli("monitor", "--policy", "spam", "--json", home=settings.root)
    report = MonitoringReport.model_validate(json.loads(printed.stdout))  # the file's schema
    assert report.window.predictions == 0
    assert any("no predictions in the window" in n for n in report.notes)
    assert "spam:drift:score" in report.alerts.resolved
    table = run_cli("monitor", "--policy", "spam", home=settings.root).stdout
    assert "golden precision (auto_action)" in table
    still = json.loads(run_cli("alerts", "list", "--json", home=settings.root).stdout)
    assert [a["key"] for a in still] == ["spam:reviewer:rev-fox"]
    assert "balanced accuracy" in still[0]["message"]  # the flag's evidence travels with it


def test_no_champion_and_no_golden_set_give_a_report_not_a_crash(settings, spam):
    report = run_monitor(spam, settings, Lake(settings.lake_dir))
    assert "no champion yet: drift and golden-set figures need one" in report.notes
    assert "no golden set: golden-set error rates not measured" in report.notes
    assert report.alerts.open == []


def test_the_monitor_flow_runs_on_prefect(prefect_harness, monitored, monkeypatch):
    from flows.monitor import monitor

    settings, _, _ = monitored
    monkeypatch.setenv("FLYWHEEL_HOME", str(settings.root))
    state = monitor("spam", return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert summary["policy"] == "spam" and Path(summary["report"]).is_file()
    page = Lake(settings.lake_dir).root / "monitoring" / "health.html"
    assert "policy health over time" in page.read_text()


def test_audit_weighted_rates_cover_the_simulators_truth(monitored, tmp_path):
    """Reviewers who decide audited items correctly: the weighted estimates must cover the true
    rates of the whole window, which the simulator knows."""
    from flywheel.records import validate_decisions
    from labeling.push import LEDGER_COLUMNS
    from labeling.sample import audit_sample
    from monitoring.production import RATES
    from tests.conftest import policy_variant

    settings, _, weeks = monitored
    home = tmp_path / "home"
    shutil.copytree(settings.root, home)
    settings = Settings(home=home)
    lake = Lake(settings.lake_dir)
    policy = policy_variant(
        tmp_path / "policy", audit_rates={"allow": 0.15, "review": 0.6, "auto_action": 0.6}
    )
    log = read_predictions(settings, policy)
    window = log[log["request_id"] == "req-clean-1"]
    world = weeks["clean-1"].truth
    truth = pd.Series(world["is_violating"].to_numpy(), index="clean-1/" + world["item_id"])
    audit = audit_sample(window, policy, pushed=set()).reset_index(drop=True)
    ledger = audit.assign(
        queue="audit",
        reason="blind audit",
        task_id=[f"t{i}" for i in range(len(audit))],
        task_key=[f"k{i}" for i in range(len(audit))],
        project_id=1,
        priority=float("nan"),
        model_version="1",
        pushed_at=T0,
        review_queue="",
    )
    lake.record_pushed("spam", ledger[[*LEDGER_COLUMNS, *policy.feature_columns]])
    decisions = audit[["item_id", *policy.feature_columns]].assign(
        label=[policy.label_value(bool(truth[i])) for i in audit["item_id"]],
        reviewer_id="rev-ana",
        decided_at=T0,
        source="audit",
        task_id=ledger["task_id"],
    )
    lake.append_decisions("spam", validate_decisions(decisions, policy, "test").frame, "test")

    report = run_monitor(policy, settings, lake, now=T0)
    rates = report.production.audit.rates
    d = window["decision"].to_numpy()
    y = window["item_id"].map(truth).to_numpy(dtype=bool)
    for name in ("auto_action_fpr", "allow_fnr", "prevalence"):
        numerator, denominator = RATES[name]
        true_rate = numerator(d, y).sum() / denominator(d, y).sum()
        assert rates[name].low <= true_rate <= rates[name].high, (
            name,
            true_rate,
            rates[name],
        )
    assert report.production.scores_vs_audit is not None


def test_an_emerging_cluster_reaches_the_page_the_alert_and_the_terminal(monitored, capsys):
    from cli.render import render_monitor
    from monitoring.alerts import AlertStore

    settings, spam, _ = monitored
    lake = Lake(settings.lake_dir)
    report = run_monitor(spam, settings, lake, now=T0 + pd.Timedelta(days=7))
    [cluster, *_] = [c for c in report.emerging.clusters if c.emerging]
    assert cluster.examples and cluster.representatives
    assert 0 <= cluster.allowed_share <= 1 and sum(cluster.per_day.values()) == cluster.size
    assert lake.latest_emerging("spam")["run_id"] == report.run_id  # what the push reads
    page = (lake.root / "monitoring" / "health.html").read_text()
    assert "Emerging clusters" in page and cluster.top[0] in page
    messages = [a.message for a in AlertStore(settings.lake_dir).all() if a.open]
    # the webhook posts this message
    assert any(", ".join(cluster.top[:3]) in message for message in messages), messages
    render_monitor(report)
    printed = capsys.readouterr().out
    assert f"emerging cluster: {cluster.top[0]}" in printed
    assert all(len(line) <= 80 for line in printed.splitlines() if line.startswith("  e.g."))
