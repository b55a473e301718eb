"""Operating points with a stated guarantee: thresholds that meet the policy's targets on new
items with the policy's confidence (`targets.confidence`), not merely on the sample they were
read from.

Both rules look only at how items rank, so any monotone calibration of the scores leaves them
unchanged, and both hold for any sample size: with little data they answer with a cautious
threshold (or none) instead of a lucky one.

- **Review recall** (the review threshold): among the n labelled positives, the k-th lowest score
  lets through a share of new positives that is Beta(k, n + 1 - k) distributed; the threshold is
  the k-th lowest score for the largest k that keeps that share under 1 - target with the
  confidence (`flywheel.stats.order_statistic_rank`, the conformal order statistic with a
  binomial bound). Fewer than `min_n_for_rank` positives cannot show any threshold safe: then
  every item is reviewed, and the report says how many more labelled positives it would take.
- **Auto-action precision** (the auto-action threshold): candidate thresholds are tested from
  the most selective down, each with the exact binomial test of "precision below target" on the
  items it flags, and the walk stops at the first that fails (fixed-sequence testing, as in
  Learn-then-Test: the chance that any threshold passed wrongly stays under 1 - confidence). The
  lowest threshold that passed is the one served. The walk starts where a flagged set could pass
  at all (enough items that a precision halfway between the target and 1 would show the target),
  and steps by a tenth more flagged items each time; when even the first fails, auto-action
  stays off and the report says what more data would take.

Which labels the rules trust: the reviewers' (one label per item, `flywheel.aggregate`) on the
items the dataset holds, golden items excluded (they are the gate's independent check). The
guarantee is about those labels. Reviewer errors move it as follows: a missed violation that
the model scores high counts against precision, and a benign item marked violating counts
against precision where it scores high and lowers the recall threshold where it scores low, so
both leave the precision guarantee and most of the recall guarantee conservative for the truth;
the one way noise works against a guarantee is violations that reviewers miss *and* the model
scores low, which are absent from the positives the recall rule sees. The golden set, labelled
by experts, is where the gate checks the served thresholds against that.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from scipy.stats import beta

from flywheel.policy import Targets
from flywheel.registry import Thresholds
from flywheel.stats import (
    lower_bound,
    min_n_for_bound,
    min_n_for_rank,
    order_statistic_rank,
)

NOTE_SEPARATOR = " | "  # between notes in the `threshold_notes` tag
GRID_STEP = 1.1  # each candidate auto-action threshold flags about 10% more items than the last
RULE = "recall: conformal order statistic with a binomial bound; precision: fixed-sequence exact binomial tests"


@dataclass(frozen=True)
class OperatingPoints:
    """The chosen thresholds and the evidence behind them, as recorded on the model version."""

    thresholds: Thresholds
    confidence: float
    source: str  # which scores the rule read: "validation split" or "out-of-fold, K folds"
    items: int
    positives: int
    review: dict = field(default_factory=dict)
    auto_action: dict = field(default_factory=dict)
    rule: str = RULE
    shares_on: str = "labelled items"  # what the expected decision shares were measured on

    def as_dict(self) -> dict:
        """Plain JSON: an auto-action threshold that is off (`inf`) is null."""

        def finite(value):
            return None if isinstance(value, float) and math.isinf(value) else value

        record = asdict(self)
        record["thresholds"] = {k: finite(v) for k, v in record["thresholds"].items()}
        record["auto_action"] = {k: finite(v) for k, v in record["auto_action"].items()}
        return record

    def on_traffic(self, scores: np.ndarray) -> OperatingPoints:
        """The same points, their expected decision shares measured on logged traffic (labelled
        items are the ones reviewers were sent, so their mix is not the traffic's)."""
        review, auto = decision_shares(np.asarray(scores, dtype=float), self.thresholds)
        return replace(
            self,
            review={**self.review, "share": review},
            auto_action={**self.auto_action, "share": auto},
            shares_on=f"{len(scores):,} logged items",
        )

    def as_tags(self) -> dict[str, str]:
        """Beside the thresholds on the MLflow version: the rule, n and the bounds."""

        def fmt(value: float | None) -> str:
            return "none" if value is None else f"{value:.6g}"

        return {
            "threshold_rule": self.rule,
            "threshold_source": self.source,
            "threshold_confidence": fmt(self.confidence),
            "threshold_items": str(self.items),
            "threshold_positives": str(self.positives),
            "review_recall_bound": fmt(self.review.get("recall_bound")),
            "auto_action_precision_bound": fmt(self.auto_action.get("precision_bound")),
            "expected_review_share": fmt(self.review.get("share")),
            "expected_auto_action_share": fmt(self.auto_action.get("share")),
            "expected_shares_on": self.shares_on,
            "threshold_notes": NOTE_SEPARATOR.join(self.notes) or "none",
        }

    @property
    def notes(self) -> list[str]:
        return [n for n in (self.review.get("note"), self.auto_action.get("note")) if n]


def review_threshold(positive_scores: np.ndarray, target: float, confidence: float) -> dict:
    """The highest threshold whose recall on new positives is at least `target` with the
    confidence; 0 (review everything) when the positives are too few to show any."""
    scores = np.sort(np.asarray(positive_scores, dtype=float))
    n = len(scores)
    k = order_statistic_rank(n, 1.0 - target, confidence)
    if k == 0:
        needed = min_n_for_rank(1.0 - target, confidence)
        return {
            "threshold": 0.0,
            "rank": 0,
            "recall_bound": None,
            "note": f"recall {target} cannot be shown at {confidence:.0%} confidence on {n} "
            f"labelled positives: every item goes to review until about {needed - n} more "
            f"are labelled ({needed} in all)",
            "needs_positives": needed - n,
        }
    # the share let through is Beta(k, n + 1 - k): its upper quantile bounds the miss rate
    return {
        "threshold": float(scores[k - 1]),
        "rank": k,
        "recall_bound": float(1.0 - beta.ppf(confidence, k, n + 1 - k)),
        "expected_recall": 1.0 - k / (n + 1),
        "note": None,
        "needs_positives": 0,
    }


def _first_rejectable(target: float, confidence: float) -> int:
    """Fewest flagged items at which a precision halfway between the target and 1 shows the
    target: the walk's first candidate (a smaller set could pass only if flawless)."""
    return min_n_for_bound((1.0 + target) / 2.0, target, confidence) or 1


def auto_action_threshold(
    y: np.ndarray, scores: np.ndarray, target: float, confidence: float
) -> dict:
    """The lowest threshold passing the fixed sequence of exact tests of precision >= target,
    walking down from the most selective; `inf` (auto-action off) when the first one fails."""
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], y[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]  # a threshold flags all tied scores
    flagged = np.flatnonzero(last_of_tie) + 1
    true_positives = np.cumsum(hits)[last_of_tie]
    candidates = ranked[last_of_tie]
    start = _first_rejectable(target, confidence)
    chosen: dict | None = None
    tested = 0
    size = float(start)
    while size <= len(y):
        at = int(np.searchsorted(flagged, math.ceil(size)))  # first tie boundary flagging >= size
        if at >= len(flagged):
            break
        tp, n = int(true_positives[at]), int(flagged[at])
        tested += 1
        bound = lower_bound(tp, n, confidence)
        if bound < target:
            break
        chosen = {
            "threshold": float(candidates[at]),
            "flagged": n,
            "positives": tp,
            "precision": tp / n,
            "precision_bound": bound,
        }
        size = max(size * GRID_STEP, n + 1)
    if chosen is not None:
        return {**chosen, "tested": tested, "note": None, "needs_positives": 0}
    return {
        "threshold": math.inf,
        "flagged": 0,
        "precision_bound": None,
        "tested": tested,
        **_precision_needs(hits, start, int(y.sum()), target, confidence),
    }


