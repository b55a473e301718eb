"""Benchmark: operating thresholds on noisy reviewer labels, on the grid of `noisy_grid`.

Each world runs the production path: reviewer QA (`labeling.qa.reviewer_quality`) flags
reviewers, their decisions are left out (as dataset building does), the truth is drawn from the
remaining votes (`training.thresholds.draw_truth`) and the thresholds chosen on it
(`choose_operating_points`, the policy's default cost limit). The peer in the same run is the
rule before this change: the same exact rules with the labels (the vote) taken as truth.
The world's true recall, precision and review share at any threshold are known exactly
(`simulation.scored`), so each world says whether the promise held on the truth.

Per cell:
- recall kept: the share of worlds where the recall promise was not broken (a version that
  says "not shown" makes none); it must be at least the confidence, 95%, less three Monte
  Carlo standard errors;
- shown: where the version claims the recall guarantee;
- review share: the median share of traffic at or above the review threshold, against the
  share a threshold on the truth needs (the oracle), and the share of worlds within twice it;
- auto-action: the share of worlds where it was on, against where the same rule on the true
  labels turns it on; its promise kept (off, or precision held on the truth);
- labels as truth: the peer's median review share, its recall kept and auto-action on.

    .venv/bin/python benchmarks/thresholds.py [--draws 200]

Prints Markdown tables (also written to benchmarks/results/thresholds.md).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from noisy_grid import POLICY, Cell, monte_carlo_floor, run

from labeling.qa import reviewer_quality
from simulation.scored import oracle_threshold, true_precision, true_recall, true_share
from training.thresholds import choose_operating_points, draw_truth

TARGETS = POLICY.targets
AS_BEFORE = TARGETS.model_copy(update={"max_review_factor": None})


def measure(cell: Cell, draw: int) -> dict:
    """One world through QA and both rules; what each promised and what held on the truth."""
    world = cell.world(draw)
    flagged = set(reviewer_quality(world.votes, None, POLICY)["flagged"])
    votes = world.votes[~world.votes["reviewer_id"].isin(flagged)]
    items = np.sort(votes["item_id"].unique())
    says = votes["label"].eq("violating").to_numpy()
    counts = np.bincount(votes["item_id"], minlength=len(world.scores))[items]
    labels = np.bincount(votes["item_id"], says, len(world.scores))[items] / counts > 0.5
    scores = world.scores[items]
    truth, noise = draw_truth(votes, POLICY, pd.Series(items), scores, labels)
    points = choose_operating_points(scores, labels, TARGETS, "bench", truth, noise)
    peer = choose_operating_points(scores, labels, AS_BEFORE, "labels").thresholds
    on_truth = choose_operating_points(scores, world.truth[items], AS_BEFORE, "truth").thresholds
    chosen = points.thresholds
    p = cell.prevalence
    return {
        "shown": points.review["guarantee"] == "shown",
        "recall_held": true_recall(chosen.review) >= TARGETS.review_recall,
        "share": true_share(chosen.review, p),
        "auto_on": math.isfinite(chosen.auto_action),
        "precision_held": not math.isfinite(chosen.auto_action)
        or true_precision(chosen.auto_action, p) >= TARGETS.auto_action_precision,
        "auto_should": math.isfinite(on_truth.auto_action),
        "peer_share": true_share(peer.review, p),
        "peer_recall_held": true_recall(peer.review) >= TARGETS.review_recall,
        "peer_auto_on": math.isfinite(peer.auto_action),
        "careful_flagged": any(r != "rev-careless" for r in flagged),
    }


def table(results: dict[Cell, list[dict]], draws: int) -> str:
    floor = monte_carlo_floor(TARGETS.confidence, draws)
    lines = [
        "| base rate | error | decided twice | careless | recall kept | shown | review share "
        "(oracle) | ≤ 2× oracle | auto on (on truth) | precision kept | labels as truth: "
        "review share, recall kept, auto on |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    failing = []
    for cell, rows in results.items():
        frame = pd.DataFrame(rows)
        kept = 1 - (frame["shown"] & ~frame["recall_held"]).mean()
        precision_kept = frame["precision_held"].mean()
        oracle = true_share(oracle_threshold(TARGETS.review_recall), cell.prevalence)
        within = (frame["share"] <= 2 * oracle).mean()
        mark = ""
        if kept < floor or precision_kept < floor:
            failing.append(cell.label)
            mark = " ✗"
        lines.append(
            f"{cell.label} {kept:.1%}{mark} | {frame['shown'].mean():.0%} | "
            f"{frame['share'].median():.1%} ({oracle:.1%}) | {within:.0%} | "
            f"{frame['auto_on'].mean():.0%} ({frame['auto_should'].mean():.0%}) | "
            f"{precision_kept:.1%} | {frame['peer_share'].median():.1%}, "
            f"{frame['peer_recall_held'].mean():.0%}, {frame['peer_auto_on'].mean():.0%} |"
        )
    careful = np.mean([row["careful_flagged"] for rows in results.values() for row in rows])
    summary = (
        f"\n\nPromises kept below the Monte Carlo floor ({floor:.1%}): "
        f"{', '.join(failing) if failing else 'none'}. Worlds where QA flagged a careful "
        f"reviewer (whose decisions were then left out): {careful:.2%}."
    )
    return "\n".join(lines) + summary


def main() -> None:
    run(
        "thresholds",
        measure,
        table,
        f"targets recall {TARGETS.review_recall}, precision {TARGETS.auto_action_precision}, "
        f"confidence {TARGETS.confidence}, cost limit {TARGETS.max_review_factor}× the truth's "
        "review share",
    )


if __name__ == "__main__":
    main()
