"""How a long step says how far it got. The packages report; the command line draws a bar
(`cli.render.progress_bar`); flows and library callers report to nobody by default."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def __call__(self, step: str, done: int, total: int | None = None) -> None:
        """`done` of `total` units of `step` (total None when not known yet)."""


def quiet(step: str, done: int, total: int | None = None) -> None:
    """The default: nobody is watching."""