def _precision_needs(
    hits: np.ndarray, start: int, positives: int, target: float, confidence: float
) -> dict:
    """Why auto-action is off, and roughly how many more labelled positives would turn it on."""
    if len(hits) < start:
        scale = start / max(len(hits), 1)
        needed = math.ceil(positives * scale) - positives
        return {
            "note": f"auto-action off: precision {target} needs at least {start} labelled items "
            f"above the threshold to be shown at {confidence:.0%} confidence, and there are "
            f"{len(hits)} in all (about {needed} more positives)",
            "needs_positives": needed,
        }
    top = float(hits[:start].mean())
    items = min_n_for_bound(top, target, confidence)
    if items is None:
        return {
            "note": f"auto-action off: the {start} highest-scored labelled items have precision "
            f"{top:.3f}, not above the target {target}: more data like this will not show it",
            "needs_positives": None,
        }
    needed = math.ceil(positives * items / start) - positives
    return {
        "note": f"auto-action off: the {start} highest-scored labelled items have precision "
        f"{top:.3f}, which would show {target} at {confidence:.0%} confidence on about "
        f"{items} such items: about {needed} more labelled positives",
        "needs_positives": needed,
    }


def decision_shares(
    scores: np.ndarray, thresholds: Thresholds
) -> tuple[float | None, float | None]:
    """The share of items sent to review (between the thresholds) and to auto-action."""
    if not len(scores):
        return None, None
    decisions = thresholds.decide(scores)
    return float((decisions == "review").mean()), float((decisions == "auto_action").mean())


def choose_operating_points(
    y: np.ndarray, scores: np.ndarray, targets: Targets, source: str
) -> OperatingPoints:
    """Both thresholds from labelled scores the model did not train on; review is never above
    auto-action, so every auto-actioned item would also have been reviewed."""
    y = np.asarray(y, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    confidence = targets.confidence
    review = review_threshold(scores[y], targets.review_recall, confidence)
    auto = auto_action_threshold(y, scores, targets.auto_action_precision, confidence)
    thresholds = Thresholds(
        auto_action=auto["threshold"], review=min(review["threshold"], auto["threshold"])
    )
    review["share"], auto["share"] = decision_shares(scores, thresholds)
    review["target"], auto["target"] = targets.review_recall, targets.auto_action_precision
    return OperatingPoints(
        thresholds, confidence, source, len(y), int(y.sum()), review=review, auto_action=auto
    )
