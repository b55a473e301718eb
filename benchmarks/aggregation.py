"""Benchmark: one label per item from several reviewers, against the simulated truth.

Three rules on the same votes, in the same run: the majority vote, Dawid-Skene as shipped before
(crowd-kit's, fitted on the overlapping items, then every item's posterior under its estimates),
and Flywheel's constrained fit (`flywheel.aggregate.reliability_labels`). Each scenario is drawn
for many seeds by the simulator's reviewer model (`simulation.world.verdicts`: careful reviewers
err mostly on borderline items, careless ones anywhere):

- crowd: six reviewers, two or three per item, one careless (the simulator's `rev-fox`);
- new team: that crowd's history, plus three new reviewers who decide review-queue items (mostly
  violating) that no earlier reviewer saw, two of them per item;
- new team, alone: the same, but each new item decided by one new reviewer only;
- sparse: one item in ten decided twice, the rest once;
- adversarial: one reviewer answers the opposite of what they see most of the time.

    .venv/bin/python benchmarks/aggregation.py [--seeds 20]

Prints a Markdown table (also written to benchmarks/results/aggregation.md). The bar: never below
the majority vote by more than half a point in any scenario, above it where a careless or
adversarial reviewer takes part.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
from bench_common import publish

from flywheel.aggregate import latest_per_reviewer, majority_labels, reliability_labels
from flywheel.policy import load_policy
from simulation.world import DEFAULT_REVIEWERS, Reviewer, verdicts

POLICY = load_policy("spam")
CAREFUL = DEFAULT_REVIEWERS[:5]
NEW_TEAM = (
    Reviewer("new-1", 0.94, 0.99, 40.0),
    Reviewer("new-2", 0.92, 0.99, 40.0),
    Reviewer("new-3", 0.95, 0.995, 40.0),
)
ADVERSARY = Reviewer("rev-adv", 0.25, 0.3, 20.0)


def _decide(rng, pool, n_items, per_item, prevalence, prefix, start=0):
    """Votes of `per_item(rng, n)` distinct reviewers of `pool` on each of n new items."""
    truly = rng.random(n_items) < prevalence
    borderline = rng.random(n_items) < 0.08
    counts = per_item(rng, n_items)
    picks = np.argsort(rng.random((n_items, len(pool))), axis=1)
    taken = np.arange(len(pool)) < counts[:, None]
    item = np.repeat(np.arange(n_items), counts)
    chosen = [pool[i] for i in picks[taken]]
    says, _ = verdicts(chosen, truly[item], borderline[item], 0.15, rng)
    ids = np.array([f"{prefix}{start + i}" for i in range(n_items)])
    votes = pd.DataFrame(
        {
            "item_id": ids[item],
            "reviewer_id": [r.reviewer_id for r in chosen],
            "label": np.where(says, POLICY.labels.positive, POLICY.labels.negative),
            "decided_at": pd.Timestamp("2026-11-01", tz="UTC"),
        }
    )
    return votes, pd.Series(truly, index=ids)


def _two_or_three(rng, n):
    return rng.integers(2, 4, n)


def _two(rng, n):
    return np.full(n, 2)


def _one(rng, n):
    return np.ones(n, dtype=int)


def _sparse(rng, n):
    return np.where(rng.random(n) < 0.1, 2, 1)


def crowd(rng):
    return _decide(rng, DEFAULT_REVIEWERS, 3000, _two_or_three, 0.06, "c")


def new_team(rng, per_item=_two):
    history, truth = _decide(rng, DEFAULT_REVIEWERS, 3000, _two_or_three, 0.06, "h")
    fresh, fresh_truth = _decide(rng, NEW_TEAM, 60, per_item, 0.9, "n")
    return pd.concat([history, fresh]), pd.concat([truth, fresh_truth])


def new_team_alone(rng):
    return new_team(rng, _one)


def sparse(rng):
    return _decide(rng, DEFAULT_REVIEWERS, 5000, _sparse, 0.06, "s")


def adversarial(rng):
    return _decide(rng, (*CAREFUL, ADVERSARY), 3000, _two_or_three, 0.1, "a")


SCENARIOS = {
    "crowd with one careless reviewer": crowd,
    "new team, no overlap with the history (two per item)": new_team,
    "new team, each item decided once": new_team_alone,
    "sparse overlap (one item in ten twice)": sparse,
    "an adversarial reviewer": adversarial,
}


def shipped(votes: pd.DataFrame) -> pd.Series:
    """Dawid-Skene as shipped before: crowd-kit fitted on the items several reviewers decided,
    then every item's posterior under those estimates."""
    from crowdkit.aggregation import DawidSkene

    latest = latest_per_reviewer(votes)
    majority = majority_labels(votes, POLICY).set_index("item_id")["is_positive"]
    overlapping = latest[latest.groupby("item_id")["reviewer_id"].transform("size") > 1]
    if overlapping["label"].nunique() < 2:
        return majority
    fitted = DawidSkene(n_iter=50, tol=1e-4).fit(
        overlapping.rename(columns={"item_id": "task", "reviewer_id": "worker"})[
            ["task", "worker", "label"]
        ]
    )
    log_errors = np.log(fitted.errors_.clip(lower=1e-6))
    rows = log_errors.reindex(pd.MultiIndex.from_arrays([latest["reviewer_id"], latest["label"]]))
    unseen = rows.isna().any(axis=1).to_numpy()
    if unseen.any():
        average = log_errors.groupby(level=1).mean()
        rows.iloc[unseen] = average.reindex(latest["label"].to_numpy()[unseen]).to_numpy()
    summed = rows.groupby(latest["item_id"].to_numpy(), sort=True).sum()
    summed = summed + np.log(fitted.priors_.reindex(summed.columns).clip(lower=1e-6)).to_numpy()
    positive = summed[POLICY.labels.positive] > summed[POLICY.labels.negative]
    return positive.reindex(majority.index)


