"""Exact binomial bounds: what a count of successes out of n says about the rate behind it.

Every judgment Flywheel takes from a sample (an operating threshold, a gate check, a reviewer
flag, an alert) is a one-sided test at a stated confidence, and every rate it shows carries the
two one-sided bounds at that confidence. A bar outside those bounds is crossed at that
confidence; a bar inside them is not shown crossed either way. The bounds are Clopper-Pearson's
(exact: they never cover less than promised, whatever n), so a rate measured on a dozen items
gets the wide interval it deserves rather than a normal approximation's false precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, betaincc
from scipy.stats import beta, binom


def lower_bound(successes: float, n: float, confidence: float) -> float:
    """The one-sided lower confidence bound of a rate: below it with probability 1 - confidence."""
    if n <= 0:
        return 0.0
    if successes <= 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, successes, n - successes + 1.0))


def upper_bound(successes: float, n: float, confidence: float) -> float:
    """The one-sided upper confidence bound of a rate."""
    if n <= 0:
        return 1.0
    if successes >= n:
        return 1.0
    return float(beta.ppf(confidence, successes + 1.0, n - successes))


@dataclass(frozen=True)
class Rate:
    """A rate measured on a sample, with its one-sided bounds at `confidence`."""

    successes: float
    n: float
    confidence: float

    @property
    def value(self) -> float | None:
        return self.successes / self.n if self.n else None

    @property
    def low(self) -> float | None:
        return lower_bound(self.successes, self.n, self.confidence) if self.n else None

    @property
    def high(self) -> float | None:
        return upper_bound(self.successes, self.n, self.confidence) if self.n else None

    def surely_below(self, bar: float) -> bool:
        """The sample shows the rate under `bar` at the confidence (its upper bound is)."""
        return bool(self.n) and upper_bound(self.successes, self.n, self.confidence) < bar

    def as_dict(self) -> dict:
        n = int(self.n) if float(self.n).is_integer() else round(float(self.n), 1)
        return {"value": self.value, "low": self.low, "high": self.high, "n": n}

    def describe(self) -> str:
        if not self.n:
            return "n/a (no items)"
        n = f"{self.n:.0f}" if float(self.n).is_integer() else f"{self.n:.1f}"
        return f"{self.value:.4f} [{self.low:.4f}, {self.high:.4f}] on {n}"


def min_n_for_bound(
    rate: float, bar: float, confidence: float, limit: int = 10_000_000
) -> int | None:
    """The fewest items at an observed `rate` whose lower bound reaches `bar`; None if never
    (the rate itself is not above the bar)."""
    if rate <= bar:
        return None
    n = 1
    while n <= limit:
        if lower_bound(rate * n, n, confidence) >= bar:
            break
        n *= 2
    else:
        return None
    low, high = n // 2, n
    while low + 1 < high:
        middle = (low + high) // 2
        if lower_bound(rate * middle, middle, confidence) >= bar:
            high = middle
        else:
            low = middle
    return high


def order_statistic_rank(n: int, miss_rate: float, confidence: float) -> int:
    """The largest k such that the k-th lowest of n exchangeable scores, used as a threshold,
    lets through (scores below it) at most `miss_rate` of new items with probability at least
    `confidence`; 0 when n is too small for any k.

    The share of new items below the k-th lowest score is Beta(k, n + 1 - k) distributed (for
    continuous scores; ties only make it smaller), so it stays under `miss_rate` with probability
    P(Binomial(n, miss_rate) >= k): the largest k keeping that at `confidence` is the answer.
    """
    if n <= 0:
        return 0
    ks = np.arange(1, n + 1)
    holds = binom.sf(ks - 1, n, miss_rate) >= confidence
    return int(ks[holds].max()) if holds.any() else 0


def min_n_for_rank(miss_rate: float, confidence: float) -> int:
    """The fewest scores for which `order_statistic_rank` finds a threshold at all."""
    return math.ceil(math.log(1.0 - confidence) / math.log(1.0 - miss_rate))


class _Mixture:
    """Counts drawn from their posterior, as their distinct (successes, n) pairs and how often
    each was drawn: the mixture of the draws' Clopper-Pearson confidence distributions."""

    def __init__(self, successes, n) -> None:
        pairs = np.column_stack(
            [np.atleast_1d(np.asarray(successes, float)), np.atleast_1d(np.asarray(n, float))]
        )
        unique, weight = np.unique(pairs, axis=0, return_counts=True)
        self.s, self.n = unique[:, 0], unique[:, 1]
        self.weight = weight / weight.sum()

    @property
    def single(self) -> bool:
        return len(self.s) == 1

    def below(self, bar: float) -> float:
        """The chance the rate is under `bar`, by each draw's lower confidence distribution
        Beta(s, n - s + 1): no success (or no item) puts it all at 0."""
        chance = np.ones(len(self.s))
        some = self.s > 0
        chance[some] = betainc(self.s[some], self.n[some] - self.s[some] + 1.0, bar)
        return float(chance @ self.weight)

    def above(self, bar: float) -> float:
        """The chance the rate is over `bar`, by each draw's upper confidence distribution
        Beta(s + 1, n - s): no failure (or no item) puts it all at 1."""
        chance = np.ones(len(self.s))
        some = self.s < self.n
        chance[some] = betaincc(self.s[some] + 1.0, self.n[some] - self.s[some], bar)
        return float(chance @ self.weight)


