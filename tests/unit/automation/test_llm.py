"""An llm reviewer's answers are parsed strictly, its calls paced."""

from __future__ import annotations

import pytest

from automation.llm import AnswerError, LlmJudge, messages, parse_answer
from flywheel.policy import parse_policy

LABELS = ("scam", "fine")
POLICY = parse_policy(
    """
name: scams
labels: {positive: scam, negative: fine}
fields: {text: [body], numeric: [links]}
targets: {auto_action_precision: 0.95, review_recall: 0.9}
definition: A scam asks for money or credentials under false pretences.
automated_reviewers:
  - {name: gpt, kind: llm, base_url: "http://127.0.0.1:9/v1", model: m, requests_per_minute: 30}
"""
)


def test_a_well_formed_answer_parses():
    assert parse_answer(
        '{"label": "scam", "confidence": 1, "rationale": " asks for a fee "}', LABELS
    ) == (
        "scam",
        1.0,
        "asks for a fee",
    )


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("scam", "not a JSON object"),
        (
            '```json\n{"label": "scam", "confidence": 0.9, "rationale": "x"}\n```',
            "not a JSON object",
        ),
        ('["scam", 0.9, "x"]', "not a JSON object"),
        ('{"label": "scam", "confidence": 0.9}', "keys missing ['rationale']"),
        (
            '{"label": "scam", "confidence": 0.9, "rationale": "x", "score": 2}',
            "unexpected ['score']",
        ),
        ('{"label": "Scam", "confidence": 0.9, "rationale": "x"}', "label 'Scam' is not one"),
        ('{"label": "scam", "confidence": "high", "rationale": "x"}', "is not a number"),
        ('{"label": "scam", "confidence": true, "rationale": "x"}', "is not a number"),
        ('{"label": "scam", "confidence": 1.2, "rationale": "x"}', "not within [0, 1]"),
        ('{"label": "scam", "confidence": NaN, "rationale": "x"}', "not within [0, 1]"),
        ('{"label": "scam", "confidence": 0.9, "rationale": ""}', "rationale is not"),
        (None, "not a JSON object"),
    ],
)
def test_anything_else_is_refused_with_what_is_wrong(content, why):
    with pytest.raises(AnswerError, match=None) as error:
        parse_answer(content, LABELS)
    assert why in str(error.value)


def test_the_prompt_holds_the_definition_the_labels_and_the_item():
    chat = messages(POLICY, {"item_id": "i1", "body": "pay the fee", "links": 2})
    assert "A scam asks for money" in chat[0]["content"]
    assert '"scam"' in chat[0]["content"] and '"fine"' in chat[0]["content"]
    assert chat[1] == {
        "role": "user",
        "content": '{"item_id": "i1", "body": "pay the fee", "links": 2}',
    }


def test_calls_are_paced_to_the_rate_the_policy_allows(tmp_path):
    now, waits = [100.0], []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    judge = LlmJudge(
        POLICY.automated_reviewers[0], POLICY, "k", tmp_path / "c.sqlite", lambda: now[0], sleep
    )
    for advance in (0.0, 0.5, 3.0, 0.0):
        now[0] += advance
        judge._pace()
    # 30 a minute: a call every 2 s; the first goes at once
    assert waits == pytest.approx([1.5, 2.0])
