"""The scoring server's side of the prediction log: append, roll, hand over for compaction.

Each batch of predictions is one `os.write` to the open segment (a line per policy, its
predictions as columns: see `flywheel.predictions`), done before the answers go out: the bytes are
then in the kernel, so they outlive a `kill -9` of the server (`FLYWHEEL_LOG_FSYNC=true` also
survives a machine crash, at the cost of an fsync per batch). Nothing is buffered in the process,
so memory stays flat however long the load lasts. A segment rolls after a number of predictions
(`FLYWHEEL_LOG_SEGMENT_RECORDS`) or seconds; the rolled file is compacted to Parquet by another
process (`flywheel.predictions.spawn_compaction`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import orjson

from flywheel.predictions import (
    CLOSED_SUFFIX,
    LINE,
    OPEN_SUFFIX,
    segments_dir,
    spawn_compaction,
)
from flywheel.settings import Settings

log = logging.getLogger("flywheel.serving")


class PredictionLog:
    def __init__(self, settings: Settings, compact: bool = True) -> None:
        self.settings = settings
        self.compact = compact
        self.folder = segments_dir(settings)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.sequence = 0
        self.fd: int | None = None
        self.path: Path | None = None
        self.predictions = 0
        self.opened_at = 0.0
        self.oldest_unrolled: float | None = None
        self.compactor: subprocess.Popen | None = None
        self.missed = False  # a roll found the compactor busy: start one once it is done
        self._open()

    def _open(self) -> None:
        self.sequence += 1
        self.path = self.folder / f"{self.writer}-{self.sequence:06d}{OPEN_SUFFIX}"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)  # tells compactors this segment is alive
        self.predictions = 0
        self.opened_at = time.monotonic()
        self.oldest_unrolled = None

    def write(self, records: list[dict]) -> None:
        """Append records; when this returns they survive the process being killed.

        All or nothing: a write that fails part-way (a full disk) is cut back to where it
        began, so the next batch does not land on a torn line that the reader would drop with
        it. If even the cut fails, the segment is rolled and the torn line stays last in it.
        """
        if not records:
            return
        data = b"".join(orjson.dumps(record) + b"\n" for record in records)
        if self.fd is None:  # a roll closed the segment but could not open the next
            self._rotate()
        start = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view) :]
            if self.settings.log_fsync:
                os.fsync(self.fd)
        except OSError:
            self._cut_back(start)
            raise
        self.predictions += sum(len(record[LINE["request_ids"].key]) for record in records)
        if self.oldest_unrolled is None:
            self.oldest_unrolled = time.time()

    def _cut_back(self, start: int) -> None:
        try:
            os.ftruncate(self.fd, start)
        except OSError:
            log.exception("could not cut a failed write back; rolling the segment")
            with contextlib.suppress(OSError):
                self._rotate()

    def due(self) -> bool:
        return self.predictions >= self.settings.log_segment_records or (
            self.predictions > 0
            and time.monotonic() - self.opened_at >= self.settings.log_segment_seconds
        )

    def overdue(self) -> bool:
        return self.predictions >= 2 * self.settings.log_segment_records

    def roll(self) -> None:
        """Close the open segment for compaction and start a new one.

        A failure part-way leaves a state `write` recovers from: the old segment still open
        (a failed rename), none open (it opens one), or a closed segment whose compactor did
        not start (the next roll's compactor takes it)."""
        if self.predictions == 0:
            self.opened_at = time.monotonic()
            return
        self._rotate()

    def _rotate(self) -> None:
        self._close()
        self._open()
        self._compact()

    def _compact(self) -> None:
        """One compactor at a time; it goes round until no new segment appeared, and a roll
        that found it busy in its last moments is caught up by `catch_up`."""
        if not self.compact:
            return
        if self.compactor is not None and self.compactor.poll() is None:
            self.missed = True
            return
        self.missed = False
        try:
            self.compactor = spawn_compaction(self.settings)
        except OSError:  # too many processes or files: the segment waits for the next roll
            log.exception("could not start the prediction-log compactor")
            self.compactor = None

    def catch_up(self) -> None:
        """Start a compactor for segments rolled while the last one was finishing."""
        if self.missed:
            self._compact()

    def lag_seconds(self) -> float:
        """Age of the oldest record not yet handed to compaction (monitoring sees it later)."""
        return 0.0 if self.oldest_unrolled is None else time.time() - self.oldest_unrolled

    def _close(self) -> None:
        if self.fd is None:
            return
        closed = self.path.with_name(self.path.name.removesuffix(OPEN_SUFFIX) + CLOSED_SUFFIX)
        os.rename(self.path, closed)
        os.close(self.fd)  # releases the lock
        self.fd = None

    def close(self) -> None:
        """On shutdown: roll what was written so that it gets compacted."""
        if self.fd is None:
            return
        if self.predictions:
            self._close()
            if self.compactor is not None:
                self.compactor.wait()
            self._compact()
        else:
            os.close(self.fd)
            self.path.unlink(missing_ok=True)
            self.fd = None
