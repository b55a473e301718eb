"""Score items with a registered pipeline, without the per-call DataFrame and validation work.

`pipeline.predict_proba(DataFrame)` spends most of a small call in pandas handling and input
validation inside the ColumnTransformer (about 3 ms of 4 ms for one item, measured in
`benchmarks/serving.py`), and a large call in scikit-learn's n-gram analysers, which build
every n-gram as a Python string. `compile_pipeline` takes Flywheel's pipeline shape apart once,
at load time, into blocks that encode a whole batch with array operations: TF-IDF from cached
per-word character n-grams and token-id word n-grams, one-hot codes from a lookup table, numbers
as they are. Python touches each document, word and field once; everything after that is numpy.
The blocks' (row, column, value) triples become one CSR matrix, then the LightGBM booster and
the calibrator score it. The arithmetic repeats scikit-learn's step by step, rounding to the
vectorizer's dtype where it does, so the scores are the same numbers (tests compare them bit for
bit). Any other pipeline shape compiles to None: the runtime (`flywheel.runtime`) scores it
through `predict_proba` and says so.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from flywheel.compat import booster_predictor, row_normalizer, sigmoid_calibration_type

Rows = Sequence[dict]
# A block's non-zero entries for a batch: row, column and value arrays, rows ascending and
# columns ascending within a row.
Triples = tuple[np.ndarray, np.ndarray, np.ndarray]
Block = Callable[[Rows], Triples]


def compile_pipeline(pipeline: object) -> Callable[[Rows], np.ndarray] | None:
    """The fast path for Flywheel's own pipeline shape, `typed rows -> scores`, or None for
    anything else. Rows are typed as `flywheel.records` types items (text and categories as
    strings, numbers as floats)."""
    from lightgbm import LGBMClassifier
    from scipy.special import expit
    from sklearn.calibration import CalibratedClassifierCV
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
    blocks: list[Block | TextBlock] = []
    offset = 0
    for _, transformer, columns in features.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        built = _block(transformer, columns, offset)
        if built is None:
            return None
        block, width = built
        last = blocks[-1] if blocks else None
        if (
            isinstance(block, FastTfidf)
            and isinstance(last, TextBlock)
            and last.takes(columns, block)
        ):
            last.add(block)
        elif isinstance(block, FastTfidf):
            blocks.append(TextBlock(columns, offset, block))
        else:
            blocks.append(block)
        offset += width
    blocks = [b.encode if isinstance(b, TextBlock) else b for b in blocks]
    if offset != model.n_features_in_:
        return None
    n_features = offset
    predict = booster_predictor(model.booster_, model.best_iteration_)
    # the calibrator was fitted on what CalibratedClassifierCV asked the model for: the raw
    # margin when the model has `decision_function` (LightGBM >= 4.7), else the probability
    margin = hasattr(model, "decision_function")
    calibrator = calibrated.calibrators[0]
    sigmoid = isinstance(calibrator, sigmoid_calibration_type())

    def score(rows: Rows) -> np.ndarray:
        parts = [block(rows) for block in blocks]
        row_ids = np.concatenate([p[0] for p in parts])
        # blocks come in column order and each is sorted, so a stable sort by row leaves every
        # row's columns ascending, as scikit-learn's hstack does
        order = np.argsort(row_ids, kind="stable")
        indptr = np.zeros(len(rows) + 1, dtype=np.int32)
        np.cumsum(np.bincount(row_ids, minlength=len(rows)), out=indptr[1:])
        matrix = sp.csr_matrix(
            (
                np.concatenate([p[2] for p in parts], dtype=np.float64)[order],
                np.concatenate([p[1] for p in parts]).astype(np.int32)[order],
                indptr,
            ),
            shape=(len(rows), n_features),
        )
        raw = predict(matrix, margin)
        if sigmoid:
            return expit(-(calibrator.a_ * raw + calibrator.b_))
        return calibrator.predict(raw)

    return score


def _block(
    transformer: object, columns: object, offset: int
) -> tuple[Block | FastTfidf, int] | None:
    """How one fitted ColumnTransformer entry encodes a batch, and how many columns it spans
    (a text vectorizer joins its column's `TextBlock`)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    if isinstance(transformer, TfidfVectorizer) and isinstance(columns, str):
        tfidf = FastTfidf.of(transformer)
        return (tfidf, tfidf.n_features) if tfidf else None
    identity = isinstance(transformer, FunctionTransformer) and transformer.func is None
    if identity and isinstance(columns, list) and columns:
        return _numbers_block(columns, offset), len(columns)
    if isinstance(transformer, OneHotEncoder) and isinstance(columns, list) and columns:
        return _one_hot(transformer, columns, offset)
    return None


class TextBlock:
    """The TF-IDF vectorizers side by side on one text column (words and character n-grams),
    encoded together: one count, one weighting and one normalising pass for all of them, each
    vectorizer's part of a row normalised on its own, as it is alone.

    The steps are TfidfTransformer's, in the vectorizers' dtype, and the normaliser is
    scikit-learn's own, so the values are bit for bit those of `transform`."""

    def __init__(self, column: str, offset: int, first: FastTfidf) -> None:
        self.normalize = row_normalizer()
        self.column = column
        self.offset = offset
        self.parts: list[FastTfidf] = []
        self.add(first)

    def takes(self, column: object, tfidf: FastTfidf) -> bool:
        """Whether a vectorizer placed right after this block's can join it."""
        first = self.parts[0]
        return column == self.column and (tfidf.dtype, tfidf.sublinear) == (
            first.dtype,
            first.sublinear,
        )

    def add(self, tfidf: FastTfidf) -> None:
        self.parts.append(tfidf)
        widths = [part.n_features for part in self.parts]
        self.starts = np.cumsum([0, *widths[:-1]])
        self.width = sum(widths)
        # without idf, a weight of one changes no value
        self.idf = np.concatenate(
            [p.idf if p.idf is not None else np.ones(p.n_features, p.dtype) for p in self.parts]
        )

    def encode(self, rows: Rows) -> Triples:
        return self.entries(list(map(str.lower, map(operator.itemgetter(self.column), rows))))

    def entries(self, docs: Sequence[str]) -> Triples:
        """TF-IDF entries of lowercased documents: row, column (from `offset`) and value."""
        words = list(map(str.split, docs))
        flat = list(itertools.chain.from_iterable(words))
        word_doc = np.repeat(
            np.arange(len(docs)), np.fromiter(map(len, words), np.int64, len(docs))
        )
        keys = np.concatenate(
            [
                rows * self.width + (columns + start)
                for part, start in zip(self.parts, self.starts, strict=True)
                for rows, columns in [part.occurrences(flat, word_doc)]
            ]
        )
        keys.sort()
        first = np.empty(len(keys), dtype=bool)
        first[:1] = True
        np.not_equal(keys[1:], keys[:-1], out=first[1:])
        at = np.flatnonzero(first)
        counts = np.diff(at, append=len(keys))
        keys = keys[at]
        row_ids, columns = np.divmod(keys, self.width)
        data = counts.astype(self.parts[0].dtype)
        if self.parts[0].sublinear:
            np.log(data, data)
            data += 1.0
        data *= self.idf[columns]
        n_rows = len(docs)
        parts_start = (np.arange(n_rows)[:, None] * self.width + self.starts).ravel()
        indptr = np.searchsorted(keys, np.append(parts_start, n_rows * self.width))
        # scikit-learn's in-place l2 row normaliser (TfidfTransformer's), called on the arrays
        # directly: building a scipy matrix just to pass them costs more than the work
        self.normalize(
            SimpleNamespace(
                data=data, shape=(n_rows * len(self.parts), 0), indices=columns, indptr=indptr
            )
        )
        return row_ids, columns + self.offset, data


def _values(rows: Rows, columns: list[str], dtype: type) -> np.ndarray:
    """The rows' values of some fields as an (n rows, n fields) array, read in one pass."""
    get = operator.itemgetter(*columns)
    values = map(get, rows) if len(columns) == 1 else itertools.chain.from_iterable(map(get, rows))
    return np.fromiter(values, dtype, len(rows) * len(columns)).reshape(len(rows), len(columns))


def _numbers_block(columns: list[str], offset: int) -> Block:
    def encode(rows: Rows) -> Triples:
        values = _values(rows, columns, np.float64)
        row_ids, positions = np.nonzero(values)  # zeros stay implicit, as in scipy; NaN is kept
        return row_ids, positions + offset, values[row_ids, positions]

    return encode


def _one_hot(encoder: object, columns: list[str], offset: int) -> tuple[Block, int] | None:
    """One column per frequent category, one for all infrequent ones, as OneHotEncoder lays out.
    Unknown values go to the infrequent column when there is one (`infrequent_if_exist`), else
    to no column (`ignore`)."""
    if encoder.drop is not None or encoder.handle_unknown not in ("ignore", "infrequent_if_exist"):
        return None
    infrequent_lists = getattr(encoder, "infrequent_categories_", [None] * len(columns))
    lookups: list[tuple[str, dict, int]] = []  # (field, category -> column, column of unknown)
    width = 0
    for column, categories, infrequent in zip(
        columns, encoder.categories_, infrequent_lists, strict=True
    ):
        rare = set(infrequent) if infrequent is not None else set()
        frequent = [c for c in categories if c not in rare]
        mapping = {c: offset + width + i for i, c in enumerate(frequent)}
        rare_column = offset + width + len(frequent) if rare else -1
        mapping.update(dict.fromkeys(rare, rare_column))
        unknown = rare_column if encoder.handle_unknown == "infrequent_if_exist" else -1
        lookups.append((column, mapping, unknown))
        width += len(frequent) + (1 if rare else 0)
    if width != len(encoder.get_feature_names_out()):
        return None

    def encode(rows: Rows) -> Triples:
        codes = np.empty((len(rows), len(lookups)), dtype=np.int64)
        for j, (column, mapping, unknown) in enumerate(lookups):
            values = map(operator.itemgetter(column), rows)
            codes[:, j] = np.fromiter(
                map(mapping.get, values, itertools.repeat(unknown)), np.int64, len(rows)
            )
        row_ids, fields = np.nonzero(codes >= 0)
        return row_ids, codes[row_ids, fields], np.ones(len(row_ids))

    return encode, width


class FastTfidf:
    """A fitted TfidfVectorizer's transform over lowercased documents, done with arrays.

    scikit-learn builds every n-gram of a document as a string (about 45 µs per short text for
    character 3-4 grams). Here a document is read as its whitespace-separated words, and what a
    word contributes is found once and cached, packed: its in-vocabulary character n-grams
    (inside word bounds they depend only on the word), or its tokens' ids (no token crosses
    whitespace). Single tokens are then read off a table by id, and longer word n-grams looked
    up as numbers: an n-gram is its token ids' digits, and all of a batch's are found with one
    `searchsorted`.
    """

    CACHE_BYTES = 64 * 1024 * 1024  # words and what they contribute, kept between batches
    DEFAULT_TOKENS = r"(?u)\b\w\w+\b"

    def __init__(self, vectorizer: object) -> None:
        v = vectorizer
        self.vocabulary = v.vocabulary_
        self.n_features = len(v.vocabulary_)
        self.analyzer = v.analyzer
        self.min_n, self.max_n = v.ngram_range
        self.dtype = np.dtype(v.dtype)
        self.sublinear = v.sublinear_tf
        self.idf = np.asarray(v.idf_) if v.use_idf else None
        if v.analyzer == "word":
            # the default pattern's matches, found faster: a greedy run of two or more word
            # characters starts and ends at word bounds anyway
            self.tokens = re.compile(r"(?u)\w\w+").findall
            self._index_word_ngrams()
            self.words = _PerWord(self._word_tokens)
            self.packed = np.dtype(np.int64)
        else:
            self.words = _PerWord(self._word_grams)
            self.packed = np.dtype(np.int32)

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
            and (
                v.analyzer == "char_wb"
                or (v.analyzer == "word" and v.token_pattern == cls.DEFAULT_TOKENS)
            )
        )
        if not plain:
            return None
        fast = cls(v)
        # word n-gram numbers must fit in 64 bits
        if v.analyzer == "word" and fast.base ** (fast.max_n + 1) >= 2**63:
            return None
        return fast

    def _index_word_ngrams(self) -> None:
        """Token ids, and the vocabulary's longer n-grams as sorted numbers, so that looking
        n-grams up is a table read for single tokens and one `searchsorted` for the rest. Ids:
        0 for a token outside the vocabulary, 1..T for the vocabulary's tokens; an n-gram's
        number is its ids' digits in base T + 1, plus an offset per length that keeps the
        lengths apart. An n-gram with an unknown token is then no vocabulary number."""
        terms = list(self.vocabulary)
        tokens = sorted({t for term in terms for t in term.split(" ")})
        self.token_ids = {t: i for i, t in enumerate(tokens, start=1)}
        self.base = len(tokens) + 1
        self.offsets = [sum(self.base**k for k in range(1, n)) for n in range(self.max_n + 1)]
        self.token_columns = np.full(self.base, -1, dtype=np.int64)
        longer = []
        for term in terms:
            if " " in term:
                longer.append(term)
            else:
                self.token_columns[self.token_ids[term]] = self.vocabulary[term]
        numbers = [self._number([self.token_ids[t] for t in term.split(" ")]) for term in longer]
        order = np.argsort(numbers)
        # a last number above any n-gram's, so that `searchsorted` always lands on an entry
        self.ngram_numbers = np.append(np.array(numbers, dtype=np.int64)[order], 2**63 - 1)
        self.ngram_columns = np.append(
            np.array([self.vocabulary[longer[i]] for i in order], dtype=np.int64), -1
        )

    def _number(self, ids: list[int]) -> int:
        number = 0
        for token in ids:
            number = number * self.base + token
        return number + self.offsets[len(ids)]

    def _word_grams(self, word: str) -> bytes:
        """In-vocabulary character n-grams of one word (repeats kept), padded and cut as
        scikit-learn does, packed as int32 column numbers."""
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
        return np.array(found, dtype=np.int32).tobytes()

    def _word_tokens(self, word: str) -> bytes:
        """Ids of one word's tokens, packed as int64 (0 for a token outside the vocabulary)."""
        get = self.token_ids.get
        return np.array([get(t, 0) for t in self.tokens(word)], dtype=np.int64).tobytes()

    def _contributions(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The words' cached contributions end to end, and how many values each word gave."""
        if self.words.bytes > self.CACHE_BYTES:
            self.words.clear()
        pieces = list(map(self.words.__getitem__, words))
        values = np.frombuffer(b"".join(pieces), dtype=self.packed)
        sizes = np.fromiter(map(len, pieces), np.int64, len(pieces)) // self.packed.itemsize
        return values, sizes

    def _char_occurrences(
        self, words: list[str], word_doc: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of every in-vocabulary character n-gram occurrence of the batch."""
        columns, sizes = self._contributions(words)
        return np.repeat(word_doc, sizes), columns.astype(np.int64)

    def _token_occurrences(
        self, words: list[str], word_doc: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of every in-vocabulary word n-gram occurrence of the batch: the
        batch's token ids in one array; an n-gram counts where its first and last token are in
        the same document. Single tokens are read off a table; longer n-grams take one
        `searchsorted` of their numbers."""
        ids, sizes = self._contributions(words)
        doc_of = np.repeat(word_doc, sizes)
        rows, columns = [], []
        if self.min_n == 1:
            found = self.token_columns[ids]
            hit = found >= 0
            rows.append(doc_of[hit])
            columns.append(found[hit])
        numbers, starts = [], []
        for n in range(max(self.min_n, 2), min(self.max_n, len(ids)) + 1):
            count = len(ids) - n + 1
            whole = doc_of[:count] == doc_of[n - 1 :]
            number = ids[:count]
            for k in range(1, n):
                number = number * self.base + ids[k : k + count]
            numbers.append(number[whole] + self.offsets[n])
            starts.append(doc_of[:count][whole])
        if numbers:
            numbers, starts = np.concatenate(numbers), np.concatenate(starts)
            at = np.searchsorted(self.ngram_numbers, numbers)
            hit = self.ngram_numbers[at] == numbers
            rows.append(starts[hit])
            columns.append(self.ngram_columns[at[hit]])
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        return np.concatenate(rows), np.concatenate(columns)

    def occurrences(self, words: list[str], word_doc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of every in-vocabulary term occurrence of lowercased documents, given
        as the batch's whitespace-separated words end to end and each word's document."""
        if self.analyzer == "char_wb":
            return self._char_occurrences(words, word_doc)
        return self._token_occurrences(words, word_doc)

    def transform(self, docs: Sequence[str]) -> sp.csr_matrix:
        """The same matrix `TfidfVectorizer.transform` returns (used by tests to compare)."""
        row_ids, columns, data = TextBlock("", 0, self).entries([doc.lower() for doc in docs])
        indptr = np.searchsorted(row_ids, np.arange(len(docs) + 1))
        return sp.csr_matrix((data, columns, indptr), shape=(len(docs), self.n_features))


class _PerWord(dict):
    """word -> what it contributes, packed, computed on first sight; `bytes` counts what the
    entries hold (words and values), so the cache is bounded by memory, not by count: one long
    word can weigh as much as a hundred thousand short ones."""

    def __init__(self, compute: Callable[[str], bytes]) -> None:
        super().__init__()
        self.compute = compute
        self.bytes = 0

    def __missing__(self, word: str) -> bytes:
        grams = self[word] = self.compute(word)
        self.bytes += len(word) + len(grams) + 100  # the key, the value, their overhead
        return grams

    def clear(self) -> None:
        super().clear()
        self.bytes = 0
