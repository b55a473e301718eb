"""Judge items with a policy's automated reviewers.

`reviewers` checks, before any item is sent, what only the running machine can tell: an llm
reviewer's key is in the environment and a model's entry point imports (or its MLflow model
loads). A problem is a load error naming the key, and nothing is judged. `judge` then asks each
reviewer about every item and returns one verdict per reviewer and item.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from automation import llm, model, rules
from automation.verdict import Verdict
from flywheel.policy import AutomatedReviewer, Policy


@dataclass
class Ready:
    """A reviewer ready to judge: its declaration and how to ask it."""

    spec: AutomatedReviewer
    ask: Callable[[pd.DataFrame], list[Verdict]]


def reviewers(
    policy: Policy, cache_dir: Path, environ: dict[str, str] | None = None
) -> list[Ready]:
    """The policy's automated reviewers, each checked and ready (`cache_dir` keeps the llm
    reviewers' answers, one file each)."""
    environ = dict(os.environ) if environ is None else environ
    ready = []
    for i, spec in enumerate(policy.automated_reviewers):
        where = f"automated_reviewers[{i}]"
        if spec.kind == "rules":
            ask = partial(rules.judge, spec, policy)
        elif spec.kind == "model":
            ask = partial(model.judge, spec, policy, model.load_scorer(spec, where))
        else:
            key = llm.api_key(spec, where, environ)
            ask = partial(_ask_llm, spec, policy, key, cache_dir / f"{spec.name}.sqlite")
        ready.append(Ready(spec, ask))
    return ready


def _ask_llm(spec, policy: Policy, key: str, cache: Path, items: pd.DataFrame) -> list[Verdict]:
    """A fresh judge per call: pacing, budget and cache held for one cycle's items."""
    return llm.LlmJudge(spec, policy, key, cache).judge(items)


def judge(ready: list[Ready], items: pd.DataFrame) -> pd.DataFrame:
    """One row per reviewer and item: `item_id`, `reviewer`, `label` (None: a person
    decides), `confidence`, `rationale`, `failure`."""
    rows = [v for r in ready for v in r.ask(items)]
    columns = ["item_id", "reviewer", "label", "confidence", "rationale", "failure"]
    return pd.DataFrame([vars(v) for v in rows], columns=columns)
