import numpy as np
import pytest

from flywheel.policy import parse_policy
from tests.unit.flywheel.test_policy import MINIMAL
from training.evaluate import Paired, compare_where_champion_operates
from training.promote import gate

POLICY = parse_policy(
    MINIMAL
    + "promotion: {recall_drop_tolerance: 0.02, fpr_rise_tolerance: 0.01, min_golden_positives: 20}\n"
)


def figures(**changes):
    base = {
        "positives": 50,
        "auto_action_precision": 0.98,
        "auto_action_recall": 0.5,
        "auto_action_fpr": 0.001,
        "review_recall": 0.92,
        "review_fpr": 0.05,
    }
    return {**base, **changes}


def paired(name="review recall", worse_by=0.0, at_least=0.0):
    return Paired(name, "at the champion's FPR 0.0500", 0.9, 0.9 - worse_by, worse_by, at_least)


def failed(checks):
    return [c.name for c in checks if not c.passed]


def test_first_model_must_meet_the_absolute_targets():
    assert failed(gate(POLICY, figures(), None)) == []
    assert failed(gate(POLICY, figures(review_recall=0.85), None)) == ["review recall"]
    assert failed(gate(POLICY, figures(auto_action_precision=0.96), None)) == [
        "auto-action precision"
    ]
    assert failed(gate(POLICY, figures(auto_action_precision=None), None)) == [
        "auto-action precision"
    ]
    assert failed(gate(POLICY, figures(positives=19), None)) == ["golden positives"]


def test_a_challenger_fails_only_where_it_is_surely_worse_than_the_tolerance():
    noise = [paired("review recall", 0.03, 0.005), paired("auto_action FPR", 0.02, 0.009)]
    assert failed(gate(POLICY, figures(), noise)) == []
    surely = [paired("review recall", 0.06, 0.021), paired("auto_action FPR", 0.03, 0.011)]
    assert failed(gate(POLICY, figures(), surely)) == ["review recall", "auto_action FPR"]


def test_own_thresholds_answer_to_the_targets_against_a_champion_too():
    assert failed(gate(POLICY, figures(review_recall=0.85), [paired()])) == ["review recall"]
    assert failed(gate(POLICY, figures(auto_action_precision=0.9), [paired()])) == [
        "auto-action precision"
    ]


def test_reasons_name_values_and_targets():
    checks = gate(POLICY, figures(auto_action_precision=0.9), [paired("review FPR", 0.03, 0.02)])
    detail = {c.name: c.detail for c in checks}
    assert detail["auto-action precision"] == "auto-action precision 0.9000 vs target 0.97"
    assert detail["review FPR"] == (
        "review FPR 0.8700 vs champion 0.9000 at the champion's FPR 0.0500: worse by 0.0300, "
        "by at least 0.0200 at 95% confidence (may be worse by 0.01)"
    )


Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
CHAMPION = np.array([0.9, 0.8, 0.45, 0.4, 0.5, 0.3, 0.2, 0.1, 0.05, 0.01])
AT = {"auto_action_fpr": 0.0, "auto_action_recall": 0.5, "review_fpr": 1 / 6, "review_recall": 1.0}


def by_name(figures):
    return {f.name: f for f in figures}


def test_comparison_reads_both_models_where_the_champion_operates():
    better = np.array([0.9, 0.8, 0.7, 0.4, 0.5, 0.3, 0.2, 0.1, 0.05, 0.01])
    figures = by_name(compare_where_champion_operates(Y, better, CHAMPION, AT, 0.95))
    assert (figures["auto_action recall"].champion, figures["auto_action recall"].challenger) == (
        0.5,
        0.75,
    )
    assert figures["auto_action recall"].worse_by == -0.25
    assert figures["review FPR"].challenger == pytest.approx(1 / 6)
    assert figures["review FPR"].worse_by == 0
    assert compare_where_champion_operates(Y, better, CHAMPION, AT, 0.95)[0].where == (
        "at the champion's FPR 0.0000"
    )


def test_the_bound_grows_with_the_disagreement_not_with_the_gap_alone():
    worse = np.array([0.9, 0.3, 0.7, 0.2, 0.8, 0.5, 0.2, 0.1, 0.05, 0.01])
    figures = by_name(compare_where_champion_operates(Y, worse, CHAMPION, AT, 0.95))
    review = figures["review FPR"]
    assert review.worse_by == pytest.approx(0.5 - 1 / 6)
    assert 0 < review.worse_by_at_least < review.worse_by
    same = by_name(compare_where_champion_operates(Y, CHAMPION, CHAMPION, AT, 0.95))
    assert all(f.worse_by == 0 and f.worse_by_at_least == 0 for f in same.values())
    assert (
        compare_where_champion_operates(np.zeros(4, dtype=bool), worse[:4], CHAMPION[:4], AT, 0.95)
        == []
    )
