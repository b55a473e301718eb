"""Score concurrent requests together, log them, answer them, then shadow-score them.

A model call has a fixed cost far above its cost per item (STACK_NOTES: 5-7 ms against 30-40 µs),
so requests that arrive while the event loop is busy are scored in one call per policy. A flush
runs as the next event-loop callback after the first request of a batch: every request whose
handler ran before it joins. Before any answer is released the batch's predictions are appended to
the prediction log; the challenger's shadow scores are computed in a later callback, after the
answers went out, so they never delay one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.metrics import Metrics
from serving.models import ModelStore, ServedModel, Slot
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
    challenger: ServedModel
    keys: list[tuple[str, int]]  # (request id, item index) of each row
    rows: list[dict]


def fallback_result(policy: str) -> dict:
    """No model (or a model that failed): a human looks, never a silent allow."""
    return {
        "policy": policy,
        "model_version": None,
        "score": None,
        "decision": "review",
        "fallback": True,
    }


class Batcher:
    GATHER_TURNS = 1
    MAX_JOBS = 256
    SHADOW_CHUNK = 64
    MAX_SHADOW_BACKLOG = 20_000

    def __init__(self, store: ModelStore, prediction_log: PredictionLog, metrics: Metrics) -> None:
        self.store = store
        self.log = prediction_log
        self.metrics = metrics
        self.pending: list[Job] = []
        self.shadow_queue: deque[ShadowWork] = deque()
        self.shadow_done = 0  # rows of the queue's first work already scored
        self.shadow_rows = 0  # rows waiting in the queue
        self.shadow_scheduled = False

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
        # Shadow lines are joined to their predictions within a segment: roll between shadow
        # work, unless the segment has grown to twice its size (then a few shadows are lost).
        if self.log.due() and (not self.shadow_queue or self.log.overdue()):
            self.log.roll()
        try:
            results, lines, shadows = self._score(jobs, self.store.slots)
            started = time.perf_counter()
            self.log.write(lines)
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
            if self.shadow_rows + len(work.rows) > self.MAX_SHADOW_BACKLOG:
                self.metrics.shadow_skipped.labels(work.policy).inc(len(work.rows))
                continue
            self.shadow_queue.append(work)
            self.shadow_rows += len(work.rows)
        self._schedule_shadow()

    def _score(
        self, jobs: Sequence[Job], slots: dict[str, Slot]
    ) -> tuple[list, list[dict], list[ShadowWork]]:
        now = time.time()
        results = [[[None] * len(job.policies) for _ in job.rows] for job in jobs]
        lines: list[dict] = []
        shadows: list[ShadowWork] = []
        wanted: dict[str, list[tuple[int, int, int]]] = {}  # policy -> (job, row, slot in result)
        for j, job in enumerate(jobs):
            for p, policy in enumerate(job.policies):
                wanted.setdefault(policy, []).extend((j, r, p) for r in range(len(job.rows)))
        for policy, places in wanted.items():
            slot = slots[policy]
            rows = [jobs[j].rows[r] for j, r, _ in places]
            scored = self._champion(slot, rows)
            fields = slot.policy.feature_columns
            for (j, r, p), result in zip(places, scored, strict=True):
                results[j][r][p] = result
                row = jobs[j].rows[r]
                lines.append(
                    {
                        "k": "p",
                        "rid": jobs[j].request_id,
                        "i": r,
                        "item_id": row["item_id"],
                        "policy": policy,
                        "v": result["model_version"],
                        "score": result["score"],
                        "decision": result["decision"],
                        "tr": slot.champion.thresholds.review if slot.champion else None,
                        "ta": _json_number(slot.champion.thresholds.auto_action)
                        if slot.champion
                        else None,
                        "fb": result["fallback"],
                        "at": now,
                        "item": {f: _json_value(row[f]) for f in fields},
                    }
                )
            if slot.challenger is not None and not scored[0]["fallback"]:
                keys = [(jobs[j].request_id, r) for j, r, _ in places]
                shadows.append(ShadowWork(policy, slot.challenger, keys, rows))
        return results, lines, shadows

    def _champion(self, slot: Slot, rows: list[dict]) -> list[dict]:
        name = slot.policy.name
        if slot.champion is None:
            self.metrics.fallbacks.labels(name).inc(len(rows))
            return [fallback_result(name) for _ in rows]
        champion = slot.champion
        try:
            scores = champion.scorer.score(rows)
        except Exception:
            log.exception(
                "scoring %s with version %s failed; answering on fallback", name, champion.version
            )
            self.metrics.fallbacks.labels(name).inc(len(rows))
            return [fallback_result(name) for _ in rows]
        self.metrics.batch_items.observe(len(rows))
        decisions = champion.thresholds.decide(scores)
        version = champion.version
        for decision in ("allow", "review", "auto_action"):
            count = int(np.count_nonzero(decisions == decision))
            if count:
                self.metrics.decided(name, version, decision).inc(count)
        return [
            {
                "policy": name,
                "model_version": version,
                "score": float(s),
                "decision": str(d),
                "fallback": False,
            }
            for s, d in zip(scores, decisions, strict=True)
        ]

    def _schedule_shadow(self) -> None:
        if self.shadow_queue and not self.shadow_scheduled:
            self.shadow_scheduled = True
            asyncio.get_running_loop().call_soon(self._shadow)

    def _shadow(self) -> None:
        """Score the challenger on a slice of the oldest batch and log it, then come back.

        Answers come first: while requests wait to be scored, shadow work steps aside (it
        resumes after their flush), so a large batch's shadow never delays the next request.
        The queue is bounded: past MAX_SHADOW_BACKLOG rows new shadow work is skipped and
        counted, rather than letting memory grow under a load the core cannot shadow.
        """
        self.shadow_scheduled = False
        if self.pending:
            return  # their flush runs first and reschedules us
        shadow = self.shadow_queue[0]
        chunk = slice(self.shadow_done, self.shadow_done + self.SHADOW_CHUNK)
        try:
            scores = shadow.challenger.scorer.score(shadow.rows[chunk])
            decisions = shadow.challenger.thresholds.decide(scores)
            self.log.write(
                [
                    {
                        "k": "s",
                        "rid": rid,
                        "i": i,
                        "policy": shadow.policy,
                        "v": shadow.challenger.version,
                        "score": float(s),
                        "decision": str(d),
                    }
                    for (rid, i), s, d in zip(shadow.keys[chunk], scores, decisions, strict=True)
                ]
            )
        except Exception:  # the answers were right; only the comparison is lost
            log.exception("shadow scoring of %s failed", shadow.policy)
            self.metrics.shadow_failures.labels(shadow.policy).inc()
        self.shadow_done += self.SHADOW_CHUNK
        if self.shadow_done >= len(shadow.rows):
            self.shadow_queue.popleft()
            self.shadow_rows -= len(shadow.rows)
            self.shadow_done = 0
        self._schedule_shadow()


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _json_value(value: object) -> object:
    """NaN (an unknown number) is not JSON: log it as null."""
    return None if isinstance(value, float) and math.isnan(value) else value
