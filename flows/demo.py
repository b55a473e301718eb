"""`flywheel demo`: the spine end to end on embedded defaults.

For each policy: simulate a world, import its golden set and reviewer history, then run the
retrain flow (dataset → challenger → promotion gate). Idempotent: a second run finds the same
world, imports nothing new, reuses the dataset and the model, and says so.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from flows.retrain import RetrainSummary, retrain
from flywheel.ingest import import_decisions, import_golden
from flywheel.lake import Lake
from flywheel.policy import load_policy
from flywheel.registry import CHAMPION, check_reachable, connect, get_version
from flywheel.settings import Settings
from flywheel.simulate import WorldConfig, simulate, write_world


def _prepare(policy_name: str, settings: Settings, config: WorldConfig, console: Console) -> Path:
    """Simulate the policy's world into the home and import its golden set and history."""
    policy = load_policy(policy_name, settings)
    lake = Lake(settings.lake_dir)
    world_dir = settings.root / "demo" / policy.name
    with console.status(f"{policy.name}: simulating {config.days} days of traffic…"):
        world = simulate(policy, config)
        paths = write_world(world, world_dir)
    golden = import_golden(paths["golden"], policy, lake).result
    decisions = import_decisions(paths["decisions"], policy, lake).result
    console.print(
        f"[green]✓[/] {policy.name}: {world.meta['items']:,} items (base rate "
        f"{world.meta['base_rate']:.1%}); golden set {golden.version} ({golden.total} items); "
        f"{decisions.added:,} decisions imported, {decisions.already_present:,} already present"
    )
    return world_dir


def run_demo(
    settings: Settings, policies: list[str], config: WorldConfig, console: Console
) -> list[RetrainSummary]:
    console.print(f"[bold]Flywheel demo[/] — home {settings.root}")
    check_reachable(settings)
    for name in policies:
        _prepare(name, settings, config, console)
    summaries = []
    for name in policies:
        with console.status(f"{name}: retrain flow (dataset → train → promotion gate)…"):
            summary = retrain(name)
        console.print(
            f"[green]✓[/] {name}: dataset {summary.dataset_version}, model version "
            f"{summary.model_version}{' (reused)' if summary.reused_model else ''}: {summary.outcome}"
        )
        summaries.append(summary)
    _summary_table(settings, summaries, console)
    return summaries


def _summary_table(settings: Settings, summaries: list[RetrainSummary], console: Console) -> None:
    client = connect(settings)
    table = Table(title="Champions on the golden set", title_justify="left")
    for column in (
        "policy",
        "model",
        "auto prec",
        "auto rec",
        "rev rec",
        "rev FPR",
        "review / auto",
    ):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for summary in summaries:
        champion = get_version(client, summary.policy, CHAMPION)
        if champion is None:
            table.add_row(summary.policy, "none", "–", "–", "–", "–", "–")
            continue
        tags = champion.tags
        figures = [
            _figure(tags, f"golden_{key}")
            for key in (
                "auto_action_precision",
                "auto_action_recall",
                "review_recall",
                "review_fpr",
            )
        ]
        thresholds = champion.thresholds
        table.add_row(
            summary.policy,
            f"v{champion.version}",
            *figures,
            f"{thresholds.review:.3f} / {thresholds.auto_action:.3f}",
        )
    console.print(table)
    console.print(
        "figures: the golden set, recorded when each version was trained; "
        "review / auto: the two thresholds"
    )
    console.print("Look further:")
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    console.print(f"  {mlflow_cli} ui --backend-store-uri {settings.tracking_uri}")
    for summary in summaries:
        console.print(f"  flywheel promote --policy {summary.policy} --dry-run")
    console.print(
        "  FLYWHEEL_API_KEYS=dev-key flywheel serve   (the scoring API; README has a curl)"
    )
    console.print(f"  lake (Parquet, DuckDB-readable): {settings.lake_dir}")


def _figure(tags: dict[str, str], key: str) -> str:
    return f"{float(tags[key]):.3f}" if key in tags else "–"
