"""The batcher's own logic, with a fake model and a fake log (no registry, no HTTP)."""

import asyncio
import math

import numpy as np
import pytest

from flywheel.policy import load_policy
from flywheel.predictions import LINE, SHADOW
from flywheel.registry import ModelVersionRef, Thresholds
from flywheel.runtime import Model
from flywheel.settings import Settings
from serving.batching import Batcher
from serving.metrics import Metrics
from serving.models import Slot


class FakeScorer:
    def __init__(self, score=None, fail=False):
        self.calls = []
        self.value, self.fail = score, fail

    def score(self, rows):
        self.calls.append(len(rows))
        if self.fail:
            raise RuntimeError("model exploded")
        return np.array(
            [self.value if self.value is not None else float(r["links"]) / 10 for r in rows]
        )


# a line's list fields, and what one prediction's value of each is called here
PER_PREDICTION = {
    "request_ids": "request_id",
    "indexes": "index",
    "item_ids": "item_id",
    "scores": "score",
    "decisions": "decision",
    "items": "item",
}


def _predictions(record):
    """A log line (one policy, its predictions as columns) as one dict per prediction, keyed by
    the names of the log's one line definition (`flywheel.predictions.LINE`)."""
    named = {name: record[f.key] for name, f in LINE.items() if f.key in record}
    n = len(named["request_ids"])
    scalars = {k: v for k, v in named.items() if k not in PER_PREDICTION}
    lists = {PER_PREDICTION[k]: v for k, v in named.items() if k in PER_PREDICTION}
    return [{**scalars, **{k: v[j] for k, v in lists.items()}} for j in range(n)]


class FakeLog:
    """Keeps what is written, one dict per prediction; an event counts the predictions."""

    def __init__(self, events):
        self.events = events
        self.lines = []
        self.caught_up = 0
        self.settings = Settings()  # the session's home: the wall clock

    def due(self):
        return False

    def catch_up(self):
        self.caught_up += 1

    def overdue(self):
        return False

    def write(self, records):
        lines = [line for record in records for line in _predictions(record)]
        self.events.append(("log", len(lines)))
        self.lines.extend(lines)


class FakeStore:
    def __init__(self, slots):
        self.slots = slots


def _served(version, scorer, review=0.3, auto=0.8):
    """A runtime model whose scoring path is the fake scorer."""
    ref = ModelVersionRef("spam", version, None, Thresholds(auto, review).as_tags())
    return Model(ref, load_policy("spam"), pipeline=None, fast=scorer.score)


def _row(i, links):
    return {
        "item_id": f"i{i}",
        "text": "t",
        "account_age_days": 1.0,
        "links": links,
        "prior_reports": 0.0,
        "messages_last_hour": 1.0,
        "surface": "dm",
        "country": "US",
    }


def _batcher(slots):
    events = []
    log = FakeLog(events)
    return Batcher(FakeStore(slots), log, Metrics()), log, events


async def _submit_all(batcher, jobs):
    return await asyncio.gather(
        *(batcher.submit(rid, rows, policies) for rid, rows, policies in jobs)
    )


async def _shadows_written(batcher):
    """Let the loop run until the shadow backlog is scored and nothing more is scheduled."""
    while batcher.shadow or batcher.shadow_call is not None:
        await asyncio.sleep(0.001)


def test_concurrent_requests_share_one_model_call_and_decide_by_thresholds(spam):
    champion = FakeScorer()
    batcher, log, _ = _batcher({"spam": Slot(spam, champion=_served(2, champion))})
    jobs = [(f"r{i}", [_row(i, links)], ["spam"]) for i, links in enumerate([1, 3, 8, 9])]
    results = asyncio.run(_submit_all(batcher, jobs))
    assert champion.calls == [4]
    decisions = [r[0][0]["decision"] for r in results]
    assert decisions == ["allow", "review", "auto_action", "auto_action"]
    assert all(r[0][0]["model_version"] == 2 and not r[0][0]["fallback"] for r in results)
    assert [line["request_id"] for line in log.lines] == ["r0", "r1", "r2", "r3"]
    assert log.lines[2]["item"]["links"] == 8 and log.lines[2]["threshold_auto_action"] == 0.8


