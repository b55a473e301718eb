"""A classifier as a reviewer: the shipped third-party example, and a model that misbehaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automation import model
from automation.judge import judge, reviewers
from flywheel.policy import ModelReviewer, parse_policy

EXAMPLE = Path(__file__).parents[3] / "docs" / "examples" / "abuse.yaml"


def test_the_worked_example_judges_english_profanity_with_its_own_weights(tmp_path):
    policy = parse_policy(EXAMPLE.read_text(), str(EXAMPLE))
    policy = policy.model_copy(
        update={"automated_reviewers": [r for r in policy.automated_reviewers if r.kind == "model"]}
    )
    comments = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "comment": ["you are a fucking idiot", "thanks, have a nice day", "see you at noon"],
            "reports": [0, 0, 9],
        }
    )
    out = judge(reviewers(policy, tmp_path), comments)
    assert out["label"].tolist() == ["abusive", "fine", "fine"]
    assert out["confidence"].between(0.5, 1.0).all()
    assert out["rationale"].str.contains("probability").all()


def spec(**kwargs) -> ModelReviewer:
    return ModelReviewer(name="m", kind="model", entry_point="x:y", **kwargs)


POLICY = parse_policy(
    """
name: p
labels: {positive: bad, negative: good}
fields: {text: [t]}
targets: {auto_action_precision: 0.95, review_recall: 0.9}
"""
)
ITEMS = pd.DataFrame({"item_id": ["a", "b", "c"], "t": ["x", "y", "z"]})


def test_the_threshold_decides_and_the_confidence_is_the_chosen_label_s_probability():
    out = model.judge(spec(threshold=0.6), POLICY, lambda f: [0.6, 0.59, 0.1], ITEMS)
    assert [v.label for v in out] == ["bad", "good", "good"]
    assert [v.confidence for v in out] == pytest.approx([0.6, 0.41, 0.9])


def test_a_model_that_fails_or_answers_nonsense_sends_its_items_to_people():
    def broken(_):
        raise RuntimeError("out of memory")

    for scorer, says in (
        (broken, "the model failed (RuntimeError: out of memory)"),
        (lambda f: [0.5, 0.5], "gave 2 probabilities for 3 items"),
        (lambda f: np.array([0.2, np.nan, 1.5]), None),
    ):
        out = model.judge(spec(), POLICY, scorer, ITEMS)
        if says:
            assert all(v.label is None and says in v.failure for v in out)
    assert [v.failure for v in out] == [
        None,
        "probability nan outside [0, 1]",
        "probability 1.5 outside [0, 1]",
    ]
    # a two-column probability (as scikit-learn's predict_proba) is read as the positive's
    out = model.judge(
        spec(), POLICY, lambda f: np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), ITEMS
    )
    assert [v.label for v in out] == ["good", "bad", "bad"]
