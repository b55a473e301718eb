"""The compiled scorer gives exactly the pipeline's numbers, on awkward inputs too."""

import random
import string

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from flywheel.compiled import FastTfidf
from flywheel.policy import parse_policy
from flywheel.records import validate_item
from flywheel.registry import ModelVersionRef, Thresholds
from flywheel.runtime import from_pipeline
from tests.unit.conftest import tiny
from tests.unit.flywheel.test_policy import MINIMAL
from training.dataset import build_dataset
from training.train import fit

ALPHABET = string.ascii_letters + "ÀéüßЖ数字 !?.,'-_0123456789\t\n"


def _docs(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 9))) for _ in range(2000)]
    words += ["a", "I", "ok", "go"]  # padded words no longer than the n-gram size
    return [" ".join(rng.choice(words) for _ in range(rng.randint(0, 25))) for _ in range(n)]


@pytest.mark.parametrize(
    "config",
    [
        {"analyzer": "word", "ngram_range": (1, 2), "min_df": 2},
        {"analyzer": "word", "ngram_range": (1, 3), "min_df": 1},
        {"analyzer": "char_wb", "ngram_range": (3, 4), "min_df": 3},
        {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 1},
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_tfidf_is_bit_identical_to_scikit_learn(config, dtype):
    docs = _docs(1, 3000)
    vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=dtype, **config).fit(docs[:2000])
    fast = FastTfidf.of(vectorizer)
    expected = vectorizer.transform(docs[2000:])
    got = fast.transform(docs[2000:])
    expected.sort_indices()
    assert got.dtype == expected.dtype
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)


@pytest.mark.parametrize("ngram_range", [(1, 2), (2, 3)])
def test_word_ngrams_never_cross_documents(ngram_range):
    """With a handful of words every pair is in the vocabulary, so a document's last token and
    the next one's first would form a known n-gram if the batch's tokens ran together; empty
    and one-word documents sit between them."""
    rng = random.Random(5)
    pool = ["red", "blue", "green", "x!", "ok"]
    docs = [" ".join(rng.choice(pool) for _ in range(rng.randint(0, 4))) for _ in range(400)]
    vectorizer = TfidfVectorizer(ngram_range=ngram_range).fit(docs[:200])
    expected = vectorizer.transform(docs[200:])
    expected.sort_indices()
    got = FastTfidf.of(vectorizer).transform(docs[200:])
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    assert np.array_equal(got.data, expected.data)


def test_unsupported_vectorizers_are_not_compiled():
    assert FastTfidf.of(TfidfVectorizer(analyzer="char").fit(["abc def"])) is None
    assert FastTfidf.of(TfidfVectorizer(stop_words="english").fit(["abc def"])) is None


def _awkward(items: pd.DataFrame, policy) -> list[dict]:
    raw = items.head(400).copy()
    rows = []
    for i, item in enumerate(raw.to_dict("records")):
        item = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in item.items()}
        for name in policy.fields.categorical:
            if i % 7 == 0:
                item[name] = "never-seen"
            if i % 11 == 0:
                item[name] = None
        for name in policy.fields.numeric:
            if i % 5 == 0:
                item[name] = None
            if i % 9 == 0:
                item[name] = 0
        for name in policy.fields.text:
            if i % 13 == 0:
                item[name] = ""
            if i % 17 == 0:
                item[name] = "a I ok Ünïcödé fr33 f0ll0wers !!!"
        rows.append(validate_item(item, [policy]))
    return rows


def _model(pipeline, policy):
    """The runtime's model of a fitted pipeline (as if registered as version 1)."""
    ref = ModelVersionRef(policy.name, 1, None, Thresholds(0.9, 0.5).as_tags())
    return from_pipeline(ref, policy, pipeline)


def _assert_same_scores(pipeline, policy, rows) -> None:
    """The compiled scorer agrees with predict_proba bit for bit, in one batch and row by row."""
    scorer = _model(pipeline, policy)
    assert scorer.path == "compiled", scorer.note
    frame = pd.DataFrame.from_records(rows, columns=policy.feature_columns)
    expected = pipeline.predict_proba(frame)[:, 1]
    assert np.array_equal(scorer.score(rows), expected)
    assert np.array_equal(
        np.concatenate([scorer.score(rows[i : i + 1]) for i in range(20)]), expected[:20]
    )


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_compiled_scores_equal_the_pipeline(tiny_models, spam, small_world, calibration):
    pipeline = tiny_models[calibration].pipeline
    _assert_same_scores(pipeline, spam, _awkward(small_world.traffic, spam))


def test_signals_only_pipeline_compiles_and_agrees(lake):
    from flywheel.records import validate_decisions
    from simulation.world import WorldConfig, simulate

    policy = tiny(parse_policy(MINIMAL))
    world = simulate(
        policy, WorldConfig(days=10, items_per_day=400, emerging_day=10, review_fraction=0.6)
    )
    lake.append_decisions(policy.name, validate_decisions(world.decisions, policy, "d").frame, "d")
    pipeline = fit(policy, build_dataset(policy, lake)).pipeline
    _assert_same_scores(pipeline, policy, _awkward(world.traffic, policy))


def test_other_pipelines_score_through_predict_proba(spam):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline

    frame = pd.DataFrame(
        {
            c: ["x", "y"] if c in ("text", "surface", "country") else [1.0, 2.0]
            for c in spam.feature_columns
        }
    )
    pipeline = make_pipeline(DummyClassifier(strategy="prior")).fit(frame, [0, 1])
    scorer = _model(pipeline, spam)
    assert scorer.path == "reference" and "not a shape" in scorer.note
    assert scorer.score(frame.to_dict("records")).tolist() == [0.5, 0.5]
    assert scorer.score(frame).tolist() == [0.5, 0.5]


def test_the_word_cache_is_bounded_by_memory_not_by_count(monkeypatch):
    """A few huge words weigh as much as many short ones: the cache empties by bytes and keeps
    scoring exactly."""
    monkeypatch.setattr(FastTfidf, "CACHE_BYTES", 1_000_000)
    docs = _docs(2, 400)
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4)).fit(docs)
    fast = FastTfidf.of(vectorizer)
    huge = ["".join(random.Random(i).choices("abcdefgh", k=200_000)) for i in range(4)]
    for doc in huge:
        fast.transform([doc])
        assert fast.words.bytes <= FastTfidf.CACHE_BYTES + 2_000_000  # at most one batch over
    got = fast.transform(huge[:1] + docs[:5])
    expected = vectorizer.transform(huge[:1] + docs[:5])
    expected.sort_indices()
    assert np.array_equal(got.indices, expected.indices) and np.allclose(got.data, expected.data)
