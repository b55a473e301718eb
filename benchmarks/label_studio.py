"""Benchmark: pushing tasks to and pulling decisions from a real Label Studio server.

Starts a Label Studio of its own (`labeling.server.start`, installed on first use), then measures
in one run on this machine:

- push of 5,000 review-queue tasks by `flywheel label push` (sampling from the prediction log,
  model assistance from a registered champion, import, ledger), against the peer: the same
  5,000 tasks handed to the SDK's `import_tasks` in one call, with nothing else done;
- pull of 20,000 annotations (10,000 tasks, two reviewers each) by `flywheel label pull`,
  against the peer: Label Studio's own full JSON export of the same project;
- a pull with nothing new.

    .venv/bin/python benchmarks/label_studio.py [--tasks 5000] [--annotations 20000]

Prints a Markdown table (also written to benchmarks/results/label_studio.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_common import publish

HERE = Path(__file__).resolve().parent


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _policy(folder: Path, title: str, **labeling):
    import yaml

    from flywheel.policy import load_policy

    raw = yaml.safe_load((HERE.parent / "policies" / "spam.yaml").read_text())
    raw["labeling"] = {"project_title": title, **labeling}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spam.yaml").write_text(yaml.safe_dump(raw))
    return load_policy(str(folder / "spam.yaml"))


def _champion(settings, policy) -> None:
    """Train and promote a model on a small simulated world, so pushes carry assistance."""
    from flywheel.ingest import import_decisions, import_golden
    from flywheel.lake import Lake
    from simulation.world import WorldConfig, simulate, write_world
    from training.promote import promote
    from training.train import train

    world = simulate(policy, WorldConfig(days=14, items_per_day=600, emerging_day=14))
    files = write_world(world, settings.root / "world")
    lake = Lake(settings.lake_dir)
    import_golden(files["golden"], policy, lake)
    import_decisions(files["decisions"], policy, lake)
    train(policy, settings)
    promote(policy, settings)


def _prediction_log(settings, policy, n: int) -> None:
    """A compacted prediction log of `n` items the champion sent to review."""
    from flywheel.lake import write_parquet_atomic
    from flywheel.predictions import COLUMNS, policy_dir
    from simulation.world import WorldConfig, simulate

    items = simulate(
        policy, WorldConfig(seed=99, days=10, emerging_day=10, items_per_day=n // 10 + 1)
    ).traffic
    items = items.head(n).reset_index(drop=True)
    rng = np.random.default_rng(0)
    log = pd.DataFrame({c: None for c in COLUMNS}, index=items.index).assign(
        request_id="bench",
        item_index=np.arange(n),
        item_id=items["item_id"],
        policy=policy.name,
        model_name=policy.name,
        model_version=1,
        score=rng.uniform(0.2, 0.8, n),
        decision="review",
        fallback=False,
        scored_at=pd.Timestamp.now(tz="UTC"),
        **{c: items[c] for c in policy.feature_columns},
    )
    write_parquet_atomic(log, policy_dir(settings, policy.name) / "part-bench.parquet")


def bench_push(settings, lake, api, work: Path, n: int) -> dict:
    from labeling.project import bootstrap
    from labeling.push import push

    policy = _policy(work / "push-policy", "bench push", review_batch=n, gold_rate=0.0)
    _prediction_log(settings, policy, n)
    bootstrap(policy, lake, api, settings)
    started = time.perf_counter()
    report = push(policy, settings, lake, api)
    ours = time.perf_counter() - started
    assert report.review == n, report

    peer_project = api.sdk.projects.create(title="bench push peer")
    ledger = lake.pushed_tasks("spam")[["item_id", *policy.feature_columns]]
    tasks = [{"data": row} for row in json.loads(ledger.to_json(orient="records"))]
    started = time.perf_counter()
    api.sdk.projects.import_tasks(id=peer_project.id, request=tasks, return_task_ids=True)
    peer = time.perf_counter() - started
    return {"ours": ours, "peer": peer, "assisted_by": report.assisted_by}


def bench_pull(settings, lake, api, work: Path, annotations: int) -> dict:
    from flywheel.lake import Lake
    from flywheel.settings import Settings
    from labeling.project import bootstrap, choice_result
    from labeling.pull import pull
    from labeling.push import LEDGER_COLUMNS
    from labeling.server import credentials
    from simulation.reviewers import ensure_users
    from simulation.world import DEFAULT_REVIEWERS

    # a home of its own: the pull reads a ledger this benchmark writes, not the push's
    pull_settings = Settings(
        home=work / "pull-home",
        labelstudio_url=settings.labelstudio_url,
        labelstudio_api_key=credentials(settings).token,
    )
    pull_lake = Lake(pull_settings.lake_dir)
    policy = _policy(work / "pull-policy", "bench pull", overlap=2)
    project = bootstrap(policy, pull_lake, api, pull_settings).id
    users = list(ensure_users(api, list(DEFAULT_REVIEWERS)).values())
    n_tasks = annotations // 2
    rng = np.random.default_rng(1)
    items = [f"bench-{k:06d}" for k in range(n_tasks)]
    payload = []
    for k, item in enumerate(items):
        pair = rng.choice(users, size=2, replace=False)
        payload.append(
            {
                "data": {"text": f"item {k}", "item_id": item, "signals": "", "assist": ""},
                "annotations": [
                    {
                        "result": choice_result(policy, str(rng.choice(["violating", "benign"]))),
                        "completed_by": int(u),
                        "lead_time": 10.0,
                    }
                    for u in pair
                ],
            }
        )
    seeded = time.perf_counter()
    ids = []
    for start in range(0, n_tasks, 2000):
        ids += api.sdk.projects.import_tasks(
            id=project, request=payload[start : start + 2000], return_task_ids=True
        ).task_ids
    seeding = time.perf_counter() - seeded
    ledger = pd.DataFrame({c: None for c in LEDGER_COLUMNS}, index=range(n_tasks)).assign(
        item_id=items,
        queue="review",
        task_id=[str(t) for t in ids],
        project_id=project,
        sampling_prob=1.0,
        text=[p["data"]["text"] for p in payload],
        account_age_days=100.0,
        links=0.0,
        prior_reports=0.0,
        messages_last_hour=1.0,
        surface="post",
        country="US",
    )
    pull_lake.record_pushed("spam", ledger)

    started = time.perf_counter()
    report = pull(policy, pull_settings, pull_lake, api)
    ours = time.perf_counter() - started
    assert report.added == annotations, report
    started = time.perf_counter()
    again = pull(policy, pull_settings, pull_lake, api)
    nothing = time.perf_counter() - started
    assert again.added == 0

    started = time.perf_counter()
    exported = api.http.get(
        f"/api/projects/{project}/export",
        params={"exportType": "JSON", "download_all_tasks": "true"},
    )
    exported.raise_for_status()
    peer = time.perf_counter() - started
    return {"ours": ours, "nothing": nothing, "peer": peer, "seeding": seeding, "tasks": n_tasks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--annotations", type=int, default=20000)
    args = parser.parse_args()

    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.settings import Settings
    from labeling.client import LabelStudioAPI
    from labeling.server import start, stop

    work = Path(tempfile.mkdtemp(prefix="flywheel-bench-labeling-"))
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    settings = Settings(home=work / "home", labelstudio_url=f"http://127.0.0.1:{_free_port()}")
    lake = Lake(settings.lake_dir)
    started = time.perf_counter()
    start(settings)
    print(f"Label Studio up in {time.perf_counter() - started:.1f} s at {settings.labelstudio_url}")
    try:
        api = LabelStudioAPI(settings)
        _champion(settings, load_policy("spam"))
        push_figures = bench_push(settings, lake, api, work, args.tasks)
        pull_figures = bench_pull(settings, lake, api, work, args.annotations)
    finally:
        stop(settings)

    rows = [
        (
            "Push 5,000 tasks (sample, assist, import, ledger)"
            if args.tasks == 5000
            else f"Push {args.tasks:,} tasks",
            push_figures["ours"],
            push_figures["peer"],
            "SDK `import_tasks` alone",
            "≤ 30 s",
        ),
        (
            f"Pull {args.annotations:,} annotations ({pull_figures['tasks']:,} tasks)",
            pull_figures["ours"],
            pull_figures["peer"],
            "Label Studio's full JSON export",
            "≤ 60 s",
        ),
        ("Pull with nothing new", pull_figures["nothing"], None, "", "≤ 2 s"),
    ]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"push assisted by {push_figures['assisted_by']}.",
        "",
        "| Step | Flywheel | Peer | Peer is | Target |",
        "|---|---|---|---|---|",
    ]
    for name, ours, peer, peer_is, target in rows:
        peer_cell = f"{peer:.1f} s" if peer is not None else "—"
        lines.append(f"| {name} | {ours:.2f} s | {peer_cell} | {peer_is} | {target} |")
    publish("label_studio", "\n".join(lines))


if __name__ == "__main__":
    main()
