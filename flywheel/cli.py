"""The `flywheel` command line (DESIGN.md, "The command line").

Commands import the heavy packages (MLflow, Prefect, LightGBM) only when they run, so `--help`
answers at once. Every failure a user can act on ends with one line on stderr and exit code 1;
set FLYWHEEL_DEBUG=1 to see the traceback of anything else.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.console import Console
from rich.table import Table

from flywheel.errors import FlywheelError, redact

if TYPE_CHECKING:
    from training.promote import Verdict

app = typer.Typer(
    name="flywheel",
    help="Reviewer decisions in, promoted risk classifiers out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
decisions_app = typer.Typer(help="Reviewer decisions.", no_args_is_help=True)
golden_app = typer.Typer(help="Expert-labelled golden sets.", no_args_is_help=True)
dataset_app = typer.Typer(help="Versioned training datasets.", no_args_is_help=True)
app.add_typer(decisions_app, name="decisions")
app.add_typer(golden_app, name="golden")
app.add_typer(dataset_app, name="dataset")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PolicyOption = Annotated[
    str, typer.Option("--policy", "-p", help="Policy name (in policies/) or YAML path.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _context(policy_name: str):
    from flywheel.lake import Lake
    from flywheel.policy import load_policy
    from flywheel.settings import get_settings

    settings = get_settings()
    return settings, load_policy(policy_name, settings), Lake(settings.lake_dir)


def _print_json(payload: object) -> None:
    out.print_json(json.dumps(payload, default=str))


def _flow_result(state, what: str):
    """A flow run's return value, or its failure as one line."""
    if not state.is_completed():
        raise FlywheelError(f"{what} failed: {state.message}")
    return state.result()


def _report_ignored(columns: list[str]) -> None:
    if columns:
        err.print(
            f"note: ignored column{'s' if len(columns) > 1 else ''} not in the contract: {', '.join(columns)}"
        )


@app.command()
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

    _, pol, lake = _context(policy)
    report = (ingest.import_decisions if kind == "decisions" else ingest.import_golden)(
        file, pol, lake
    )
    _report_ignored(report.ignored_columns)
    return pol, lake, report.result


@decisions_app.command("import")
def decisions_import(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file of decisions.")],
    policy: PolicyOption,
) -> None:
    """Import reviewer decisions; a file with a bad row is refused whole. Reviewer QA then
    runs on every stored decision, so imported history is judged like Label Studio's."""
    from labeling.qa import run_qa

    pol, lake, result = _import("decisions", file, policy)
    out.print(
        f"{pol.name}: {result.added:,} decisions imported, {result.already_present:,} already present"
    )
    if result.added:
        _print_flags(run_qa(pol, lake))


def _print_flags(report: dict) -> None:
    """One line per flagged reviewer with the evidence, and who could not be judged yet."""
    for r in report["reviewers"]:
        if r["flagged"]:
            out.print(f"flagged {r['reviewer_id']}: {r['reason']}")
    if report.get("unjudged"):
        out.print(f"not judged yet (too little evidence): {', '.join(report['unjudged'])}")


@golden_app.command("import")
def golden_import(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON Lines file of golden items.")],
    policy: PolicyOption,
) -> None:
    """Add items to the policy's golden set (a new version when anything is new)."""
    pol, _, result = _import("golden", file, policy)
    out.print(
        f"{pol.name}: golden set {result.version} has {result.total:,} items "
        f"({result.added:,} added, {result.already_present:,} already present)"
    )


