import numpy as np
import pandas as pd
import pytest

from labeling.sample import audit_sample
from monitoring.production import RATES, audit_estimates, score_estimates
from tests.conftest import policy_variant


@pytest.fixture(scope="module")
def population():
    """Traffic with calibrated scores, the model's decisions and the truth."""
    rng = np.random.default_rng(3)
    n = 200_000
    score = rng.beta(0.4, 6, n)
    truth = rng.random(n) < score
    decision = np.where(score >= 0.6, "auto_action", np.where(score >= 0.15, "review", "allow"))
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "score": score,
            "decision": decision,
            "truth": truth,
        }
    )


def _true_rates(pop: pd.DataFrame) -> dict:
    d, y = pop["decision"].to_numpy(), pop["truth"].to_numpy()
    return {name: num(d, y).sum() / den(d, y).sum() for name, (num, den) in RATES.items()}


def test_audit_weighted_intervals_cover_the_true_rates_and_naive_ones_miss(population, tmp_path):
    policy = policy_variant(
        tmp_path, audit_rates={"allow": 0.01, "review": 0.05, "auto_action": 0.2}
    )
    audit = audit_sample(population, policy, pushed=set()).assign(queue="audit")
    queue = (
        population[population["decision"] == "review"]
        .head(3000)
        .assign(queue="review", sampling_prob=1.0)
    )
    labelled = pd.concat([audit, queue], ignore_index=True)
    report = audit_estimates(labelled, confidence=0.95)
    truth = _true_rates(population)
    for name, value in truth.items():
        estimate = report["rates"][name]
        assert estimate["low"] <= value <= estimate["high"], (name, value, estimate)
    # the review queue is full of likely violations: a naive prevalence is far too high,
    # and, having seen no allowed item, it claims that nothing violating was let through
    prevalence = report["rates"]["prevalence"]
    assert prevalence["naive"] > 2 * truth["prevalence"]
    assert prevalence["naive_bias"] == pytest.approx(prevalence["naive"] - prevalence["value"])
    assert report["rates"]["allow_fnr"]["naive"] == 0.0 < truth["allow_fnr"]


def test_calibrated_scores_estimate_the_rates_without_labels(population):
    estimate = score_estimates(population["score"], population["decision"])
    truth = _true_rates(population)
    d, y = population["decision"].to_numpy(), population["truth"].to_numpy()
    for name, value in truth.items():
        # the realised rate is one draw of the truth: allow three standard errors of it
        n = RATES[name][1](d, y).sum()
        tolerance = 3 * np.sqrt(value * (1 - value) / n)
        assert estimate["rates"][name] == pytest.approx(value, abs=tolerance), name
