"""Operating points with a stated guarantee on the truth: thresholds that meet the policy's
targets on new items with the policy's confidence (`targets.confidence`), for the items' true
class, not for the labels reviewers gave them.

Both rules look only at how items rank, so any monotone calibration of the scores leaves them
unchanged, and both hold for any sample size: with little data they answer with a cautious
threshold (or none) and say what more evidence would show.

**What the rules count.** Not the labels: draws of each item's truth given every vote, the
reviewers' measured error rates and their uncertainty (`flywheel.noise`), with the share of
violations learnt per band of the model's score (`flywheel.noise.score_strata`). On each draw a threshold
lets through some count of positives out of all of them; each rule bounds over the mixture of
the draws' exact (Clopper-Pearson) confidence distributions (`flywheel.stats.chance_above`,
`chance_below`). So the reviewers' errors are neither ignored nor taken as truth: a violating
label on an item scored among benign ones is weighed against how often reviewers mark benign
items violating, and the doubt that leaves is carried into the bound. With labels alone (one
draw: a reviewer who never errs) both rules are exactly the earlier ones.

- **Review recall** (the review threshold): the highest threshold at which the share of new
  positives scored below it is shown under 1 - target, i.e. at which the mixture puts at most
  1 - confidence on a miss rate above it. With one draw that is the k-th lowest of n
  positives, for the largest k with P(Binomial(n, 1 - target) >= k) >= confidence (the
  conformal order statistic). The chance only grows as the threshold rises, so the highest
  such threshold is found by bisection.
- **Auto-action precision** (the auto-action threshold): candidate thresholds are tested from
  the most selective down, each with the test of "precision below target" on what it flags,
  and the walk stops at the first that fails (fixed-sequence testing, as in Learn-then-Test:
  the chance that any threshold passed wrongly stays under 1 - confidence). The lowest that
  passed is served. The walk starts where a flagged set could pass at all (enough items that a
  precision halfway between the target and 1 would show the target, but no more than half the
  positives there are) and steps by a tenth more flagged items each time.

**What it costs, and when it is not paid.** Beside each guarantee the version records the
review share a threshold on the truth would need, as estimated from the same draws (the
threshold that meets the target when each item is taken to be of its more likely class), so
the price of the confidence is visible. When
the guarantee would send more than `targets.max_review_factor` times that share to review, the
band stops there instead of widening to everything: the version says the recall target is not
shown, gives the bound it does reach, and names the evidence that would show it (how many
items, at which scores, need an expert's label). Auto-action that cannot be shown stays off
and says the same.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from flywheel.noise import sample_truth, score_strata
from flywheel.policy import Policy, Targets
from flywheel.registry import Thresholds
from flywheel.stats import (
    chance_above,
    chance_below,
    min_n_for_bound,
    min_n_for_rank,
    mixed_lower_bound,
    mixed_upper_bound,
)

NOTE_SEPARATOR = " | "  # between notes in the `threshold_notes` tag
GRID_STEP = 1.1  # each candidate auto-action threshold flags about 10% more items than the last
RULE = (
    "on the truth drawn from the votes and the reviewers' errors; recall: conformal order "
    "statistic with exact bounds; precision: fixed-sequence exact tests"
)
UNCERTAIN = (0.02, 0.98)  # an item whose chance of violating lies here is in doubt


@dataclass(frozen=True)
class OperatingPoints:
    """The chosen thresholds and the evidence behind them, as recorded on the model version."""

    thresholds: Thresholds
    confidence: float
    source: str  # which scores the rule read: "validation split" or "out-of-fold, K folds"
    items: int
    positives: int  # labelled violating among them
    expected_positives: float  # truly violating among them, as estimated from the draws
    review: dict = field(default_factory=dict)
    auto_action: dict = field(default_factory=dict)
    rule: str = RULE
    shares_on: str = "labelled items"  # what the expected decision shares were measured on
    noise: list = field(default_factory=list)  # the noise assumed, per reviewer
    truth_draws: int = 1  # draws of the truth the rules counted on (1: the labels as truth)

    def as_dict(self) -> dict:
        """Plain JSON: an auto-action threshold that is off (`inf`) is null."""

        def finite(value):
            return None if isinstance(value, float) and math.isinf(value) else value

        record = asdict(self)
        record["thresholds"] = {k: finite(v) for k, v in record["thresholds"].items()}
        record["auto_action"] = {k: finite(v) for k, v in record["auto_action"].items()}
        return record

    def on_traffic(self, scores: np.ndarray) -> OperatingPoints:
        """The same points, their expected decision shares (and the share a threshold on the
        truth would review) measured on logged traffic: labelled items are the ones reviewers
        were sent, so their mix is not the traffic's."""
        scores = np.asarray(scores, dtype=float)
        review, auto = decision_shares(scores, self.thresholds)
        truth_share = _share_from(scores, self.review.get("truth_threshold"), self.thresholds)
        return replace(
            self,
            review={**self.review, "share": review, "truth_share": truth_share},
            auto_action={**self.auto_action, "share": auto},
            shares_on=f"{len(scores):,} logged items",
        )

    def as_tags(self) -> dict[str, str]:
        """Beside the thresholds on the MLflow version: the rule, n, the bounds, the cost and
        the noise assumed (in full in the run's `evaluation.json`)."""

        def fmt(value: float | None) -> str:
            return "none" if value is None else f"{value:.6g}"

        return {
            "threshold_rule": self.rule,
            "threshold_source": self.source,
            "threshold_confidence": fmt(self.confidence),
            "threshold_items": str(self.items),
            "threshold_positives": str(self.positives),
            "threshold_expected_positives": fmt(round(self.expected_positives, 1)),
            "threshold_truth_draws": str(self.truth_draws),
            "threshold_noise": describe_noise(self.noise),
            "review_recall_bound": fmt(self.review.get("recall_bound")),
            "review_guarantee": self.review.get("guarantee", "shown"),
            "auto_action_precision_bound": fmt(self.auto_action.get("precision_bound")),
            "expected_review_share": fmt(self.review.get("share")),
            "truth_threshold_review_share": fmt(self.review.get("truth_share")),
            "expected_auto_action_share": fmt(self.auto_action.get("share")),
            "expected_shares_on": self.shares_on,
            "threshold_notes": NOTE_SEPARATOR.join(self.notes) or "none",
        }

    @property
    def notes(self) -> list[str]:
        return [n for n in (self.review.get("note"), self.auto_action.get("note")) if n]


