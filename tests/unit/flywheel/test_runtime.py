"""The model runtime: one way to score, with the compiled path checked at load and never
trusted in silence."""

import numpy as np
import pandas as pd
import pytest

import flywheel.runtime as runtime
from flywheel.records import ItemValidator, read_table
from flywheel.registry import ModelVersionRef, Thresholds
from flywheel.runtime import check_rows, from_pipeline

REF = ModelVersionRef("spam", 3, None, Thresholds(0.9, 0.2).as_tags())


@pytest.fixture
def pipeline(tiny_models):
    return tiny_models["sigmoid"].pipeline


def _reference(pipeline, policy, rows):
    frame = pd.DataFrame.from_records(rows, columns=policy.feature_columns)
    return pipeline.predict_proba(frame)[:, 1]


def test_a_compiled_path_that_differs_at_load_is_not_used(pipeline, spam, monkeypatch):
    compile_pipeline = runtime.compile_pipeline

    def off_by_a_hair(pipe):
        fast = compile_pipeline(pipe)
        return lambda rows: fast(rows) + 1e-12

    monkeypatch.setattr(runtime, "compile_pipeline", off_by_a_hair)
    model = from_pipeline(REF, spam, pipeline)
    assert model.path == "reference" and "differed from predict_proba" in model.note
    rows = check_rows(pipeline, spam)
    assert np.array_equal(model.score(rows), _reference(pipeline, spam, rows))
    assert model.describe() == {"version": 3, "path": "reference", "note": model.note}


def test_a_compiled_path_that_fails_at_load_is_not_used(pipeline, spam, monkeypatch):
    def broken(_pipe):
        def fast(_rows):
            raise AttributeError("'Booster' object has no attribute '_InnerPredictor'")

        return fast

    monkeypatch.setattr(runtime, "compile_pipeline", broken)
    model = from_pipeline(REF, spam, pipeline)
    assert model.path == "reference" and "AttributeError" in model.note


def test_the_check_rows_reach_the_vocabulary_the_unknown_and_the_missing(pipeline, spam):
    rows = check_rows(pipeline, spam)
    assert pd.DataFrame(rows).equals(pd.DataFrame(check_rows(pipeline, spam)))  # seeded
    frame = pd.DataFrame(rows)
    assert (frame["text"] == "").any() and frame["text"].str.contains("zzqx").any()
    assert frame["country"].isin(["", "unseen-value"]).any()
    assert frame["links"].isna().any() and (frame["links"] < 0).any()
    model = from_pipeline(REF, spam, pipeline)
    assert model.path == "compiled", model.note
    scores = model.score(rows)
    assert np.array_equal(scores, _reference(pipeline, spam, rows))
    assert len(set(scores.round(6))) > 10, "the rows are not all alike"


def test_an_item_typed_from_a_file_and_from_a_request_scores_the_same(pipeline, spam, tmp_path):
    """One typing rule: blanks around a category or a text count for nothing either way."""
    items = [
        {
            "item_id": "a",
            "text": "  Click HERE  ",
            "account_age_days": 3,
            "links": 2,
            "prior_reports": 0,
            "messages_last_hour": 9,
            "surface": " dm",
            "country": "NG ",
        },
        {
            "item_id": "b",
            "text": "thanks",
            "account_age_days": 700.5,
            "links": None,
            "prior_reports": 1,
            "messages_last_hour": 0,
            "surface": "post",
            "country": None,
        },
    ]
    path = tmp_path / "items.csv"
    pd.DataFrame(items).to_csv(path, index=False)
    from_file = read_table(path)
    from_request = ItemValidator([spam]).many([dict(item) for item in items])
    model = from_pipeline(REF, spam, pipeline)
    assert from_request[0]["surface"] == "dm" and from_request[0]["text"] == "Click HERE"
    assert np.array_equal(model.score(from_file), model.score(from_request))
    stripped = [{**items[0], "surface": "dm", "country": "NG", "text": "Click HERE"}]
    assert model.score(ItemValidator([spam]).many(stripped))[0] == model.score(from_request)[0]
