"""`flywheel simulate`, `decisions import`, `golden import`, `dataset build`, `predictions
export`: what comes in, and what the lake holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, PolicyOption, context, err, out, print_json, report_ignored
from cli.render import print_flags

decisions_app = typer.Typer(help="Reviewer decisions.", no_args_is_help=True)
golden_app = typer.Typer(help="Expert-labelled golden sets.", no_args_is_help=True)
dataset_app = typer.Typer(help="Versioned training datasets.", no_args_is_help=True)
predictions_app = typer.Typer(help="The prediction log of the scoring API.", no_args_is_help=True)


def simulate(
    policy: PolicyOption,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the world into.")],
    seed: int = typer.Option(7, help="Same seed, same world."),
    days: int = typer.Option(30, help="Days of traffic."),
    items_per_day: int = typer.Option(800, help="Items scored per day."),
    emerging_day: int = typer.Option(20, help="Day the emerging abuse pattern appears."),
    golden_items: int = typer.Option(600, help="Size of the golden set."),
    fmt: str = typer.Option(
        "csv", "--format", help="csv, parquet or jsonl for decisions and golden set."
    ),
    as_json: JsonOption = False,
) -> None:
    """Write a synthetic world: traffic, reviewer decisions, a golden set, and the truth apart."""
    from flywheel.policy import load_policy
    from simulation.world import WorldConfig, write_world
    from simulation.world import simulate as build_world

    config = WorldConfig(
        seed=seed,
        days=days,
        items_per_day=items_per_day,
        emerging_day=emerging_day,
        golden_items=golden_items,
    )
    world = build_world(load_policy(policy), config)
    paths = write_world(world, out_dir, fmt)
    meta = world.meta
    if as_json:
        print_json({**meta, "files": {name: str(path) for name, path in paths.items()}})
        return
    out.print(
        f"{meta['policy']}: {meta['items']:,} items over {days} days (base rate {meta['base_rate']:.1%}), "
        f"{meta['decisions']:,} decisions, {meta['golden_items']} golden items; "
        f"emerging pattern from {meta['emerging_starts'][:10]}"
    )
    for name, path in paths.items():
        out.print(f"  {name:<10} {path}")


def _import(kind: str, file: Path, policy: str):
    """Validate and store a file of decisions or golden items; note ignored columns."""
    from flywheel import ingest

    _, pol, lake = context(policy)
    report = (ingest.import_decisions if kind == "decisions" else ingest.import_golden)(
        file, pol, lake
    )
    report_ignored(report.ignored_columns)
    return pol, lake, report.result


@decisions_app.command("import")
def decisions_import(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file of decisions.")],
    policy: PolicyOption,
    as_json: JsonOption = False,
) -> None:
    """Import reviewer decisions; a file with a bad row is refused whole. Reviewer QA then
    runs on every stored decision, so imported history is judged like Label Studio's."""
    from labeling.qa import run_qa

    pol, lake, result = _import("decisions", file, policy)
    qa = run_qa(pol, lake) if result.added else None
    if as_json:
        print_json(
            {
                "policy": pol.name,
                "added": result.added,
                "already_present": result.already_present,
                # reviewer QA runs only when something was added
                "flagged_reviewers": [r["reviewer_id"] for r in qa["reviewers"] if r["flagged"]]
                if qa
                else None,
                "unjudged_reviewers": qa.get("unjudged", []) if qa else None,
            }
        )
        return
    out.print(
        f"{pol.name}: {result.added:,} decisions imported, {result.already_present:,} already present"
    )
    if qa:
        print_flags(qa)


@golden_app.command("import")
def golden_import(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file of golden items.")],
    policy: PolicyOption,
    as_json: JsonOption = False,
) -> None:
    """Add items to the policy's golden set (a new version when anything is new)."""
    pol, _, result = _import("golden", file, policy)
    if as_json:
        print_json(
            {
                "policy": pol.name,
                "version": result.version,
                "total": result.total,
                "added": result.added,
                "already_present": result.already_present,
            }
        )
        return
    out.print(
        f"{pol.name}: golden set {result.version} has {result.total:,} items "
        f"({result.added:,} added, {result.already_present:,} already present)"
    )


@dataset_app.command("build")
def dataset_build(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Build the dataset version of the decisions stored now; prints its version."""
    from training.dataset import build_dataset

    _, pol, lake = context(policy)
    dataset = build_dataset(pol, lake)
    if as_json:
        print_json({**dataset.manifest, "path": str(dataset.path), "created": dataset.created})
        return
    m = dataset.manifest
    counts = ", ".join(f"{split} {c['items']:,}" for split, c in m["counts"].items())
    state = "built" if dataset.created else "unchanged"
    err.print(
        f"{pol.name}: {m['items']:,} items ({counts}); {m['labels']['ties']} ties; "
        f"{m['golden']['excluded_items']} golden items left out; {state}"
    )
    out.print(dataset.version)


@predictions_app.command("export")
def predictions_export(
    out_file: Annotated[
        Path, typer.Option("--out", help="File to write: .csv, .parquet or .jsonl.")
    ],
    policy: Annotated[
        str | None, typer.Option("--policy", "-p", help="One policy (default: all served ones).")
    ] = None,
) -> None:
    """Write logged predictions (compacted and pending) to a file."""
    import pandas as pd

    from flywheel.policy import list_policies, load_policy
    from flywheel.predictions import read_predictions
    from flywheel.records import write_table
    from flywheel.settings import get_settings

    settings = get_settings()
    names = [policy] if policy else list_policies(settings)
    frames = [read_predictions(settings, load_policy(name, settings)) for name in names]
    frames = [f for f in frames if not f.empty]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    write_table(frame, out_file)
    out.print(f"{len(frame):,} predictions written to {out_file}")
