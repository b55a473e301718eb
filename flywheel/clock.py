"""The platform's clock: the wall clock, or a simulated one that a simulation moves forward.

Queues are about hours: an SLA of four hours, a task escalated at three, a shift from nine to
five. A demo that shows them cannot wait for them, so a simulation (`flywheel demo`) runs its
home on a simulated clock: a file in the home (`clock.json`) saying by how much the platform's
time is ahead of the wall clock, from which wall-clock moment on. Every time the platform
stamps or compares (a push, a decision, a prediction, an alert, an age) is read through
`now`, and every time another system stamped (Label Studio's annotations) is mapped through
`at`, so all of them stay on one time line. A home without the file (every real one) runs on
the wall clock, and nothing here costs more than a `stat`.

The simulated clock only moves forward: each `advance` adds a jump from the present wall-clock
moment on, and earlier jumps stay, so a stamp taken before it maps as it did then.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from flywheel.errors import FlywheelError
from flywheel.files import write_json_atomic
from flywheel.settings import Settings, get_settings

CLOCK_FILE = "clock.json"
_cache: dict[Path, tuple[tuple[int, int], list[tuple[float, float]]]] = {}


def clock_path(settings: Settings) -> Path:
    return settings.root / CLOCK_FILE


def _jumps(settings: Settings) -> list[tuple[float, float]]:
    """(wall-clock moment, seconds ahead from then on), in order; none on the wall clock."""
    path = clock_path(settings)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return []
    key = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        jumps = [(float(j["wall"]), float(j["ahead_s"])) for j in json.loads(path.read_text())]
    except (ValueError, KeyError, TypeError) as exc:
        raise FlywheelError(
            f"{path}: not a simulated clock ({exc}); remove it to use the wall clock"
        ) from None
    _cache[path] = (key, jumps)
    return jumps


def at(moment: datetime, settings: Settings | None = None) -> datetime:
    """A wall-clock moment (a stamp another system took) on the platform's clock."""
    ahead = 0.0
    for wall, seconds in _jumps(settings or get_settings()):
        if wall > moment.timestamp():
            break
        ahead = seconds
    return datetime.fromtimestamp(moment.timestamp() + ahead, UTC)


def now(settings: Settings | None = None) -> datetime:
    """The platform's present moment (time zone aware, UTC)."""
    return at(datetime.now(UTC), settings)


def simulated(settings: Settings | None = None) -> bool:
    return bool(_jumps(settings or get_settings()))


def advance(settings: Settings, to: datetime) -> datetime:
    """Move the simulated clock forward to `to` (starting one if the home had none); a
    moment already passed leaves it where it is. Returns the clock's present moment."""
    wall = datetime.now(UTC)
    present = at(wall, settings)
    if to <= present:
        return present
    jumps = [*_jumps(settings), (wall.timestamp(), to.timestamp() - wall.timestamp())]
    write_json_atomic([{"wall": w, "ahead_s": s} for w, s in jumps], clock_path(settings))
    return at(wall, settings)
