"""Audit sizing: rates that reach the policy's half-widths, on many seeded windows."""

import numpy as np
import pandas as pd

from flywheel.audit import size_audit
from flywheel.policy import load_policy
from monitoring.production import ratio_estimate

VOLUME = {"allow": 8500, "review": 1300, "auto_action": 200}
VIOLATING = {"allow": 0.006, "review": 0.3, "auto_action": 0.95}


def test_rates_rise_where_the_estimate_needs_them_and_never_below_the_floor():
    policy = load_policy("spam")
    plan = size_audit(VOLUME, VIOLATING, policy)
    floor = policy.labeling.audit_rates
    assert plan.rates["allow"] > floor.allow  # allowed violations are rare: audit more of them
    assert all(plan.rates[d] >= getattr(floor, d) for d in plan.rates)
    assert all(r <= policy.monitoring.audit_max_rate for r in plan.rates.values())
    assert plan.half_width["allow_fnr"] <= policy.monitoring.audit_half_width.allow_fnr * 1.001
    quiet = size_audit({d: v // 10 for d, v in VOLUME.items()}, VIOLATING, policy)
    assert quiet.capped and quiet.rates["allow"] == policy.monitoring.audit_max_rate
    busy = size_audit({d: v * 10 for d, v in VOLUME.items()}, VIOLATING, policy)
    assert busy.rates == floor.model_dump() and not busy.capped


def test_the_planned_half_width_is_what_audits_at_those_rates_give():
    """Windows drawn from the plan's world, audited at its rates: the allow FNR interval's
    half-width is about the planned one, and its bounds cover the truth as promised."""
    policy = load_policy("spam")
    plan = size_audit(VOLUME, VIOLATING, policy)
    rng = np.random.default_rng(5)
    decisions = np.concatenate([np.full(n, d) for d, n in VOLUME.items()])
    rates = pd.Series(decisions).map(plan.rates).to_numpy()
    widths, low_misses, high_misses = [], 0, 0
    draws = 300
    for _ in range(draws):
        truth = rng.random(len(decisions)) < pd.Series(decisions).map(VIOLATING).to_numpy()
        true_fnr = (truth & (decisions == "allow")).sum() / truth.sum()
        drawn = rng.random(len(decisions)) < rates
        d, y, p = decisions[drawn], truth[drawn], rates[drawn]
        estimate = ratio_estimate((d == "allow") & y, y, p, policy.monitoring.confidence)
        widths.append((estimate["high"] - estimate["low"]) / 2)
        low_misses += estimate["low"] > true_fnr
        high_misses += estimate["high"] < true_fnr
    wanted = policy.monitoring.audit_half_width.allow_fnr
    assert 0.5 * wanted < np.median(widths) < 1.5 * wanted
    assert low_misses / draws <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / draws)
    assert high_misses / draws <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / draws)
