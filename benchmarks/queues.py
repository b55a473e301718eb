"""Benchmark: the same work and team under three ways of choosing the next task.

Seeded worlds of `simulation.capacity`: two weeks of review tasks (40 an hour on average, a
daily swing, English, Portuguese and a rare Swahili; scores calibrated), twelve reviewers on
three shifts, their paces scaled to 60%, 80%, 100% and 120% of what arrives. Each world is
played three times (`simulation.capacity.work`): oldest first over the policy's queues (ROOST's
Coop), highest score first in one queue for everyone (Flywheel before queues), and Flywheel's
routing (queues by language and severity, harm with aging, escalation); and a fourth time
knowing which tasks violate, as a reference for how much exposure any order can save. Figures
are over the second week's tasks (the first fills the queues).

Per capacity and ordering, the mean over worlds (the worst world in brackets where it decides
a bar):
- harm exposure: hours violating items waited for a decision, times their queue's severity
  (undecided ones count until the end), against oldest first's;
- high-severity items decided within their SLA;
- the lowest queue's SLA compliance, and whether some queue starved (decided less than half
  the share the team decided overall);
- reviewer utilisation (busy over on-shift hours); tasks escalated; tasks never decided;
- the forecast (`labeling.forecast`, from the first week's arrivals and scores per queue and
  hour, the tasks waiting at the start of the second and the team): each queue's predicted
  compliance against Flywheel's simulated one. One week of a queue worked at about the rate it
  fills is a random walk, and no forecast made a week ahead can land within 5 points of every
  such week; what a forecast owes is to be right on average and to say how far one week may
  stray. So the gap is read over worlds, as a mean with its 95% interval, with the share of
  worlds whose simulated week fell inside the forecast's band and the largest gap in one;
- per queue, harm exposure under Flywheel's routing against oldest first's: where ordering
  saves exposure, and where a queue's wait is set by when its few readers are on shift.

    .venv/bin/python benchmarks/queues.py [--seeds 5]

Prints Markdown tables (also written to benchmarks/results/queues.md).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from bench_common import header, publish
from scipy import stats

from labeling.forecast import Load, Worker, forecast
from simulation.capacity import POLICY, arrivals, can_work, team, work

CAPACITIES = (0.6, 0.8, 1.0, 1.2)
ORDERINGS = ("oldest", "score", "harm", "truth")
DAYS, PER_HOUR, WARM = 14, 40.0, 7  # the second week is measured
FUTURES = 40


def measure(seed: int, capacity: float, score_shape: float = 2.0) -> dict:
    rng = np.random.default_rng([seed, int(capacity * 100)])
    tasks = arrivals(rng, DAYS, PER_HOUR, score_shape)
    members = team(rng, PER_HOUR, capacity)
    out = {"seed": seed, "capacity": capacity}
    measured = tasks["arrived"] >= WARM * 24
    for ordering in ORDERINGS:
        played = work(tasks, members, ordering, DAYS, seed=seed)
        mine = played[measured]
        end = (DAYS + 1) * 24.0
        wait = np.minimum(mine["decided"], end) - mine["arrived"]
        within = mine["decided"] - mine["arrived"] <= mine["sla"]
        per_queue = within.groupby(mine["queue"]).mean()
        decided = np.isfinite(mine["decided"])
        share = decided.groupby(mine["queue"]).mean()
        out[ordering] = {
            "exposure": float((mine["severity"] * wait)[mine["truth"]].sum()),
            "exposure_by_queue": (mine["severity"] * wait)[mine["truth"]]
            .groupby(mine["queue"][mine["truth"]])
            .sum()
            .to_dict(),
            "high_within": float(within[mine["severity"] > 1].mean()),
            "lowest_queue": float(per_queue.min()),
            "per_queue": per_queue.round(3).to_dict(),
            "starved": bool((share < 0.5 * decided.mean()).any()),
            "utilisation": played.attrs["utilisation"],
            "escalated": played.attrs["escalated"],
            "never": int((~decided).sum()),
        }
        if ordering == "harm":
            out["forecast"] = _forecast_gap(tasks, played, members)
    return out


def _forecast_gap(tasks: pd.DataFrame, played: pd.DataFrame, members: list) -> dict:
    """Per queue, the forecast of compliance over the second week, made at its start from the
    first week alone (its band too), and what Flywheel's ordering gave the same tasks: those
    that arrived in it and those waiting at its start."""
    start = WARM * 24.0
    held = (played["arrived"] >= start) | (played["decided"] > start)
    within = played["decided"] - played["arrived"] <= played["sla"]
    simulated = within[held].groupby(played.loc[held, "queue"]).mean()
    loads = []
    for queue in POLICY.queues.define:
        mine = tasks[tasks["queue"] == queue.name]
        first = mine[mine["arrived"] < start]
        counts = np.bincount((first["arrived"] % 24).astype(int), minlength=24).astype(float)
        waiting = played.loc[mine.index]
        waiting = waiting[(waiting["arrived"] < start) & (waiting["decided"] > start)]
        loads.append(
            Load(queue.name, queue.sla_hours, tuple(start - waiting["arrived"]), tuple(counts),
                 WARM, queue.severity, waiting_scores=tuple(waiting["score"]),
                 scores=tuple(first["score"]))
        )  # fmt: skip
    workers = tuple(
        Worker(
            m.pace,
            # from the shift under way at the start (the night one began the day before)
            tuple(
                (max(d * 24 + m.shift[0], 0.0), d * 24 + m.shift[1])
                for d in range(-1, DAYS - WARM + 2)
                if d * 24 + m.shift[1] > 0
            ),
            tuple(q.name for q in POLICY.queues.define if can_work(m, q.name)),
        )
        for m in members
    )
    ahead = forecast(
        loads, workers, DAYS - WARM, FUTURES, seed=1, escalate_at=POLICY.queues.escalate_at,
        age_weight=POLICY.queues.age_weight,
    )  # fmt: skip
    return {
        q: {
            "predicted": ahead[q].within_sla,
            "low": ahead[q].low,
            "high": ahead[q].high,
            "simulated": float(simulated[q]),
        }
        for q in simulated.index
        if ahead[q].within_sla is not None
    }


def _call(job):
    return measure(*job)


def table(results: list[dict]) -> str:
    lines = [
        "| capacity | ordering | harm exposure vs oldest first (worst) | high severity within SLA "
        "(worst) | lowest queue within SLA | starved queue in | utilisation | escalated | "
        "never decided |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    bars = []
    for capacity in CAPACITIES:
        runs = [r for r in results if r["capacity"] == capacity]
        for ordering in ORDERINGS:
            ratio = [r[ordering]["exposure"] / r["oldest"]["exposure"] for r in runs]
            high = [r[ordering]["high_within"] for r in runs]
            lines.append(
                f"| {capacity:.0%} | {ordering} | {np.mean(ratio):.2f} ({max(ratio):.2f}) | "
                f"{np.mean(high):.1%} ({min(high):.1%}) | "
                f"{np.mean([r[ordering]['lowest_queue'] for r in runs]):.1%} | "
                f"{np.mean([r[ordering]['starved'] for r in runs]):.0%} | "
                f"{np.mean([r[ordering]['utilisation'] for r in runs]):.1%} | "
                f"{np.mean([r[ordering]['escalated'] for r in runs]):.0f} | "
                f"{np.mean([r[ordering]['never'] for r in runs]):.0f} |"
            )
        harm = [r["harm"] for r in runs]
        saved = [h["exposure"] / r["oldest"]["exposure"] for h, r in zip(harm, runs, strict=True)]
        gaps = _gaps(runs)
        bars.append(
            {
                "capacity": capacity,
                "exposure": _interval(saved),
                "worst": max(saved),
                "truth": max(r["truth"]["exposure"] / r["oldest"]["exposure"] for r in runs),
                "high": min(h["high_within"] for h in harm),
                "starved": any(h["starved"] for h in harm),
                "gap": max(gaps.values(), key=lambda g: max(abs(g["low"]), abs(g["high"]))),
            }
        )
    lines += [
        "",
        "Bars (Flywheel's routing): harm exposure ≤ 0.6× oldest first's (the mean over worlds: "
        "its 95% interval below 0.6 ✓, above ✗, across the line ?; and in the worst world); "
        "high severity within SLA ≥ 95% at 80% capacity and above in the worst world; no queue "
        "starved in any world; the forecast within 5 points of the simulated compliance of "
        "every queue (the mean gap over worlds: its 95% interval inside ±5 points ✓, outside "
        "✗, across the line ?).",
        "",
        "| capacity | exposure vs oldest, mean (95% interval) | worst world (knowing the "
        "truth) | high severity within SLA | a queue starved | forecast's widest gap (95% "
        "interval) |",
        "|---:|---:|---:|---:|---|---:|",
    ]
    for b in bars:
        g = b["gap"]
        inside = g["low"] >= -5 and g["high"] <= 5
        outside = g["low"] > 5 or g["high"] < -5
        mean, low, high = b["exposure"]
        lines.append(
            f"| {b['capacity']:.0%} | {mean:.2f} [{low:.2f}, {high:.2f}] "
            f"{'✓' if high <= 0.6 else '✗' if low > 0.6 else '?'} | "
            f"{b['worst']:.2f} {'✓' if b['worst'] <= 0.6 else '✗'} ({b['truth']:.2f}) | "
            f"{b['high']:.1%} {'✓' if b['capacity'] < 0.8 or b['high'] >= 0.95 else '✗'} | "
            f"{'yes ✗' if b['starved'] else 'no ✓'} | "
            f"{g['queue']} {g['mean']:+.1f} [{g['low']:+.1f}, {g['high']:+.1f}] points "
            f"{'✓' if inside else '✗' if outside else '?'} |"
        )
    lines += [
        "",
        "The forecast per queue: its predicted compliance over the second week and the "
        "simulated one (means over worlds), the gap in points (mean, 95% t interval), the share "
        "of worlds whose simulated compliance fell inside the forecast's 5th–95th percentile "
        "band, and the largest gap in one world.",
        "",
        "| capacity | queue | predicted | simulated | gap (95% interval) | inside the band | "
        "largest in one world |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for capacity in CAPACITIES:
        runs = [r for r in results if r["capacity"] == capacity]
        for queue, g in _gaps(runs).items():
            lines.append(
                f"| {capacity:.0%} | {queue} | {g['predicted']:.1%} | {g['simulated']:.1%} | "
                f"{g['mean']:+.1f} [{g['low']:+.1f}, {g['high']:+.1f}] | {g['inside']:.0%} | "
                f"{g['worst']:.1f} |"
            )
    queues = sorted({q for r in results for q in r["harm"]["exposure_by_queue"]})
    lines += [
        "",
        "Where the routing saves exposure: each queue's harm exposure under Flywheel's routing "
        "against oldest first's in the same queue (mean over worlds; knowing the truth in "
        "brackets).",
        "",
        "| capacity | " + " | ".join(queues) + " |",
        "|---:|" + "---:|" * len(queues),
    ]
    for capacity in CAPACITIES:
        runs = [r for r in results if r["capacity"] == capacity]
        cells = []
        for queue in queues:
            ratio = {
                o: [
                    r[o]["exposure_by_queue"].get(queue, 0.0)
                    / r["oldest"]["exposure_by_queue"][queue]
                    for r in runs
                    if r["oldest"]["exposure_by_queue"].get(queue)
                ]
                for o in ("harm", "truth")
            }
            cells.append(
                f"{np.mean(ratio['harm']):.2f} ({np.mean(ratio['truth']):.2f})"
                if ratio["harm"]
                else "–"
            )
        lines.append(f"| {capacity:.0%} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _interval(values) -> tuple[float, float, float]:
    """The mean over worlds and its 95% t interval."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n) if n > 1 else np.inf
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)