def test_no_model_answers_review_on_fallback_and_logs_it(spam):
    batcher, log, _ = _batcher({"spam": Slot(spam)})
    [[result]] = asyncio.run(batcher.submit("r", [_row(0, 1)], ["spam"]))
    assert result == {
        "policy": "spam",
        "model_version": None,
        "score": None,
        "decision": "review",
        "fallback": True,
    }
    assert log.lines[0]["fallback"] is True


def test_a_failing_model_answers_review_on_fallback(spam):
    batcher, _, _ = _batcher({"spam": Slot(spam, champion=_served(1, FakeScorer(fail=True)))})
    [[result]] = asyncio.run(batcher.submit("r", [_row(0, 1)], ["spam"]))
    assert result["decision"] == "review" and result["fallback"]


def test_answers_wait_for_the_log_and_shadow_scores_come_after(spam):
    challenger = FakeScorer(score=0.95)
    batcher, log, events = _batcher(
        {"spam": Slot(spam, champion=_served(1, FakeScorer()), challenger=_served(2, challenger))}
    )

    async def scenario():  # as a request handler does: await the answer, respond at once
        answer = await batcher.submit("r", [_row(0, 1), _row(1, 5)], ["spam"])
        events.append(("answered", None))
        await _shadows_written(batcher)
        return answer

    result = asyncio.run(scenario())
    assert [r[0]["score"] for r in result] == [0.1, 0.5], "the answer is the champion's"
    assert events == [("log", 2), ("answered", None), ("log", 2)]
    shadows = [line for line in log.lines if line["kind"] == SHADOW]
    assert [(s["index"], s["version"], s["decision"]) for s in shadows] == [
        (0, 2, "auto_action"),
        (1, 2, "auto_action"),
    ]
    assert not batcher.shadow and batcher.shadow.rows == 0


def test_several_policies_per_request_keep_the_requested_order(spam):
    from flywheel.policy import load_policy

    scam = load_policy("scam")
    batcher, _, _ = _batcher(
        {"spam": Slot(spam, champion=_served(1, FakeScorer(0.5))), "scam": Slot(scam)}
    )
    row = {**_row(0, 1), "payment_requests": 0.0, "contacts_messaged": 1.0}
    [results] = asyncio.run(batcher.submit("r", [row], ["scam", "spam"]))
    assert [r["policy"] for r in results] == ["scam", "spam"]
    assert results[0]["fallback"] and math.isclose(results[1]["score"], 0.5)


def test_a_log_that_cannot_be_written_fails_the_batch(spam):
    class BrokenLog(FakeLog):
        def write(self, lines):
            raise OSError("disk full")

    batcher = Batcher(
        FakeStore({"spam": Slot(spam, champion=_served(1, FakeScorer()))}), BrokenLog([]), Metrics()
    )
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(batcher.submit("r", [_row(0, 1)], ["spam"]))


def test_shadow_work_steps_aside_for_waiting_requests(spam):
    champion, challenger = FakeScorer(), FakeScorer(score=0.9)
    batcher, log, _ = _batcher(
        {"spam": Slot(spam, champion=_served(1, champion), challenger=_served(2, challenger))}
    )
    big = [_row(i, 1) for i in range(200)]

    async def scenario():
        await batcher.submit("big", big, ["spam"])
        # the next request arrives while the big batch's shadow work is still queued
        await batcher.submit("next", [_row(0, 2)], ["spam"])
        await _shadows_written(batcher)

    asyncio.run(scenario())
    assert champion.calls == [200, 1]
    assert challenger.calls[0] <= batcher.SHADOW_CHUNK, "shadow work goes in chunks"
    assert sum(challenger.calls) == 201
    shadow_ids = [line["request_id"] for line in log.lines if line["kind"] == SHADOW]
    assert shadow_ids.count("big") == 200 and shadow_ids.count("next") == 1


def test_the_shadow_backlog_is_bounded(spam, monkeypatch):
    challenger = FakeScorer(score=0.9)
    batcher, _, _ = _batcher(
        {"spam": Slot(spam, champion=_served(1, FakeScorer()), challenger=_served(2, challenger))}
    )
    monkeypatch.setattr(batcher, "MAX_SHADOW_BACKLOG", 50)

    async def scenario():
        await batcher.submit("a", [_row(i, 1) for i in range(40)], ["spam"])
        await batcher.submit("b", [_row(i, 1) for i in range(40)], ["spam"])  # 80 > 50 queued rows
        await _shadows_written(batcher)

    asyncio.run(scenario())
    assert sum(challenger.calls) == 40, "b's rows were not shadowed"
    assert batcher.metrics.shadow_skipped.labels("spam")._value.get() == 40


