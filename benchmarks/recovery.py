"""Benchmark: does the wheel learn a campaign its champion allows, and what does it cost?

For each seeded world, `flywheel demo --pattern hidden` runs end to end on real servers (Label
Studio, the scoring API, MLflow, Prefect): a campaign of phrases no item had and benign signals
(`simulation.world`, about 10% of traffic) starts with the first cycle's traffic, so the first
champion allows nearly all of it; its operators probe the champion and reword what it would
not allow (`flywheel demo --evasion-tries`, 3), so a model sees the campaign only through its
reviewers' labels of it, not by chance. The same world runs twice, in separate homes: with the
shipped policy (exploration on, `labeling.explore_budget` 0.1) and with a copy whose budget is
0 (the peer: the review queue, the blind audit and gold checks only). Both run with a thin
blind audit (`--audit-max-rate`, 1%): in a world this small the audit sized to the policy's
half-widths reaches 10% of allowed traffic and teaches a 10% campaign by itself. Per cycle it
reports the share of the campaign's violating items the API did not allow (simulator truth),
auto-action precision on the cycle's traffic (truth, with its exact 95% interval), and the
tasks pushed (review + exploration, against the policy's `labeling.review_batch`, and all
queues).

    .venv/bin/python benchmarks/recovery.py [--seeds 3] [--cycles 3]

Prints a Markdown table (also written to benchmarks/results/recovery.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from bench_common import publish

from flywheel.policy import load_policy
from flywheel.settings import REPO_ROOT
from flywheel.stats import Rate

POLICY = "spam"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _policies(folder: Path, explore: bool, audit_rate: float) -> Path:
    """The shipped policy with a thin blind audit (the peer's only view of allowed traffic)."""
    raw = yaml.safe_load((REPO_ROOT / "policies" / f"{POLICY}.yaml").read_text())
    raw["monitoring"] = {"audit_max_rate": audit_rate}
    if not explore:
        raw.setdefault("labeling", {})["explore_budget"] = 0.0
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{POLICY}.yaml").write_text(yaml.safe_dump(raw))
    return folder


def run_world(work: Path, seed: int, cycles: int, explore: bool, audit_rate: float) -> list[dict]:
    """One demo run in its own home; its per-cycle rows."""
    home = work / f"home-{seed}-{'on' if explore else 'off'}"
    env = {
        **os.environ,
        "FLYWHEEL_HOME": str(home),
        "FLYWHEEL_POLICIES_DIR": str(_policies(work / f"policies-{explore}", explore, audit_rate)),
        "LABEL_STUDIO_URL": f"http://127.0.0.1:{_port()}",
        "COLUMNS": "200",
    }
    cli = [str(Path(sys.executable).parent / "flywheel")]
    args = ["demo", "--pattern", "hidden", "--emerging-cycle", "1", "--cycles", str(cycles)]
    args += ["--policies", POLICY, "--seed", str(seed), "--api-port", str(_port())]
    try:
        done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise SystemExit(f"the demo of seed {seed} failed (exit {done.returncode}):\n{tail}")
    finally:
        subprocess.run([*cli, "stop"], env=env, capture_output=True)
    return json.loads((home / "demo" / "cycles.json").read_text())["rows"]


def line(seed: int, explore: bool, row: dict, capacity: int) -> str:
    """One cycle of one world as a table row."""
    rate = Rate(row["auto_action_violating"], row["auto_actioned"], 0.95)
    precision = (
        f"{rate.value:.3f} [{rate.low:.3f}, {rate.high:.3f}] on {rate.n}"
        if rate.n
        else "none auto-actioned"
    )
    queues = row["pushed_by_queue"]
    reviewed = queues.get("review", 0) + queues.get("explore", 0)
    return (
        f"| {seed} | {'on' if explore else 'off'} | {row['cycle']} | "
        f"{row['pattern_recall']:.2f} of {row['pattern_items']} | "
        f"{row.get('pattern_reworded', 0)} | {precision} | "
        f"{reviewed} ({capacity}) | {queues.get('explore', 0)} | {row['pushed']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--audit-max-rate", type=float, default=0.01)
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args()
    capacity = load_policy(POLICY).labeling.review_batch
    work = Path(tempfile.mkdtemp(prefix="flywheel-recovery-"))
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; `{POLICY}` policy, "
        f"`flywheel demo --pattern hidden --emerging-cycle 1 --cycles {args.cycles}` per world "
        f"(1,000 items per cycle; the campaign from cycle 1); blind audit at most "
        f"{args.audit_max_rate:.0%} of each decision's traffic (`monitoring.audit_max_rate`).",
        "",
        "| seed | exploration | cycle | campaign caught (of its violating items) | reworded "
        "after probing | auto-action precision (truth, 95% interval) | review + exploration "
        "tasks (capacity) | of them exploration | all tasks pushed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    started = time.time()
    try:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for explore in (True, False):
                rows = run_world(work, seed, args.cycles, explore, args.audit_max_rate)
                lines += [line(seed, explore, row, capacity) for row in rows]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += ["", f"Total time: {time.time() - started:.0f} s."]
    publish("recovery", "\n".join(lines))


if __name__ == "__main__":
    main()
