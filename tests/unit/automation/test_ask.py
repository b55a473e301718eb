"""The automated reviewers are put to the tasks people were given, and their answers are kept
apart from people's decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from automation.ask import ask
from flywheel.lake import Lake
from flywheel.policy import parse_policy

POLICY = parse_policy(
    """
name: scams
labels: {positive: scam, negative: fine}
fields: {text: [body], numeric: [links]}
targets: {auto_action_precision: 0.95, review_recall: 0.9}
automated_reviewers:
  - name: bank
    kind: rules
    version: "1"
    share: 0.3
    rules:
      - {name: fee, verdict: scam, terms: [fee]}
      - {name: quiet, verdict: fine, field_below: {links: 1}}
"""
)


def ledger(n: int, gold_every: int = 10, start: int = 0) -> pd.DataFrame:
    k = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in k],
            "queue": np.where(k % gold_every == 0, "gold", "review"),
            "review_queue": np.where(k % 2 == 0, "general", "urgent"),
            "pushed_at": pd.Timestamp("2026-12-01", tz="UTC"),
            "body": np.where(k % 3 == 0, "pay the fee", "hello"),
            "links": k % 4,
        }
    )


def test_gold_checks_always_and_other_tasks_at_the_share_once_each(tmp_path):
    lake = Lake(tmp_path)
    lake.record_pushed("scams", ledger(2000))
    first = ask(POLICY, lake, environ={})
    verdicts = lake.verdicts("scams")
    assert first.asked == {"auto:bank": len(verdicts)}
    gold = verdicts["purpose"].eq("gold")
    assert gold.sum() == 200 and verdicts.loc[gold, "inclusion_prob"].eq(1.0).all()
    others = verdicts[~gold]
    assert others["inclusion_prob"].eq(0.3).all()
    # the draw is at the share: 1800 review tasks, 30% ± 4 standard errors
    assert abs(len(others) / 1800 - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 1800)
    # answered where a rule matched; the rest recorded with no label (a person decides)
    fee = verdicts["item_id"].str[1:].astype(int) % 3 == 0
    assert verdicts.loc[fee, "label"].eq("scam").all()
    assert first.answered["auto:bank"] == int(verdicts["label"].notna().sum())
    assert set(verdicts["review_queue"]) == {"general", "urgent"}
    # nothing among the decisions, and a second run asks only what it could not answer
    assert lake.decisions("scams").empty
    unanswered = int(verdicts["label"].isna().sum())
    again = ask(POLICY, lake, environ={})
    assert again.asked.get("auto:bank", 0) == unanswered
    # new tasks pushed: only they (and the unanswered) are asked
    lake.record_pushed("scams", ledger(100, start=2000))
    third = ask(POLICY, lake, environ={})
    new = lake.verdicts("scams")
    assert set(new["item_id"]) >= set(verdicts["item_id"])
    assert (
        third.asked["auto:bank"] == unanswered + new["item_id"].str[1:].astype(int).ge(2000).sum()
    )


def test_a_policy_without_automated_reviewers_asks_nothing(tmp_path):
    lake = Lake(tmp_path)
    lake.record_pushed("scams", ledger(10))
    plain = POLICY.model_copy(update={"automated_reviewers": []})
    assert ask(plain, lake, environ={}).total == 0
    assert lake.verdicts("scams").empty