def test_shadow_rows_of_many_requests_share_one_challenger_call(spam, monkeypatch):
    """Sequential small requests (each its own champion call) are shadowed together, per
    policy, in calls of at most a chunk, oldest rows first. The shadow timers are held off
    while the requests arrive (how many arrive before a 1 ms timer fires depends on the
    machine's load) and the shadow step is then run by hand."""
    monkeypatch.setattr(Batcher, "SHADOW_WAIT_S", 3600.0)
    monkeypatch.setattr(Batcher, "SHADOW_GAP_S", 3600.0)
    from flywheel.policy import load_policy

    scam = load_policy("scam")
    spam_challenger, scam_challenger = FakeScorer(score=0.9), FakeScorer(score=0.1)
    batcher, log, _ = _batcher(
        {
            "spam": Slot(
                spam, champion=_served(1, FakeScorer()), challenger=_served(2, spam_challenger)
            ),
            "scam": Slot(
                scam, champion=_served(1, FakeScorer()), challenger=_served(3, scam_challenger)
            ),
        }
    )
    row = {**_row(0, 1), "payment_requests": 0.0, "contacts_messaged": 1.0}

    async def scenario():
        for i in range(batcher.SHADOW_CHUNK + 6):
            await batcher.submit(f"r{i}", [row], ["spam", "scam"])
        assert not spam_challenger.calls and batcher.shadow.rows == 140
        while batcher.shadow:
            batcher._shadow()

    asyncio.run(scenario())
    assert spam_challenger.calls == [batcher.SHADOW_CHUNK, 6]
    assert scam_challenger.calls == [batcher.SHADOW_CHUNK, 6]
    shadows = [
        (line["policy"], line["request_id"], line["version"])
        for line in log.lines
        if line["kind"] == SHADOW
    ]
    assert sorted(shadows) == sorted(
        [("spam", f"r{i}", 2) for i in range(70)] + [("scam", f"r{i}", 3) for i in range(70)]
    )


def test_a_lone_shadow_row_is_scored_after_the_wait(spam):
    challenger = FakeScorer(score=0.9)
    batcher, log, _ = _batcher(
        {"spam": Slot(spam, champion=_served(1, FakeScorer()), challenger=_served(2, challenger))}
    )

    async def scenario():
        loop = asyncio.get_running_loop()
        await batcher.submit("r", [_row(0, 1)], ["spam"])
        queued = loop.time()
        assert challenger.calls == [] and batcher.shadow_call is not None
        await _shadows_written(batcher)
        return loop.time() - queued

    waited = asyncio.run(scenario())
    assert challenger.calls == [1]
    assert waited >= batcher.SHADOW_WAIT_S * 0.9  # the timer's, not a busy loop's
    assert [line["request_id"] for line in log.lines if line["kind"] == SHADOW] == ["r"]


def test_shadow_work_waits_while_a_request_body_arrives(spam):
    challenger = FakeScorer(score=0.9)
    batcher, _, _ = _batcher(
        {"spam": Slot(spam, champion=_served(1, FakeScorer()), challenger=_served(2, challenger))}
    )

    async def scenario():
        await batcher.submit("big", [_row(i, 1) for i in range(200)], ["spam"])
        with batcher.receiving_body():
            for _ in range(50):  # many loop turns, as while a large body arrives in pieces
                await asyncio.sleep(0)
            during = list(challenger.calls)
        await _shadows_written(batcher)
        return during

    assert asyncio.run(scenario()) == []
    assert sum(challenger.calls) == 200


def test_between_batches_the_log_is_still_caught_up(spam):
    """A compactor a roll found busy must start though no request follows (the service's poll
    calls `upkeep`); with a batch waiting, the flush does it instead."""
    batcher, log, _ = _batcher({"spam": Slot(spam, champion=_served(1, FakeScorer()))})
    batcher.upkeep()
    assert log.caught_up == 1
    batcher.pending = [object()]
    batcher.upkeep()
    assert log.caught_up == 1
