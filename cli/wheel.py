"""`flywheel cycle`, `stack start`, `stop` and `demo`: the wheel turning, once, unattended, or
on a simulated world."""

from __future__ import annotations

from dataclasses import asdict

import typer

from cli.common import JsonOption, PolicyOption, err, flow_result, out, print_json

stack_app = typer.Typer(
    help="The servers that run the wheel unattended: Prefect, its worker, the webhook "
    "receiver, the console.",
    no_args_is_help=True,
)


def cycle(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """One turn of the wheel (a Prefect flow): pull, build, train, promote, monitor, push."""
    from flows.home import use_flywheel_home
    from flywheel.settings import get_settings

    use_flywheel_home(get_settings())
    from flows.cycle import cycle as cycle_flow

    summary = flow_result(cycle_flow(policy, return_state=True), f"the cycle of {policy}")
    if as_json:
        print_json(summary.model_dump(mode="json"))
        return
    reused = " (reused)" if summary.reused_model else ""
    out.print(
        f"{policy}: {summary.decisions_added} decisions pulled; dataset {summary.dataset_version}; "
        f"model v{summary.model_version}{reused}: {summary.promotion}; "
        f"{len(summary.alerts_open)} open alerts; {summary.tasks_pushed} tasks pushed "
        f"({summary.tasks_by_queue['explore']} exploring)"
        + "".join(f"; {reviewer} answered {n}" for reviewer, n in summary.automated_answers.items())
    )


@stack_app.command("start")
def stack_start(
    prefect_port: int = typer.Option(4200, help="Port of the Prefect server (API and UI)."),
    webhook_port: int = typer.Option(8090, help="Port of the Label Studio webhook receiver."),
    console_port: int = typer.Option(8095, help="Port of the operations console."),
    as_json: JsonOption = False,
) -> None:
    """Start a Prefect server, create the work pool, deploy prefect.yaml, start a worker and the
    webhook receiver and the console (`make serve-stack`); stop them with `flywheel stop`."""
    from flows.stack import start_stack
    from flywheel.settings import get_settings

    settings = get_settings()
    stack = start_stack(settings, prefect_port, webhook_port, console_port=console_port)
    if as_json:
        print_json(asdict(stack))
        return
    out.print(f"Prefect API {stack.prefect_api_url} (UI: {stack.prefect_api_url[:-4]})")
    out.print(f"worker online in work pool 'flywheel'; {len(stack.deployments)} deployments:")
    for name in stack.deployments:
        out.print(f"  {name}")
    out.print(
        f"webhook receiver: set FLYWHEEL_WEBHOOK_URL={stack.webhook_url} before "
        "`flywheel label bootstrap` so that Label Studio's events start ingest runs"
    )
    out.print(f"console: {stack.console_url} (its key: {_console_key(settings)})")
    out.print(f"use it: export PREFECT_API_URL={stack.prefect_api_url}; stop it: flywheel stop")


def _console_key(settings) -> str:
    from console import process

    return "FLYWHEEL_CONSOLE_KEY" if settings.console_key else str(process.key_file(settings))


def stop() -> None:
    """Stop every server this home started: the scoring API, the console, Label Studio, the
    Prefect stack."""
    from flows.stack import stop_all
    from flywheel.settings import get_settings

    for name, stopped in stop_all(get_settings()):
        out.print(f"{name}: {'stopped' if stopped else 'not running'}")


def demo(
    cycles: int = typer.Option(5, help="Turns of the wheel."),
    emerging_cycle: int = typer.Option(3, help="The cycle whose traffic brings the new pattern."),
    items_per_day: int = typer.Option(500, help="Simulated items per day per policy."),
    days_per_cycle: int = typer.Option(2, help="Days of traffic each cycle sends."),
    history_days: int = typer.Option(20, help="Reviewed days the first model learns from."),
    api_port: int = typer.Option(8000, help="Port of the scoring API the demo starts."),
    console_port: int = typer.Option(8095, help="Port of the console the demo starts."),
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
    as_json: JsonOption = False,
) -> None:
    """The main job: Label Studio and the scoring API on a simulated world, the wheel turning.

    With --json, the tables and progress go to stderr and the figures to stdout."""
    from flows.home import use_flywheel_home
    from flywheel.settings import get_settings

    use_flywheel_home(get_settings())
    from simulation.demo import DemoConfig, run_demo

    config = DemoConfig(
        cycles=cycles,
        emerging_cycle=emerging_cycle,
        history_days=history_days,
        days_per_cycle=days_per_cycle,
        items_per_day=items_per_day,
        api_port=api_port,
        console_port=console_port,
        pattern=pattern,
        seed=seed,
        campaign_share=campaign_share,
        evasion_tries=evasion_tries,
    )
    chosen = [p.strip() for p in policies.split(",") if p.strip()]
    result = run_demo(get_settings(), chosen, config, err if as_json else out)
    if as_json:
        print_json({"config": asdict(config), **result.payload()})
