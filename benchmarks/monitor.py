"""Benchmark: one monitoring run over 1,000,000 logged predictions.

Builds a home with a champion (trained on a small simulated world), a prediction log of
1,000,000 items (simulated traffic, the later part with the emerging pattern, scored by the
champion), a blind-audit ledger with reviewer decisions, then times `run_monitor` in its own
process (peak RSS is its own). The peer, in the same run: Evidently's data-drift preset on the
whole window, unsampled, which is what a run would cost without sampling.

    .venv/bin/python benchmarks/monitor.py [--predictions 1000000]

Prints a Markdown table (also written to benchmarks/results/monitor.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import peak_rss_mb, publish


def prepare(home: Path, n: int) -> None:
    import numpy as np
    import pandas as pd

    from flywheel.ingest import import_decisions, import_golden
    from flywheel.lake import Lake, write_parquet_atomic
    from flywheel.policy import load_policy
    from flywheel.predictions import COLUMNS, policy_dir
    from flywheel.registry import connect, get_version
    from flywheel.runtime import load_model
    from flywheel.settings import Settings
    from labeling.push import LEDGER_COLUMNS
    from labeling.sample import audit_sample
    from simulation.world import WorldConfig, simulate, write_world
    from training.promote import promote
    from training.train import train

    policy = load_policy("spam")
    settings = Settings(home=home)
    lake = Lake(settings.lake_dir)
    world = simulate(policy, WorldConfig(days=14, items_per_day=1500, emerging_day=14))
    files = write_world(world, home.parent / "world")
    import_golden(files["golden"], policy, lake)
    import_decisions(files["decisions"], policy, lake)
    train(policy, settings)
    promote(policy, settings)
    client = connect(settings)
    champion = load_model(client, get_version(client, "spam", "champion"), policy)

    traffic = simulate(
        policy, WorldConfig(seed=21, days=7, items_per_day=n // 7 + 1, emerging_day=4)
    ).traffic.head(n)
    scores = champion.score(traffic)
    now = pd.Timestamp.now(tz="UTC")
    scored_at = now - pd.to_timedelta(np.linspace(6.9 * 86400, 0, len(traffic)), unit="s")
    log = pd.DataFrame({c: None for c in COLUMNS}, index=traffic.index).assign(
        request_id="bench",
        item_index=0,
        item_id=traffic["item_id"],
        policy="spam",
        model_name="spam",
        model_version=champion.ref.version,
        score=scores,
        decision=champion.ref.thresholds.decide(scores),
        fallback=False,
        scored_at=scored_at,
        **{c: traffic[c] for c in policy.feature_columns},
    )
    for k, start in enumerate(range(0, len(log), 200_000)):
        write_parquet_atomic(
            log.iloc[start : start + 200_000], policy_dir(settings, "spam") / f"part-{k}.parquet"
        )
    audit = audit_sample(log, policy, pushed=set())
    ledger = audit.assign(
        queue="audit",
        reason="blind audit",
        task_id=[f"t{i}" for i in range(len(audit))],
        task_key=[f"k{i}" for i in range(len(audit))],
        project_id=1,
        priority=np.nan,
        pushed_at=now,
        review_queue="",
    )[[*LEDGER_COLUMNS, *policy.feature_columns]]
    lake.record_pushed("spam", ledger.assign(pushed_at=now, model_version="1"))
    rng = np.random.default_rng(0)  # reviewers' labels drawn from the calibrated scores
    violating = rng.random(len(audit)) < audit["score"].to_numpy()
    decisions = audit[["item_id", *policy.feature_columns]].assign(
        label=np.where(violating, "violating", "benign"),
        reviewer_id="rev-ana",
        decided_at=now.strftime("%Y-%m-%dT%H:%M:%S%z"),
        source="audit",
        task_id=ledger["task_id"].to_numpy(),
    )
    decisions.to_csv(home.parent / "audit.csv", index=False)
    import_decisions(home.parent / "audit.csv", policy, lake)


def measure_monitor(home: Path) -> dict:
    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.settings import Settings
    from monitoring.monitor import run_monitor

    settings = Settings(home=home)
    policy = load_policy("spam")
    started = time.perf_counter()
    report = run_monitor(policy, settings, Lake(settings.lake_dir))
    return {
        "seconds": time.perf_counter() - started,
        "predictions": report.window.predictions,
        "sample": report.drift.sample_size,
        "alerts": report.alerts.open,
        "audited": report.production.audit.audited_items,
        "rss_mb": peak_rss_mb(),
    }


def measure_peer(home: Path) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.predictions import policy_dir
    from flywheel.settings import Settings

    settings = Settings(home=home)
    policy = load_policy("spam")
    current = Lake.read_parquet(sorted(policy_dir(settings, "spam").glob("part-*.parquet")))
    dataset = sorted((settings.lake_dir / "datasets" / "spam").iterdir())[-1]
    import pandas as pd

    reference = pd.read_parquet(dataset / "train.parquet")
    definition = DataDefinition(
        numerical_columns=policy.fields.numeric,
        categorical_columns=policy.fields.categorical,
        text_columns=policy.fields.text,
    )
    columns = policy.feature_columns
    started = time.perf_counter()
    Report([DataDriftPreset(columns=columns)]).run(
        Dataset.from_pandas(current[columns], data_definition=definition),
        Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    return {
        "seconds": time.perf_counter() - started,
        "rows": len(current),
        "rss_mb": peak_rss_mb(),
    }


def _child(phase: str, home: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--home", str(home)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--phase", choices=["monitor", "peer"])
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    if args.phase:
        measure = measure_monitor if args.phase == "monitor" else measure_peer
        print(json.dumps(measure(args.home)))
        return
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    home = Path(tempfile.mkdtemp(prefix="flywheel-bench-monitor-")) / "home"
    started = time.perf_counter()
    prepare(home, args.predictions)
    print(f"prepared in {time.perf_counter() - started:.0f} s")
    ours = _child("monitor", home)
    peer = _child("peer", home)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {ours['predictions']:,} predictions in the window, "
        f"{ours['audited']:,} audited; drift sample {ours['sample']:,} rows per side.",
        "",
        "| Run | Time | Peak RSS | Target |",
        "|---|---|---|---|",
        f"| `flywheel monitor` (drift, emerging, golden, audit, health, alerts, reports) "
        f"| {ours['seconds']:.1f} s | {ours['rss_mb']:,.0f} MB | ≤ 60 s, ≤ 4 GB |",
        f"| Peer: Evidently data drift on the whole window ({peer['rows']:,} rows), unsampled "
        f"| {peer['seconds']:.1f} s | {peer['rss_mb']:,.0f} MB | |",
    ]
    publish("monitor", "\n".join(lines))


if __name__ == "__main__":
    main()
