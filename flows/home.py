"""Where Prefect keeps its local state when Flywheel runs flows in-process."""

from __future__ import annotations

import os
from pathlib import Path

from flywheel.settings import Settings

# Where Prefect's temporary server may listen: below the kernel's ephemeral ports (32768 and up,
# where tests and `port 0` land) and away from 8000–8999, where the scoring API (8000), Label
# Studio (8089) and the webhook receiver (8090) listen by default.
TEMPORARY_SERVER_PORTS = range(21000, 22000)


def use_flywheel_home(settings: Settings) -> None:
    """Point Prefect at the home before Prefect is imported: its local state (the temporary
    server's database) under `FLYWHEEL_HOME/prefect`, and no telemetry, since there may be no
    network. Explicit `PREFECT_*` variables win. Called by the entry points that run flows, so
    that importing a module of `flows` changes nothing by itself."""
    os.environ.setdefault("PREFECT_HOME", str(settings.root / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect makes one level
    if not os.environ.get("PREFECT_API_URL"):
        keep_temporary_server_apart()


def keep_temporary_server_apart() -> None:
    """Prefect's temporary server picks a random free port in 8000–8999 and binds it later;
    Label Studio, started beside the first flows, listens on 8089 by default: once, the demo's
    flows found Label Studio where their server should be ("InvalidVersion" from its version
    answer). Prefect has no setting for the range, so its class attribute is set here
    (`tests/unit/flows/test_home.py` pins it). Imported only when that server will run anyway."""
    from prefect.server.api.server import SubprocessASGIServer

    SubprocessASGIServer._port_range = TEMPORARY_SERVER_PORTS