def describe_noise(noise: list[dict]) -> str:
    """The noise assumed, in a line: how many reviewers and the range of their rates."""
    if not noise:
        return "none: the labels taken as truth"
    low = {k: min(r[k] for r in noise) for k in ("sensitivity", "specificity")}
    high = {k: max(r[k] for r in noise) for k in ("sensitivity", "specificity")}
    return (
        f"{len(noise)} reviewers, sensitivity {low['sensitivity']:.3f}–{high['sensitivity']:.3f}, "
        f"specificity {low['specificity']:.3f}–{high['specificity']:.3f} (posterior means)"
    )


def draw_truth(
    votes: pd.DataFrame | None,
    policy: Policy,
    item_ids: pd.Series,
    scores: np.ndarray,
    labels: np.ndarray,
) -> tuple[np.ndarray, list[dict]]:
    """The truth the rules count for the scored items: draws given every vote of the dataset
    (`flywheel.noise`), the scored items' share of violations learnt per score band
    (`flywheel.noise.score_strata`), gold checks pinned to their known answer; and the noise assumed. Without
    votes (a version built before they were kept) the labels are the truth and no noise is
    assumed."""
    if votes is None or votes.empty:
        return np.asarray(labels, dtype=bool), []
    strata = pd.Series(score_strata(scores, int(np.sum(labels))), index=pd.Index(item_ids))
    checked = votes[votes["known"].notna()]
    known = checked.drop_duplicates("item_id").set_index("item_id")["known"].astype(bool)
    draws = sample_truth(votes, policy, known, strata, seed=policy.training.seed)
    return draws.rows(item_ids), draws.noise(policy.targets.confidence)


