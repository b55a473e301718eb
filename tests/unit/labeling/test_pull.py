"""Reading one Label Studio annotation into a decision, whatever shape it arrives in.

Shapes Label Studio 1.23 refuses to store through its API (a result without `value`, a value
that is no object) can still come from other versions, imports or a database edit; the
integration test covers those it stores."""

import math

import pandas as pd
import pytest

from labeling.project import choice_result
from labeling.pull import _Annotation, _parse

TASK = {"id": 7}
USERS = {3: "rev-ana"}


def _annotation(**changes):
    return {
        "id": 11,
        "completed_by": 3,
        "created_at": "2026-11-02T10:00:00Z",
        "lead_time": 4.5,
        **changes,
    }


def _read(spam, **changes):
    notes: list[str] = []
    annotation = {"result": choice_result(spam, "violating"), **changes}
    return _parse(TASK, _annotation(**annotation), spam, USERS, notes), notes


def test_a_well_formed_annotation_is_a_decision(spam):
    parsed, notes = _read(spam)
    assert isinstance(parsed, _Annotation) and not notes
    assert (parsed.label, parsed.reviewer_id, parsed.lead_time_s) == ("violating", "rev-ana", 4.5)
    assert parsed.decided_at == pd.Timestamp("2026-11-02T10:00:00Z")


@pytest.mark.parametrize(
    ("result", "why"),
    [
        ([{"from_name": "label", "to_name": "text", "type": "choices"}], "without a list"),
        ([{"from_name": "label", "type": "choices", "value": "violating"}], "without a list"),
        ([{"from_name": "label", "value": {"choices": "violating"}}], "without a list"),
        (["violating"], "not a list of objects"),
        ({"label": "violating"}, "not a list of objects"),
    ],
)
def test_a_malformed_result_is_reported_with_its_task_not_raised(spam, result, why):
    parsed, _ = _read(spam, result=result)
    assert isinstance(parsed, str)
    assert parsed.startswith("task 7, annotation 11:") and why in parsed and "skipped" in parsed


@pytest.mark.parametrize("lead_time", ["n/a", -5, float("nan"), float("inf"), [1]])
def test_a_lead_time_that_is_no_duration_loses_only_the_lead_time(spam, lead_time):
    parsed, notes = _read(spam, lead_time=lead_time)
    assert isinstance(parsed, _Annotation) and math.isnan(parsed.lead_time_s)
    assert len(notes) == 1 and "lead_time" in notes[0] and "task 7" in notes[0]


def test_no_lead_time_is_unknown_not_zero(spam):
    notes: list[str] = []
    annotation = {k: v for k, v in _annotation().items() if k != "lead_time"}
    parsed = _parse(
        TASK, {**annotation, "result": choice_result(spam, "benign")}, spam, USERS, notes
    )
    assert math.isnan(parsed.lead_time_s) and not notes


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"completed_by": None}, "no reviewer"),
        ({"created_at": None}, "no valid time"),
        ({"created_at": "yesterday-ish"}, "no valid time"),
    ],
)
def test_an_annotation_without_reviewer_or_time_is_reported(spam, changes, why):
    parsed, _ = _read(spam, **changes)
    assert isinstance(parsed, str) and why in parsed and parsed.startswith("task 7, annotation 11")


def test_a_skip_is_neither_decision_nor_problem(spam):
    parsed, notes = _read(spam, was_cancelled=True, result=None)
    assert parsed is None and not notes
