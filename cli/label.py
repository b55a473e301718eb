"""`flywheel labelstudio` and `flywheel label`: the Label Studio server, and reviewers' tasks
out and decisions back."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cli.common import JsonOption, PolicyOption, context, err, out, print_json
from cli.render import print_status, progress_bar, render_qa

labelstudio_app = typer.Typer(
    help="The local Label Studio server (its own virtualenv, data in the home).",
    no_args_is_help=True,
)
label_app = typer.Typer(
    help="Reviewers in Label Studio: tasks out, decisions back.", no_args_is_help=True
)


@labelstudio_app.command("start")
def labelstudio_start() -> None:
    """Install on first use, start on 127.0.0.1 and wait until it answers."""
    from flywheel.settings import get_settings
    from labeling.server import credentials, start

    settings = get_settings()
    with progress_bar() as progress:
        status = start(settings, progress)
    print_status(status)
    creds = credentials(settings)
    out.print(
        f"log in as {creds.username}; password and API token in {settings.labelstudio_dir}/credentials.json"
    )


@labelstudio_app.command("stop")
def labelstudio_stop() -> None:
    """Stop the server this home started (nothing else)."""
    from flywheel.settings import get_settings
    from labeling.server import stop

    print_status(stop(get_settings()))


@labelstudio_app.command("status")
def labelstudio_status(as_json: JsonOption = False) -> None:
    """Whether this home's server runs and answers; exit 1 when it does not."""
    from flywheel.settings import get_settings
    from labeling.server import status

    current = status(get_settings())
    if as_json:
        print_json(asdict(current))
    else:
        print_status(current)
    if not current.running:
        raise typer.Exit(1)


def _labeling(policy_name: str):
    from labeling.client import LabelStudioAPI

    settings, policy, lake = context(policy_name)
    return settings, policy, lake, LabelStudioAPI(settings)


@label_app.command("bootstrap")
def label_bootstrap(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Create or update the policy's Label Studio project (idempotent)."""
    from labeling.project import bootstrap

    settings, pol, lake, api = _labeling(policy)
    project = bootstrap(pol, lake, api, settings)
    if as_json:
        url = f"{api.url}/projects/{project.id}"
        print_json({"policy": pol.name, **asdict(project), "url": url})
        return
    verb = "created" if project.created else "up to date"
    out.print(f"project {project.id} {project.title!r} {verb} at {api.url}/projects/{project.id}")


@label_app.command("push")
def label_push(policy: PolicyOption, as_json: JsonOption = False) -> None:
    """Push the review queue, a blind audit sample and gold checks from the prediction log."""
    from labeling.push import push

    settings, pol, lake, api = _labeling(policy)
    with progress_bar() as progress:
        report = push(pol, settings, lake, api, progress)
    if as_json:
        print_json(asdict(report))
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
    with progress_bar() as progress:
        report = pull(pol, settings, lake, api, progress)
    if as_json:
        print_json(asdict(report))
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

    _, pol, lake = context(policy)
    report = run_qa(pol, lake)
    if as_json:
        print_json(report)
        return
    render_qa(report, pol.name)


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
        from flows.home import use_flywheel_home

        use_flywheel_home(settings)
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
