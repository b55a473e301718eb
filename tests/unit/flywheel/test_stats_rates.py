import numpy as np
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from flywheel.stats import confusion_rates


def test_the_one_error_rate_rule_matches_scikit_learn_and_intervals_hold_it():
    rng = np.random.default_rng(4)
    truth = rng.random(700) < 0.3
    flagged = np.where(truth, rng.random(700) < 0.8, rng.random(700) < 0.05)
    rates = confusion_rates(truth, flagged, confidence=0.95)
    tn, fp, fn, tp = confusion_matrix(truth, flagged).ravel()
    assert rates["precision"].value == precision_score(truth, flagged)
    assert rates["recall"].value == recall_score(truth, flagged)
    assert rates["fpr"].value == fp / (fp + tn)
    assert rates["fnr"].value == fn / (fn + tp)
    for rate in rates.values():
        assert rate.low <= rate.value <= rate.high


def test_an_empty_denominator_is_reported_as_missing():
    rates = confusion_rates(np.array([False, False]), np.array([False, False]), confidence=0.95)
    assert rates["precision"].value is None and rates["recall"].n == 0
    assert rates["precision"].as_dict() == {"value": None, "low": None, "high": None, "n": 0}
