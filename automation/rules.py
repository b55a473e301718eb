"""A rules bank as a reviewer: term, regex and field rules, the first that matches answers.

Terms match whole words or phrases in any case; a regex is searched for, case-insensitive; both
read the policy's text fields joined by a space. Field tests mean what they mean in routing
(`flywheel.conditions`). The bank's version is quoted in every rationale, so a verdict can be
traced to the rules that gave it.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from automation.verdict import Verdict
from flywheel.conditions import fields_hold
from flywheel.novelty import joined_text
from flywheel.policy import Policy, Rule, RulesReviewer


def _terms_pattern(terms: list[str]) -> str:
    """One pattern for a rule's terms: each whole, its words separated by any white space."""
    alternatives = (r"\s+".join(re.escape(w) for w in term.split()) for term in terms)
    return r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)"


def matches(rule: Rule, items: pd.DataFrame, text: pd.Series) -> np.ndarray:
    """Where every test of `rule` holds."""
    hold = fields_hold(rule, items)
    for pattern in ([_terms_pattern(rule.terms)] if rule.terms else []) + (
        [rule.regex] if rule.regex else []
    ):
        compiled = re.compile(pattern, re.IGNORECASE)
        hold &= text.map(lambda t, c=compiled: c.search(t) is not None).to_numpy(dtype=bool)
    return hold


def judge(spec: RulesReviewer, policy: Policy, items: pd.DataFrame) -> list[Verdict]:
    """Each item's verdict: the first rule of the bank that matches it, or none."""
    # terms and regexes need text fields (the policy will not load otherwise)
    text = joined_text(items, policy) if policy.fields.text else pd.Series("", index=items.index)
    answer = np.full(len(items), -1)
    for k, rule in enumerate(spec.rules):
        open_ = answer < 0
        if not open_.any():
            break
        answer[open_ & matches(rule, items, text)] = k
    reviewer = f"auto:{spec.name}"
    verdicts = []
    for item_id, k in zip(items["item_id"].astype(str), answer, strict=True):
        if k < 0:
            verdicts.append(
                Verdict(item_id, reviewer, None, None, f"no rule of bank v{spec.version} matched")
            )
            continue
        rule = spec.rules[k]
        verdicts.append(
            Verdict(
                item_id, reviewer, rule.verdict, rule.confidence,
                f"rule {rule.name!r} of bank v{spec.version}",
            )
        )  # fmt: skip
    return verdicts
