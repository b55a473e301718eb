"""Ask the automated reviewers about the tasks pushed to people, so they are measured like
people.

Each automated reviewer answers every gold check pushed (its answer is known) and a share of
the other tasks (`share` in its declaration), drawn per item with a reproducible draw, so the
share is an inclusion probability that estimates can use. A task it answered before is not
asked again. Every answer is recorded in the lake beside the decisions, never among them,
with the task's purpose and queue; an item it could not answer is recorded with why. Nothing
here decides a task: people decide every task pushed, and reviewer QA compares the automated
answers with theirs (`labeling.qa`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from automation.judge import Ready, judge, reviewers
from flywheel.lake import Lake, uniform_draw, utc_now
from flywheel.policy import Policy

VERDICT_COLUMNS = [
    "item_id",
    "reviewer_id",
    "label",
    "confidence",
    "rationale",
    "failure",
    "purpose",  # of the task people were given: review, explore, audit, gold, appeal
    "review_queue",
    "inclusion_prob",  # the chance this task was put to this reviewer
    "asked_at",
]


@dataclass(frozen=True)
class AskReport:
    """What the automated reviewers were asked in one run, per reviewer."""

    asked: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)  # reviewer → why → count

    @property
    def total(self) -> int:
        return sum(self.asked.values())


def chosen(tasks: pd.DataFrame, policy: Policy, ready: Ready) -> pd.DataFrame:
    """The pushed tasks this reviewer is put to, with their inclusion probability: every gold
    check, and the others drawn at its share (the same draw for an item in every run)."""
    share = ready.spec.share
    gold = tasks["queue"].eq("gold").to_numpy()
    draw = uniform_draw(tasks["item_id"].astype(str), f"{policy.name}:auto:{ready.spec.name}")
    picked = gold | (draw < share)
    return tasks[picked].assign(inclusion_prob=np.where(gold[picked], 1.0, share))


def ask(policy: Policy, lake: Lake, environ: dict[str, str] | None = None) -> AskReport:
    """Put the pushed tasks not asked yet to each automated reviewer and record the answers."""
    if not policy.automated_reviewers:
        return AskReport()
    ready = reviewers(policy, lake.answer_cache(policy.name), environ)
    tasks = lake.pushed_tasks(policy.name)
    if tasks.empty:
        return AskReport()
    tasks = tasks.sort_values("pushed_at").drop_duplicates("item_id", keep="first")
    done = lake.verdicts(policy.name)
    report = AskReport()
    for one in ready:
        reviewer = f"auto:{one.spec.name}"
        todo = chosen(tasks, policy, one)
        if not done.empty:
            seen = done.loc[done["reviewer_id"].eq(reviewer) & done["label"].notna(), "item_id"]
            todo = todo[~todo["item_id"].isin(seen)]
        if todo.empty:
            continue
        frame = judge([one], todo.reset_index(drop=True)).rename(
            columns={"reviewer": "reviewer_id"}
        )
        frame = frame.assign(
            purpose=todo["queue"].to_numpy(),
            review_queue=todo["review_queue"].fillna("").astype(str).to_numpy(),
            inclusion_prob=todo["inclusion_prob"].to_numpy(),
            asked_at=pd.Timestamp(utc_now()),
        )[VERDICT_COLUMNS]
        frame["label"] = frame["label"].astype("string")
        frame["failure"] = frame["failure"].astype("string")
        frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
        lake.record_verdicts(policy.name, frame)
        report.asked[reviewer] = len(frame)
        report.answered[reviewer] = int(frame["label"].notna().sum())
        report.failures[reviewer] = {
            str(k): int(n) for k, n in frame["failure"].dropna().value_counts().items()
        }
    return report
