"""What every benchmark script needs: an honest peak-memory figure and a place for its table."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux `VmHWM`). Unlike getrusage's `ru_maxrss`, it
    does not carry over the parent's peak into a child started by fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this measure needs Linux)")


def publish(name: str, table: str) -> None:
    """Print a result table and keep it in benchmarks/results/<name>.md."""
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(table + "\n")


def header(what: str, command: str, minutes: float) -> str:
    """The line above a table: the machine, the day, what was run and how long it took."""
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}; {what}; "
        f"`python benchmarks/{command}` ({minutes:.0f} min)\n\n"
    )
