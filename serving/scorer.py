"""Score items with a registered pipeline, without the per-call DataFrame and validation work.

`pipeline.predict_proba(DataFrame)` spends most of a small call in pandas handling and input
validation inside the ColumnTransformer (STACK_NOTES: ~3 ms of 4 ms for one item), and even
plain numpy costs microseconds per call. A `Scorer` takes Flywheel's pipeline shape apart once,
at load time, into per-row encoders that append each row's non-zero features to flat lists: TF-IDF
with each word's character n-grams cached, one-hot codes from a lookup table, numbers as they are.
One CSR matrix per call, then the LightGBM booster and the calibrator. The arithmetic repeats
scikit-learn's step by step, rounding to the vectorizer's dtype where it does, so the scores are
the same numbers (tests compare them bit for bit). Any other pipeline shape is scored through
`predict_proba`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from flywheel.policy import Policy

Rows = Sequence[dict]
# An encoder appends one row's non-zero (column, value) pairs, in column order, to two lists.
Encoder = Callable[[dict, list, list], None]


class Scorer:
    """Calibrated violation probability for typed rows (see `flywheel.records.validate_item`)."""

    def __init__(self, pipeline: object, policy: Policy) -> None:
        self.pipeline = pipeline
        self.columns = policy.feature_columns
        self._fast = _compile(pipeline)

    @property
    def compiled(self) -> bool:
        return self._fast is not None

    def score(self, rows: Rows) -> np.ndarray:
        if not rows:
            return np.empty(0)
        if self._fast is not None:
            return self._fast(rows)
        frame = pd.DataFrame.from_records(rows, columns=self.columns)
        return self.pipeline.predict_proba(frame)[:, 1]


def _compile(pipeline: object) -> Callable[[Rows], np.ndarray] | None:
    """The fast path for Flywheel's own pipeline shape, or None for anything else."""
    from lightgbm import LGBMClassifier
    from scipy.special import expit
    from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
    from sklearn.compose import ColumnTransformer
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    features, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(features, ColumnTransformer) or not isinstance(
        classifier, CalibratedClassifierCV
    ):
        return None
    if len(classifier.calibrated_classifiers_) != 1 or list(classifier.classes_) != [0, 1]:
        return None
    calibrated = classifier.calibrated_classifiers_[0]
    frozen = calibrated.estimator
    model = frozen.estimator if isinstance(frozen, FrozenEstimator) else frozen
    if not isinstance(model, LGBMClassifier) or len(calibrated.calibrators) != 1:
        return None
    steps: list[tuple[FastTfidf | None, object]] = []  # (text block, its column) or (None, encoder)
    offset = 0
    for _, transformer, columns in features.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        built = _encoder(transformer, columns, offset)
        if built is None:
            return None
        step, width = built
        steps.append(step)
        offset += width
    if offset != model.n_features_in_:
        return None
    n_features = offset
    predict = _predictor(model.booster_, model.best_iteration_)
    # the calibrator was fitted on what CalibratedClassifierCV asked the model for: the raw
    # margin when the model has `decision_function` (LightGBM >= 4.7), else the probability
    margin = hasattr(model, "decision_function")
    calibrator = calibrated.calibrators[0]
    sigmoid = isinstance(calibrator, _SigmoidCalibration)

    def score(rows: Rows) -> np.ndarray:
        texts = {
            id(text): text.batch([row[where[0]] for row in rows], where[1])
            for text, where in steps
            if text
        }
        indices: list[int] = []
        data: list[float] = []
        indptr = [0]
        for r, row in enumerate(rows):
            for text, encode in steps:
                if text is None:
                    encode(row, indices, data)
                    continue
                block_data, block_indices, block_indptr = texts[id(text)]
                start, end = block_indptr[r], block_indptr[r + 1]
                indices.extend(block_indices[start:end])
                data.extend(block_data[start:end])
            indptr.append(len(indices))
        matrix = sp.csr_matrix(
            (
                np.array(data, dtype=np.float64),
                np.array(indices, dtype=np.int32),
                np.array(indptr, dtype=np.int32),
            ),
            shape=(len(rows), n_features),
        )
        raw = predict(matrix, margin)
        if sigmoid:
            return expit(-(calibrator.a_ * raw + calibrator.b_))
        return calibrator.predict(raw)

    return score


