"""How large the blind audit must be for its estimates to say something.

The blind audit draws each logged item with its decision's rate (its inclusion probability),
and monitoring estimates production error rates from it by Horvitz-Thompson ratios. How precise
such a ratio is depends on the traffic of each decision and on how many violations it holds, so
a fixed rate is too much for a busy policy and far too little for a quiet one (an audit that saw
no violating allowed item shows an allow FNR of 0 on nothing). Here the rates are sized so that
each figure's estimate over one window reaches the half-width the policy names
(`monitoring.audit_half_width`), from the window's volume per decision and the current estimate
of violations in each (the calibrated scores' mean, a label-free estimate), never below the
policy's `labeling.audit_rates` and within its caps.

Labeling (the push draws with these rates) and monitoring (the report says how many audited
items each figure rests on and how many it needs) both use it, so it lives here.

The variance of a ratio R = sum(y) / sum(x) under Poisson sampling is, linearised,
sum over strata d of N_d (1/p_d - 1) E_d[(y - R x)^2] / X^2; for one figure the cheapest rates
meeting a variance are Neyman's, p_d proportional to the square root of each stratum's share of
it per item, and for several figures the rates are raised until every one is met.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from flywheel.policy import Policy
from flywheel.predictions import latest_per_item
from flywheel.registry import DECISIONS

FIGURES = ("allow_fnr", "auto_action_fpr", "auto_action_precision")


@dataclass(frozen=True)
class AuditPlan:
    """Audit rates per decision, and what they are expected to give."""

    rates: dict[str, float]
    volume: dict[str, int]  # items per decision in the window
    expected_items: float  # audited items the rates draw from the window
    half_width: dict[str, float | None] = field(default_factory=dict)  # expected, per figure
    denominators: dict[str, float] = field(default_factory=dict)  # audited items each rests on
    wanted: dict[str, float | None] = field(default_factory=dict)  # the policy's half-widths
    capped: bool = False  # the caps kept some figure from its half-width

    def as_dict(self) -> dict:
        return {
            "rates": self.rates,
            "volume": self.volume,
            "expected_items": round(self.expected_items, 1),
            "expected_half_width": self.half_width,
            "expected_denominator_items": self.denominators,
            "wanted_half_width": self.wanted,
            "capped": self.capped,
        }


def _terms(figure: str, volume: np.ndarray, violating: np.ndarray) -> tuple[np.ndarray, float]:
    """Per stratum (allow, review, auto_action): N_d E_d[(y - R x)^2], and X = E[sum x]."""
    allow, auto = 0, 2
    if figure == "allow_fnr":
        x = volume * violating
        total = x.sum()
        rate = x[allow] / total if total else 0.0
        error = volume * violating * np.where(np.arange(3) == allow, (1 - rate) ** 2, rate**2)
        return error, float(total)
    if figure == "auto_action_fpr":
        x = volume * (1 - violating)
        total = x.sum()
        rate = x[auto] / total if total else 0.0
        error = volume * (1 - violating) * np.where(np.arange(3) == auto, (1 - rate) ** 2, rate**2)
        return error, float(total)
    # auto_action_precision: only auto-actioned items count
    error = np.zeros(3)
    error[auto] = volume[auto] * violating[auto] * (1 - violating[auto])
    return error, float(volume[auto])


def _counted(figure: str, violating: np.ndarray) -> np.ndarray:
    """Per stratum, the share of its items in the figure's denominator."""
    if figure == "allow_fnr":
        return violating
    if figure == "auto_action_fpr":
        return 1 - violating
    return np.array([0.0, 0.0, 1.0])


def _variance(error: np.ndarray, total: float, rates: np.ndarray) -> float:
    if total <= 0:
        return float("inf")
    safe = np.maximum(rates, 1e-12)
    return float((error * (1 / safe - 1)).sum() / total**2)