def accuracy(labels: pd.Series, truth: pd.Series) -> float:
    return float((labels.astype(bool) == truth.reindex(labels.index)).mean())


def run(seeds: int) -> str:
    rows = []
    started = time.perf_counter()
    for name, make in SCENARIOS.items():
        scores = {"majority": [], "shipped": [], "flywheel": [], "new items": []}
        for seed in range(seeds):
            votes, truth = make(np.random.default_rng(seed))
            majority = majority_labels(votes, POLICY).set_index("item_id")["is_positive"]
            ours = reliability_labels(votes, POLICY).set_index("item_id")["is_positive"]
            scores["majority"].append(accuracy(majority, truth))
            scores["shipped"].append(accuracy(shipped(votes), truth))
            scores["flywheel"].append(accuracy(ours, truth))
            new = [i for i in truth.index if i.startswith("n")]
            if new:
                scores["new items"].append(
                    (
                        accuracy(shipped(votes)[new], truth),
                        accuracy(ours[new], truth),
                        accuracy(majority[new], truth),
                    )
                )
        means = {k: np.mean(v, axis=0) for k, v in scores.items() if v}
        gaps = np.array(scores["flywheel"]) - np.array(scores["majority"])
        rows.append((name, means, gaps.min()))
    elapsed = time.perf_counter() - started
    header = (
        f"Machine: {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; {seeds} seeds per scenario; "
        f"`python benchmarks/aggregation.py --seeds {seeds}` ({elapsed:.0f} s)\n\n"
    )
    lines = [
        "| scenario | majority | Dawid-Skene as shipped | Flywheel | Flywheel − majority, worst seed | on the new team's items (shipped / Flywheel / majority) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, means, worst in rows:
        new = means.get("new items")
        new_cell = f"{new[0]:.3f} / {new[1]:.3f} / {new[2]:.3f}" if new is not None else "–"
        lines.append(
            f"| {name} | {means['majority']:.4f} | {means['shipped']:.4f} | "
            f"{means['flywheel']:.4f} | {worst:+.4f} | {new_cell} |"
        )
    return header + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args()
    publish("aggregation", run(args.seeds))


if __name__ == "__main__":
    main()
