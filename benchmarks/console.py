"""Benchmark: the console's pages on a home with 1,000,000 logged predictions.

Builds the monitoring benchmark's home (a champion, 1,000,000 predictions over seven days, a
blind-audit ledger with decisions; `monitor.prepare`), runs `flywheel monitor` on it once, then
copies that run's report into a history of `--runs` runs (a year of daily runs by default),
registers `--versions` more model versions with their tags, and writes open review tasks and
alerts. The console then runs as a real server (uvicorn, in its own process) and each page is
fetched over HTTP: the first fetch, then the median and slowest of `--repeat` more.

The peer, in the same run: what a console that loads the log would do for the overview's
traffic figures alone, `read_predictions` (every logged prediction as a frame) and a group-by.

    .venv/bin/python benchmarks/console.py [--predictions 1000000] [--runs 365]

Prints a Markdown table (also written to benchmarks/results/console.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench_common import publish
from monitor import prepare

PAGES = ["/", "/policies/spam", "/reviewers", "/queues", "/models", "/alerts"]
KEY = "bench-console-key"


def enlarge(home: Path, runs: int, versions: int, open_tasks: int) -> None:
    """A long history, many versions, a backlog and alerts, on top of the prepared home."""
    import numpy as np
    import pandas as pd

    from flywheel.files import write_json_atomic
    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.registry import connect
    from flywheel.settings import Settings
    from monitoring.monitor import run_monitor

    settings = Settings(home=home)
    lake = Lake(settings.lake_dir)
    policy = load_policy("spam")
    report = run_monitor(policy, settings, lake)
    source = lake.run_dir("spam", report.run_id) / "report.json"
    history = pd.read_parquet(lake.history_part("spam", report.run_id))
    first = pd.Timestamp(report.computed_at) - pd.Timedelta(days=runs)
    for day in range(runs - 1):
        at = first + pd.Timedelta(days=day)
        run_id = at.strftime("%Y%m%dT%H%M%S%fZ")
        folder = lake.run_dir("spam", run_id)
        folder.mkdir(parents=True, exist_ok=True)
        text = source.read_text().replace(report.run_id, run_id)
        text = text.replace(report.computed_at, at.isoformat())
        (folder / "report.json").write_text(text)
        history.assign(run_id=run_id, computed_at=at).to_parquet(lake.history_part("spam", run_id))

    client = connect(settings)
    latest = client.get_model_version("spam", "1")
    for _ in range(versions):
        client.create_model_version("spam", latest.source, run_id=latest.run_id, tags=latest.tags)

    now = pd.Timestamp.now(tz="UTC")
    ledger = lake.pushed_tasks("spam").head(1)
    rng = np.random.default_rng(1)
    waiting = pd.concat([ledger] * open_tasks, ignore_index=True).assign(
        task_id=[f"open-{i}" for i in range(open_tasks)],
        task_key=[f"open-key-{i}" for i in range(open_tasks)],
        queue=rng.choice(["review", "explore", "audit", "gold"], open_tasks),
        pushed_at=now - pd.to_timedelta(rng.uniform(0, 72, open_tasks), unit="h"),
    )
    lake.record_pushed("spam", waiting)
    alerts = [
        {
            "key": f"spam:drift:field-{i}",
            "policy": "spam",
            "kind": "drift",
            "subject": f"field-{i}",
            "message": f"field-{i} drifted",
            "value": 0.2,
            "threshold": 0.1,
            "opened_at": (now - pd.Timedelta(days=i)).isoformat(),
            "last_seen_at": now.isoformat(),
            "resolved_at": None if i % 4 == 0 else now.isoformat(),
            "notify_error": None,
        }
        for i in range(200)
    ]
    write_json_atomic({"alerts": alerts}, lake.alerts_file)


def measure_pages(home: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Each page over HTTP from a console server of its own."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "FLYWHEEL_HOME": str(home), "FLYWHEEL_CONSOLE_KEY": KEY}
    flywheel = str(Path(sys.executable).with_name("flywheel"))
    server = subprocess.Popen([flywheel, "console", "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        times = {}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            for page in PAGES:
                started = time.perf_counter()
                answer = http.get(page)
                cold = time.perf_counter() - started
                answer.raise_for_status()
                warm = []
                for _ in range(repeat):
                    started = time.perf_counter()
                    http.get(page).raise_for_status()
                    warm.append(time.perf_counter() - started)
                times[page] = {
                    "first": cold,
                    "median": statistics.median(warm),
                    "slowest": max(warm),
                    "kb": len(answer.content) / 1024,
                }
        return times
    finally:
        server.terminate()
        server.wait(30)


def measure_peer(home: Path) -> dict[str, float]:
    from flywheel.policy import load_policy
    from flywheel.predictions import read_predictions
    from flywheel.settings import Settings

    started = time.perf_counter()
    frame = read_predictions(Settings(home=home), load_policy("spam"))
    frame.groupby([frame["scored_at"].dt.floor("D"), "decision"]).size()
    return {"seconds": time.perf_counter() - started, "rows": len(frame)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=365)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--open-tasks", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    root = Path(tempfile.mkdtemp(prefix="flywheel-bench-console-"))
    home = root / "home"
    try:
        started = time.perf_counter()
        prepare(home, args.predictions)
        enlarge(home, args.runs, args.versions, args.open_tasks)
        print(f"prepared in {time.perf_counter() - started:.0f} s")
        pages = measure_pages(home, args.repeat)
        peer = measure_peer(home)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.predictions:,} logged predictions, "
        f"{args.runs} monitoring runs, {args.versions + 1} model versions, "
        f"{args.open_tasks:,} open tasks, 200 alerts; each page fetched once, then "
        f"{args.repeat} more times.",
        "",
        "| Page | First | Median | Slowest | Size | Target |",
        "|---|---|---|---|---|---|",
        *(
            f"| `{page}` | {t['first'] * 1000:.0f} ms | {t['median'] * 1000:.0f} ms "
            f"| {t['slowest'] * 1000:.0f} ms | {t['kb']:.0f} KB | < 1 s |"
            for page, t in pages.items()
        ),
        f"| Peer: `read_predictions` + group-by ({peer['rows']:,} rows), the traffic "
        f"figures alone | {peer['seconds'] * 1000:.0f} ms | | | | |",
    ]
    publish("console", "\n".join(lines))
    print(json.dumps(pages))


if __name__ == "__main__":
    main()
