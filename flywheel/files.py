"""Files written whole or not at all: the lake's and the prediction log's one way to write.

Kept free of pandas and pyarrow so that small processes (the prediction-log compactor) can use
it without paying for their import.
"""

from __future__ import annotations

import errno
import fcntl
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


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable: until its directory is synced, a power cut can undo it."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` in one rename.

    Readers see the old file or the whole new one, never a part; on failure `path` is untouched.
    A `private` file is created readable by its owner only before anything is written to it,
    so no crash can leave its content readable by others.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        if private:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(payload: Any, path: Path, private: bool = False) -> None:
    with atomic_path(path, private=private) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def generated_once(path: Path, make: Callable[[], dict[str, str]]) -> dict[str, str]:
    """Secrets kept in a file readable by its owner only: read if present, else made and stored,
    so a server and the user's later commands agree on them without configuration. The file is
    0600 from its first byte; one found readable by others is made private again."""
    if path.is_file():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return json.loads(path.read_text())
    stored = make()
    write_json_atomic(stored, path, private=True)
    return stored


@contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (created if missing) for the block: the one way
    processes of a home take turns. With `wait=False` it yields False at once, without the
    lock, when another holder has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it is renamed to `final` in one step.

    If `final` already exists (same content-addressed version built before, or by another
    build at the same moment), the staged copy is discarded. On failure nothing appears at
    `final`.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.iterdir():
            _fsync(file)
        _fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError as exc:
            # another build published the same version first: theirs is as good as ours
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                raise
        _fsync_dir(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
