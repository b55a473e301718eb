"""Benchmark: reviewer QA on noisy, sparse, rare-violation worlds, on the grid of `noisy_grid`.

Each world's decisions go through `labeling.qa.reviewer_quality` twice: as imported history
before any model (no gold checks, no scores), and as the platform runs once a model has scored
the labelled items (its held-out scores band the noise model) with gold checks at the policy's
rate (5% of decisions, half violating) among the decisions. Every reviewer's true sensitivity and specificity are the simulator's, so each world
says whether their intervals covered them and whether the flags were right. The peer in the
same run is QA as it was before this change: the same report with the reference taken as
exact (the soft counts of the fitted model of the votes, `flywheel.aggregate`, bounded as if
they were known answers), which the issue measured flagging a careful reviewer.

Per cell:
- careful flagged: the share of worlds where any careful reviewer was flagged (bar: at most
  5%);
- careless flagged: the share of worlds where the careless one was (bar: at least 80% where
  they decided 300 items or more; here they decide about 1,500);
- coverage: the share of (reviewer, world) pairs whose sensitivity interval, and whose
  specificity interval, held the reviewer's true rate (bar: at least 90%, the two one-sided
  95% bounds);
- unjudged: the share of careful reviewers left unjudged, and the violating gold checks QA
  asked for them (median).

    .venv/bin/python benchmarks/qa.py [--draws 200]

Prints a Markdown table (also written to benchmarks/results/qa.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from noisy_grid import POLICY, Cell, run

from flywheel.aggregate import fit_reliability, latest_per_reviewer
from flywheel.stats import Rate
from labeling.qa import reviewer_quality

CARELESS_ID = "rev-careless"


def _exact_reference(votes: pd.DataFrame, golden: pd.DataFrame) -> dict[str, tuple]:
    """The peer: each reviewer's rates counted against the fitted model's leave-one-out
    posterior of the others' votes (gold checks at their answer), as exact counts (what QA did
    before)."""
    known = golden.set_index("item_id")["label"].eq("violating") if len(golden) else None
    fitted = fit_reliability(latest_per_reviewer(votes), POLICY, known)
    shared = fitted.votes[fitted.votes["p_others"].notna()]
    p, says = shared["p_others"], shared["says_positive"]
    out = {}
    for reviewer, rows in shared.groupby("reviewer_id"):
        q, s = p.loc[rows.index], says.loc[rows.index]
        sens = Rate(float((q * s).sum()), float(q.sum()), POLICY.labeling.confidence)
        spec = Rate(float(((1 - q) * ~s).sum()), float((1 - q).sum()), POLICY.labeling.confidence)
        out[reviewer] = (sens.low, sens.high, spec.low, spec.high)
    return out


def measure(cell: Cell, draw: int) -> dict:
    """The world's history QA'd as imported, before any model (no gold checks, no scores),
    and as the platform runs once a model has scored the labelled items, with gold checks at
    the policy's rate (half violating) among the decisions."""
    return {
        "reviewers": _judged(cell.world(draw), scored=False),
        "with_gold": _judged(cell.world(draw, POLICY.labeling.gold_rate), scored=True),
    }


def _judged(world, scored: bool) -> list[dict]:
    """Each reviewer's flag and whether their intervals held their true rates."""
    checked = world.votes[world.votes["known"].notna()]
    golden = pd.DataFrame(
        {
            "item_id": checked["item_id"],
            "label": np.where(checked["known"].astype(bool), "violating", "benign"),
        }
    ).drop_duplicates("item_id")
    votes = world.votes.drop(columns="known")
    scores = pd.Series(world.scores) if scored else None  # item ids are positions
    report = reviewer_quality(votes, golden if len(golden) else None, POLICY, scores=scores)
    truth = {r.reviewer_id: (r.sensitivity, r.specificity) for r in world.team}
    peer = _exact_reference(votes, golden)
    rows = []
    for r in report["reviewers"]:
        sens, spec = truth[r["reviewer_id"]]
        low, high = r["sensitivity_ci"]
        spec_low, spec_high = r["specificity_ci"]
        old = peer.get(r["reviewer_id"], (0.0, 1.0, 0.0, 1.0))
        rows.append(
            {
                "careless": r["reviewer_id"] == CARELESS_ID,
                "decisions": r["decisions"],
                "flagged": r["flagged"],
                "unjudged": r["standing"] == "unjudged",
                "asked": (r["needs_gold_checks"] or {}).get("violating", 0),
                "sens_covered": low <= sens <= high,
                "spec_covered": spec_low <= spec <= spec_high,
                "peer_sens_covered": old[0] <= sens <= old[1],
                "peer_spec_covered": old[2] <= spec <= old[3],
            }
        )
    return rows


def table(results: dict[Cell, list[dict]], key: str) -> str:
    lines = [
        "| base rate | error | decided twice | careless | careful flagged | careless flagged "
        "| sensitivity covered | specificity covered | careful unjudged (violating gold "
        "checks asked) | before: sensitivity, specificity covered |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    worst = {"careful": 0.0, "careless": 1.0, "coverage": 1.0}
    for cell, worlds in results.items():
        frame = pd.DataFrame([dict(r, world=k) for k, w in enumerate(worlds) for r in w[key]])
        careful = frame[~frame["careless"]]
        any_careful = careful.groupby("world")["flagged"].any().mean()
        careless = frame[frame["careless"]]
        caught = careless["flagged"].mean() if len(careless) else None
        sens, spec = frame["sens_covered"].mean(), frame["spec_covered"].mean()
        worst["careful"] = max(worst["careful"], any_careful)
        worst["coverage"] = min(worst["coverage"], sens, spec)
        if caught is not None and careless["decisions"].min() >= 300:
            worst["careless"] = min(worst["careless"], caught)
        asked = careful.loc[careful["unjudged"], "asked"]
        lines.append(
            f"{cell.label} {any_careful:.1%} | {'–' if caught is None else f'{caught:.0%}'} | "
            f"{sens:.1%} | {spec:.1%} | {careful['unjudged'].mean():.0%} "
            f"({asked.median() if len(asked) else 0:.0f}) | "
            f"{frame['peer_sens_covered'].mean():.0%}, {frame['peer_spec_covered'].mean():.0%} |"
        )
    summary = (
        f"\n\nWorst cell: careful reviewers flagged in {worst['careful']:.1%} of worlds "
        f"(bar 5%); careless flagged in {worst['careless']:.0%} (bar 80%); interval coverage "
        f"{worst['coverage']:.1%} (bar 90%)."
    )
    return "\n".join(lines) + summary


def both(results: dict[Cell, list[dict]], draws: int) -> str:
    """The table without gold checks, then with them."""
    return (
        "Imported history, before any model: no gold checks, no scores:\n\n"
        + table(results, "reviewers")
        + "\n\nThe same worlds as the platform runs them once a model has scored the "
        f"labelled items, with gold checks at the policy's rate ({POLICY.labeling.gold_rate:.0%} "
        "of decisions, half violating):\n\n" + table(results, "with_gold")
    )


def main() -> None:
    run(
        "qa",
        measure,
        both,
        f"bar balanced accuracy {POLICY.labeling.min_reviewer_accuracy}, confidence "
        f"{POLICY.labeling.confidence}",
    )


if __name__ == "__main__":
    main()
