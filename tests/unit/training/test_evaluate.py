import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_score,
    recall_score,
    roc_auc_score,
)

from flywheel.registry import Thresholds
from training.evaluate import binary_metrics, calibration_error, evaluate, flatten


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    y = rng.random(2000) < 0.08
    scores = np.clip(np.where(y, rng.beta(5, 2, 2000), rng.beta(1.5, 8, 2000)), 0, 1)
    frame = pd.DataFrame({"surface": rng.choice(["dm", "post", "comment"], 2000)})
    return frame, y, scores


def test_figures_match_scikit_learn(scored):
    _, y, scores = scored
    thresholds = Thresholds(auto_action=0.7, review=0.3)
    m = binary_metrics(y, scores, thresholds)
    for point, t in (("auto_action", 0.7), ("review", 0.3)):
        flagged = scores >= t
        tn, fp, fn, tp = confusion_matrix(y, flagged).ravel()
        assert m[f"{point}_precision"] == pytest.approx(precision_score(y, flagged))
        assert m[f"{point}_recall"] == pytest.approx(recall_score(y, flagged))
        assert m[f"{point}_fpr"] == pytest.approx(fp / (fp + tn))
        assert m[f"{point}_fnr"] == pytest.approx(fn / (fn + tp))
        assert m[f"{point}_flagged"] == flagged.sum()
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, scores))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, scores))
    assert m["positives"] == y.sum() and m["items"] == 2000


def test_undefined_figures_are_none_not_zero():
    m = binary_metrics(np.array([False, False]), np.array([0.1, 0.2]), Thresholds(0.9, 0.5))
    assert m["auto_action_precision"] is None and m["auto_action_recall"] is None
    assert m["roc_auc"] is None and m["auto_action_fpr"] == 0.0


def test_calibration_error():
    y = np.array([True, False] * 50)
    assert calibration_error(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert calibration_error(y, np.full(100, 0.9)) == pytest.approx(0.4)


def test_slices_cover_every_value(scored, spam):
    frame, y, scores = scored
    policy = spam.model_copy(
        update={"fields": spam.fields.model_copy(update={"categorical": ["surface"]})}
    )
    report = evaluate(frame, y, scores, Thresholds(0.7, 0.3), policy)
    dm = frame["surface"].eq("dm").to_numpy()
    assert set(report["slices"]["surface"]) == {"comment", "dm", "post"}
    assert report["slices"]["surface"]["dm"] == binary_metrics(
        y[dm], scores[dm], Thresholds(0.7, 0.3)
    )
    flat = flatten(report, "golden")
    assert (
        flat["golden/surface/dm/review_recall"]
        == report["slices"]["surface"]["dm"]["review_recall"]
    )
    assert all(isinstance(v, float) for v in flat.values())
