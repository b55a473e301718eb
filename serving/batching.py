"""Score concurrent requests together, log them, answer them, then shadow-score them.

A model call has a fixed cost far above its cost per item (5-7 ms against 30-40 µs through
`predict_proba`, as `benchmarks/serving.py` measures), so requests that arrive while the event
loop is busy are scored in one call per policy. A flush
runs as the next event-loop callback after the first request of a batch: every request whose
handler ran before it joins. Before any answer is released the batch's predictions are appended to
the prediction log; the challenger's shadow scores are computed in a later callback, after the
answers went out, so they never delay one. Shadow rows wait a moment to be scored together
(a model call costs the same for one row as for dozens), up to a chunk at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from flywheel import clock
from flywheel.predictions import PREDICTIONS, SHADOW, line
from flywheel.runtime import Model
from serving.metrics import Metrics
from serving.models import ModelStore, Slot
from serving.predlog import PredictionLog

log = logging.getLogger("flywheel.serving")


@dataclass
class Job:
    request_id: str
    rows: list[dict]
    policies: list[str]
    future: asyncio.Future


@dataclass
class ShadowWork:
    policy: str
    challenger: Model
    keys: list[tuple[str, int]]  # (request id, item index) of each row
    rows: list[dict]
    queued_at: float = 0.0  # time.monotonic()


class ShadowBacklog:
    """Rows answered by the champion and waiting for the challenger, per policy, oldest first."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[ShadowWork]] = {}
        self.done: dict[str, int] = {}  # rows of each queue's first work already taken
        self.rows = 0

    def __bool__(self) -> bool:
        return self.rows > 0

    def add(self, work: ShadowWork) -> None:
        self.queues.setdefault(work.policy, deque()).append(work)
        self.rows += len(work.rows)

    def oldest(self) -> tuple[float, str]:
        """When the longest-waiting rows were queued, and their policy."""
        return min((q[0].queued_at, name) for name, q in self.queues.items() if q)

    def take(self, limit: int) -> ShadowWork:
        """Up to `limit` rows of the policy waiting longest, for one challenger (a reload may
        have queued rows for two)."""
        policy = self.oldest()[1]
        queue = self.queues[policy]
        first = queue[0]
        taken = ShadowWork(policy, first.challenger, [], [], first.queued_at)
        while queue and queue[0].challenger is first.challenger and len(taken.rows) < limit:
            work, start = queue[0], self.done.get(policy, 0)
            end = min(len(work.rows), start + limit - len(taken.rows))
            taken.keys += work.keys[start:end]
            taken.rows += work.rows[start:end]
            self.done[policy] = end
            if end == len(work.rows):
                queue.popleft()
                self.done[policy] = 0
        self.rows -= len(taken.rows)
        return taken


@dataclass(frozen=True)
class Scored:
    """One policy's answers for a batch of rows: all from one model version, or all fallback
    (no model, or a model that failed: a human looks, never a silent allow)."""

    version: int | None
    scores: list
    decisions: list
    fallback: bool

    @classmethod
    def on_fallback(cls, n: int) -> Scored:
        return cls(None, [None] * n, ["review"] * n, True)


