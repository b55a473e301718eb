"""The scoring server's prediction-log writer under faults: a full disk, no descriptors, no
processes to spare. Faults are injected into the OS calls; the files and the reader are real."""

import asyncio
import errno
import os

import pytest

import serving.predlog
from flywheel.predictions import compact_pending, pending_segments, read_predictions
from serving.batching import Batcher
from serving.metrics import Metrics
from serving.models import Slot
from serving.predlog import PredictionLog
from tests.conftest import log_line
from tests.unit.serving.test_batching import FakeScorer, FakeStore, _row, _served


def _disk_fills_after(monkeypatch, room: int) -> None:
    """The next os.write stores `room` bytes and the one after finds the disk full."""
    real, calls = os.write, []

    def write(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data[:room]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serving.predlog.os, "write", write)


def _answer(batcher, request_id, row):
    """The batcher's answer, or a failure if it never comes (a request left hanging)."""
    return asyncio.run(asyncio.wait_for(batcher.submit(request_id, [row], ["spam"]), 30))


def _logged(settings, spam) -> list[str]:
    return read_predictions(settings, spam)["request_id"].tolist()


def test_a_write_torn_by_a_full_disk_is_cut_back_and_the_next_batch_kept(
    settings, spam, monkeypatch
):
    log = PredictionLog(settings, compact=False)
    log.write([log_line(("r1", 0))])
    with monkeypatch.context() as patch:
        _disk_fills_after(patch, room=40)
        with pytest.raises(OSError, match="No space"):
            log.write([log_line(("r2", 0))])
    log.write([log_line(("r3", 0))])
    assert _logged(settings, spam) == ["r1", "r3"], "the batch after a torn write was lost"
    log.close()
    assert compact_pending(settings) == 1
    assert _logged(settings, spam) == ["r1", "r3"]


def test_a_torn_write_that_cannot_be_cut_back_rolls_to_a_new_segment(settings, spam, monkeypatch):
    log = PredictionLog(settings, compact=False)
    log.write([log_line(("r1", 0))])
    torn = log.path
    with monkeypatch.context() as patch:
        _disk_fills_after(patch, room=40)

        def no_truncate(fd, length):
            raise OSError(errno.EIO, "Input/output error")

        patch.setattr(serving.predlog.os, "ftruncate", no_truncate)
        with pytest.raises(OSError, match="No space"):
            log.write([log_line(("r2", 0))])
    assert log.path != torn, "the next batch would land on the torn line"
    log.write([log_line(("r3", 0))])
    assert _logged(settings, spam) == ["r1", "r3"]


def test_a_roll_that_cannot_open_a_segment_fails_no_request_and_the_log_recovers(
    settings, spam, monkeypatch
):
    """No descriptor to spare when the segment rolls: the batch is still logged and answered
    (the writer opens a segment when it next writes), and nothing logged is lost."""
    settings = settings.model_copy(update={"log_segment_records": 1})
    log = PredictionLog(settings, compact=False)
    metrics = Metrics()
    batcher = Batcher(
        FakeStore({"spam": Slot(spam, champion=_served(1, FakeScorer()))}), log, metrics
    )
    _answer(batcher, "r1", _row(0, 1))
    real_open, opens = os.open, []

    def open_once_fails(*args, **kwargs):
        opens.append(args[0])
        if len(opens) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(serving.predlog.os, "open", open_once_fails)
    [[answer]] = _answer(batcher, "r2", _row(1, 9))
    assert answer["decision"] == "auto_action"
    assert metrics.log_roll_failures._value.get() == 1
    _answer(batcher, "r3", _row(2, 1))
    log.close()
    compact_pending(settings)
    assert sorted(_logged(settings, spam)) == ["r1", "r2", "r3"]
    assert not pending_segments(settings)


def test_a_compactor_that_cannot_start_fails_no_request_and_the_next_roll_starts_one(
    settings, spam, monkeypatch
):
    settings = settings.model_copy(update={"log_segment_records": 1})
    log = PredictionLog(settings)
    batcher = Batcher(
        FakeStore({"spam": Slot(spam, champion=_served(1, FakeScorer()))}), log, Metrics()
    )
    _answer(batcher, "r1", _row(0, 1))
    spawn = serving.predlog.spawn_compaction

    def no_process(settings):
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(serving.predlog, "spawn_compaction", no_process)
    [[answer]] = _answer(batcher, "r2", _row(1, 1))
    assert answer["decision"] == "allow"
    assert log.compactor is None
    monkeypatch.setattr(serving.predlog, "spawn_compaction", spawn)
    _answer(batcher, "r3", _row(2, 1))
    log.compactor.wait()
    assert sorted(_logged(settings, spam)) == ["r1", "r2", "r3"]
    assert [p.name for p in pending_segments(settings)] == [log.path.name], (
        "a segment rolled while no compactor could start was left behind"
    )
    log.close()


def test_a_roll_that_finds_the_compactor_busy_starts_one_once_it_is_done(settings, monkeypatch):
    """One compactor at a time; a segment rolled in a running compactor's last moments is
    not left waiting for traffic that may never come: the next batch starts one."""

    class Compactor:
        def __init__(self):
            self.running = True

        def poll(self):
            return None if self.running else 0

    started = []

    def spawn(settings):
        started.append(Compactor())
        return started[-1]

    monkeypatch.setattr(serving.predlog, "spawn_compaction", spawn)
    log = PredictionLog(settings)
    log.write([log_line(("r1", 0))])
    log.roll()
    log.write([log_line(("r2", 0))])
    log.roll()
    assert len(started) == 1 and log.missed
    log.catch_up()
    assert len(started) == 1, "a second compactor while the first runs"
    started[0].running = False
    log.catch_up()
    assert len(started) == 2 and not log.missed
    log.catch_up()
    assert len(started) == 2
