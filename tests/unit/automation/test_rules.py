"""A rules bank as a reviewer: what matches, in what order, and what does not load."""

from __future__ import annotations

import pandas as pd
import pytest

from automation.rules import judge
from flywheel.errors import FlywheelError
from flywheel.policy import parse_policy

HEAD = """
name: scams
labels: {positive: scam, negative: fine}
fields: {text: [title, body], numeric: [links], categorical: [surface]}
targets: {auto_action_precision: 0.95, review_recall: 0.9}
"""

BANK = """
automated_reviewers:
  - name: bank
    kind: rules
    version: "2026-12"
    rules:
      - {name: wire, verdict: scam, confidence: 0.95, terms: [wire transfer, "gift card"]}
      - {name: crypto, verdict: scam, regex: "\\\\bbtc\\\\s*[0-9a-f]{8,}"}
      - {name: linky-dm, verdict: scam, confidence: 0.6, field_at_least: {links: 3}, field: {surface: [dm]}}
      - {name: quiet, verdict: fine, confidence: 0.7, field_below: {links: 1}}
"""


def items(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["title", "body", "links", "surface"])
    return frame.assign(item_id=[f"i{k}" for k in range(len(rows))])


def test_the_first_rule_that_matches_answers_and_an_item_none_matches_gets_no_verdict():
    policy = parse_policy(HEAD + BANK)
    verdicts = judge(
        policy.automated_reviewers[0],
        policy,
        items(
            ("Pay by WIRE  Transfer", "today", 0, "dm"),  # terms: any case, any spacing
            ("hello", "send btc 0a1b2c3d4e to me", 5, "dm"),  # regex before the field rule
            ("offer", "click", 4, "dm"),
            ("offer", "click", 4, "feed"),  # the field rule needs both of its tests
            ("hi", "nice photo", 0, "feed"),
            ("wired", "transferred giftcards", 2, "dm"),  # parts of words are not terms
        ),
    )
    assert [v.label for v in verdicts] == ["scam", "scam", "scam", None, "fine", None]
    assert [v.confidence for v in verdicts] == [0.95, 0.9, 0.6, None, 0.7, None]
    assert "rule 'crypto' of bank v2026-12" in verdicts[1].rationale
    assert verdicts[3].failure is None and "no rule" in verdicts[3].rationale
    assert {v.reviewer for v in verdicts} == {"auto:bank"}


def test_a_missing_text_or_a_non_number_matches_no_text_or_range_test():
    policy = parse_policy(HEAD + BANK)
    frame = items(("gift card", None, "n/a", "dm"))
    frame.loc[0, "title"] = None
    assert [v.label for v in judge(policy.automated_reviewers[0], policy, frame)] == [None]


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (
            '{name: r, verdict: scam, regex: "(unclosed"}',
            "automated_reviewers.0.rules.0.regex: not a valid regular expression",
        ),
        (
            "{name: r, verdict: spam, terms: [x]}",
            "automated_reviewers[0].rules[0].verdict: 'spam' is not one of the policy's labels",
        ),
        (
            "{name: r, verdict: scam, field_at_least: {likes: 3}}",
            "automated_reviewers[0].rules[0]: unknown field 'likes'",
        ),
        ("{name: r, verdict: scam, field_below: {surface: 1}}", "'surface' is not a numeric field"),
        ("{name: r, verdict: scam}", "rule 'r' tests nothing"),
        ("{name: r, verdict: scam, terms: []}", "terms must be a non-empty list"),
    ],
)
def test_a_bank_that_cannot_work_does_not_load_and_the_error_names_the_key(rule, says):
    text = (
        HEAD
        + f"automated_reviewers:\n  - {{name: bank, kind: rules, version: '1', rules: [{rule}]}}\n"
    )
    with pytest.raises(FlywheelError, match=None) as error:
        parse_policy(text)
    assert says in str(error.value)


def test_reviewers_are_named_once_and_an_llm_needs_the_policy_definition():
    twice = HEAD + (
        "automated_reviewers:\n"
        "  - {name: a, kind: rules, version: '1', rules: [{name: r, verdict: scam, terms: [x]}]}\n"
        "  - {name: a, kind: model, entry_point: 'x:y'}\n"
    )
    with pytest.raises(FlywheelError, match="'a' is named twice"):
        parse_policy(twice)
    llm = (
        HEAD + "automated_reviewers:\n  - {name: g, kind: llm, base_url: 'http://h/v1', model: m}\n"
    )
    with pytest.raises(FlywheelError, match=r"automated_reviewers\[0\] \(g\): .*`definition`"):
        parse_policy(llm)
    assert parse_policy(llm + "definition: Scams ask for money under false pretences.\n")