class Batcher:
    GATHER_TURNS = 1
    MAX_JOBS = 256
    SHADOW_CHUNK = 64
    SHADOW_WAIT_S = 0.05  # a shadow row waits at most this long for others to join its call
    SHADOW_GAP_S = 0.001  # between chunks: a request that arrives meanwhile goes first
    MAX_SHADOW_BACKLOG = 20_000

    def __init__(self, store: ModelStore, prediction_log: PredictionLog, metrics: Metrics) -> None:
        self.store = store
        self.log = prediction_log
        self.metrics = metrics
        self.pending: list[Job] = []
        self.receiving = 0  # scoring requests whose body is still arriving
        self.shadow = ShadowBacklog()
        self.shadow_call: asyncio.TimerHandle | None = None  # the scheduled `_shadow`, if any
        self.shadow_soon = False  # whether that call comes after the gap, not the wait

    @contextlib.contextmanager
    def receiving_body(self) -> Iterator[None]:
        """While a request's body arrives in pieces (a large batch), shadow work waits: each
        piece would otherwise queue behind a shadow chunk."""
        self.receiving += 1
        try:
            yield
        finally:
            self.receiving -= 1
            self._schedule_shadow()

    async def submit(
        self, request_id: str, rows: list[dict], policies: list[str]
    ) -> list[list[dict]]:
        """Results per row, each a list in the order of `policies`."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.pending:
            loop.call_soon(self._gather, 0, 0)
        self.pending.append(Job(request_id, rows, policies, future))
        return await future

    def _gather(self, turns: int, seen: int) -> None:
        """Wait an event-loop turn while requests keep arriving, then flush.

        A turn lets the loop read the sockets once more, so requests that were on the wire join
        this batch instead of starting the next; a turn that brings nothing new, or the turn
        limit, ends the wait. Measured at 8 clients: one turn gives about 7 items per model call
        and the best p99; more turns add throughput only by making requests wait longer.
        """
        grown = len(self.pending) > seen
        if grown and turns < self.GATHER_TURNS and len(self.pending) < self.MAX_JOBS:
            asyncio.get_running_loop().call_soon(self._gather, turns + 1, len(self.pending))
            return
        self.flush()

    def flush(self) -> None:
        jobs, self.pending = self.pending, []
        self._roll_if_due()
        try:
            results, records, shadows = self._score(jobs, self.store.slots)
            started = time.perf_counter()
            self.log.write(records)
            self.metrics.log_write.observe(time.perf_counter() - started)
        except Exception as exc:  # the log could not be written: answer nothing as if it were
            log.exception("scoring batch failed")
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            self._schedule_shadow()
            return
        for job, result in zip(jobs, results, strict=True):
            if not job.future.done():  # the client may have gone away
                job.future.set_result(result)
        for work in shadows:
            if self.shadow.rows + len(work.rows) > self.MAX_SHADOW_BACKLOG:
                self.metrics.shadow_skipped.labels(work.policy).inc(len(work.rows))
                continue
            work.queued_at = time.monotonic()
            self.shadow.add(work)
        self._schedule_shadow()

    def upkeep(self) -> None:
        """The log's care between batches (the service calls it on its poll): a compactor that
        a roll found busy is started, and a segment due by age is rolled, though no request
        comes to do it. A flush waiting to run does the same itself."""
        if not self.pending:
            self._roll_if_due()

    def _roll_if_due(self) -> None:
        """Shadow lines are joined to their predictions within a segment: roll between shadow
        work, unless the segment has grown to twice its size (then a few shadows are lost).

        A roll that fails (no file descriptor or process to spare) fails no request: the log
        keeps a writable segment or opens one at the next write, and only that write's
        failure stops a batch."""
        try:
            self.log.catch_up()
            if not (self.log.due() and (not self.shadow or self.log.overdue())):
                return
            self.log.roll()
        except Exception:
            log.exception(
                "rolling the prediction log failed; trying again at the next batch or poll"
            )
            self.metrics.log_roll_failures.inc()

    def _score(
        self, jobs: Sequence[Job], slots: dict[str, Slot]
    ) -> tuple[list, list[dict], list[ShadowWork]]:
        """Each job's results, the log records (one per policy: its rows' predictions as
        columns, a single JSON object to write), and the rows waiting for a challenger."""
        now = clock.now(self.log.settings).timestamp()
        results = [[[None] * len(job.policies) for _ in job.rows] for job in jobs]
        records: list[dict] = []
        shadows: list[ShadowWork] = []
        wanted: dict[str, list[tuple[int, int, int]]] = {}  # policy -> (job, row, slot in result)
        for j, job in enumerate(jobs):
            for p, policy in enumerate(job.policies):
                wanted.setdefault(policy, []).extend((j, r, p) for r in range(len(job.rows)))
        for policy, places in wanted.items():
            slot = slots[policy]
            rows = [jobs[j].rows[r] for j, r, _ in places]
            keys = [(jobs[j].request_id, r) for j, r, _ in places]
            scored = self._champion(slot, rows)
            for (j, r, p), score, decision in zip(
                places, scored.scores, scored.decisions, strict=True
            ):
                results[j][r][p] = {
                    "policy": policy,
                    "model_version": scored.version,
                    "score": score,
                    "decision": decision,
                    "fallback": scored.fallback,
                }
            # orjson writes NaN and infinity (an auto-action threshold that never acts) as null
            thresholds = slot.champion.thresholds if slot.champion else None
            records.append(
                line(
                    kind=PREDICTIONS,
                    policy=policy,
                    version=scored.version,
                    threshold_review=thresholds.review if thresholds else None,
                    threshold_auto_action=thresholds.auto_action if thresholds else None,
                    fallback=scored.fallback,
                    at=now,
                    **_keys(keys),
                    item_ids=[row["item_id"] for row in rows],
                    scores=scored.scores,
                    decisions=scored.decisions,
                    items=rows,
                )
            )
            if slot.challenger is not None and not scored.fallback:
                shadows.append(ShadowWork(policy, slot.challenger, keys, rows))
        return results, records, shadows

    def _champion(self, slot: Slot, rows: list[dict]) -> Scored:
        name = slot.policy.name
        if slot.champion is None:
            self.metrics.fallbacks.labels(name).inc(len(rows))
            return Scored.on_fallback(len(rows))
        champion = slot.champion
        try:
            scores = champion.score(rows)
        except Exception:
            log.exception(
                "scoring %s with version %s failed; answering on fallback", name, champion.version
            )
            self.metrics.fallbacks.labels(name).inc(len(rows))
            return Scored.on_fallback(len(rows))
        self.metrics.batch_items.observe(len(rows))
        decisions = champion.decide(scores)
        version = champion.version
        for decision in ("allow", "review", "auto_action"):
            count = int(np.count_nonzero(decisions == decision))
            if count:
                self.metrics.decided(name, version, decision).inc(count)
        return Scored(version, scores.tolist(), decisions.tolist(), False)

    def _schedule_shadow(self) -> None:
        """Shadow-score a moment from now once a chunk is waiting (or its wait is over, or the
        log is about to roll and should take the shadows with it); until then on a timer.

        The moment is a short timer rather than the next turn: the loop then reads the
        sockets first, and a request that arrived is handled before the chunk runs."""
        if not self.shadow:
            return
        waited = time.monotonic() - self.shadow.oldest()[0]
        ready = (
            self.shadow.rows >= self.SHADOW_CHUNK or waited >= self.SHADOW_WAIT_S or self.log.due()
        )
        if self.shadow_call is not None:
            if self.shadow_soon or not ready:
                return
            self.shadow_call.cancel()
        loop = asyncio.get_running_loop()
        self.shadow_soon = ready
        delay = self.SHADOW_GAP_S if ready else self.SHADOW_WAIT_S - waited
        self.shadow_call = loop.call_later(delay, self._shadow)

    def _shadow(self) -> None:
        """Score the challenger on a chunk of the oldest waiting rows and log it, then come back.

        Answers come first: while requests wait to be scored, shadow work steps aside (it
        resumes after their flush), so a large batch's shadow never delays the next request.
        The backlog is bounded: past MAX_SHADOW_BACKLOG rows new shadow work is skipped and
        counted, rather than letting memory grow under a load the core cannot shadow.
        """
        self.shadow_call = None
        if self.pending or self.receiving:
            return  # their flush (or the body's arrival) reschedules us
        work = self.shadow.take(self.SHADOW_CHUNK)
        try:
            scores = work.challenger.score(work.rows)
            decisions = work.challenger.decide(scores)
            self.log.write(
                [
                    line(
                        kind=SHADOW,
                        policy=work.policy,
                        version=work.challenger.version,
                        **_keys(work.keys),
                        scores=scores.tolist(),
                        decisions=decisions.tolist(),
                    )
                ]
            )
        except Exception:  # the answers were right; only the comparison is lost
            log.exception("shadow scoring of %s failed", work.policy)
            self.metrics.shadow_failures.labels(work.policy).inc()
        self._schedule_shadow()


def _keys(keys: list[tuple[str, int]]) -> dict[str, list]:
    """A log line's request ids and item indexes, as its two columns."""
    return {"request_ids": [rid for rid, _ in keys], "indexes": [i for _, i in keys]}
