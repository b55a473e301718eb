"""`flywheel demo`, the main job, end to end on real servers, then rerun (it must resume, not redo).

The loop-quality figures are measured on the simulator's truth: the cycle that brings the new
pattern raises a drift or emerging-risk alert, within two cycles the API catches at least 80% of
the pattern's violations, the unreliable reviewer is flagged from the second cycle on, and no
champion is shown below the policy's targets on the golden set.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from flywheel.lake import Lake
from flywheel.policy import load_policy
from flywheel.settings import Settings
from tests.conftest import REPO, free_port, run_cli, wait_until

ARGS = ["--cycles", "4", "--emerging-cycle", "2", "--policies", "spam"]


@pytest.mark.slow
def test_the_demo_turns_the_wheel_and_leaves_the_servers_running(tmp_path, chromium):
    home = tmp_path / "home"
    api_port, console_port = free_port(), free_port()
    ports = ["--api-port", str(api_port), "--console-port", str(console_port)]
    env = {"LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}", "COLUMNS": "80"}
    try:
        first = run_cli("demo", *ARGS, *ports, home=home, **env)
        out = first.stdout
        assert "Cycle 1" in out and "Cycle 2 (the new pattern appears)" in out, out
        assert "All cycles: spam" in out and "make stop" in out
        # readable at 80 columns and in a log: whole headers, no cut cells, nothing wider
        tables = out.split("Cycle 1", 1)[1].split("Still running", 1)[0]
        assert "policy  model  gold P  gold R" in tables and "…" not in tables, tables
        assert max(len(line) for line in tables.splitlines()) <= 80, tables
        rows = json.loads((home / "demo" / "cycles.json").read_text())["rows"]
        assert [(r["policy"], r["cycle"]) for r in rows] == [("spam", c) for c in (1, 2, 3, 4)]

        emerging = rows[1]
        assert emerging["pattern_items"] > 0 and rows[0]["pattern_items"] == 0
        kinds = {key.split(":")[1] for key in emerging["alerts_opened"]}
        assert kinds & {"drift", "emerging"}, emerging["alerts_opened"]
        # the wheel learns it: cycle 3 promotes a model trained on the decisions about cycle 2
        assert rows[3]["pattern_recall"] >= 0.8, rows
        assert rows[2]["champion"] > rows[1]["champion"], rows
        # flagged from the second cycle on (a cycle adds about thirty gold checks per reviewer)
        assert all("rev-fox" in r["flagged_reviewers"] for r in rows[1:]), rows
        assert not {"rev-ana", "rev-bo", "rev-chen"} & set(rows[-1]["flagged_reviewers"])
        # no champion is shown below its targets on the golden set (auto-action may be off)
        targets = load_policy("spam").targets
        assert all(
            r["golden_precision"] is None
            or r["golden_precision_high"] >= targets.auto_action_precision
            for r in rows
        ), rows
        assert all(r["golden_recall_high"] >= targets.review_recall for r in rows), rows
        assert all(r["annotations"] > 0 and r["pushed"] > 0 for r in rows)
        # users appealed what the API auto-actioned, through the API; reviewers decided the
        # appeals, mostly overturning those of benign items
        assert sum(r["appeals"] for r in rows) >= 5, rows
        outcomes = Lake(Settings(home=home).lake_dir).appeal_outcomes("spam")
        assert len(outcomes) >= 5 and outcomes["outcome"].eq("overturned").any(), outcomes
        assert (home / "demo" / "summary.html").read_text().count("<section>") == 1

        # the servers stay up: the printed curl scores an item on the current champion
        key = json.loads((home / "serving" / "keys.json").read_text())["api"]
        assert f"Bearer {key}" in out
        request = out.split(f"-H 'Authorization: Bearer {key}' -d '", 1)[1].split("'\n", 1)[0]
        answer = httpx.post(
            f"http://127.0.0.1:{api_port}/v1/score",
            headers={"Authorization": f"Bearer {key}"},
            content=request,
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["results"][0]["model_version"] >= 1

        # the console, in a real browser: every page with its content and no script error
        console_url = f"http://127.0.0.1:{console_port}"
        assert console_url in out
        console_key = json.loads((home / "console" / "key.json").read_text())["key"]
        shots = Path(os.environ.get("FLYWHEEL_SCREENSHOTS") or tmp_path / "shots")
        _look_at_the_console(chromium, console_url, console_key, shots)
        # Prometheus with the shipped configuration, rules and dashboard, scraping both servers
        _watch_with_prometheus(tmp_path / "prometheus", api_port, console_port, console_key)

        again = run_cli("demo", *ARGS, *ports, "--json", home=home, **env)
        assert "Cycle 1" not in again.stderr and "All cycles" in again.stderr
        figures = json.loads(again.stdout)
        assert figures["rows"] == rows and figures["config"]["cycles"] == 4
        assert figures["scoring_api"] == f"http://127.0.0.1:{api_port}"
        assert figures["console"] == console_url
        assert len(json.loads((home / "demo" / "cycles.json").read_text())["rows"]) == 4

        monitored = run_cli("monitor", "--policy", "spam", home=home, **env)
        assert "report:" in monitored.stdout
    finally:
        stopped = run_cli("stop", home=home, **env)
    assert "scoring API: stopped" in stopped.stdout and "Label Studio: stopped" in stopped.stdout
    assert "console: stopped" in stopped.stdout
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=2)


# What each page must show of the demo's home: (path, texts, charts drawn at least).
PAGES = [
    ("/", ["spam", "open alert", "golden precision at auto_action", "review backlog"], 0),
    ("/policies/spam", ["Audit estimates", "Drift per field", "Emerging clusters"], 7),
    ("/reviewers", ["rev-fox", "flagged", "balanced accuracy"], 0),
    ("/queues", ["Open review tasks now", "spam"], 0),
    ("/models", ["v1", "champion", "promoted", "to review (truth)"], 1),
    ("/alerts", ["Open (", "rev-fox", "Resolved ("], 0),
]


def _look_at_the_console(driver, url: str, key: str, shots: Path) -> None:
    """Sign in with the form, then load each page: its texts, its charts drawn by plotly.js
    (served by the console itself: the browser has no network), no error in the page's
    console; a full-page screenshot of each lands in `shots`."""
    shots.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1400, 1000)
    driver.get(f"{url}/models")
    assert "/login" in driver.current_url  # no key, no page
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(expected_conditions.url_to_be(f"{url}/models"))
    driver.get_log("browser")  # the sign-in page's messages are not the pages'
    for path, texts, charts in PAGES:
        driver.get(f"{url}{path}")
        WebDriverWait(driver, 30).until(
            lambda d, n=charts: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) >= n
        )
        body = driver.find_element(By.TAG_NAME, "body").text.lower()  # headers are in capitals
        for text in texts:
            assert text.lower() in body, f"{path}: {text!r} not shown"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert not errors, f"{path}: {errors}"
        height = driver.execute_script(  # the page's height plus the window's own chrome
            "return document.documentElement.scrollHeight + outerHeight - innerHeight"
        )
        driver.set_window_size(1400, min(height, 6000))
        driver.save_screenshot(
            str(shots / f"{path.strip('/').replace('/', '-') or 'overview'}.png")
        )
        driver.set_window_size(1400, 1000)


def _promtool(*args: str) -> str:
    done = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _watch_with_prometheus(folder: Path, api_port: int, console_port: int, key: str) -> None:
    """The shipped Prometheus configuration, pointed at the demo's servers and scraping each
    second; `promtool` checks it, the rules (and their unit tests) and every scraped page; a
    real Prometheus then scrapes both servers, evaluates the rules without error, fires the
    flagged reviewer's alert, and holds every series the rules and the Grafana dashboard read."""
    shutil.copytree(REPO / "deploy" / "prometheus", folder)
    config = (folder / "prometheus.yml").read_text()
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{api_port}")
    config = config.replace("127.0.0.1:8095", f"127.0.0.1:{console_port}")
    config = re.sub(r"(scrape|evaluation)_interval: \d+s", r"\1_interval: 1s", config)
    (folder / "prometheus.yml").write_text(config)
    (folder / "flywheel-console.key").write_text(key)
    _promtool("check", "config", str(folder / "prometheus.yml"))
    _promtool("test", "rules", str(folder / "flywheel-rules.test.yml"))

    # the dashboard's queries parse: checked as recording rules
    dashboard = json.loads((REPO / "deploy" / "grafana" / "flywheel.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    recorded = [
        {
            "record": f"dashboard:query{i}",
            "expr": q.replace("$policy", ".*").replace("$__rate_interval", "1m"),
        }
        for i, q in enumerate(queries)
    ]
    (folder / "dashboard-rules.yml").write_text(
        json.dumps({"groups": [{"name": "d", "rules": recorded}]})
    )
    _promtool("check", "rules", str(folder / "dashboard-rules.yml"))

    for url, headers in (
        (f"http://127.0.0.1:{api_port}/metrics", {}),
        (f"http://127.0.0.1:{console_port}/metrics", {"Authorization": f"Bearer {key}"}),
    ):
        scraped = httpx.get(url, headers=headers, timeout=30).text
        lint = subprocess.run(
            ["promtool", "check", "metrics"],
            input=scraped,
            text=True,
            capture_output=True,
            timeout=60,
        )
        assert lint.returncode == 0, f"{url}: {lint.stdout}{lint.stderr}"

    port = free_port()
    prometheus_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "prometheus.log").open("w"),
    )
    try:

        def query(expr: str) -> list[dict]:
            answer = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
            return answer.json()["data"]["result"]

        def ready() -> bool:
            try:
                return len(query("up == 1")) == 2
            except (httpx.HTTPError, KeyError, ValueError):
                return False

        wait_until(ready, 120, "Prometheus to scrape the scoring API and the console")
        wait_until(
            lambda: query('ALERTS{alertname="FlywheelReviewerFlagged"}'),
            60,
            "the flagged reviewer's alert to fire",
        )
        fired = query('ALERTS{alertname="FlywheelReviewerFlagged"}')
        assert {a["metric"]["reviewer"] for a in fired} == {"rev-fox"}, fired
        rules = httpx.get(f"{prometheus_url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        broken = [r["name"] for g in rules for r in g["rules"] if r["health"] != "ok"]
        assert not broken and sum(len(g["rules"]) for g in rules) >= 16, rules

        names = set(
            httpx.get(f"{prometheus_url}/api/v1/label/__name__/values", timeout=10).json()["data"]
        )
        read = set(
            re.findall(
                r"\b(flywheel_[a-z_]+)",
                " ".join(queries) + (folder / "flywheel-rules.yml").read_text(),
            )
        )
        missing = read - names
        assert not missing, f"series the rules and the dashboard read and nobody exports: {missing}"
    finally:
        server.terminate()
        server.wait(30)
