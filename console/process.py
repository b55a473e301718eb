"""The console as a background server of this home, for `flywheel stack start` and the demo.

Its key comes from `FLYWHEEL_CONSOLE_KEY` when set; otherwise one is generated once and kept in
the home (mode 600), so the demo needs nothing configured and the user can read it later.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from flywheel.files import generated_once
from flywheel.services import Service, start_local
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
    env = {**os.environ, "FLYWHEEL_HOME": str(settings.root), "FLYWHEEL_CONSOLE_KEY": key(settings)}
    flywheel = str(Path(sys.executable).with_name("flywheel"))
    return start_local(service(settings), [flywheel, "console"], env, port, timeout_s)


def stop(settings: Settings) -> bool:
    return service(settings).stop()
