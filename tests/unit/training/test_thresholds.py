import math

import numpy as np
import pytest

from flywheel.policy import Targets
from flywheel.registry import Thresholds
from training.train import choose_thresholds


def _precision_recall(y, scores, t):
    flagged = scores >= t
    tp = (flagged & y).sum()
    return (tp / flagged.sum() if flagged.sum() else np.nan), tp / y.sum()


@pytest.mark.parametrize("seed", range(5))
def test_thresholds_follow_the_contract_by_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(400) < 0.1
    scores = np.clip(
        np.where(y, rng.normal(0.7, 0.2, 400), rng.normal(0.2, 0.15, 400)), 0, 1
    ).round(2)
    targets = Targets(auto_action_precision=0.9, review_recall=0.85)
    chosen = choose_thresholds(y, scores, targets)
    candidates = np.unique(scores)
    precise = [t for t in candidates if _precision_recall(y, scores, t)[0] >= 0.9]
    recalled = [t for t in candidates if _precision_recall(y, scores, t)[1] >= 0.85]
    assert chosen.auto_action == min(precise)
    assert chosen.review == min(max(recalled), chosen.auto_action)


def test_unreachable_precision_turns_auto_action_off():
    y = np.array([True, False, True, False])
    scores = np.array([0.9, 0.9, 0.5, 0.5])
    chosen = choose_thresholds(y, scores, Targets(auto_action_precision=0.99, review_recall=0.5))
    assert math.isinf(chosen.auto_action)
    assert chosen.review == 0.9
    assert set(chosen.decide(scores)) == {"review", "allow"}


def test_review_never_above_auto_action():
    y = np.array([True, True, False, False, False])
    scores = np.array([0.95, 0.3, 0.2, 0.1, 0.05])
    chosen = choose_thresholds(y, scores, Targets(auto_action_precision=0.5, review_recall=0.5))
    assert chosen.review <= chosen.auto_action


def test_decide_is_inclusive_at_each_threshold():
    thresholds = Thresholds(auto_action=0.8, review=0.3)
    assert thresholds.decide(np.array([0.0, 0.2999, 0.3, 0.7999, 0.8, 1.0])).tolist() == [
        "allow",
        "allow",
        "review",
        "review",
        "auto_action",
        "auto_action",
    ]


def test_thresholds_round_trip_through_tags():
    for thresholds in (Thresholds(0.912345678901, 0.05), Thresholds(math.inf, 0.1)):
        assert Thresholds.from_tags(thresholds.as_tags()) == thresholds
