"""`flywheel monitor` and `flywheel alerts`: how the loop is doing, and what needs someone."""

from __future__ import annotations

from dataclasses import asdict

import typer

from cli.common import JsonOption, PolicyOption, context, print_json
from cli.render import render_alerts, render_monitor

alerts_app = typer.Typer(help="Alerts raised by monitoring.", no_args_is_help=True)


def monitor(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Drift, golden-set and production error rates, review health; alerts; report files."""
    from monitoring.monitor import run_monitor

    settings, pol, lake = context(policy)
    report = run_monitor(pol, settings, lake)
    if as_json:
        print_json(report.as_json())
        return
    render_monitor(report)


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
        print_json([asdict(a) | {"open": a.open} for a in alerts])
        return
    render_alerts(alerts, all_alerts)
