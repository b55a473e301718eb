"""Where Prefect keeps its local state when Flywheel runs flows in-process."""

from __future__ import annotations

import os
from pathlib import Path

from flywheel.settings import Settings


def use_flywheel_home(settings: Settings) -> None:
    """Point Prefect at the home before Prefect is imported: its local state (the temporary
    server's database) under `FLYWHEEL_HOME/prefect`, and no telemetry, since there may be no
    network. Explicit `PREFECT_*` variables win. Called by the entry points that run flows, so
    that importing a module of `flows` changes nothing by itself."""
    os.environ.setdefault("PREFECT_HOME", str(settings.root / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect makes one level
