"""How far items are from what the champion was trained on: the part of traffic it cannot vouch for.

A model scores well only what resembles its training data. For a policy with text, an item's
novelty is the share of its TF-IDF weight on words the training data never had (single words:
a new scheme comes with new words mixed into ordinary ones, so nearest-neighbour similarity
hides it, and pairs of known words are new all the time and mean nothing). Without text it is
the distance of the item's standardised signals to the nearest training item, squashed into
[0, 1), with a category the training data never had counted as far. Monitoring clusters novel
items (`monitoring.emerging`); the push sends some of them to reviewers (`labeling.explore`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors

from flywheel.lake import Lake
from flywheel.policy import Policy
from flywheel.registry import ModelVersionRef

NEW_CATEGORY = "(new)"


def joined_text(frame: pd.DataFrame, policy: Policy) -> pd.Series:
    """The policy's text fields of each item as one string."""
    return frame[policy.fields.text].fillna("").astype(str).agg(" ".join, axis=1)


def training_items(lake: Lake, policy: Policy, ref: ModelVersionRef, n: int) -> pd.DataFrame | None:
    """A seeded sample of a model's training split (None when its dataset is not in this lake)."""
    version = ref.tags.get("dataset_version")
    path = lake.dataset_dir(policy.name, version) / "train.parquet" if version else None
    if path is None or not path.is_file():
        return None
    frame = pd.read_parquet(path, columns=policy.feature_columns)
    return frame.sample(min(len(frame), n), random_state=0).reset_index(drop=True)


def known_words(reference: pd.DataFrame, policy: Policy) -> set[str]:
    """Words of the training data seen at least twice (a word seen once is noise there too)."""
    texts = joined_text(reference, policy)
    if not texts.str.strip().any():
        return set()
    return set(TfidfVectorizer(min_df=min(2, len(texts))).fit(texts).get_feature_names_out())


def unseen_word_share(frame: pd.DataFrame, policy: Policy, known: set[str]) -> np.ndarray:
    """Per item, the share of its TF-IDF weight on words outside `known`."""
    texts = joined_text(frame, policy)
    if frame.empty or not texts.str.strip().any():
        return np.zeros(len(frame))
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    matrix = vectorizer.fit_transform(texts)
    unseen = ~np.isin(vectorizer.get_feature_names_out(), list(known))
    return np.asarray(matrix.multiply(matrix)[:, unseen].sum(axis=1)).ravel()


def signal_matrix(reference: pd.DataFrame, frame: pd.DataFrame, policy: Policy) -> tuple:
    """Both frames' signals in one space: numbers standardised on the reference, one column per
    reference category and one more per field for a category the reference never had."""
    columns_ref, columns_cur = [], []
    for field in policy.fields.numeric:
        ref = pd.to_numeric(reference[field], errors="coerce")
        mean, std = ref.mean(), ref.std() or 1.0
        for side, source in ((columns_ref, reference), (columns_cur, frame)):
            values = (pd.to_numeric(source[field], errors="coerce") - mean) / std
            side.append(values.fillna(0).to_numpy(dtype=float))
    for field in policy.fields.categorical:
        values = sorted(reference[field].dropna().astype(str).unique())
        for side, source in ((columns_ref, reference), (columns_cur, frame)):
            column = source[field].astype(str)
            side += [(column == v).to_numpy(dtype=float) for v in values]
            side.append((~column.isin(values) & source[field].notna()).to_numpy(dtype=float))
    if not columns_ref:
        return np.zeros((len(reference), 0)), np.zeros((len(frame), 0))
    return np.column_stack(columns_ref), np.column_stack(columns_cur)


def signal_distance(reference: pd.DataFrame, frame: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Per item, the distance to the nearest training item in signal space, squashed to [0, 1)."""
    ref, cur = signal_matrix(reference, frame, policy)
    if ref.shape[1] == 0 or frame.empty or reference.empty:
        return np.zeros(len(frame))
    nearest = NearestNeighbors(n_neighbors=1).fit(ref).kneighbors(cur)[0][:, 0]
    return 1.0 - np.exp(-nearest / np.sqrt(ref.shape[1]))


def novelty(reference: pd.DataFrame, frame: pd.DataFrame, policy: Policy) -> np.ndarray:
    """Each item's novelty against the training data, in [0, 1] (see the module docstring)."""
    if policy.fields.text:
        return unseen_word_share(frame, policy, known_words(reference, policy))
    return signal_distance(reference, frame, policy)
