"""Benchmark: the same registered model served three ways, measured in one run.

1. `mlflow models serve -m models:/spam@champion --env-manager local` (the peer);
2. a bare FastAPI endpoint that returns a constant, under the same uvicorn settings as
   Flywheel (uvloop, httptools, no access log): the ceiling the issue names;
3. `flywheel serve`, with three policies loaded, each with a champion and a different
   challenger (shadow scoring on), and the prediction log on.

Each server runs pinned to CPU 0; the load generator (`wrk`, 1 thread, 8 connections, single-item
requests) and this script run pinned to CPU 1. Batch latency: 1,000 items per request, sequential,
the body encoded once. This machine's speed drifts by tens of percent within minutes, so the bare
endpoint and flywheel are measured in alternating rounds (after each flywheel round, until its
shadow backlog and log compaction are done) and the table shows medians; each round is listed too.

    .venv/bin/python benchmarks/serving.py [--seconds 10] [--rounds 3]

Needs `wrk` (Debian: `apt-get install wrk`) and `taskset` (util-linux). Prints a Markdown table
(also written to benchmarks/results/serving.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.executable).parent
SERVER_CPU, CLIENT_CPU = "0", "1"
POLICIES = ("spam", "scam", "bench_policy")
KEY = "bench-key"

BARE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    app = FastAPI()
    BODY = b'{"request_id":"0","item_id":"x","results":[{"policy":"spam","model_version":1,"score":0.5,"decision":"review","fallback":false}]}'

    @app.post("/v1/score")
    async def score(request: Request) -> Response:
        await request.body()
        return Response(BODY, media_type="application/json")
    """
)


def build_registry(home: Path) -> list[dict]:
    """Three policies, each with a champion and a different challenger; returns sample items."""
    from flywheel.ingest import import_decisions, import_golden
    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.settings import Settings
    from simulation.world import WorldConfig, simulate, write_world
    from training.promote import promote
    from training.train import train

    policies_dir = home / "policies"
    policies_dir.mkdir(parents=True)
    for name in ("spam", "scam"):
        shutil.copy(REPO / "policies" / f"{name}.yaml", policies_dir)
    shutil.copy(HERE / "bench_policy.yaml", policies_dir)
    settings = Settings(home=home, policies_dir=policies_dir)
    lake = Lake(settings.lake_dir)
    samples = {}
    for name in POLICIES:
        policy = load_policy(name, settings)
        world = simulate(
            policy, WorldConfig(days=20, items_per_day=1000, emerging_day=20, review_fraction=0.5)
        )
        files = write_world(world, home / "worlds" / name, "parquet")
        import_golden(files["golden"], policy, lake)
        import_decisions(files["decisions"], policy, lake)
        train(policy, settings)
        if not promote(policy, settings).promoted:
            raise SystemExit(f"{name}: the benchmark's first model was not promoted")
        train(policy, settings, force=True)  # a second version stays challenger: shadow scoring on
        samples[name] = world.traffic
    items = []
    for i, row in enumerate(samples["spam"].head(1000).to_dict("records")):
        item = {k: (None if v != v else v) for k, v in row.items() if k != "created_at"}
        for name in ("scam", "bench_policy"):
            other = samples[name].iloc[i % len(samples[name])]
            for field in load_policy(name, settings).feature_columns:
                item.setdefault(field, None if other[field] != other[field] else other[field])
        items.append(item)
    return items


def _pinned(cpu: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args]


