import numpy as np
import pytest

from flywheel.policy import parse_policy
from flywheel.registry import Thresholds
from flywheel.stats import Rate
from tests.unit.flywheel.test_policy import MINIMAL
from training.evaluate import Paired, binary_metrics, compare_where_champion_operates
from training.promote import gate

POLICY = parse_policy(
    MINIMAL
    + "promotion: {recall_drop_tolerance: 0.02, fpr_rise_tolerance: 0.01, min_golden_positives: 20}\n"
)


def figures(**changes):
    return {"positives": 50, **changes}


def rates(precision=(49, 50), recall=(46, 50)):
    """Golden counts at each operating point: (hits, items)."""
    return {
        "auto_action": {"precision": Rate(*precision, 0.95)},
        "review": {"recall": Rate(*recall, 0.95)},
    }


def paired(name="review recall", worse_by=0.0, at_least=0.0):
    measure = "recall" if name.endswith("recall") else "fpr"
    where = "at the champion's FPR 0.0500"
    return Paired(name, measure, where, 0.9, 0.9 - worse_by, worse_by, at_least)


def failed(checks):
    return [c.name for c in checks if not c.passed]


def test_a_target_fails_only_where_the_golden_set_shows_it_missed():
    assert failed(gate(POLICY, figures(), None, rates())) == []
    # 42 of 50 is a point estimate of 0.84 under the 0.9 target, but 0.9 is inside its bounds
    assert Rate(42, 50, 0.95).high > 0.9
    assert failed(gate(POLICY, figures(), None, rates(recall=(42, 50)))) == []
    # 38 of 50: the upper bound is under the target, so the golden set shows it missed
    assert failed(gate(POLICY, figures(), None, rates(recall=(38, 50)))) == ["review recall"]
    assert failed(gate(POLICY, figures(), None, rates(precision=(40, 50)))) == [
        "auto-action precision"
    ]
    assert failed(gate(POLICY, figures(positives=19), None, rates())) == ["golden positives"]


def test_a_target_with_nothing_to_test_is_said_so_not_failed():
    untested = gate(POLICY, figures(), None, rates(precision=(0, 0)))
    assert failed(untested) == []
    assert "no golden item reaches" in untested[1].detail
    off = gate(POLICY, figures(), None, rates(precision=(0, 0)), auto_action_off=True)
    assert failed(off) == [] and "auto-action is off" in off[1].detail


def test_the_gate_holds_its_confidence_for_a_model_exactly_at_its_target():
    """A model whose true recall is the target fails the check in at most 1 - confidence of
    golden sets; one clearly below it fails in most."""
    rng = np.random.default_rng(0)
    draws = 2000

    def fails(true_recall):
        hits = rng.binomial(45, true_recall, draws)
        return np.mean([Rate(h, 45, 0.95).surely_below(0.9) for h in hits])

    assert fails(0.9) <= 0.05
    assert fails(0.7) >= 0.8


def test_a_challenger_fails_only_where_it_is_surely_worse_than_the_tolerance():
    noise = [paired("review recall", 0.03, 0.005), paired("auto_action FPR", 0.02, 0.009)]
    assert failed(gate(POLICY, figures(), noise, rates())) == []
    surely = [paired("review recall", 0.06, 0.021), paired("auto_action FPR", 0.03, 0.011)]
    assert failed(gate(POLICY, figures(), surely, rates())) == ["review recall", "auto_action FPR"]


def test_own_thresholds_answer_to_the_targets_against_a_champion_too():
    assert failed(gate(POLICY, figures(), [paired()], rates(recall=(38, 50)))) == ["review recall"]


def test_reasons_name_values_bounds_and_targets():
    checks = gate(POLICY, figures(), [paired("review FPR", 0.03, 0.02)], rates(precision=(40, 50)))
    detail = {c.name: c.detail for c in checks}
    low, high = Rate(40, 50, 0.95).low, Rate(40, 50, 0.95).high
    assert detail["auto-action precision"] == (
        f"auto-action precision 0.8000 [{low:.4f}, {high:.4f}] on 50 vs target 0.97: "
        "the golden set shows it below at 95% confidence"
    )
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


def _golden(seed=1, n=600):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    return y, y * 2.0 + rng.normal(0, 1, n), rng


def test_a_clearly_worse_ranking_is_surely_worse_and_a_one_item_change_is_not():
    y, champion, rng = _golden()
    at = binary_metrics(
        y, champion, Thresholds(np.quantile(champion, 0.85), np.quantile(champion, 0.6))
    )
    worse = y * 0.8 + rng.normal(0, 1, len(y))
    for figure in compare_where_champion_operates(y, worse, champion, at, 0.95):
        assert figure.worse_by_at_least > 0.01, figure
    # the champion's hardest positive drops to the bottom: one golden item, at any level
    nudged = champion.copy()
    nudged[np.flatnonzero(y)[np.argmin(champion[y])]] = champion.min() - 1
    for figure in compare_where_champion_operates(y, nudged, champion, at, 0.95):
        assert figure.worse_by_at_least <= 0.002, figure
    same = compare_where_champion_operates(y, champion, champion, at, 0.95)
    assert all(f.worse_by == 0 and f.worse_by_at_least == 0 for f in same)


def test_the_bound_is_reproducible_and_needs_both_classes():
    y, champion, rng = _golden(seed=2)
    other = champion + rng.normal(0, 0.3, len(y))
    at = binary_metrics(
        y, champion, Thresholds(np.quantile(champion, 0.85), np.quantile(champion, 0.6))
    )
    first = compare_where_champion_operates(y, other, champion, at, 0.95)
    assert first == compare_where_champion_operates(y, other, champion, at, 0.95)
    assert (
        compare_where_champion_operates(np.zeros(4, dtype=bool), other[:4], champion[:4], at, 0.95)
        == []
    )
