from flywheel.policy import parse_policy
from tests.unit.flywheel.test_policy import MINIMAL
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


def test_challenger_against_champion_within_tolerances():
    champion = figures()
    assert failed(gate(POLICY, figures(review_recall=0.90, review_fpr=0.06), champion)) == []
    assert failed(gate(POLICY, figures(review_recall=0.899), champion)) == ["review recall"]
    assert failed(gate(POLICY, figures(auto_action_fpr=0.0111), champion)) == ["auto_action FPR"]
    assert failed(gate(POLICY, figures(auto_action_recall=0.4), champion)) == ["auto_action recall"]
    assert failed(gate(POLICY, figures(auto_action_precision=0.9), champion)) == [
        "auto-action precision"
    ]


def test_reasons_name_values_and_targets():
    checks = gate(POLICY, figures(auto_action_precision=0.9), figures())
    detail = next(c.detail for c in checks if c.name == "auto-action precision")
    assert detail == "auto-action precision 0.9000 vs target 0.97"
