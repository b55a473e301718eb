"""The console as a background server of this home, for `flywheel stack start` and the demo.

Its key comes from `FLYWHEEL_CONSOLE_KEY` when set; otherwise one is generated once and kept in
the home (mode 600), so the demo needs nothing configured and the user can read it later.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from flywheel.errors import FlywheelError
from flywheel.files import generated_once
from flywheel.services import Service, answers, port_taken
from flywheel.settings import Settings

DEFAULT_PORT = 8095


def _folder(settings: Settings) -> Path:
    return settings.root / "console"


def key_file(settings: Settings) -> Path:
    return _folder(settings) / "key.json"


def key(settings: Settings) -> str:
    """The configured key, or the one generated for this home on first use."""
    if settings.console_key:
        return settings.console_key
    return generated_once(key_file(settings), lambda: {"key": secrets.token_urlsafe(18)})["key"]


def service(settings: Settings) -> Service:
    return Service("the console", _folder(settings), f"FLYWHEEL_SERVICE=console:{settings.root}")


def start(settings: Settings, port: int = DEFAULT_PORT, timeout_s: float = 60.0) -> str:
    """Serve this home's console on 127.0.0.1:`port` in the background; its URL once it answers."""
    server = service(settings)
    pid = server.pid()
    url = server.recorded().get("url") if pid is not None else f"http://127.0.0.1:{port}"
    if pid is None:
        if port_taken("127.0.0.1", port):
            raise FlywheelError(f"port {port} is in use by another program; choose another port")
        env = {
            **os.environ,
            "FLYWHEEL_HOME": str(settings.root),
            "FLYWHEEL_CONSOLE_KEY": key(settings),
        }
        flywheel = str(Path(sys.executable).with_name("flywheel"))
        pid = server.spawn([flywheel, "console", "--port", str(port)], env, url=url)
    server.wait(pid, lambda: answers(f"{url}/healthz"), timeout_s)
    return url


def stop(settings: Settings) -> bool:
    return service(settings).stop()
