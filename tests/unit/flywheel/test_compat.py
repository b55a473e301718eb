"""What the compiled path relies on in scikit-learn's and LightGBM's private parts: pinned here,
so a release that moves or changes one fails by name (`flywheel/compat.py`)."""

import lightgbm
import numpy as np
import scipy.sparse as sp
from sklearn.calibration import CalibratedClassifierCV

from flywheel.compat import booster_predictor, row_normalizer, sigmoid_calibration_type


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = sp.random(n, 20, density=0.3, format="csr", random_state=seed)
    y = (x[:, 0].toarray().ravel() + rng.normal(0, 0.1, n) > 0.1).astype(int)
    return x, y


def test_the_sigmoid_calibrator_is_platts_with_a_and_b():
    x, y = _data()
    model = CalibratedClassifierCV(
        lightgbm.LGBMClassifier(n_estimators=10, verbose=-1), method="sigmoid", cv=2
    ).fit(x, y)
    calibrator = model.calibrated_classifiers_[0].calibrators[0]
    assert isinstance(calibrator, sigmoid_calibration_type())
    margins = np.linspace(-3, 3, 7)
    expected = 1 / (1 + np.exp(calibrator.a_ * margins + calibrator.b_))
    assert np.allclose(calibrator.predict(margins), expected)


def test_the_inner_predictor_scores_as_the_booster_does():
    x, y = _data()
    model = lightgbm.LGBMClassifier(n_estimators=15, verbose=-1).fit(x, y)
    predict = booster_predictor(model.booster_, None)
    assert np.array_equal(predict(x, True), model.booster_.predict(x, raw_score=True))
    assert np.array_equal(predict(x, False), model.booster_.predict(x))
    from lightgbm.basic import _InnerPredictor  # the private class the fast path uses

    assert hasattr(_InnerPredictor, "from_booster")


def test_the_row_normaliser_makes_csr_rows_unit_length_in_place():
    x, _ = _data()
    x = x.astype(np.float64)
    before = x.copy()
    row_normalizer()(x)
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    nonempty = np.diff(before.indptr) > 0
    assert np.allclose(norms[nonempty], 1.0)
    assert np.array_equal(x.indices, before.indices)