@dataset_app.command("build")
def dataset_build(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Build the dataset version of the decisions stored now; prints its version."""
    from training.dataset import build_dataset

    _, pol, lake = _context(policy)
    dataset = build_dataset(pol, lake)
    if as_json:
        _print_json({**dataset.manifest, "path": str(dataset.path), "created": dataset.created})
        return
    m = dataset.manifest
    counts = ", ".join(f"{split} {c['items']:,}" for split, c in m["counts"].items())
    state = "built" if dataset.created else "unchanged"
    err.print(
        f"{pol.name}: {m['items']:,} items ({counts}); {m['labels']['ties']} ties; "
        f"{m['golden']['excluded_items']} golden items left out; {state}"
    )
    out.print(dataset.version)


@app.command()
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

    settings, pol, _ = _context(policy)
    with err.status(f"training {pol.name}…"):
        result = run_training(pol, settings, dataset_version=dataset, force=force)
    ref = result.model
    if as_json:
        _print_json(
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
    _print_guarantee(ref.tags, pol)


def _print_guarantee(tags: dict[str, str], policy) -> None:
    """What the thresholds promise, on what, and at what staffing cost (the version's tags),
    wrapped for an 80-column terminal."""
    import textwrap

    from training.thresholds import NOTE_SEPARATOR

    if "threshold_rule" not in tags:
        return
    targets = policy.targets

    def share(key: str) -> str:
        value = tags.get(key, "none")
        return "?" if value == "none" else f"{float(value):.1%}"

    lines = [
        f"guarantee: review recall {targets.review_recall} and auto-action precision "
        f"{targets.auto_action_precision}, each at {float(tags['threshold_confidence']):.0%} "
        f"confidence, on {int(tags['threshold_positives']):,} labelled positives of "
        f"{int(tags['threshold_items']):,} ({tags['threshold_source']})",
        f"expected: {share('expected_review_share')} of traffic to review, "
        f"{share('expected_auto_action_share')} to auto-action "
        f"(on {tags.get('expected_shares_on', 'labelled items')})",
    ]
    if tags.get("threshold_notes", "none") != "none":
        lines += [f"note: {note}" for note in tags["threshold_notes"].split(NOTE_SEPARATOR)]
    for line in lines:
        out.print(textwrap.fill(line, width=78, initial_indent="  ", subsequent_indent="    "))


@app.command()
def promote(
    policy: PolicyOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the verdict; change nothing."),
    force: bool = typer.Option(
        False, "--force", help="Promote even if the gate rejects (needs --reason; recorded)."
    ),
    reason: str = typer.Option(None, "--reason", help="Why the gate is overridden (with --force)."),
    as_json: JsonOption = False,
) -> None:
    """Gate the challenger against the champion on the golden set; move `champion` if it passes."""
    from training.promote import promote as run_gate

    if force and not reason:
        raise FlywheelError("--force needs --reason TEXT: an override is recorded with its reason")
    if reason and not force:
        raise FlywheelError("--reason goes with --force (it explains an override)")
    settings, pol, _ = _context(policy)
    with err.status(f"scoring the golden set of {pol.name}…"):
        verdict = run_gate(
            pol, settings, dry_run=dry_run, override_reason=reason if force else None
        )
    if as_json:
        _print_json(_verdict_payload(verdict))
        return
    render_verdict(verdict)


def _rates_payload(rates: dict) -> dict:
    return {
        point: {measure: rate.as_dict() for measure, rate in measures.items()}
        for point, measures in rates.items()
    }


def _verdict_payload(verdict: Verdict) -> dict:
    return {
        "policy": verdict.policy,
        "outcome": verdict.note or verdict.outcome,
        "dry_run": verdict.dry_run,
        "challenger": verdict.challenger.version if verdict.challenger else None,
        "champion": verdict.champion.version if verdict.champion else None,
        "golden_version": verdict.golden_version,
        "override_reason": verdict.override_reason,
        "checks": [
            {"name": c.name, "passed": c.passed, "detail": c.detail} for c in verdict.checks
        ],
        "challenger_metrics": verdict.challenger_metrics,
        "champion_metrics": verdict.champion_metrics,
        "challenger_rates": _rates_payload(verdict.challenger_rates),
        "champion_rates": _rates_payload(verdict.champion_rates),
        "paired": [vars(figure) for figure in verdict.paired],
    }


def _rate_cell(rate) -> str:
    """A golden rate as `value [low, high]`, the bounds at the gate's confidence."""
    if rate is None or rate.value is None:
        return "–"
    return f"{rate.value:.3f} [{rate.low:.3f}, {rate.high:.3f}]"


def render_verdict(verdict: Verdict) -> None:
    """Both models side by side on the golden set, each rate with its bounds, then the verdict
    and every check."""
    import textwrap

    if verdict.note:
        out.print(f"{verdict.policy}: {verdict.note}; nothing to do")
        return
    champion = f"champion v{verdict.champion.version}" if verdict.champion else "champion (none)"
    table = Table(
        title=f"{verdict.policy}: golden set {verdict.golden_version}", title_justify="left"
    )
    table.add_column("metric")
    table.add_column(champion, justify="right")
    table.add_column(f"challenger v{verdict.challenger.version}", justify="right")
    for key in ("items", "positives"):
        table.add_row(
            key,
            _cell(verdict.champion_metrics.get(key)),
            _cell(verdict.challenger_metrics.get(key)),
        )
    for point in ("auto_action", "review"):
        for measure in ("precision", "recall", "fpr"):
            table.add_row(
                f"{point} {measure}",
                _rate_cell((verdict.champion_rates.get(point) or {}).get(measure)),
                _rate_cell((verdict.challenger_rates.get(point) or {}).get(measure)),
            )
    for key in ("pr_auc", "roc_auc", "ece"):
        table.add_row(
            key,
            _cell(verdict.champion_metrics.get(key)),
            _cell(verdict.challenger_metrics.get(key)),
        )
    for figure in verdict.paired:
        table.add_row(
            f"{figure.name} {figure.where}", _cell(figure.champion), _cell(figure.challenger)
        )
    out.print(table)
    recall = verdict.challenger_rates.get("review", {}).get("recall")
    if recall is not None:
        out.print(f"[dim]bounds: one-sided, {recall.confidence:.0%} confidence each[/]")
    colour = {"promoted": "green", "would be promoted": "green", "rejected": "red"}.get(
        verdict.outcome, "yellow"
    )
    out.print(f"verdict: [bold {colour}]{verdict.outcome}[/]")
    for check in verdict.checks:
        mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
        lines = textwrap.wrap(check.detail, width=74, subsequent_indent="  ")
        out.print(f"  {mark} " + "\n    ".join(lines))
    if verdict.override_reason:
        out.print(f"override: {verdict.override_reason}")
    if verdict.dry_run:
        out.print("dry run: nothing was recorded and no alias moved")


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
    detach: bool = typer.Option(
        False, "--detach", help="Run in the background on 127.0.0.1 (stop: flywheel stop)."
    ),
) -> None:
    """Run the scoring API: champions from the registry, hot-reloaded, every prediction logged."""
    from flywheel.settings import get_settings

    settings = get_settings()
    if detach:
        from serving import process

        url = process.start(settings, port)
        out.print(f"scoring API on {url} (docs: {url}/docs); stop it with: flywheel stop")
        out.print(f"API key and admin key: {settings.root / 'serving' / 'keys.json'}")
        return

    import uvicorn

    from serving.app import create_app

    if not settings.api_keys:
        raise FlywheelError(
            "no API keys: set FLYWHEEL_API_KEYS=key1,key2 (and FLYWHEEL_ADMIN_KEY for admin routes)"
        )
    err.print(
        f"scoring API on http://{host}:{port} (docs: /docs); models from {redact(settings.tracking_uri)}"
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        access_log=access_log,
        log_level="warning",
        loop="uvloop" if _has("uvloop") else "asyncio",
        http="httptools" if _has("httptools") else "h11",
    )


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


predictions_app = typer.Typer(help="The prediction log of the scoring API.", no_args_is_help=True)
app.add_typer(predictions_app, name="predictions")


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


labelstudio_app = typer.Typer(
    help="The local Label Studio server (its own virtualenv, data in the home).",
    no_args_is_help=True,
)
label_app = typer.Typer(
    help="Reviewers in Label Studio: tasks out, decisions back.", no_args_is_help=True
)
app.add_typer(labelstudio_app, name="labelstudio")
app.add_typer(label_app, name="label")


def _print_status(status) -> None:
    state = "running" if status.running else "stopped"
    pid = f" (pid {status.pid})" if status.pid else ""
    out.print(f"Label Studio {state} at {status.url}{pid}: {status.detail}")


@labelstudio_app.command("start")
def labelstudio_start() -> None:
    """Install on first use, start on 127.0.0.1 and wait until it answers."""
    from flywheel.settings import get_settings
    from labeling.server import credentials, start

    settings = get_settings()
    status = start(settings)
    _print_status(status)
    creds = credentials(settings)
    out.print(
        f"log in as {creds.username}; password and API token in {settings.labelstudio_dir}/credentials.json"
    )


@labelstudio_app.command("stop")
def labelstudio_stop() -> None:
    """Stop the server this home started (nothing else)."""
    from flywheel.settings import get_settings
    from labeling.server import stop

    _print_status(stop(get_settings()))


@labelstudio_app.command("status")
def labelstudio_status(as_json: JsonOption = False) -> None:
    """Whether this home's server runs and answers; exit 1 when it does not."""
    from flywheel.settings import get_settings
    from labeling.server import status

    current = status(get_settings())
    if as_json:
        _print_json(asdict(current))
    else:
        _print_status(current)
    if not current.running:
        raise typer.Exit(1)


def _labeling(policy_name: str):
    from labeling.client import LabelStudioAPI

    settings, policy, lake = _context(policy_name)
    return settings, policy, lake, LabelStudioAPI(settings)


@label_app.command("bootstrap")
def label_bootstrap(policy: PolicyOption) -> None:
    """Create or update the policy's Label Studio project (idempotent)."""
    from labeling.project import bootstrap

    settings, pol, lake, api = _labeling(policy)
    project = bootstrap(pol, lake, api, settings)
    verb = "created" if project.created else "up to date"
    out.print(f"project {project.id} {project.title!r} {verb} at {api.url}/projects/{project.id}")


@label_app.command("push")
def label_push(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Push the review queue, a blind audit sample and gold checks from the prediction log."""
    from labeling.push import push

    settings, pol, lake, api = _labeling(policy)
    report = push(pol, settings, lake, api)
    if as_json:
        _print_json(asdict(report))
        return
    assisted = f", assisted by {report.assisted_by}" if report.assisted_by else ""
    out.print(
        f"pushed {report.total} tasks to project {report.project_id}: {report.review} review, "
        f"{report.explore} explore, {report.audit} audit, {report.gold} gold{assisted}"
    )


@label_app.command("pull")
def label_pull(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Bring back the decisions made since the last pull."""
    from labeling.pull import pull

    settings, pol, lake, api = _labeling(policy)
    report = pull(pol, settings, lake, api)
    if as_json:
        _print_json(asdict(report))
        return
    for problem in report.problems:
        err.print(f"skipped: {problem}", markup=False)
    out.print(
        f"{report.tasks_seen} tasks changed: {report.added} decisions added, "
        f"{report.already_present} already stored, {report.retracted} retracted, "
        f"{report.skipped} skips; watermark {report.watermark or '(none)'}"
    )


@label_app.command("qa")
def label_qa(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Reviewer quality on gold checks and shared items, with bounds; flags below the bar."""
    from labeling.qa import run_qa

    _, pol, lake = _context(policy)
    report = run_qa(pol, lake)
    if as_json:
        _print_json(report)
        return
    from rich import box

    table = Table(
        title=f"Reviewers of {pol.name}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("reviewer", "decided", "gold", "shared", "sens", "spec", "balanced", "bounds"):
        table.add_column(column, justify="left" if column == "reviewer" else "right")
    table.add_column("standing")

    def two(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    for r in report["reviewers"]:
        low, high = r["balanced_accuracy_ci"]
        table.add_row(
            r["reviewer_id"],
            str(r["decisions"]),
            str(r["gold_checks"]),
            str(r["overlap_items"]),
            two(r["sensitivity"]),
            two(r["specificity"]),
            two(r["balanced_accuracy"]),
            f"{two(low)}–{two(high)}" if low is not None else "",
            "FLAGGED" if r["flagged"] else r["standing"].replace("meets the bar", "meets bar"),
        )
    out.print(table)
    alpha = report["krippendorff_alpha"]
    out.print(
        f"bar: balanced accuracy {report['bar']['min_balanced_accuracy']}, bounds at "
        f"{report['confidence']:.0%} confidence; Krippendorff's alpha "
        + ("–" if alpha is None else f"{alpha:.2f}")
    )
    _print_flags(report)


@label_app.command("listen")
def label_listen(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8090, help="Port to listen on."),
    via_prefect: bool = typer.Option(
        False,
        "--via-prefect",
        help="Run the ingest-<policy> deployment on each event instead of pulling here.",
    ),
) -> None:
    """Receive Label Studio's webhooks and pull on each event (polling stays the source of truth)."""
    import uvicorn

    from flywheel.lake import Lake
    from flywheel.policy import list_policies, load_policy
    from flywheel.settings import get_settings
    from labeling.client import LabelStudioAPI
    from labeling.pull import pull
    from labeling.webhook import Puller, create_app, webhook_secret

    settings = get_settings()
    policies = [load_policy(name, settings) for name in list_policies(settings)]
    if via_prefect:
        from flows.ingest import run_ingest_deployment

        pullers = {p.name: Puller(lambda p=p: run_ingest_deployment(p.name)) for p in policies}
    else:
        lake, api = Lake(settings.lake_dir), LabelStudioAPI(settings)
        pullers = {p.name: Puller(lambda p=p: pull(p, settings, lake, api)) for p in policies}
    app = create_app(pullers, webhook_secret(settings))
    uvicorn.run(app, host=host, port=port, log_level="warning")


@label_app.command("simulate")
def label_simulate(
    policy: PolicyOption,
    truth: Annotated[Path, typer.Option("--truth", help="The world's truth/items.parquet.")],
    seed: int = typer.Option(0, help="Same seed, same answers."),
) -> None:
    """Simulated reviewers answer the open tasks (demos and tests; see `flywheel simulate`)."""
    from flywheel.records import read_table
    from labeling.project import project_id
    from simulation.reviewers import work
    from simulation.world import DEFAULT_REVIEWERS

    settings, pol, lake, api = _labeling(policy)
    made = work(
        pol,
        api,
        project_id(pol, lake, api, settings),
        list(DEFAULT_REVIEWERS),
        read_table(truth),
        seed,
    )
    out.print(f"simulated reviewers made {made} annotations")


@app.command()
def monitor(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Drift, golden-set and production error rates, review health; alerts; report files."""
    from monitoring.monitor import run_monitor

    settings, pol, lake = _context(policy)
    report = run_monitor(pol, settings, lake)
    if as_json:
        _print_json(report)
        return
    render_monitor(report)


def render_monitor(report: dict) -> None:
    """The run as a short table an operations lead can read."""
    table = Table(title=f"{report['policy']}: monitoring run {report['run_id']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("interval / note")

    def rate(entry: dict | None) -> tuple[str, str]:
        """A sampled figure: its value, and its bounds with the items behind them."""
        if not entry or entry.get("value") is None:
            return "–", ""
        low, high, n = entry.get("low"), entry.get("high"), entry.get("n")
        bounds = f"{low:.3f}–{high:.3f}" if low is not None else ""
        return f"{entry['value']:.3f}", bounds + (f" on {n}" if n is not None else "")

    table.add_row("predictions in window", f"{report['window']['predictions']:,}", "")
    promotion = report.get("promotion") or {}
    if promotion:
        table.add_row(
            "champion", f"v{promotion['version']}", promotion.get("verdict") or "no verdict"
        )
    drift = report.get("drift")
    if drift:
        share = drift["drifted_share"]
        table.add_row(
            "drifted fields",
            "–" if share is None else f"{share:.0%}",
            ", ".join(n for n, f in drift["fields"].items() if f.get("drifted")),
        )
        score = drift.get("score") or {}
        table.add_row(
            "score drift", "yes" if score.get("drifted") else "no", score.get("method") or ""
        )
    champion = ((report.get("golden") or {}).get("champion") or {}).get("slices", {}).get("all")
    if champion:
        table.add_row("golden precision (auto_action)", *rate(champion["auto_action"]["precision"]))
        table.add_row("golden recall (review)", *rate(champion["review"]["recall"]))
    audit = (report.get("production") or {}).get("audit", {}).get("rates", {})
    for name in ("auto_action_fpr", "allow_fnr", "auto_action_precision"):
        entry = audit.get(name) or {}
        value, interval = rate(entry)
        needs = entry.get("needs_items")
        note = interval + (f" (needs ~{needs:.0f})" if needs and interval else "")
        table.add_row(f"production {name} (audit)", value, note)
    health = report.get("health") or {}
    table.add_row("open review tasks", str((health.get("backlog") or {}).get("open_tasks", 0)), "")
    table.add_row("flagged reviewers", ", ".join(health.get("flagged_reviewers", [])) or "none", "")
    out.print(table)
    render_drift_days((report.get("drift") or {}).get("days") or [])
    render_clusters((report.get("emerging") or {}).get("clusters") or [])
    for note in report.get("notes", []):
        out.print(f"note: {note}")
    for key in report["alerts"]["opened"]:
        out.print(f"alert opened: {key}")
    for key in report["alerts"]["resolved"]:
        out.print(f"alert resolved: {key}")
    out.print(f"report: {report['files']['report']}")


def render_drift_days(days: list[dict]) -> None:
    """Drift per day, when a day's change may be diluted in the window's figures."""
    drifted = [d for d in days if d["drifted"] or d["score_drifted"]]
    if drifted:
        out.print("drift per day:")
    for d in drifted:
        score = " + score" if d["score_drifted"] else ""
        out.print(f"  {d['day']} ({d['items']} items): {', '.join(d['drifted']) or '-'}{score}")


def render_clusters(clusters: list[dict]) -> None:
    """Each emerging cluster: its terms, size, allowed share and two examples, within 80
    columns."""
    from monitoring.emerging import signature_note

    for c in clusters:
        kind = "emerging cluster" if c["emerging"] else "novel cluster"
        out.print(
            f"{kind}: {', '.join(c['top'][:4])}\n"
            f"  {c['size']} items, {c['allowed_share']:.0%} allowed, "
            f"{c['bursting_share']:.0%} with bursting terms, growth {c['growth']:.1f}x",
            soft_wrap=False,
        )
        if note := signature_note(c):
            out.print(f"  {note}", soft_wrap=False)
        for e in c["examples"][:2]:
            text = next((v for k, v in e.items() if k not in {"item_id", "score", "decision"}), "")
            out.print(f"  e.g. {e['item_id']}: {str(text)[:56]}", soft_wrap=False)


alerts_app = typer.Typer(help="Alerts raised by monitoring.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list(
    as_json: JsonOption = False,
    all_alerts: bool = typer.Option(False, "--all", help="Resolved alerts too."),
) -> None:
    """Open alerts of every policy (with --all, the resolved ones too)."""
    from flywheel.settings import get_settings
    from monitoring.alerts import AlertStore

    alerts = [a for a in AlertStore(get_settings().lake_dir).all() if all_alerts or a.open]
    if as_json:
        _print_json([asdict(a) | {"open": a.open} for a in alerts])
        return
    if not alerts:
        out.print("no open alerts" if not all_alerts else "no alerts")
        return
    table = Table()
    for column in ("policy", "kind", "subject", "message", "opened", "resolved"):
        table.add_column(column)
    for a in alerts:
        table.add_row(
            a.policy, a.kind, a.subject, a.message, a.opened_at[:19], (a.resolved_at or "")[:19]
        )
    out.print(table)


@app.command()
def cycle(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """One turn of the wheel (a Prefect flow): pull, build, train, promote, monitor, push."""
    from flows.cycle import cycle as cycle_flow

    summary = _flow_result(cycle_flow(policy, return_state=True), f"the cycle of {policy}")
    if as_json:
        _print_json(asdict(summary))
        return
    reused = " (reused)" if summary.reused_model else ""
    out.print(
        f"{policy}: {summary.decisions_added} decisions pulled; dataset {summary.dataset_version}; "
        f"model v{summary.model_version}{reused}: {summary.promotion}; "
        f"{len(summary.alerts_open)} open alerts; {summary.tasks_pushed} tasks pushed "
        f"({summary.tasks_by_queue['explore']} exploring)"
    )


@app.command()
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
    from flows.rescore import dask_runner
    from flows.rescore import rescore as rescore_flow

    run = rescore_flow
    if dask_address or dask_workers > 0:
        run = rescore_flow.with_options(task_runner=dask_runner(dask_address, dask_workers))
    state = run(
        policy, str(items), str(out_dir), alias=alias, chunk_items=chunk_items, return_state=True
    )
    summary = _flow_result(state, f"rescoring {policy}")
    if as_json:
        _print_json(asdict(summary))
        return
    out.print(
        f"{summary.policy} v{summary.model_version}: {summary.rows:,} items scored into "
        f"{len(summary.parts)} parts in {out_dir} on {len(summary.workers)} worker(s)"
    )


stack_app = typer.Typer(
    help="The servers that run the wheel unattended: Prefect, its worker, the webhook receiver.",
    no_args_is_help=True,
)
app.add_typer(stack_app, name="stack")


@stack_app.command("start")
def stack_start(
    prefect_port: int = typer.Option(4200, help="Port of the Prefect server (API and UI)."),
    webhook_port: int = typer.Option(8090, help="Port of the Label Studio webhook receiver."),
) -> None:
    """Start a Prefect server, create the work pool, deploy prefect.yaml, start a worker and the
    webhook receiver (`make serve-stack`); stop them with `flywheel stop`."""
    from flows.stack import start_stack
    from flywheel.settings import get_settings

    stack = start_stack(get_settings(), prefect_port, webhook_port)
    out.print(f"Prefect API {stack.prefect_api_url} (UI: {stack.prefect_api_url[:-4]})")
    out.print(f"worker online in work pool 'flywheel'; {len(stack.deployments)} deployments:")
    for name in stack.deployments:
        out.print(f"  {name}")
    out.print(
        f"webhook receiver: set FLYWHEEL_WEBHOOK_URL={stack.webhook_url} before "
        "`flywheel label bootstrap` so that Label Studio's events start ingest runs"
    )
    out.print(f"use it: export PREFECT_API_URL={stack.prefect_api_url}; stop it: flywheel stop")


@app.command()
def stop() -> None:
    """Stop every server this home started: the scoring API, Label Studio, the Prefect stack."""
    from flows.stack import stop_all
    from flywheel.settings import get_settings

    for name, stopped in stop_all(get_settings()):
        out.print(f"{name}: {'stopped' if stopped else 'not running'}")


@app.command()
def demo(
    cycles: int = typer.Option(5, help="Turns of the wheel."),
    emerging_cycle: int = typer.Option(3, help="The cycle whose traffic brings the new pattern."),
    items_per_day: int = typer.Option(500, help="Simulated items per day per policy."),
    days_per_cycle: int = typer.Option(2, help="Days of traffic each cycle sends."),
    history_days: int = typer.Option(20, help="Reviewed days the first model learns from."),
    api_port: int = typer.Option(8000, help="Port of the scoring API the demo starts."),
    policies: str = typer.Option("spam,scam", help="Comma-separated policies to run."),
    seed: int = typer.Option(7, help="The simulated world's seed."),
    campaign_share: float = typer.Option(
        0.1, help="Share of each day's traffic the hidden campaign takes (--pattern hidden)."
    ),
    evasion_tries: int = typer.Option(
        3,
        min=0,
        help="Times the hidden campaign's operators reword an item the champion would not "
        "allow before posting it (0: they post blind).",
    ),
    pattern: str = typer.Option(
        "signals",
        help="The new pattern: 'signals' (lands in the review band) or 'hidden' (a campaign "
        "of new words and benign signals that the first model allows).",
    ),
) -> None:
    """The main job: Label Studio and the scoring API on a simulated world, the wheel turning."""
    from flywheel.settings import get_settings
    from simulation.demo import DemoConfig, run_demo

    config = DemoConfig(
        cycles=cycles,
        emerging_cycle=emerging_cycle,
        history_days=history_days,
        days_per_cycle=days_per_cycle,
        items_per_day=items_per_day,
        api_port=api_port,
        pattern=pattern,
        seed=seed,
        campaign_share=campaign_share,
        evasion_tries=evasion_tries,
    )
    run_demo(get_settings(), [p.strip() for p in policies.split(",") if p.strip()], config, out)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command, turning user-facing failures into one line and exit 1."""
    # Our own lines report progress; keep the libraries' INFO chatter out unless asked for.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    try:
        code = app(args=argv, prog_name="flywheel", standalone_mode=False)
        if isinstance(code, int):  # `typer.Exit(n)` comes back as a return value here
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        err.print("aborted")
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except FlywheelError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        return 1
    except Exception as exc:
        if os.environ.get("FLYWHEEL_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        err.print(
            f"error: unexpected {type(exc).__name__}: {first} (FLYWHEEL_DEBUG=1 shows the traceback)",
            markup=False,
            soft_wrap=True,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
