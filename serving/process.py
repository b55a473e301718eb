"""The scoring API as a background server of this home, for the demo and `flywheel serve --detach`.

Its keys come from settings when set; otherwise a key pair is generated once and kept in the home
(mode 600), so a demo needs nothing configured and a later `curl` can read the same key.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from flywheel.files import generated_once
from flywheel.services import Service, start_local
from flywheel.settings import Settings


@dataclass(frozen=True)
class Keys:
    api: str
    admin: str


def _folder(settings: Settings) -> Path:
    return settings.root / "serving"


def keys(settings: Settings) -> Keys:
    """The configured keys, or the pair generated for this home on first use."""
    stored = generated_once(
        _folder(settings) / "keys.json",
        lambda: {"api": secrets.token_urlsafe(18), "admin": secrets.token_urlsafe(18)},
    )
    configured = sorted(settings.api_keys)
    return Keys(
        configured[0] if configured else stored["api"], settings.admin_key or stored["admin"]
    )


def service(settings: Settings) -> Service:
    return Service(
        "the scoring API", _folder(settings), f"FLYWHEEL_SERVICE=scoring-api:{settings.root}"
    )


def start(settings: Settings, port: int = 8000, timeout_s: float = 120.0) -> str:
    """Serve this home's champions on 127.0.0.1:`port` in the background; its URL once it answers."""
    pair = keys(settings)
    env = {
        **os.environ,
        "FLYWHEEL_HOME": str(settings.root),
        "FLYWHEEL_API_KEYS": ",".join(sorted(settings.api_keys | {pair.api})),
        "FLYWHEEL_ADMIN_KEY": pair.admin,
    }
    flywheel = str(Path(sys.executable).with_name("flywheel"))
    return start_local(service(settings), [flywheel, "serve"], env, port, timeout_s)


def stop(settings: Settings) -> bool:
    return service(settings).stop()
