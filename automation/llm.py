"""A chat model as a reviewer, through an OpenAI-compatible `/chat/completions` endpoint.

The prompt gives the policy's written `definition`, its two labels and the item's fields, and
asks for one JSON object: `{"label": ..., "confidence": 0..1, "rationale": "..."}`. The answer
is parsed strictly: anything else (other keys, a label the policy does not have, a confidence
outside [0, 1], text around the object) is a failure, and the item goes to a person.

Calls are paced (`requests_per_minute`), time out (`timeout_s`), and are retried with doubling
back-off on a timeout, a lost connection, a 429 or a 5xx (a `Retry-After` in seconds is
honoured). What they cost is counted from the answer's `usage` at the policy's prices; once a
cycle's `budget_per_cycle` is spent, the remaining items are not sent. Answers that parsed are
cached (SQLite) by model, prompt and item, so an item is never paid for twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pandas as pd

from automation.verdict import Verdict
from flywheel.errors import FlywheelError
from flywheel.policy import LlmReviewer, Policy

RETRY_AFTER_CAP_S = 60.0  # a server asking for longer is treated as failing this call


class AnswerError(ValueError):
    """An answer that is not what the prompt asked for."""


def messages(policy: Policy, item: dict) -> list[dict]:
    """The chat: the policy's definition and labels, then the item as JSON."""
    positive, negative = policy.labels.positive, policy.labels.negative
    system = (
        f"You review content for the policy {policy.name!r}.\n\n"
        f"Definition:\n{policy.definition.strip()}\n\n"
        f"Decide whether the item violates this definition. Answer with one JSON object and "
        f'nothing else: {{"label": "{positive}" or "{negative}", "confidence": your '
        f'probability that the label is right, from 0 to 1, "rationale": one sentence '
        f"quoting what decided it}}."
    )
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": json.dumps(item, ensure_ascii=False, default=str)},
    ]


def parse_answer(content: str, labels: tuple[str, str]) -> tuple[str, float, str]:
    """The label, confidence and rationale of an answer, or AnswerError saying what is wrong."""
    try:
        answer = json.loads(content)
    except (TypeError, json.JSONDecodeError) as exc:
        raise AnswerError("not a JSON object") from exc
    if not isinstance(answer, dict):
        raise AnswerError("not a JSON object")
    keys = set(answer)
    if keys != {"label", "confidence", "rationale"}:
        missing = sorted({"label", "confidence", "rationale"} - keys)
        extra = sorted(keys - {"label", "confidence", "rationale"})
        raise AnswerError(f"keys missing {missing}, unexpected {extra}")
    label, confidence, rationale = answer["label"], answer["confidence"], answer["rationale"]
    if label not in labels:
        raise AnswerError(f"label {label!r} is not one of the policy's ({', '.join(labels)})")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise AnswerError(f"confidence {confidence!r} is not a number")
    if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        raise AnswerError(f"confidence {confidence!r} is not within [0, 1]")
    if not isinstance(rationale, str) or not rationale.strip():
        raise AnswerError("rationale is not a non-empty string")
    return label, float(confidence), rationale.strip()


