"""Automated reviewers against real parts: the llm kind through real HTTP to the project's own
OpenAI-compatible server (`simulation.chat_server`; no hosted model is reachable from these
machines), with what real endpoints do wrong; and the load errors of every kind."""

from __future__ import annotations

import pandas as pd
import pytest

from automation.judge import judge, reviewers
from automation.llm import messages
from flywheel.errors import FlywheelError
from flywheel.policy import parse_policy
from simulation.chat_server import ChatServer, Reply, answer

KEY = "local-key"


def policy(**llm: object):
    options = ", ".join(f"{k}: {v}" for k, v in llm.items())
    return parse_policy(
        f"""
name: scams
labels: {{positive: scam, negative: fine}}
fields: {{text: [body], numeric: [links]}}
targets: {{auto_action_precision: 0.95, review_recall: 0.9}}
definition: A scam asks for money or credentials under false pretences.
automated_reviewers:
  - {{name: gpt, kind: llm, base_url: "{llm.pop("base_url", "http://127.0.0.1:9/v1")}", model: m,
     api_key_env: CHAT_KEY, backoff_s: 0.01, requests_per_minute: 6000{", " + options if options else ""}}}
"""
    )


def items(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"item_id": [f"i{k}" for k in range(n)], "body": ["pay a fee"] * n, "links": range(n)}
    )


def ask(server: ChatServer, frame: pd.DataFrame, tmp_path, **llm: object) -> pd.DataFrame:
    ready = reviewers(policy(base_url=server.base_url, **llm), tmp_path, {"CHAT_KEY": KEY})
    return judge(ready, frame).set_index("item_id")


def test_answers_come_back_as_verdicts_and_each_failure_sends_the_item_to_a_person(tmp_path):
    script = {
        "i0": [Reply(answer("scam", 0.92, "asks for a fee"))],
        "i1": [Reply(answer("fine", 0.8))],
        "i2": [Reply('{"label": "maybe", "confidence": 0.5, "rationale": "unsure"}')],
        "i3": [Reply("Sure! It is a scam.")],
        "i4": [Reply(status=429, retry_after=0.01), Reply(status=503), Reply(answer("scam", 0.7))],
        "i5": [Reply(status=500)] * 4,
        "i6": [Reply(answer("scam", 0.9), delay_s=1.0)] * 4,
        "i7": [Reply(status=400)],
    }
    seen: dict[str, int] = {}

    def reply(item: dict) -> Reply:
        k = seen.get(item["item_id"], 0)
        seen[item["item_id"]] = k + 1
        return script[item["item_id"]][min(k, len(script[item["item_id"]]) - 1)]

    with ChatServer(reply, KEY) as server:
        out = ask(server, items(8), tmp_path, timeout_s=0.3, max_retries=2)
        calls = dict(server.requests)
    assert out.loc["i0", ["label", "confidence", "rationale"]].tolist() == [
        "scam",
        0.92,
        "asks for a fee",
    ]
    assert out.loc["i1", "label"] == "fine" and out.loc["i4", "label"] == "scam"
    assert calls["i4"] == 3  # a 429 and a 503 retried
    failures = out["failure"].to_dict()
    assert out.loc[["i2", "i3", "i5", "i6", "i7"], "label"].isna().all()
    assert "label 'maybe' is not one of the policy's" in failures["i2"]
    assert "not a JSON object" in failures["i3"]
    assert failures["i5"] == "HTTP 500, 3 attempts" and calls["i5"] == 3
    assert failures["i6"] == "timed out after 0.3 s, 3 attempts"
    assert failures["i7"].startswith("HTTP 400") and calls["i7"] == 1  # not worth retrying
    assert set(out["reviewer"]) == {"auto:gpt"}


def test_answers_that_parsed_are_cached_and_a_spent_budget_stops_the_calls(tmp_path):
    with ChatServer(lambda item: Reply(answer("scam", 0.9)), KEY) as server:
        # what one answer costs, from the tokens the server reports (a quarter of the characters)
        chat = messages(policy(), items(1).iloc[0].to_dict())
        tokens = sum(len(m["content"]) for m in chat) // 4, len(answer("scam", 0.9)) // 4
        cost = (tokens[0] * 0.1 + tokens[1] * 0.3) / 1000
        # a budget of 2.5 answers: the third call spends past it, and no fourth is made
        priced = {
            "budget_per_cycle": 2.5 * cost,
            "price_per_1k_input": 0.1,
            "price_per_1k_output": 0.3,
        }
        first = ask(server, items(6), tmp_path, **priced)
        assert first["label"].notna().tolist() == [True] * 3 + [False] * 3
        assert first["failure"].iloc[3:].eq("budget spent").all()
        assert sorted(server.requests) == ["i0", "i1", "i2"]
        # the next cycle: the three answered come from the cache, free; the budget buys three more
        second = ask(server, items(6), tmp_path, **priced)
        assert second["label"].notna().all()
        assert server.requests == {f"i{k}": 1 for k in range(6)}
        said = ["label", "confidence", "rationale"]
        assert second.loc[["i0", "i1", "i2"], said].equals(first.loc[["i0", "i1", "i2"], said])


def test_a_wrong_key_is_a_failure_not_a_decision(tmp_path):
    with ChatServer(lambda item: Reply(answer("fine", 0.99)), "another-key") as server:
        out = ask(server, items(2), tmp_path)
    assert out["label"].isna().all()
    assert out["failure"].str.startswith("HTTP 401").all()


def test_an_unreachable_endpoint_is_a_failure_for_every_item(tmp_path):
    out = judge(reviewers(policy(max_retries=1), tmp_path, {"CHAT_KEY": KEY}), items(2))
    assert out["label"].isna().all()
    assert out["failure"].str.startswith("endpoint unreachable").all()


def test_what_only_the_running_machine_can_tell_is_a_load_error_naming_the_key(tmp_path):
    with pytest.raises(
        FlywheelError, match=r"automated_reviewers\[0\]\.api_key_env: CHAT_KEY is not set"
    ):
        reviewers(policy(), tmp_path, {})
    head = policy().model_dump(exclude={"automated_reviewers"})
    for entry, says in (
        ("no_such_package.scorer:predict", "does not import (ModuleNotFoundError"),
        ("json:no_such_function", "does not import (AttributeError"),
        ("json:__name__", "is not callable"),
    ):
        broken = parse_policy_dict(head, {"name": "m", "kind": "model", "entry_point": entry})
        with pytest.raises(FlywheelError, match=None) as error:
            reviewers(broken, tmp_path, {})
        assert f"automated_reviewers[0].entry_point: {entry!r} {says}" in str(error.value)


def parse_policy_dict(head: dict, reviewer: dict):
    from flywheel.policy import Policy

    return Policy.model_validate({**head, "automated_reviewers": [reviewer]})