def _gaps(runs: list[dict]) -> dict[str, dict]:
    """Per queue, over worlds: the forecast's gap to the simulation in points (mean and 95%
    t interval), the share of worlds inside its band, the largest gap in one world."""
    out = {}
    for queue in sorted({q for r in runs for q in r["forecast"]}):
        seen = [r["forecast"][queue] for r in runs if queue in r["forecast"]]
        gap = np.array([100 * (f["predicted"] - f["simulated"]) for f in seen])
        mean, low, high = _interval(gap)
        out[queue] = {
            "queue": queue,
            "predicted": float(np.mean([f["predicted"] for f in seen])),
            "simulated": float(np.mean([f["simulated"] for f in seen])),
            "mean": mean,
            "low": low,
            "high": high,
            "inside": float(np.mean([f["low"] <= f["simulated"] <= f["high"] for f in seen])),
            "worst": float(np.abs(gap).max()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--score-shape", type=float, default=2.0,
        help="scores drawn Beta(s, s): 2 an unsure champion in its review band, 0.5 a sure one",
    )  # fmt: skip
    args = parser.parse_args()
    seeds, shape = args.seeds, args.score_shape
    started = time.perf_counter()
    jobs = [(seed, capacity, shape) for capacity in CAPACITIES for seed in range(seeds)]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        results = list(pool.map(_call, jobs))
    minutes = (time.perf_counter() - started) / 60
    default = shape == 2.0
    said = header(
        f"{seeds} worlds per capacity, {DAYS} days of about {PER_HOUR * 24:.0f} tasks a day, "
        f"the second week measured, scores Beta({shape:g}, {shape:g})",
        f"queues.py --seeds {seeds}" + ("" if default else f" --score-shape {shape:g}"),
        minutes,
    )
    publish("queues" if default else f"queues-shape-{shape:g}", said + table(results))


if __name__ == "__main__":
    main()