def _as_draws(truth: np.ndarray) -> np.ndarray:
    """Truth as items × draws; a label vector is one draw (the labels taken as truth)."""
    truth = np.asarray(truth, dtype=bool)
    return truth[:, None] if truth.ndim == 1 else truth


def _share_from(scores: np.ndarray, threshold: float | None, thresholds: Thresholds):
    """The share of `scores` a review threshold would send to review (auto-action apart)."""
    if threshold is None or not len(scores):
        return None
    return float(((scores >= threshold) & (scores < thresholds.auto_action)).mean())


def review_threshold(
    scores: np.ndarray,
    truth: np.ndarray,
    target: float,
    confidence: float,
    max_factor: float | None = None,
) -> dict:
    """The highest threshold whose recall on new positives is at least `target` with the
    confidence, over the draws of the truth (module docstring); its bound, the threshold a
    known truth would need (estimated), and, where the guarantee costs more than `max_factor`
    times that, the capped threshold with what evidence would show the target."""
    scores = np.asarray(scores, dtype=float)
    truth = _as_draws(truth)
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    below = np.vstack(
        [np.zeros((1, truth.shape[1]), np.int32), np.cumsum(truth[order], axis=0, dtype=np.int32)]
    )
    positives = below[-1]
    # positions where a threshold (the score there) leaves exactly the items before it below
    cuts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]]) if len(ranked) else np.array([])
    miss = 1.0 - target

    def shown(cut: int) -> bool:
        return chance_above(below[cut], positives, miss) <= 1.0 - confidence

    def mean_recall(cut: int) -> float:
        return float(np.mean(1.0 - below[cut] / np.maximum(positives, 1)))

    # the truth as best estimated: each item of its more likely class (a mean over the draws
    # would count the doubt about many benign-scored items as violations somewhere among them)
    likely = np.r_[0, np.cumsum(truth[order].mean(axis=1) > 0.5)]

    needed = min_n_for_rank(miss, confidence)
    have = float(positives.mean())
    few = f"recall {target} cannot be shown at {confidence:.0%} confidence on {have:.0f} positives"
    more = max(math.ceil(needed - have), 1)
    if not len(cuts):
        return {
            "threshold": 0.0,
            "recall_bound": None,
            "guarantee": "not shown",
            "truth_threshold": None,
            "note": few,
            "needs_positives": more,
        }
    n = len(ranked)
    guaranteed = cuts[_last_true(len(cuts), lambda i: shown(cuts[i]))] if shown(cuts[0]) else None
    truth_cut = cuts[_last_true(len(cuts), lambda i: likely[cuts[i]] <= miss * max(likely[-1], 1))]
    share = 1.0 if guaranteed is None else (n - guaranteed) / n
    truth_share = (n - truth_cut) / n
    record = {"truth_threshold": float(ranked[truth_cut]), "needs_positives": 0}
    if max_factor is not None and share > max_factor * truth_share:
        limit = math.ceil(n * (1.0 - max_factor * truth_share))
        at = int(np.searchsorted(cuts, limit))
        served = truth_cut if at >= len(cuts) else min(int(cuts[at]), truth_cut)
        if guaranteed is None:
            why = f"{few} (about {more} more would show it at any threshold)"
            record["needs_positives"] = more
        else:
            why = (
                f"recall {target} is shown at {confidence:.0%} only by reviewing {share:.1%} of "
                f"these items (threshold {ranked[guaranteed]:.4g})"
            )
        record |= {
            "guarantee": "not shown",
            "note": why
            + _recall_evidence(scores[order], truth[order], served, target, confidence, max_factor),
        }
    elif guaranteed is None:
        return {
            "threshold": 0.0,
            "recall_bound": None,
            "guarantee": "not shown",
            **record,
            "note": f"{few}: every item goes to review until about {more} more are labelled "
            f"({needed} in all)",
            "needs_positives": more,
        }
    else:
        served = guaranteed
        record |= {"guarantee": "shown", "note": None}
    return {
        "threshold": float(ranked[served]),
        "recall_bound": 1.0 - mixed_upper_bound(below[served], positives, confidence),
        "expected_recall": mean_recall(served),
        "guaranteed_threshold": None if guaranteed is None else float(ranked[guaranteed]),
        **record,
    }


