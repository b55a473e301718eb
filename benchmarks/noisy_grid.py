"""The grid of noisy-label worlds that `thresholds.py` and `qa.py` sweep, and the sweep itself.

A cell is a base rate × the careful reviewers' error × the share of items decided twice × with
or without one careless reviewer (who flips 30% of their answers); every world of a cell is a
seeded `simulation.scored` world of about 12,000 decisions by seven careful reviewers (plus the
careless one). Worlds are spread over the machine's cores; each returns a plain dict, kept on
disk as it arrives so that a stopped sweep resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
from bench_common import RESULTS, header, publish

from flywheel.policy import parse_policy
from simulation.scored import ScoredWorld, scored_world
from simulation.world import team

PREVALENCES = (0.005, 0.01, 0.03, 0.10)
ERRORS = (0.0, 0.01, 0.02, 0.05)
OVERLAPS = (1 / 8, 1 / 2)
CARELESS = 0.3
ROOT = Path(__file__).resolve().parent.parent
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


def sweep(
    measure: Callable[[Cell, int], dict], grid: list[Cell], draws: int, kept: Path
) -> dict[Cell, list]:
    """`measure(cell, draw)` for every world of every cell, on all cores.

    Each world's result is appended to `kept` as it arrives and read back on the next run, so
    a sweep of hours survives being stopped and resumes where it was (worlds are seeded, so a
    kept result is the one a rerun would give, as long as the code is the same: see `kept_at`).
    """
    done = _read_kept(kept)
    jobs = [(cell, draw) for cell in grid for draw in range(draws) if (cell, draw) not in done]
    kept.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(os.cpu_count()) as pool, kept.open("a") as out:
        futures = {pool.submit(measure, *job): job for job in jobs}
        for future in as_completed(futures):
            cell, draw = futures[future]
            done[cell, draw] = future.result()
            out.write(json.dumps({"cell": astuple(cell), "draw": draw, "result": done[cell, draw]}))
            out.write("\n")
            out.flush()
    return {cell: [done[cell, draw] for draw in range(draws)] for cell in grid}


def _read_kept(kept: Path) -> dict[tuple[Cell, int], dict]:
    """Results of earlier runs; a line torn by a run that was stopped is left out."""
    done = {}
    if kept.exists():
        for line in kept.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            done[Cell(*row["cell"]), row["draw"]] = row["result"]
    return done


def kept_at(name: str) -> Path:
    """Where a sweep keeps its worlds: named after the source of every module of this
    repository it has loaded, so a change to the code starts afresh."""
    digest = hashlib.sha256()
    for module in sorted(sys.modules.values(), key=lambda m: m.__name__):
        path = Path(getattr(module, "__file__", None) or "/")
        if path.suffix == ".py" and ROOT in path.parents and ".venv" not in path.parts:
            digest.update(path.read_bytes())
    return RESULTS / "worlds" / f"{name}-{digest.hexdigest()[:12]}.jsonl"


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
    kept = kept_at(name)
    resumed = sum(draw < draws for _, draw in _read_kept(kept))
    if resumed:
        what += f"; resumed with {resumed} worlds kept by an earlier run of the same code"
    started = time.perf_counter()
    results = sweep(measure, cells(), draws, kept)
    minutes = (time.perf_counter() - started) / 60
    said = header(
        f"{draws} worlds per cell, about 12,000 decisions each; {what}",
        f"{name}.py --draws {draws}",
        minutes,
    )
    publish(name, said + render(results, draws))
