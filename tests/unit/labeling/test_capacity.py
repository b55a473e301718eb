from datetime import UTC, datetime

import pandas as pd
import pytest

from flywheel.roster import load_roster
from labeling.capacity import capacity, fill
from tests.conftest import queued_policy

MONDAY_9 = datetime(2026, 12, 7, 9, tzinfo=UTC)


def test_capacity_is_the_rostered_hours_within_each_sla_at_each_pace(tmp_path):
    policy = queued_policy(tmp_path)  # overlap 2: two decisions per task
    roster = load_roster(policy)
    waiting = {"general": 100, "portuguese": 100, "urgent": 0, "appeals": 0}
    room = capacity(policy, roster, MONDAY_9, waiting)
    # ana: 8 h on Monday within either 24 h SLA, 20 an hour (80 tasks); bo: general's 24 h
    # holds Monday 22:00-Tuesday 06:00 (8 h at 30 an hour, 120 tasks); urgent's 4 h holds none
    # of it. Equal work waits in portuguese and general, but only ana can decide portuguese
    # where general has her and bo: its pressure is 100/80 against 100/200, and she leans
    # that way, 5 to 2. General is then given more than its 100 tasks: what ana would have
    # spent there beyond them goes back to portuguese (bo's goes nowhere: nothing else waits)
    assert room["general"] == pytest.approx(100)
    ana_general = 80 * (2 / 7) * 100 / (80 * 2 / 7 + 120)
    assert room["portuguese"] == pytest.approx(80 - ana_general)
    assert room["urgent"] == 0 and room["appeals"] == 0


def test_a_shared_reviewer_goes_where_work_waits_that_nobody_else_can_do(tmp_path):
    policy = queued_policy(tmp_path)
    roster = load_roster(policy)
    evening = MONDAY_9.replace(hour=21)
    room = capacity(policy, roster, evening, {"general": 10, "urgent": 100, "appeals": 0})
    # bo works 22:00-01:00 within urgent's 4 h (45 tasks), where only he works; general's
    # 24 h holds his night and ana's Tuesday (200 tasks). Urgent's pressure, 3 x 100 / 45,
    # against general's 10 / 200, takes nearly all his hours, and general, which ana covers,
    # takes only the 10 tasks waiting there: the little bo had left for it goes to urgent
    assert room["general"] == pytest.approx(10)
    assert 0.99 * 45 < room["urgent"] <= 45


def test_fill_reserves_audit_and_gold_keeps_exploration_budget_and_ranks_review_by_harm():
    tasks = pd.DataFrame(
        {
            "review_queue": ["a"] * 8 + ["b"] * 2,
            "purpose": ["review", "review", "review", "explore", "explore", "audit", "gold", "review", "review", "audit"],
            "harm": [0.9, 0.5, 0.1, 0.3, 0.2, 0.0, 0.5, 0.8, 0.7, 0.1],
            "item_id": [f"i{k}" for k in range(10)],
        }
    )  # fmt: skip
    chosen = fill(tasks, {"a": 6, "b": 0}, explore_budget=0.25)
    assert list(chosen["item_id"]) == ["i6", "i5", "i3", "i0", "i7", "i1"]
    assert fill(tasks, {"a": 1}, 0.25)["item_id"].tolist() == ["i6"]  # the statistics first
    # exploration's unused share goes to review, never the other way
    assert fill(tasks[tasks["purpose"] != "explore"], {"a": 4}, 0.5)["item_id"].tolist() == [
        "i6", "i5", "i0", "i7",
    ]  # fmt: skip
