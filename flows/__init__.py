"""Prefect flows that compose Flywheel's steps into the wheel.

Importing this package points Prefect at Flywheel's home before Prefect itself is imported:
its local state goes under `FLYWHEEL_HOME/prefect` and it sends no telemetry (there may be no
network). Explicit `PREFECT_*` variables always win.
"""

import os
from pathlib import Path

from flywheel.settings import get_settings

os.environ.setdefault("PREFECT_HOME", str(get_settings().root / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect makes one level only
