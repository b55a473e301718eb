"""How a long step says how far it got. The packages report; the command line draws a bar
(`cli.render.progress_bar`); flows and library callers report to nobody by default.

Functions take a `progress` callback. A Prefect flow cannot (its parameters are data, checked and
stored by Prefect), so a flow reports to `watching()`, which is whatever the caller set around
the run with `watched_by` (a flow runs in its caller's context), and nobody otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Progress(Protocol):
    def __call__(self, step: str, done: int, total: int | None = None) -> None:
        """`done` of `total` units of `step` (total None when not known yet)."""


def quiet(step: str, done: int, total: int | None = None) -> None:
    """The default: nobody is watching."""


_watcher: ContextVar[Progress] = ContextVar("flywheel_progress", default=quiet)


def watching() -> Progress:
    """The progress callback the caller of this flow set, or `quiet`."""
    return _watcher.get()


@contextmanager
def watched_by(progress: Progress) -> Iterator[None]:
    """Flows run inside this block report their progress to `progress`."""
    token = _watcher.set(progress)
    try:
        yield
    finally:
        _watcher.reset(token)