def chance_below(successes, n, bar: float) -> float:
    """How likely the rate is under `bar`, over draws of uncertain counts (`flywheel.noise`):
    the mean of each draw's Clopper-Pearson confidence distribution. A rate is shown under
    `bar` at a confidence when this is at least it; with one draw that is the exact test."""
    return _Mixture(successes, n).below(bar)


def chance_above(successes, n, bar: float) -> float:
    """How likely the rate is over `bar`, over draws of uncertain counts (see `chance_below`)."""
    return _Mixture(successes, n).above(bar)


def mixed_bounds(successes, n, confidence: float) -> tuple[float, float]:
    """A rate's one-sided bounds when its counts are themselves uncertain: `successes` and `n`
    hold one value per draw from their posterior (the reference truth of each item drawn from
    what the votes say, `flywheel.noise`). Each bound is where the mixture of the draws'
    Clopper-Pearson confidence distributions leaves 1 - confidence beyond it, so the reference's
    uncertainty widens the interval instead of being taken as exact; with a single draw they
    are Clopper-Pearson's bounds."""
    return mixed_lower_bound(successes, n, confidence), mixed_upper_bound(successes, n, confidence)


def mixed_lower_bound(successes, n, confidence: float) -> float:
    """The lower of `mixed_bounds`."""
    mixture = _Mixture(successes, n)
    if mixture.single:
        return lower_bound(mixture.s[0], mixture.n[0], confidence)
    if mixture.below(0.0) > 1.0 - confidence:
        return 0.0
    return _solve(lambda bar: mixture.below(bar) > 1.0 - confidence)


def mixed_upper_bound(successes, n, confidence: float) -> float:
    """The upper of `mixed_bounds`."""
    mixture = _Mixture(successes, n)
    if mixture.single:
        return upper_bound(mixture.s[0], mixture.n[0], confidence)
    if mixture.above(1.0) > 1.0 - confidence:
        return 1.0
    return _solve(lambda bar: mixture.above(bar) <= 1.0 - confidence)


def _solve(beyond, steps: int = 40) -> float:
    """The bar in [0, 1] where `beyond` turns true (it holds for every bar above it), to
    within 1e-12."""
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2.0
        if beyond(middle):
            high = middle
        else:
            low = middle
    return (low + high) / 2.0


# what each operating point flags: auto-action its own decision, review everything not allowed
OPERATING_POINTS = {"auto_action": ("auto_action",), "review": ("review", "auto_action")}


def operating_rates(
    truth: np.ndarray, decisions: np.ndarray, confidence: float
) -> dict[str, dict[str, Rate]]:
    """`confusion_rates` at each operating point of a model's decisions: `[point][measure]`."""
    return {
        point: confusion_rates(truth, np.isin(decisions, kinds), confidence)
        for point, kinds in OPERATING_POINTS.items()
    }


def confusion_rates(truth: np.ndarray, flagged: np.ndarray, confidence: float) -> dict[str, Rate]:
    """Precision, recall, FPR and FNR of `flagged` against `truth`, each with its bounds."""
    truth, flagged = np.asarray(truth, bool), np.asarray(flagged, bool)
    tp = int((truth & flagged).sum())
    fp = int((~truth & flagged).sum())
    fn = int((truth & ~flagged).sum())
    tn = int((~truth & ~flagged).sum())
    return {
        "precision": Rate(tp, tp + fp, confidence),
        "recall": Rate(tp, tp + fn, confidence),
        "fpr": Rate(fp, fp + tn, confidence),
        "fnr": Rate(fn, tp + fn, confidence),
    }
