"""`flywheel console`: the operations console, in the foreground or detached."""

from __future__ import annotations

import typer

from cli.common import JsonOption, err, out, print_json


def console(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8095, help="Port to listen on."),
    detach: bool = typer.Option(
        False, "--detach", help="Run in the background on 127.0.0.1 (stop: flywheel stop)."
    ),
    as_json: JsonOption = False,
) -> None:
    """Serve the read-only operations console: policies, reviewers, queues, models, alerts."""
    from console import process
    from flywheel.settings import get_settings

    settings = get_settings()
    key = process.key(settings)
    where = "FLYWHEEL_CONSOLE_KEY" if settings.console_key else str(process.key_file(settings))
    if detach:
        url = process.start(settings, port)
        if as_json:
            print_json({"console": url, "key_from": where})
            return
        out.print(f"console on {url}; its key: {where}; stop it with: flywheel stop")
        return

    import uvicorn

    from console.app import create_app

    err.print(f"console on http://{host}:{port}; its key: {where}")
    uvicorn.run(create_app(settings, key), host=host, port=port, log_level="warning")
