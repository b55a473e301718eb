"""Files written whole or not at all: the lake's and the prediction log's one way to write.

Kept free of pandas and pyarrow so that small processes (the prediction-log compactor) can use
it without paying for their import.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename.

    Readers see the old file or the whole new one, never a part; on failure `path` is untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(payload: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def generated_once(path: Path, make: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Secrets kept in a file readable by its owner only: read if present, else made and stored,
    so a server and the user's later commands agree on them without configuration."""
    if path.is_file():
        return json.loads(path.read_text())
    stored = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(stored, path)
    path.chmod(0o600)
    return stored


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it is renamed to `final` in one step.

    If `final` already exists (same content-addressed version built before), the staged copy
    is discarded. On failure nothing appears at `final`.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.iterdir():
            _fsync(file)
        if not final.exists():
            os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