def _neyman(error: np.ndarray, volume: np.ndarray, total: float, target: float, floor, cap):
    """The cheapest rates, between floor and cap, giving a variance of at most `target`."""
    rates = floor.copy()
    free = (error > 0) & (volume > 0)
    for _ in range(len(rates) + 1):
        fixed = ~free
        budget = (
            target * total**2 + error.sum() - (error[fixed] / np.maximum(rates[fixed], 1e-12)).sum()
        )
        if budget <= 0 or not free.any():
            return np.where(free, cap, rates)
        scale = np.sqrt(error[free] * volume[free]).sum() / budget
        wanted = np.sqrt(error[free] / volume[free]) * scale
        clipped = np.clip(wanted, floor[free], cap[free])
        rates[free] = clipped
        moved = clipped != wanted
        if not moved.any():
            return rates
        free_idx = np.flatnonzero(free)
        free[free_idx[moved]] = False
    return rates


def size_audit(volume: dict[str, int], violating: dict[str, float], policy: Policy) -> AuditPlan:
    """Rates per decision that meet every half-width the policy names over one window of this
    volume, with `violating` the expected share of violations among each decision's items."""
    rules = policy.monitoring
    floor = np.array([getattr(policy.labeling.audit_rates, d) for d in DECISIONS], dtype=float)
    cap = np.maximum(floor, rules.audit_max_rate)
    n = np.array([float(volume.get(d, 0)) for d in DECISIONS])
    share = np.clip([float(violating.get(d, 0.0)) for d in DECISIONS], 1e-3, 1 - 1e-3)
    z = float(norm.ppf(rules.confidence))
    wanted = {f: getattr(rules.audit_half_width, f) for f in FIGURES}
    rates = floor.copy()
    for _ in range(10):
        raised = rates.copy()
        for figure, half in wanted.items():
            if half is None:
                continue
            error, total = _terms(figure, n, share)
            target = (half / z) ** 2
            if total > 0 and _variance(error, total, rates) > target:
                raised = np.maximum(raised, _neyman(error, n, total, target, rates, cap))
        if np.allclose(raised, rates):
            break
        rates = raised
    expected = float((n * rates).sum())
    if rules.audit_max_items is not None and expected > rules.audit_max_items:
        above = rates - floor
        spare = rules.audit_max_items - float((n * floor).sum())
        extra = float((n * above).sum())
        rates = floor + above * (max(spare, 0.0) / extra if extra else 0.0)
        expected = float((n * rates).sum())
    half_widths, denominators = {}, {}
    capped = False
    for figure, half in wanted.items():
        denominators[figure] = round(float((n * rates * _counted(figure, share)).sum()), 1)
        error, total = _terms(figure, n, share)
        variance = _variance(error, total, rates)
        half_widths[figure] = None if not np.isfinite(variance) else round(z * variance**0.5, 5)
        if (
            half is not None
            and half_widths[figure] is not None
            and half_widths[figure] > half * 1.001
        ):
            capped = True
    return AuditPlan(
        rates={d: round(float(r), 6) for d, r in zip(DECISIONS, rates, strict=True)},
        volume={d: int(v) for d, v in zip(DECISIONS, n, strict=True)},
        expected_items=expected,
        half_width=half_widths,
        denominators=denominators,
        wanted=wanted,
        capped=capped,
    )


def audit_plan(predictions: pd.DataFrame, policy: Policy, now: pd.Timestamp) -> AuditPlan:
    """Audit rates sized for the monitoring window's traffic (items scored in the last
    `monitoring.window_days`, each on its latest prediction): its volume per decision, and the calibrated scores' mean as the
    expected share of violations in each."""
    if predictions.empty:
        return size_audit({}, {}, policy)
    since = now - pd.Timedelta(days=policy.monitoring.window_days)
    scored = pd.to_datetime(predictions["scored_at"], utc=True)
    window = latest_per_item(predictions[(scored >= since) & (scored <= now)])
    volume = window["decision"].value_counts().to_dict()
    violating = window.groupby("decision")["score"].mean().dropna().to_dict()
    return size_audit(volume, violating, policy)
