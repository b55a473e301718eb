"""The grid of noisy-label worlds that `thresholds.py` and `qa.py` sweep, and the sweep itself.

A cell is a base rate × the careful reviewers' error × the share of items decided twice × with
or without one careless reviewer (who flips 30% of their answers); every world of a cell is a
seeded `simulation.scored` world of about 12,000 decisions by seven careful reviewers (plus the
careless one). Worlds are spread over the machine's cores; each returns a plain dict.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from bench_common import header, publish

from flywheel.policy import parse_policy
from simulation.scored import ScoredWorld, scored_world
from simulation.world import team

PREVALENCES = (0.005, 0.01, 0.03, 0.10)
ERRORS = (0.0, 0.01, 0.02, 0.05)
OVERLAPS = (1 / 8, 1 / 2)
CARELESS = 0.3
POLICY = parse_policy(
    """
name: bench
labels: {positive: violating, negative: benign}
fields: {numeric: [score]}
targets: {auto_action_precision: 0.95, review_recall: 0.9, confidence: 0.95}
"""
)


@dataclass(frozen=True)
class Cell:
    prevalence: float
    error: float
    overlap: float
    careless: bool

    def world(self, draw: int, gold_checks: float = 0.0) -> ScoredWorld:
        """The cell's `draw`-th world, the same on every run (gold checks apart)."""
        seed = [draw, int(self.prevalence * 1e4), int(self.error * 1e4), int(self.overlap * 8)]
        rng = np.random.default_rng([*seed, int(self.careless)])
        members = team(self.error, careless=CARELESS if self.careless else None)
        return scored_world(
            rng, self.prevalence, members, overlap=self.overlap, gold_checks=gold_checks
        )

    @property
    def label(self) -> str:
        overlap = "1/8" if self.overlap < 0.2 else "1/2"
        return (
            f"| {self.prevalence:.1%} | {self.error:.0%} | {overlap} | "
            f"{'yes' if self.careless else 'no'} |"
        )


def cells() -> list[Cell]:
    return [
        Cell(*values) for values in itertools.product(PREVALENCES, ERRORS, OVERLAPS, (False, True))
    ]


def sweep(measure: Callable[[Cell, int], dict], grid: list[Cell], draws: int) -> dict[Cell, list]:
    """`measure(cell, draw)` for every world of every cell, on all cores."""
    jobs = [(cell, draw) for cell in grid for draw in range(draws)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        results = list(pool.map(_call, [measure] * len(jobs), jobs, chunksize=8))
    out: dict[Cell, list] = {cell: [] for cell in grid}
    for (cell, _), result in zip(jobs, results, strict=True):
        out[cell].append(result)
    return out


def _call(measure, job):
    return measure(*job)


def monte_carlo_floor(share: float, n: int) -> float:
    """A rule that holds in `share` of worlds falls below this on `n` worlds with about 0.1%
    chance: three standard errors under it."""
    return share - 3 * float(np.sqrt(share * (1 - share) / n))


def run(name: str, measure: Callable[[Cell, int], dict], render, what: str) -> None:
    """A grid benchmark's command line: sweep every cell's worlds (`--draws` each), time it,
    and publish `render(results, draws)` under a header that says how it was measured."""
    parser = argparse.ArgumentParser(description=f"benchmarks/{name}.py on the noisy-label grid")
    parser.add_argument("--draws", type=int, default=200)
    draws = parser.parse_args().draws
    started = time.perf_counter()
    results = sweep(measure, cells(), draws)
    minutes = (time.perf_counter() - started) / 60
    said = header(
        f"{draws} worlds per cell, about 12,000 decisions each; {what}",
        f"{name}.py --draws {draws}",
        minutes,
    )
    publish(name, said + render(results, draws))
