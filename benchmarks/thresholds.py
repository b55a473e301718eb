"""Benchmark: the operating-threshold rule, against the one it replaced, in one run.

Each world is a labelled sample of scores (violations at a base rate, scores from two Beta
distributions), whose true recall and precision at any threshold are known exactly. Both rules
read their thresholds off the sample; the table shows, over many draws, how often each met the
targets on new items from the same world (coverage: the new rule promises the policy's
confidence, 95%), and what it cost: the share of traffic each sends to review and to
auto-action, and how often auto-action stayed off.

- today's rule (before): the highest score keeping sample recall at the target, and the lowest
  score whose sample precision meets the target (`choose_thresholds` as shipped);
- the new rule: `training.thresholds.choose_operating_points` (conformal order statistic for
  recall, fixed-sequence exact binomial tests for precision).

    .venv/bin/python benchmarks/thresholds.py [--draws 400]

Prints a Markdown table (also written to benchmarks/results/thresholds.md).
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np
from bench_common import publish
from scipy.stats import beta

from flywheel.policy import Targets
from flywheel.registry import Thresholds
from training.thresholds import choose_operating_points

TARGETS = Targets(auto_action_precision=0.9, review_recall=0.9, confidence=0.95)
POSITIVE, NEGATIVE = (5, 2), (1.5, 8)
PREVALENCE = 0.06


def shipped_rule(y: np.ndarray, scores: np.ndarray, targets: Targets) -> Thresholds:
    """The rule as shipped before: both thresholds on the sample's edge."""
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], y[order]
    last_of_tie = np.r_[ranked[1:] != ranked[:-1], True]
    tp = np.cumsum(hits)[last_of_tie]
    flagged = np.flatnonzero(last_of_tie) + 1
    candidates = ranked[last_of_tie]
    precision = tp / flagged
    recall = tp / max(int(y.sum()), 1)
    meets_precision = np.flatnonzero(precision >= targets.auto_action_precision)
    auto = float(candidates[meets_precision.max()]) if meets_precision.size else math.inf
    meets_recall = np.flatnonzero(recall >= targets.review_recall)
    review = float(candidates[meets_recall.min()])
    return Thresholds(auto_action=auto, review=min(review, auto))


def truth_at(thresholds: Thresholds) -> dict:
    """True recall, precision and traffic shares of a pair of thresholds in this world."""
    pos_review = beta.sf(thresholds.review, *POSITIVE)
    neg_review = beta.sf(thresholds.review, *NEGATIVE)
    flagged_review = PREVALENCE * pos_review + (1 - PREVALENCE) * neg_review
    if math.isinf(thresholds.auto_action):
        precision, auto_share = None, 0.0
    else:
        hit = PREVALENCE * beta.sf(thresholds.auto_action, *POSITIVE)
        false = (1 - PREVALENCE) * beta.sf(thresholds.auto_action, *NEGATIVE)
        precision = hit / (hit + false) if hit + false else None
        auto_share = hit + false
    return {
        "recall": pos_review,
        "precision": precision,
        "review_share": flagged_review - auto_share,
        "auto_share": auto_share,
    }


def run(draws: int) -> str:
    started = time.perf_counter()
    lines = [
        "| labelled positives (items) | rule | recall ≥ 0.90 in | precision ≥ 0.90 in | auto-action off in | to review | to auto-action |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for positives in (30, 60, 150, 500, 2000):
        n = int(positives / PREVALENCE)
        rng = np.random.default_rng(positives)
        results = {"today's rule": [], "new rule": []}
        for _ in range(draws):
            y = rng.random(n) < PREVALENCE
            scores = np.where(y, rng.beta(*POSITIVE, n), rng.beta(*NEGATIVE, n))
            results["today's rule"].append(truth_at(shipped_rule(y, scores, TARGETS)))
            chosen = choose_operating_points(y, scores, TARGETS, "benchmark").thresholds
            results["new rule"].append(truth_at(chosen))
        for rule, rows in results.items():
            recall = np.mean([r["recall"] >= 0.9 for r in rows])
            precision = np.mean([r["precision"] is None or r["precision"] >= 0.9 for r in rows])
            off = np.mean([r["precision"] is None for r in rows])
            review = np.mean([r["review_share"] for r in rows])
            auto = np.mean([r["auto_share"] for r in rows])
            lines.append(
                f"| {positives} ({n:,}) | {rule} | {recall:.1%} | {precision:.1%} | "
                f"{off:.0%} | {review:.1%} | {auto:.2%} |"
            )
    elapsed = time.perf_counter() - started
    header = (
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; {draws} draws per size; base rate {PREVALENCE}, "
        f"scores Beta{POSITIVE} (violating) and Beta{NEGATIVE} (benign); targets precision "
        f"{TARGETS.auto_action_precision}, recall {TARGETS.review_recall}, confidence "
        f"{TARGETS.confidence}; `python benchmarks/thresholds.py --draws {draws}` "
        f"({elapsed:.0f} s)\n\n"
    )
    return header + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=400)
    args = parser.parse_args()
    publish("thresholds", run(args.draws))


if __name__ == "__main__":
    main()
