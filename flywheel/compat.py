"""The private parts of scikit-learn and LightGBM the compiled scoring path leans on, in one place.

The compiled path (`flywheel.compiled`) repeats a fitted pipeline's arithmetic with arrays; three
things it needs are not public API. Each is reached only through this module, and
`tests/unit/flywheel/test_compat.py` pins what it is relied on to do, so a library release that
moves or changes one fails there, by name, and the runtime's load check sends the model to the
reference path rather than scoring it wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp


def sigmoid_calibration_type() -> type:
    """scikit-learn's Platt calibrator (`a_`, `b_`: p = 1 / (1 + exp(a * f + b)))."""
    from sklearn.calibration import _SigmoidCalibration

    return _SigmoidCalibration


def row_normalizer() -> Callable[[Any], None]:
    """scikit-learn's in-place l2 normaliser of a CSR matrix's rows (what TfidfTransformer
    calls); it reads only `data`, `indices`, `indptr` and `shape`."""
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    return inplace_csr_row_normalize_l2


def booster_predictor(
    booster: Any, best_iteration: int | None
) -> Callable[[sp.csr_matrix, bool], np.ndarray]:
    """LightGBM prediction on one thread, `(matrix, raw_margin) -> scores`.

    `Booster.predict` builds a new inner predictor (and asks the library for its shape) on every
    call, a tenth of a millisecond that small batches feel; LightGBM's private `_InnerPredictor`
    is built once here instead. Should a release rename it, `Booster.predict` is used as it is.
    """
    num_iteration = best_iteration or -1
    try:
        from lightgbm.basic import _InnerPredictor

        inner = _InnerPredictor.from_booster(booster, {"num_threads": 1})
    except (ImportError, AttributeError, TypeError):
        return lambda matrix, margin: booster.predict(
            matrix, raw_score=margin, num_iteration=best_iteration or None, num_threads=1
        )
    return lambda matrix, margin: inner.predict(
        matrix, num_iteration=num_iteration, raw_score=margin
    )
