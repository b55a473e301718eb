"""Benchmark: 200k reviewer decisions through dataset build, training and registration.

Compares Flywheel's whole path with a bare LightGBM fit on the same feature matrix (same
parameters), measured in the same run on this machine. Each measured phase runs in its own
process, so its peak RSS is its own.

    .venv/bin/python benchmarks/train.py [--decisions 200000] [--crossfit-below N]

`--crossfit-below` overrides the policy's `training.crossfit_below_positives`: a large value
measures the path with the thresholds cross-fitted even where one split would do.

Prints a Markdown table (also written to benchmarks/results/train.md).
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

import yaml
from bench_common import peak_rss_mb

HERE = Path(__file__).resolve().parent
POLICY = HERE / "bench_policy.yaml"


def prepare(work: Path, decisions: int) -> None:
    """Simulate enough items that reviewers made `decisions` decisions; write the input files."""
    from flywheel.policy import load_policy
    from flywheel.records import write_table
    from flywheel.registry import connect
    from flywheel.settings import Settings
    from simulation.world import WorldConfig, simulate

    connect(Settings(home=work / "home"))  # an existing registry: its tables are created here
    policy = load_policy(str(work / POLICY.name))
    per_item = 0.7 * 1 + 0.3 * 2.5  # one reviewer, or (30%) two or three
    items_per_day = int(decisions / per_item / 30) + 200
    world = simulate(
        policy,
        WorldConfig(
            days=30,
            items_per_day=items_per_day,
            emerging_day=30,
            review_fraction=1.0,
            multi_review_fraction=0.3,
            golden_items=2000,
        ),
    )
    write_table(world.decisions.head(decisions), work / "decisions.csv")
    write_table(world.golden, work / "golden.csv")


def _warm_imports() -> float:
    """Import what training and registration load lazily, as a running worker would have."""
    t0 = time.perf_counter()
    import lightgbm  # noqa: F401
    import mlflow.sklearn  # noqa: F401
    import skops.io  # noqa: F401

    return time.perf_counter() - t0


def phase_path(work: Path) -> dict:
    """Flywheel: import the file, build the dataset, train, evaluate and register."""
    from flywheel.ingest import import_decisions, import_golden
    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.registry import connect
    from flywheel.settings import Settings
    from labeling.qa import run_qa
    from training.dataset import build_dataset
    from training.train import train

    settings = Settings(home=work / "home")
    policy = load_policy(str(work / POLICY.name))
    lake = Lake(settings.lake_dir)
    import_golden(work / "golden.csv", policy, lake)
    imports_s = _warm_imports()
    t0 = time.perf_counter()
    imported = import_decisions(work / "decisions.csv", policy, lake)
    t1 = time.perf_counter()
    qa = run_qa(policy, lake)  # the retrain flow's first step: its flags shape the dataset
    tq = time.perf_counter()
    dataset = build_dataset(policy, lake)
    t2 = time.perf_counter()
    result = train(policy, settings, dataset_version=dataset.version)
    t3 = time.perf_counter()
    return {
        "qa_s": tq - t1,
        "flagged": qa["flagged"],
        "threshold_source": result.model.tags.get("threshold_source"),
        "auto_action": result.model.tags.get("threshold_auto_action"),
        "decisions": imported.result.added,
        "items": dataset.manifest["items"],
        "train_items": dataset.manifest["counts"]["train"]["items"],
        "dataset": dataset.version,
        "import_s": t1 - t0,
        "build_s": t2 - tq,
        "train_register_s": t3 - t2,
        "path_s": t3 - t1,
        "imports_s": imports_s,
        "model_version": result.model.version,
        "boosting_rounds": int(
            connect(settings).get_run(result.model.run_id).data.params["boosting_rounds"]
        ),
        "peak_rss_mb": peak_rss_mb(),
    }


def phase_bare(work: Path, dataset_version: str, rounds: int) -> dict:
    """The peer: LightGBM alone, same parameters, on the same feature matrix."""
    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.settings import Settings
    from training.dataset import load_dataset
    from training.features import build_features
    from training.train import lightgbm

    policy = load_policy(str(work / POLICY.name))
    dataset = load_dataset(policy, Lake(Settings(home=work / "home").lake_dir), dataset_version)
    train = dataset.split("train")
    t0 = time.perf_counter()
    matrix = build_features(policy).fit_transform(train[policy.feature_columns])
    t1 = time.perf_counter()
    labels = train["is_positive"].to_numpy(dtype=int)
    lightgbm(policy, n_estimators=rounds).fit(matrix, labels)
    t2 = time.perf_counter()
    return {
        "featurize_s": t1 - t0,
        "fit_s": t2 - t1,
        "features": matrix.shape[1],
        "peak_rss_mb": peak_rss_mb(),
    }


def _child(phase: str, work: Path, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--work", str(work), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--phase", choices=["path", "bare"])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--dataset")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--crossfit-below", type=int)
    args = parser.parse_args()
    if args.phase == "path":
        print(json.dumps(phase_path(args.work)))
        return
    if args.phase == "bare":
        print(json.dumps(phase_bare(args.work, args.dataset, args.rounds)))
        return

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as tmp:
        work = Path(tmp)
        raw = yaml.safe_load(POLICY.read_text())
        if args.crossfit_below is not None:
            raw.setdefault("training", {})["crossfit_below_positives"] = args.crossfit_below
        (work / POLICY.name).write_text(yaml.safe_dump(raw))
        prepare(work, args.decisions)
        path = _child("path", work)
        bare = _child(
            "bare", work, "--dataset", path["dataset"], "--rounds", str(path["boosting_rounds"])
        )
    overhead = (path["path_s"] - bare["fit_s"]) / bare["fit_s"]
    beyond_featurizing = (path["path_s"] - bare["fit_s"] - bare["featurize_s"]) / bare["fit_s"]
    rows = [
        (
            "decisions / items / training items",
            f"{path['decisions']:,} / {path['items']:,} / {path['train_items']:,}",
            "",
        ),
        ("features (TF-IDF words + chars, signals, one-hot)", f"{bare['features']:,}", ""),
        ("import of the CSV (validate + store)", f"{path['import_s']:.1f} s", "not in the path"),
        (
            "first import of MLflow, LightGBM, skops",
            f"{path['imports_s']:.1f} s",
            "once per process; not in the path",
        ),
        (
            "reviewer QA (the retrain flow's first step)",
            f"{path['qa_s']:.1f} s",
            f"flagged: {', '.join(path['flagged']) or 'none'}",
        ),
        ("dataset build", f"{path['build_s']:.1f} s", ""),
        (
            "train + calibrate + thresholds + evaluate + register",
            f"{path['train_register_s']:.1f} s",
            f"thresholds read on: {path['threshold_source']}",
        ),
        (
            "**Flywheel path** (QA + build + train + register)",
            f"**{path['path_s']:.1f} s**",
            "target ≤ 120 s",
        ),
        (
            "bare LightGBM fit, same matrix, parameters and rounds (peer)",
            f"{bare['fit_s']:.1f} s",
            f"{path['boosting_rounds']} rounds, as Flywheel's early stopping built",
        ),
        ("**overhead over the bare fit**", f"**{overhead:.0%}**", "target ≤ 30%"),
        (
            "of which: TF-IDF + one-hot of the training split (given to the peer)",
            f"{bare['featurize_s']:.1f} s",
            "measured in the peer's process",
        ),
        (
            "overhead beyond featurizing the training split",
            f"{beyond_featurizing:.0%}",
            "dataset, validation/test/golden scoring, MLflow logging",
        ),
        (
            "peak RSS, Flywheel path (incl. import)",
            f"{path['peak_rss_mb']:,.0f} MB",
            "target ≤ 4 GB",
        ),
        ("peak RSS, bare fit", f"{bare['peak_rss_mb']:,.0f} MB", ""),
    ]
    lines = [
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; `python benchmarks/train.py --decisions {args.decisions}"
        + (f" --crossfit-below {args.crossfit_below}" if args.crossfit_below is not None else "")
        + "`",
        "",
        "| measure | value | note |",
        "|---|---:|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
    ]
    table = "\n".join(lines)
    print(table)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "train.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