def start(args: list[str], env: dict, url: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        _pinned(SERVER_CPU, args),
        env={**os.environ, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{args[0]} exited:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{args[0]} did not start:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def rss_mb(process: subprocess.Popen) -> float:
    root = psutil.Process(process.pid)
    procs = [root, *root.children(recursive=True)]
    return (
        sum(p.memory_info().rss for p in procs if p.is_running() and p.name() != "taskset") / 2**20
    )


def wrk(url: str, body: dict, headers: dict, seconds: int, work: Path) -> dict:
    """wrk, 1 thread, 8 connections; returns requests/s, p50 and p99 in ms, and errors."""
    script = work / "post.lua"
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines.append(f"wrk.body = {json.dumps(json.dumps(body))}")
    script.write_text("\n".join(lines) + "\n")
    command = _pinned(
        CLIENT_CPU, ["wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", "-s", str(script), url]
    )
    subprocess.run(
        [*command[:-5], "-d3s", *command[-4:]], capture_output=True, check=True
    )  # warm-up
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def wait_idle(process: subprocess.Popen, timeout_s: float = 120) -> None:
    """Until the server and its children (the log compactor) stop using the CPU: the shadow
    backlog and compaction of one measurement must not run into the next."""
    root = psutil.Process(process.pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs = [root, *root.children(recursive=True)]
        for proc in procs:
            proc.cpu_percent(None)
        time.sleep(0.5)
        if sum(proc.cpu_percent(None) for proc in procs if proc.is_running()) < 5:
            return
    raise SystemExit(f"the server was still busy after {timeout_s} s")


def median_of(measurements: list[dict]) -> dict:
    return {
        key: statistics.median(m[key] for m in measurements)
        for key in ("rps", "p50", "p99", "errors", "batch_ms")
        if key in measurements[0]
    }


def batch_latency(url: str, body: dict, headers: dict, repeats: int = 25) -> float:
    """Median milliseconds for one request of 1,000 items (sequential, after 3 warm-ups). The
    body is encoded once, as wrk's is: the client's JSON encoding is not the server's time."""
    content = json.dumps(body).encode()
    headers = {**headers, "Content-Type": "application/json"}
    timings = []
    with httpx.Client(timeout=60) as client:
        for i in range(repeats + 3):
            started = time.perf_counter()
            answer = client.post(url, content=content, headers=headers)
            answer.raise_for_status()
            if i >= 3:
                timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"{tool} is needed (Debian: apt-get install {'wrk' if tool == 'wrk' else 'util-linux'})"
            )
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    work = Path(tempfile.mkdtemp(prefix="flywheel-serving-bench-"))
    home = work / "home"
    print(
        "building a registry with three policies (champion + challenger each)...", file=sys.stderr
    )
    items = build_registry(home)
    spam_fields = [
        "item_id",
        "text",
        "account_age_days",
        "links",
        "prior_reports",
        "messages_last_hour",
        "surface",
        "country",
    ]
    one = {k: items[0][k] for k in spam_fields}
    tracking = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    path_env = {"PATH": f"{BIN}:{os.environ.get('PATH', '')}", "MLFLOW_TRACKING_URI": tracking}
    results = {}

    port = 18001
    peer = start(
        [
            str(BIN / "mlflow"),
            "models",
            "serve",
            "-m",
            "models:/spam@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        path_env,
        f"http://127.0.0.1:{port}/ping",
        work / "mlflow.log",
    )
    try:
        single = {"dataframe_records": [{k: v for k, v in one.items() if k != "item_id"}]}
        batch = {
            "dataframe_records": [
                {k: item[k] for k in spam_fields if k != "item_id"} for item in items
            ]
        }
        results["mlflow models serve (peer)"] = {
            **wrk(f"http://127.0.0.1:{port}/invocations", single, {}, args.seconds, work),
            "batch_ms": batch_latency(f"http://127.0.0.1:{port}/invocations", batch, {}),
            "rss": rss_mb(peer),
        }
    finally:
        stop(peer)

    (work / "bare_app.py").write_text(BARE_APP)
    bare_url, flywheel_url = "http://127.0.0.1:18002", "http://127.0.0.1:18003"
    bare = start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            "18002",
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--app-dir",
            str(work),
        ],
        {},
        f"{bare_url}/docs",
        work / "bare.log",
    )
    flywheel_env = {
        "FLYWHEEL_HOME": str(home),
        "FLYWHEEL_POLICIES_DIR": str(home / "policies"),
        "FLYWHEEL_API_KEYS": KEY,
        "MLFLOW_TRACKING_URI": tracking,
    }
    served = None
    try:
        served = start(
            [str(BIN / "flywheel"), "serve", "--port", "18003"],
            flywheel_env,
            f"{flywheel_url}/healthz",
            work / "flywheel.log",
        )
        ready = httpx.get(f"{flywheel_url}/readyz").json()["policies"]
        if any(p["fallback"] or p["challenger"] is None for p in ready.values()):
            raise SystemExit(
                f"flywheel serve is not running three champions with challengers: {ready}"
            )
        headers = {"Authorization": f"Bearer {KEY}"}
        batch_body = {
            "items": [{k: item[k] for k in spam_fields} for item in items],
            "policies": ["spam"],
        }
        rounds: list[tuple[dict, dict]] = []
        for _ in range(args.rounds):
            ceiling = wrk(f"{bare_url}/v1/score", {"item": one}, {}, args.seconds, work)
            flywheel = wrk(
                f"{flywheel_url}/v1/score",
                {"item": one, "policies": ["spam"]},
                headers,
                args.seconds,
                work,
            )
            wait_idle(served)
            flywheel["batch_ms"] = batch_latency(
                f"{flywheel_url}/v1/score/batch", batch_body, headers
            )
            wait_idle(served)
            rounds.append((ceiling, flywheel))
        results["bare FastAPI, constant (ceiling)"] = {
            **median_of([c for c, _ in rounds]),
            "batch_ms": None,
            "rss": rss_mb(bare),
        }
        results["flywheel serve (3 policies, shadow, log)"] = {
            **median_of([f for _, f in rounds]),
            "rss": rss_mb(served),
        }
    finally:
        stop(bare)
        if served is not None:
            stop(served)

    peer_rps = results["mlflow models serve (peer)"]["rps"]
    ceiling_rps = results["bare FastAPI, constant (ceiling)"]["rps"]
    each_round = "; ".join(
        f"{f['rps']:,.0f} vs {c['rps']:,.0f} requests/s ({f['rps'] / c['rps']:.0%}), "
        f"p99 {f['p99']:.2f} ms, batch {f['batch_ms']:.1f} ms"
        for c, f in rounds
    )
    lines = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}; "
        f"server on CPU {SERVER_CPU}, wrk (1 thread, 8 connections, {args.seconds} s) on CPU {CLIENT_CPU}; "
        "`python benchmarks/serving.py`",
        "",
        "| server | requests/s | vs peer | vs ceiling | p50 ms | p99 ms | non-2xx | batch of 1,000 ms | RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        batch = "–" if r["batch_ms"] is None else f"{r['batch_ms']:.1f}"
        lines.append(
            f"| {name} | {r['rps']:,.0f} | {r['rps'] / peer_rps:.1f}× | {r['rps'] / ceiling_rps:.0%} | "
            f"{r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} | {batch} | {r['rss']:,.0f} |"
        )
    lines += [
        "",
        f"Bare endpoint and flywheel measured in {args.rounds} alternating rounds; the table "
        f"shows each figure's median. Rounds (flywheel vs bare): {each_round}.",
    ]
    table = "\n".join(lines)
    print(table)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "serving.md").write_text(table + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