def _last_true(n: int, holds) -> int:
    """The last index in 0..n-1 where a condition that holds up to some point does (it holds
    at 0)."""
    low, high = 0, n - 1
    while low < high:
        middle = (low + high + 1) // 2
        if holds(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _recall_evidence(
    ranked: np.ndarray,
    truth: np.ndarray,
    served: int,
    target: float,
    confidence: float,
    max_factor: float,
) -> str:
    """The rest of the note when the band stops short of the guarantee: where it stops, and
    which expert labels would settle it. The doubt is in the items below the served threshold
    whose truth the votes leave open (labels that may be reviewer errors); the note says how
    many there are, at which scores, and how many of them an expert would need to label, drawn
    at random, for the recall to be shown (all of them when a sample would not do)."""
    text = (
        f", over {max_factor:g} times what a threshold on the truth would review "
        f"(targets.max_review_factor): the band stops at {ranked[served]:.4g}, where the target "
        "is not shown"
    )
    p = truth.mean(axis=1)
    doubt = np.flatnonzero((p[:served] > UNCERTAIN[0]) & (p[:served] < UNCERTAIN[1]))
    if not len(doubt):
        return text
    scores, chances = ranked[doubt], p[doubt]
    text += (
        f"; {len(doubt)} items below it, scored {scores.min():.3g}–{scores.max():.3g}, are in "
        f"doubt (each {chances.min():.0%}–{chances.max():.0%} likely to violate: reviewer labels "
        "that may be errors)"
    )
    sure_misses = float(p[:served][p[:served] >= UNCERTAIN[1]].sum())
    budget = (1.0 - target) * float(truth.sum(axis=0).mean()) - sure_misses
    sample = (
        min_n_for_bound(1.0 - float(chances.mean()), 1.0 - budget / len(doubt), confidence)
        if 0 < budget < len(doubt)
        else None
    )
    if sample is None or sample >= len(doubt):
        return text + ": expert labels on all of them would show whether it holds"
    return text + f": expert labels on {sample} of them, drawn at random, would show it"


def _walk_start(target: float, confidence: float, positives: float) -> int:
    """The first flagged-set size tested: where a precision halfway between the target and 1
    would show the target, but no more than half the positives there are, and never fewer
    than a flawless set needs."""
    flawless = min_n_for_rank(1.0 - target, confidence)
    halfway = min_n_for_bound((1.0 + target) / 2.0, target, confidence) or flawless
    return max(flawless, min(halfway, int(positives // 2)))


def auto_action_threshold(
    scores: np.ndarray, truth: np.ndarray, target: float, confidence: float
) -> dict:
    """The lowest threshold passing the fixed sequence of exact tests of precision >= target,
    walking down from the most selective; `inf` (auto-action off) when the first one fails."""
    scores = np.asarray(scores, dtype=float)
    truth = _as_draws(truth)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    # a threshold flags all tied scores
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True] if len(ranked) else np.zeros(0, bool)
    flagged = np.flatnonzero(last_of_tie) + 1
    hits = np.cumsum(truth[order], axis=0, dtype=np.int32)
    candidates = ranked[last_of_tie]
    positives = float(hits[-1].mean()) if len(hits) else 0.0
    start = _walk_start(target, confidence, positives)
    chosen: dict | None = None
    tested = 0
    size = float(start)
    while size <= len(scores):
        at = int(np.searchsorted(flagged, math.ceil(size)))  # first tie boundary flagging >= size
        if at >= len(flagged):
            break
        n = int(flagged[at])
        tp = hits[n - 1]
        tested += 1
        if chance_below(tp, np.full(len(tp), n), target) > 1.0 - confidence:
            break
        chosen = {
            "threshold": float(candidates[at]),
            "flagged": n,
            "positives": round(float(tp.mean()), 2),
            "precision": float(tp.mean()) / n,
        }
        size = max(size * GRID_STEP, n + 1)
    if chosen is not None:
        n = chosen["flagged"]
        bound = mixed_lower_bound(hits[n - 1], np.full(hits.shape[1], n), confidence)
        return {
            **chosen,
            "precision_bound": bound,
            "tested": tested,
            "note": None,
            "needs_positives": 0,
        }
    return {
        "threshold": math.inf,
        "flagged": 0,
        "precision_bound": None,
        "tested": tested,
        **_precision_needs(ranked, truth[order], start, positives, target, confidence),
    }


def _precision_needs(
    ranked: np.ndarray,
    truth: np.ndarray,
    start: int,
    positives: float,
    target: float,
    confidence: float,
) -> dict:
    """Why auto-action is off, and what would turn it on: more labelled positives, or expert
    labels on the top items whose truth is in doubt."""
    if len(ranked) < start:
        scale = start / max(len(ranked), 1)
        needed = math.ceil(positives * scale - positives)
        return {
            "note": f"auto-action off: precision {target} needs at least {start} labelled items "
            f"above the threshold to be shown at {confidence:.0%} confidence, and there are "
            f"{len(ranked)} in all (about {needed} more positives)",
            "needs_positives": needed,
        }
    p = truth[:start].mean(axis=1)
    top = float(p.mean())
    doubt = np.flatnonzero((p > UNCERTAIN[0]) & (p < UNCERTAIN[1]))
    settle = (
        f"; {len(doubt)} of them (scored {ranked[doubt].min():.3g}–{ranked[doubt].max():.3g}) "
        "are in doubt, reviewer labels that may be misses: expert labels on them would show "
        "whether it holds"
        if len(doubt)
        else ""
    )
    items = min_n_for_bound(top, target, confidence)
    if items is None:
        return {
            "note": f"auto-action off: the {start} highest-scored labelled items have precision "
            f"{top:.3f} on the truth as estimated, not above the target {target}: more data "
            f"like this will not show it{settle}",
            "needs_positives": None,
        }
    needed = max(math.ceil(positives * items / start - positives), 0)
    more = f": about {needed} more labelled positives" if needed else ""
    return {
        "note": f"auto-action off: the {start} highest-scored labelled items have precision "
        f"{top:.3f} on the truth as estimated, which would show {target} at "
        f"{confidence:.0%} confidence on about {items} such items{more}{settle}",
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
    scores: np.ndarray,
    labels: np.ndarray,
    targets: Targets,
    source: str,
    truth: np.ndarray | None = None,
    noise: list[dict] | None = None,
) -> OperatingPoints:
    """Both thresholds from scores the model did not train on and the truth drawn for those
    items (`truth`: items × draws, `draw_truth`; without it the labels are the truth); review
    is never above auto-action, so every auto-actioned item would also have been reviewed."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    truth = _as_draws(labels if truth is None else truth)
    confidence = targets.confidence
    review = review_threshold(
        scores, truth, targets.review_recall, confidence, targets.max_review_factor
    )
    auto = auto_action_threshold(scores, truth, targets.auto_action_precision, confidence)
    thresholds = Thresholds(
        auto_action=auto["threshold"], review=min(review["threshold"], auto["threshold"])
    )
    review["share"], auto["share"] = decision_shares(scores, thresholds)
    review["truth_share"] = _share_from(scores, review.get("truth_threshold"), thresholds)
    review["target"], auto["target"] = targets.review_recall, targets.auto_action_precision
    return OperatingPoints(
        thresholds,
        confidence,
        source,
        len(scores),
        int(labels.sum()),
        float(truth.sum(axis=0).mean()),
        review=review,
        auto_action=auto,
        noise=noise or [],
        truth_draws=truth.shape[1],
    )
