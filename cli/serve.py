"""`flywheel serve`: the scoring API, in the foreground or detached."""

from __future__ import annotations

import typer

from cli.common import err, out
from flywheel.errors import FlywheelError, redact


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
