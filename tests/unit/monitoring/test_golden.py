import numpy as np
from sklearn.metrics import confusion_matrix, precision_score, recall_score

from monitoring.golden import error_rates


def test_error_rates_match_scikit_learn_and_intervals_hold_them():
    rng = np.random.default_rng(4)
    truth = rng.random(700) < 0.3
    flagged = np.where(truth, rng.random(700) < 0.8, rng.random(700) < 0.05)
    rates = error_rates(truth, flagged, confidence=0.95)
    tn, fp, fn, tp = confusion_matrix(truth, flagged).ravel()
    assert rates["precision"]["value"] == precision_score(truth, flagged)
    assert rates["recall"]["value"] == recall_score(truth, flagged)
    assert rates["fpr"]["value"] == fp / (fp + tn)
    assert rates["fnr"]["value"] == fn / (fn + tp)
    for name in ("precision", "recall", "fpr", "fnr"):
        assert rates[name]["low"] <= rates[name]["value"] <= rates[name]["high"]


def test_an_empty_denominator_is_reported_as_missing():
    rates = error_rates(np.array([False, False]), np.array([False, False]), confidence=0.95)
    assert rates["precision"]["value"] is None and rates["recall"]["n"] == 0
