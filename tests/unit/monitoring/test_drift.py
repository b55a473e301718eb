import numpy as np
import pandas as pd

from flywheel.policy import load_policy
from monitoring.drift import detect_drift


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "text": rng.choice(["thanks see you", "great photo", "lunch tomorrow", "the game"], n),
            "account_age_days": rng.gamma(2, 300, n) * (1 - shift),
            "links": rng.poisson(0.3 + 3 * shift, n).astype(float),
            "prior_reports": rng.poisson(0.1, n).astype(float),
            "messages_last_hour": rng.poisson(2 + 10 * shift, n).astype(float),
            "surface": rng.choice(["post", "comment", "dm"], n),
            "country": rng.choice(["US", "BR", "IN"], n),
            "score": np.clip(rng.beta(0.5, 8, n) + shift, 0, 1),
        }
    )


def test_shifted_signals_and_scores_drift_and_an_absent_field_is_reported():
    policy = load_policy("spam")
    reference = _frame(3000, 0)
    same = detect_drift(reference, _frame(3000, 1), policy)
    assert same.drifted_share == 0 and not same.score["drifted"]

    shifted = _frame(3000, 2, shift=0.5).assign(country=None)
    result = detect_drift(reference, shifted, policy)
    assert result.score["drifted"]
    assert {"links", "messages_last_hour", "account_age_days"} <= {
        name for name, f in result.fields.items() if f["drifted"]
    }
    assert "country" not in result.fields
    assert any("country" in note for note in result.notes)


def test_an_empty_window_is_a_note_not_a_crash():
    policy = load_policy("spam")
    result = detect_drift(_frame(100, 0), _frame(0, 1), policy)
    assert result.fields == {} and result.drifted_share is None
    assert any("empty" in note for note in result.notes)
