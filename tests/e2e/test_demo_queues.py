"""`flywheel demo` on the policy with review queues: a multilingual world, a roster that cannot
decide everything at once, hours that pass on the home's simulated clock.

Checked on what the platform stored: Portuguese and Swahili items reach their language's
queue, every decision falls in its reviewer's shift and within the roster's pace, tasks wait,
some are escalated near their SLA, and the console's queues page shows the backlog, the SLA
compliance and the forecast in a real browser.
"""

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from flywheel.lake import Lake
from flywheel.policy import load_policy
from flywheel.roster import load_roster
from flywheel.settings import Settings
from tests.conftest import free_port, run_cli

ARGS = ["--policies", "scam", "--cycles", "2", "--emerging-cycle", "2", "--days-per-cycle", "1"]


@pytest.mark.slow
def test_the_demo_runs_its_queues_with_a_team_of_finite_hours(tmp_path, chromium):
    home = tmp_path / "home"
    console_port = free_port()
    ports = ["--api-port", str(free_port()), "--console-port", str(console_port)]
    env = {"LABEL_STUDIO_URL": f"http://127.0.0.1:{free_port()}", "COLUMNS": "80"}
    try:
        out = run_cli("demo", *ARGS, *ports, home=home, **env).stdout
        assert "simulated clock" in out and "All cycles: scam" in out, out
        rows = json.loads((home / "demo" / "cycles.json").read_text())["rows"]
        assert [r["cycle"] for r in rows] == [1, 2]
        lake = Lake(Settings(home=home).lake_dir)
        policy = load_policy("scam")
        ledger = lake.pushed_tasks("scam")
        truth = pd.read_parquet(home / "demo" / "scam" / "truth" / "items.parquet")
        language = truth.drop_duplicates("item_id").set_index("item_id")["language"]

        # routing: an item's language decides its queue, English ones never reach those
        routed = ledger[ledger["queue"] != "gold"].assign(lang=lambda f: f["item_id"].map(language))
        portuguese = routed[routed["lang"] == "pt"]
        assert len(portuguese) >= 5 and portuguese["review_queue"].eq("portuguese").mean() > 0.9
        english = routed[routed["lang"] == ""]
        assert not english["review_queue"].isin(["portuguese", "swahili"]).any()
        assert not routed[routed["review_queue"] == "swahili"]["lang"].ne("sw").any()
        # Swahili, the rare one: candidates reached its queue (its one reviewer's hours bound
        # what was pushed)
        state = lake.labeling_state("scam")
        assert state["routed"]["swahili"]["candidates"] > 0, state["routed"]

        # the roster's hours: every decision made in the demo lies in its reviewer's shift, on
        # the home's clock, and no reviewer decided faster than planned in any hour
        roster = load_roster(policy)
        decided = lake.decisions("scam")
        made = decided[decided["task_id"].notna() & decided["task_id"].ne("")]
        # (the cycles' annotations, and the ones made in the hours after the last cycle)
        assert len(made) > sum(r["annotations"] for r in rows) > 0
        for member in roster.reviewers:
            mine = pd.to_datetime(made.loc[made["reviewer_id"] == member.id, "decided_at"])
            for stamp in mine:
                moment = stamp.to_pydatetime()
                on = member.hours(moment, moment + pd.Timedelta(seconds=1), roster.zone)
                assert on > 0, f"{member.id} decided at {stamp}, off shift"
            per_hour = mine.dt.floor("h").value_counts()
            assert per_hour.max() <= 3 * member.decisions_per_hour, (member.id, per_hour.max())

        # finite hours: work waited, some of it escalated near its SLA, and the queues end
        # the demo with a backlog and a forecast
        assert sum(r["escalated"] for r in rows) > 0 and not lake.escalations("scam").empty
        status = json.loads(lake.labeling_path("scam", "queues.json").read_text())
        assert sum(q["open"] for q in status["queues"]) > 0, status
        assert all(q["days"] for q in status["queues"]), "no forecast written"

        key = json.loads((home / "console" / "key.json").read_text())["key"]
        shots = Path(os.environ.get("FLYWHEEL_SCREENSHOTS") or tmp_path / "shots")
        _look_at_the_queues(chromium, f"http://127.0.0.1:{console_port}", key, shots)
    finally:
        run_cli("stop", home=home, **env)


def _look_at_the_queues(driver, url: str, key: str, shots: Path) -> None:
    """The queues page in a real browser: every queue, its SLA compliance chart, escalations,
    the forecast; no script error; a full-page screenshot for a person to look at."""
    shots.mkdir(parents=True, exist_ok=True)
    driver.set_window_size(1400, 1000)
    driver.get(f"{url}/queues")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 30).until(expected_conditions.url_to_be(f"{url}/queues"))
    WebDriverWait(driver, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) >= 1
    )
    body = driver.find_element(By.TAG_NAME, "body").text.lower()
    for text in ("urgent", "portuguese", "swahili", "general", "appeals", "escalated",
                 "reviewers needed"):  # fmt: skip
        assert text in body, f"/queues: {text!r} not shown"
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    height = driver.execute_script(
        "return document.documentElement.scrollHeight + outerHeight - innerHeight"
    )
    driver.set_window_size(1400, min(height, 6000))
    driver.save_screenshot(str(shots / "queues-scam.png"))
