import pandas as pd

from monitoring.health import backlog

NOW = pd.Timestamp("2026-11-10T12:00:00Z")


def test_backlog_counts_open_tasks_sla_breaches_and_time_to_decision():
    ledger = pd.DataFrame(
        {
            "task_id": ["1", "2", "3", "4"],
            "queue": ["review", "review", "audit", "gold"],
            "pushed_at": pd.to_datetime(
                ["2026-11-08T12:00Z", "2026-11-10T06:00Z", "2026-11-09T00:00Z", "2026-11-10T10:00Z"]
            ),
        }
    )
    decisions = pd.DataFrame(
        {
            "task_id": ["3", "3", "4"],
            "decided_at": pd.to_datetime(
                ["2026-11-09T06:00Z", "2026-11-09T09:00Z", "2026-11-10T11:00Z"]
            ),
        }
    )
    report = backlog(ledger, decisions, NOW, sla_hours=24)
    assert report["open_tasks"] == 2
    assert report["by_queue"] == {"review": 2}
    assert report["oldest_hours"] == 48.0
    assert report["sla_breaches"] == 1  # task 1 waited 48 h, task 2 only 6 h
    assert report["median_hours_to_decision"] == 3.5  # 6 h (first decision) and 1 h


def test_an_empty_ledger_has_no_backlog():
    report = backlog(pd.DataFrame(), pd.DataFrame(), NOW, sla_hours=24)
    assert report["open_tasks"] == 0 and report["sla_breaches"] == 0
