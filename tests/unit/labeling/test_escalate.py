"""Which tasks are due for escalation: near their SLA, savable, in a queue keeping its SLA."""

import pandas as pd

from flywheel.lake import Lake
from flywheel.settings import Settings
from labeling.escalate import due
from tests.conftest import queued_policy


def _push(lake: Lake, queue: str, hours_ago: list[float], now: pd.Timestamp, first: int) -> None:
    n = len(hours_ago)
    lake.record_pushed(
        "spam",
        pd.DataFrame(
            {
                "item_id": [f"i{first + k}" for k in range(n)],
                "queue": ["review"] * n,
                "review_queue": [queue] * n,
                "reason": ["in the band"] * n,
                "task_id": [str(first + k) for k in range(n)],
                "project_id": [5] * n,
                "pushed_at": [now - pd.Timedelta(hours=h) for h in hours_ago],
            }
        ),
    )


def test_a_queue_with_a_late_task_escalates_nothing_a_queue_in_time_escalates_what_is_near(
    tmp_path,
):
    """General and Portuguese both have a 24-hour SLA, escalation at 75% (18 hours). In
    Portuguese, a task 20 hours old is escalated, one 10 hours old is not yet; in general, the
    same task 20 hours old waits in harm's order, because a task 30 hours old says the queue is
    short of hands (escalating there would only make the fresher tasks late in turn)."""
    policy = queued_policy(tmp_path / "policies")
    lake = Lake(Settings(home=tmp_path / "home").lake_dir)
    now = pd.Timestamp.now(tz="UTC")
    _push(lake, "portuguese", [20.0, 10.0], now, 0)
    _push(lake, "general", [20.0, 30.0], now, 10)

    assert due(policy, lake, now)["task_id"].tolist() == ["0"]
    # once the late task is decided, general keeps its SLA again and its due task goes first
    decided = {"item_id": ["i11"], "label": ["benign"], "reviewer_id": ["rev-ana"]}
    decided |= {"decided_at": [now], "task_id": ["11"]}
    lake.append_decisions("spam", pd.DataFrame(decided), "test")
    assert sorted(due(policy, lake, now)["task_id"]) == ["0", "10"]
