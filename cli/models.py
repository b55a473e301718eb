"""`flywheel train`, `promote` and `rescore`: models into the registry, through the gate, over
many items."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import (
    ExitCode,
    JsonOption,
    PolicyOption,
    context,
    err,
    flow_result,
    out,
    print_json,
)
from cli.render import print_guarantee, progress_bar, render_verdict
from flywheel.errors import FlywheelError


def train(
    policy: PolicyOption,
    dataset: str = typer.Option(
        None,
        "--dataset",
        help="Train on this dataset version (default: build from the decisions stored now).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Train again even if this exact training was registered before."
    ),
    as_json: JsonOption = False,
) -> None:
    """Train a classifier and register it under the policy's name with alias `challenger`."""
    from training.train import train as run_training

    settings, pol, _ = context(policy)
    with progress_bar() as progress:
        result = run_training(
            pol, settings, dataset_version=dataset, force=force, progress=progress
        )
    ref = result.model
    if as_json:
        print_json(
            {
                "policy": pol.name,
                "version": ref.version,
                "dataset_version": result.dataset.version,
                "reused": result.reused,
                "tags": ref.tags,
                "aliases": list(ref.aliases),
            }
        )
        return
    how = "already registered as" if result.reused else "registered"
    role = "champion" if "champion" in ref.aliases else "challenger"
    out.print(
        f"{pol.name}: {how} version {ref.version} ({role}) from dataset {result.dataset.version}; "
        f"thresholds {ref.thresholds.describe()}"
    )
    print_guarantee(ref.tags, pol)


def promote(
    policy: PolicyOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the verdict; change nothing."),
    force: bool = typer.Option(
        False, "--force", help="Promote even if the gate rejects (needs --reason; recorded)."
    ),
    reason: str = typer.Option(None, "--reason", help="Why the gate is overridden (with --force)."),
    as_json: JsonOption = False,
) -> None:
    """Gate the challenger against the champion on the golden set; move `champion` if it passes.

    Exits 3 when the gate rejects (with --dry-run: would reject), so scripts can branch on it."""
    from training.promote import promote as run_gate

    if force and not reason:
        raise FlywheelError("--force needs --reason TEXT: an override is recorded with its reason")
    if reason and not force:
        raise FlywheelError("--reason goes with --force (it explains an override)")
    settings, pol, _ = context(policy)
    with err.status(f"scoring the golden set of {pol.name}…"):
        verdict = run_gate(
            pol, settings, dry_run=dry_run, override_reason=reason if force else None
        )
    if as_json:
        print_json(verdict.payload())
    else:
        render_verdict(verdict)
    if verdict.outcome == "rejected":
        raise typer.Exit(ExitCode.REJECTED)


def rescore(
    policy: PolicyOption,
    items: Annotated[Path, typer.Option("--items", help="Items to score: CSV, Parquet or JSONL.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the scored Parquet parts.")],
    alias: Annotated[str, typer.Option(help="Alias or version number to score with.")] = "champion",
    chunk_items: Annotated[int, typer.Option(help="Items per chunk (one task each).")] = 20_000,
    dask_workers: Annotated[
        int, typer.Option(help="Worker processes of the local Dask cluster; 0: no Dask.")
    ] = 2,
    dask_address: Annotated[
        str | None, typer.Option(help="An existing Dask scheduler, e.g. tcp://host:8786.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Batch re-scoring with one registered version (a Prefect flow; chunks on Dask)."""
    from flows.home import use_flywheel_home
    from flywheel.settings import get_settings

    use_flywheel_home(get_settings())
    from flows.rescore import dask_runner
    from flows.rescore import rescore as rescore_flow
    from flywheel.progress import watched_by

    run = rescore_flow
    if dask_address or dask_workers > 0:
        run = rescore_flow.with_options(task_runner=dask_runner(dask_address, dask_workers))
    with progress_bar() as progress, watched_by(progress):
        state = run(
            policy,
            str(items),
            str(out_dir),
            alias=alias,
            chunk_items=chunk_items,
            return_state=True,
        )
    summary = flow_result(state, f"rescoring {policy}")
    if as_json:
        print_json(summary.model_dump(mode="json"))
        return
    out.print(
        f"{summary.policy} v{summary.model_version}: {summary.rows:,} items scored into "
        f"{len(summary.parts)} parts in {out_dir} on {len(summary.workers)} worker(s)"
    )