def _predictor(
    booster: object, best_iteration: int | None
) -> Callable[[sp.csr_matrix, bool], np.ndarray]:
    """LightGBM prediction on one thread. `Booster.predict` builds a new inner predictor (and
    asks the library for its shape) on every call, a tenth of a millisecond that small batches
    feel; the inner predictor is built once here instead. Should a LightGBM release rename it,
    `Booster.predict` is used as it is."""
    num_iteration = best_iteration or -1
    try:
        from lightgbm.basic import _InnerPredictor

        inner = _InnerPredictor.from_booster(booster, {"num_threads": 1})
    except (ImportError, AttributeError, TypeError):
        return lambda matrix, margin: booster.predict(
            matrix, raw_score=margin, num_iteration=best_iteration or None, num_threads=1
        )
    return lambda matrix, margin: inner.predict(
        matrix, num_iteration=num_iteration, raw_score=margin
    )


def _encoder(transformer: object, columns: object, offset: int) -> tuple[tuple, int] | None:
    """How one fitted ColumnTransformer entry encodes rows, and how many columns it spans:
    `(FastTfidf, (column, offset))` for text, encoded a batch at a time, or `(None, encoder)`
    for the cheap blocks, encoded row by row."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    if isinstance(transformer, TfidfVectorizer) and isinstance(columns, str):
        tfidf = FastTfidf.of(transformer)
        return ((tfidf, (columns, offset)), tfidf.n_features) if tfidf is not None else None
    identity = isinstance(transformer, FunctionTransformer) and transformer.func is None
    if identity and isinstance(columns, list):
        positions = [(offset + i, c) for i, c in enumerate(columns)]

        def encode_numbers(row: dict, indices: list, data: list) -> None:
            for position, column in positions:
                value = row[column]
                if value != 0:  # zeros stay implicit, as in scipy's hstack; NaN is kept
                    indices.append(position)
                    data.append(value)

        return (None, encode_numbers), len(columns)
    if isinstance(transformer, OneHotEncoder) and isinstance(columns, list):
        built = _one_hot(transformer, columns, offset)
        return ((None, built[0]), built[1]) if built is not None else None
    return None


def _one_hot(encoder: object, columns: list[str], offset: int) -> tuple[Encoder, int] | None:
    """One column per frequent category, one for all infrequent ones, as OneHotEncoder lays out.
    Unknown values go to the infrequent column when there is one (`infrequent_if_exist`), else
    to no column (`ignore`)."""
    if encoder.drop is not None or encoder.handle_unknown not in ("ignore", "infrequent_if_exist"):
        return None
    infrequent_lists = getattr(encoder, "infrequent_categories_", [None] * len(columns))
    lookups: list[tuple[str, dict, int | None]] = []
    width = 0
    for column, categories, infrequent in zip(
        columns, encoder.categories_, infrequent_lists, strict=True
    ):
        rare = set(infrequent) if infrequent is not None else set()
        frequent = [c for c in categories if c not in rare]
        mapping = {c: offset + width + i for i, c in enumerate(frequent)}
        rare_column = offset + width + len(frequent) if rare else None
        mapping.update(dict.fromkeys(rare, rare_column))
        unknown = rare_column if encoder.handle_unknown == "infrequent_if_exist" else None
        lookups.append((column, mapping, unknown))
        width += len(frequent) + (1 if rare else 0)
    if width != len(encoder.get_feature_names_out()):
        return None

    def encode(row: dict, indices: list, data: list) -> None:
        for column, mapping, unknown in lookups:
            hit = mapping.get(row[column], unknown)
            if hit is not None:
                indices.append(hit)
                data.append(1.0)

    return encode, width


class FastTfidf:
    """A fitted TfidfVectorizer's transform with the tokenising done fast.

    scikit-learn analyses each document n-gram by n-gram (about 45 µs per short text for
    character 3-4 grams). Character n-grams inside word bounds depend only on the word, so each
    word's in-vocabulary n-grams are found once and cached; word n-grams are looked up directly.
    """

    CACHE_WORDS = 200_000

    def __init__(self, vectorizer: object) -> None:
        v = vectorizer
        self.vocabulary = v.vocabulary_
        self.n_features = len(v.vocabulary_)
        self.analyzer = v.analyzer
        self.min_n, self.max_n = v.ngram_range
        self.dtype = np.dtype(v.dtype)
        self.sublinear = v.sublinear_tf
        self.idf = np.asarray(v.idf_) if v.use_idf else None
        self.tokens = re.compile(v.token_pattern).findall if v.analyzer == "word" else None
        self.words: dict[str, tuple[int, ...]] = {}

    @classmethod
    def of(cls, vectorizer: object) -> FastTfidf | None:
        """A fast transform for the configurations Flywheel trains; None for any other."""
        v = vectorizer
        plain = (
            v.input == "content"
            and v.lowercase
            and v.preprocessor is None
            and v.tokenizer is None
            and v.stop_words is None
            and v.strip_accents is None
            and not v.binary
            and v.norm == "l2"
            and v.dtype in (np.float32, np.float64)
            and v.analyzer in ("word", "char_wb")
        )
        return cls(v) if plain else None

    def _word_grams(self, word: str) -> tuple[int, ...]:
        """In-vocabulary character n-grams of one word (repeats kept), padded and cut as
        scikit-learn does."""
        found: list[int] = []
        padded = f" {word} "
        length = len(padded)
        vocabulary = self.vocabulary
        for n in range(self.min_n, self.max_n + 1):
            if length <= n:  # a padded word no longer than n yields itself once, then stops
                index = vocabulary.get(padded)
                if index is not None:
                    found.append(index)
                break
            for start in range(length - n + 1):
                index = vocabulary.get(padded[start : start + n])
                if index is not None:
                    found.append(index)
        return tuple(found)

    def _occurrences(self, docs: Sequence[str]) -> tuple[list[int], list[int]]:
        """Vocabulary indices of every term occurrence of the batch, and how many per document."""
        flat: list[int] = []
        lengths: list[int] = []
        if self.analyzer == "char_wb":
            words = self.words
            for doc in docs:
                before = len(flat)
                for word in doc.lower().split():
                    grams = words.get(word)
                    if grams is None:
                        if len(words) >= self.CACHE_WORDS:
                            words.clear()
                        grams = words[word] = self._word_grams(word)
                    flat.extend(grams)
                lengths.append(len(flat) - before)
            return flat, lengths
        get = self.vocabulary.get
        for doc in docs:
            tokens = self.tokens(doc.lower())
            if self.min_n == 1 and self.max_n == 2:
                grams = tokens + [a + " " + b for a, b in itertools.pairwise(tokens)]
            else:
                grams = list(tokens) if self.min_n == 1 else []
                for n in range(max(self.min_n, 2), min(self.max_n, len(tokens)) + 1):
                    grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
            hits = [i for i in map(get, grams) if i is not None]
            flat.extend(hits)
            lengths.append(len(hits))
        return flat, lengths

    def batch(
        self, docs: Sequence[str], offset: int = 0
    ) -> tuple[list[float], list[int], list[int]]:
        """TF-IDF rows of a batch as CSR lists (data, column + offset, indptr).

        Counting is one `np.unique` over the batch; weighting and normalisation are
        TfidfTransformer's steps in the vectorizer's dtype, then scikit-learn's own Cython
        row normaliser, so the values are bit for bit those of `transform`."""
        flat, lengths = self._occurrences(docs)
        if not flat:
            return [], [], [0] * (len(docs) + 1)
        rows = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        keys, counts = np.unique(
            rows * self.n_features + np.array(flat, dtype=np.int64), return_counts=True
        )
        row_ids, columns = np.divmod(keys, self.n_features)
        data = counts.astype(self.dtype)
        if self.sublinear:
            np.log(data, data)
            data += 1.0
        if self.idf is not None:
            data *= self.idf[columns]
        indptr = np.searchsorted(row_ids, np.arange(len(docs) + 1))
        _normalize_rows(data, columns, indptr, len(docs))
        return (
            data.tolist(),
            (columns + offset).tolist() if offset else columns.tolist(),
            indptr.tolist(),
        )

    def transform(self, docs: Sequence[str]) -> sp.csr_matrix:
        """The same matrix `TfidfVectorizer.transform` returns (used by tests to compare)."""
        data, indices, indptr = self.batch(docs)
        return sp.csr_matrix(
            (np.array(data, dtype=self.dtype), np.array(indices, dtype=np.int64), np.array(indptr)),
            shape=(len(docs), self.n_features),
        )


def _normalize_rows(data: np.ndarray, columns: np.ndarray, indptr: np.ndarray, n_rows: int) -> None:
    """scikit-learn's in-place l2 row normaliser (the one TfidfTransformer uses), called on the
    arrays directly: building a scipy matrix just to pass them costs more than the work."""
    from types import SimpleNamespace

    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    inplace_csr_row_normalize_l2(
        SimpleNamespace(data=data, shape=(n_rows, 0), indices=columns, indptr=indptr)
    )
