"""`flywheel queues`: the review queues now, and whether they will hold their SLAs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from cli.common import JsonOption, PolicyOption, context, out, print_json
from cli.render import render_queues
from flywheel.errors import FlywheelError

queues_app = typer.Typer(
    help="Review queues: backlog, SLAs and the staff they need.", no_args_is_help=True
)
DaysOption = Annotated[int, typer.Option("--days", min=1, max=14, help="Days to forecast.")]


def _statuses(policy: str, days: int):
    from flywheel.lake import utc_now
    from labeling.status import queue_status, write_status

    _, pol, lake = context(policy)
    if pol.queues is None:
        raise FlywheelError(f"policy {pol.name} has no queues: section (one project, no SLAs)")
    now = utc_now()
    statuses = queue_status(pol, lake, now, days=days)
    if days:
        write_status(pol, lake, statuses, now)
    return pol, statuses


@queues_app.command("status")
def queues_status(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Each queue now: open tasks, the oldest, past the SLA, arrivals, reviewers on shift."""
    pol, statuses = _statuses(policy, 0)
    if as_json:
        print_json([asdict(s) for s in statuses])
        return
    render_queues(statuses, pol.name, forecast=False)


@queues_app.command("forecast")
def queues_forecast(
    policy: PolicyOption, days: DaysOption = 3, as_json: JsonOption = False
) -> None:
    """SLA compliance expected over the next days, and the reviewers that would hold the
    policy's target (simulated from the backlog, last week's arrivals and the roster)."""
    pol, statuses = _statuses(policy, days)
    if as_json:
        print_json([asdict(s) for s in statuses])
        return
    render_queues(statuses, pol.name, forecast=True, target=pol.queues.sla_target)


@queues_app.command("tend")
def queues_tend(policy: PolicyOption, days: DaysOption = 3, as_json: JsonOption = False) -> None:
    """Between cycles: pull the decisions made, escalate the tasks nearing their SLA, write
    the queues' status and forecast (what the `tend-<policy>` deployments run)."""
    from flywheel.lake import utc_now
    from labeling.client import LabelStudioAPI
    from labeling.tend import tend

    settings, pol, lake = context(policy)
    tended = tend(pol, settings, lake, LabelStudioAPI(settings), utc_now(), days=days)
    if as_json:
        print_json(asdict(tended))
        return
    out.print(
        f"{tended.decisions_added} decision(s) pulled; {tended.escalated} task(s) escalated "
        "to the head of their queue"
    )
    render_queues(tended.queues, pol.name, forecast=False)
