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


def test_with_queues_each_task_is_held_to_its_queues_sla_and_escalations_count():
    ledger = pd.DataFrame(
        {
            "task_id": ["1", "2", "3"],
            "queue": ["review", "review", "audit"],
            "review_queue": ["urgent", "general", "general"],
            "pushed_at": pd.to_datetime(["2026-11-10T06:00Z"] * 3),  # six hours ago
        }
    )
    report = backlog(
        ledger, pd.DataFrame(), NOW, 24, {"urgent": 4.0, "general": 24.0}, escalated={"1", "9"}
    )
    assert report["sla_breaches"] == 1  # the urgent one: 6 h against 4 h
    assert report["by_queue"] == {"general": 2, "urgent": 1}
    assert report["escalated"] == {"urgent": 1}