class _Cache:
    """Parsed answers by model, prompt and item, on disk."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, content TEXT)")

    @staticmethod
    def key(model: str, chat: list[dict], item_id: str) -> str:
        raw = json.dumps([model, chat, item_id], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT content FROM answers WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, content: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, content))

    def close(self) -> None:
        self.db.close()


class LlmJudge:
    """One cycle's use of a chat-model reviewer: its pacing, its budget and its cache."""

    def __init__(
        self,
        spec: LlmReviewer,
        policy: Policy,
        key: str,
        cache: Path,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec, self.policy = spec, policy
        self.labels = (policy.labels.positive, policy.labels.negative)
        self.client = httpx.Client(
            base_url=spec.base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {key}"},
            timeout=spec.timeout_s,
        )
        self.cache = _Cache(cache)
        self.clock, self.sleep = clock, sleep
        self.spent = 0.0  # this cycle's cost
        self._next_call = 0.0

    def judge(self, items: pd.DataFrame) -> list[Verdict]:
        """Each item's verdict, in order; an item the model could not answer gets none."""
        fields = ["item_id", *self.policy.fields.all]
        rows = items[[c for c in fields if c in items]].to_dict(orient="records")
        try:
            return [self._one(row) for row in rows]
        finally:
            self.client.close()
            self.cache.close()

    def _one(self, item: dict) -> Verdict:
        item_id = str(item["item_id"])
        reviewer = f"auto:{self.spec.name}"
        chat = messages(self.policy, item)
        key = self.cache.key(self.spec.model, chat, item_id)
        content = self.cache.get(key)
        cached = content is not None
        if content is None:
            budget = self.spec.budget_per_cycle
            if budget is not None and self.spent >= budget:
                return Verdict(item_id, reviewer, None, None, "", "budget spent")
            content, failure = self._call(chat)
            if failure:
                return Verdict(item_id, reviewer, None, None, "", failure)
        try:
            label, confidence, rationale = parse_answer(content, self.labels)
        except AnswerError as exc:
            return Verdict(item_id, reviewer, None, None, "", f"unparseable answer: {exc}")
        if not cached:
            self.cache.put(key, content)
        return Verdict(item_id, reviewer, label, confidence, rationale)

    def _call(self, chat: list[dict]) -> tuple[str, str | None]:
        """The answer's text, or a failure once retries are spent."""
        body = {
            "model": self.spec.model,
            "messages": chat,
            "temperature": 0,
            "response_format": {"type": "json_object"},
        }
        failure = ""
        for attempt in range(self.spec.max_retries + 1):
            wait = self.spec.backoff_s * 2**attempt
            self._pace()
            try:
                response = self.client.post("chat/completions", json=body)
            except httpx.TimeoutException:
                failure = f"timed out after {self.spec.timeout_s:g} s"
            except httpx.TransportError as exc:
                failure = f"endpoint unreachable ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return self._content(response)
                failure = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    return "", f"{failure}: {response.text[:200]}"  # retrying will not help
                wait = max(wait, _retry_after(response))
            if attempt < self.spec.max_retries:
                if wait > RETRY_AFTER_CAP_S:
                    break
                self.sleep(wait)
        tries = attempt + 1
        return "", f"{failure}, {tries} attempt{'s' if tries > 1 else ''}"

    def _content(self, response: httpx.Response) -> tuple[str, str | None]:
        """The message text of a 200 answer, its cost counted."""
        try:
            payload = response.json()
            content = payload["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return "", "unparseable answer: not a chat completion"
        usage = payload.get("usage") or {}
        # without usage, about four characters a token
        sent = usage.get("prompt_tokens", len(response.request.content) / 4)
        got = usage.get("completion_tokens", len(str(content)) / 4)
        self.spent += (
            sent * self.spec.price_per_1k_input + got * self.spec.price_per_1k_output
        ) / 1000
        if not isinstance(content, str):
            return "", "unparseable answer: its content is not text"
        return content, None

    def _pace(self) -> None:
        """Wait until the next call is allowed by `requests_per_minute`."""
        now = self.clock()
        if now < self._next_call:
            self.sleep(self._next_call - now)
            now = self._next_call
        self._next_call = now + 60.0 / self.spec.requests_per_minute


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("retry-after", 0)), 0.0)
    except ValueError:
        return 0.0


def api_key(spec: LlmReviewer, where: str, environ: dict[str, str]) -> str:
    """The reviewer's key from the environment, or a load error naming the variable."""
    key = environ.get(spec.api_key_env, "")
    if not key:
        raise FlywheelError(
            f"{where}.api_key_env: {spec.api_key_env} is not set in the environment "
            f"(the key of the llm reviewer {spec.name!r})"
        )
    return key
