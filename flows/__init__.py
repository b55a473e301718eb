"""Prefect flows that compose Flywheel's steps into the wheel.

Importing this package points Prefect at Flywheel's home before Prefect itself is imported:
its local state goes under `FLYWHEEL_HOME/prefect` and it sends no telemetry (there may be no
network). Explicit `PREFECT_*` variables always win.
"""

import os

from flywheel.settings import get_settings

os.environ.setdefault("PREFECT_HOME", str(get_settings().root / "prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
