"""Where blind tasks (audit, gold) sit in their queue's order."""

import pandas as pd

from labeling.dispatch import _blind
from labeling.route import UNSCORED
from tests.conftest import queued_policy


def test_blind_tasks_take_a_review_tasks_place_or_an_unscored_one_where_there_is_none(tmp_path):
    policy = queued_policy(tmp_path)
    tasks = pd.DataFrame(
        {
            "item_id": ["r1", "r2", "a1", "g1", "a2"],
            "purpose": ["review", "review", "audit", "gold", "audit"],
            "review_queue": ["general", "general", "general", "general", "urgent"],
            "harm": [0.9, 0.4, 0.01, 0.5, 0.02],
        }
    )
    placed = _blind(tasks, policy)
    # in general, among the review tasks' own harms: no place tells an audit from a review
    assert set(placed[2:4]) <= {0.9, 0.4}
    assert list(placed[:2]) == [0.9, 0.4]
    # urgent got no review task in this push: an unscored urgent task's place, not the last
    assert placed[4] == UNSCORED * 3
