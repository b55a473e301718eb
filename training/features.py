"""The feature pipeline a policy's fields call for.

Text fields get TF-IDF of words (1–2 grams) and of characters (3–4 grams inside word bounds: they
catch obfuscations such as `fr33`; 2-grams add little and double the tokenising time); numeric signals pass through (LightGBM copes with scale and
missing values); categoricals are one-hot encoded, rare and unseen values grouped. Only stock
scikit-learn parts, so any MLflow tool can load the pipeline.
"""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import OneHotEncoder

from flywheel.policy import Policy


def _tfidf(
    analyzer: str, ngrams: tuple[int, int], min_df: int, max_features: int
) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=ngrams,
        min_df=min_df,
        max_features=max_features,
        sublinear_tf=True,
        dtype=np.float32,
    )


def build_features(policy: Policy) -> ColumnTransformer:
    """An unfitted transformer from a policy's fields to one sparse feature matrix."""
    params = policy.training
    transformers: list[tuple] = []
    for name in policy.fields.text:
        transformers += [
            (f"{name}_words", _tfidf("word", (1, 2), 2, params.word_max_features), name),
            (f"{name}_chars", _tfidf("char_wb", (3, 4), 3, params.char_max_features), name),
        ]
    if policy.fields.numeric:
        transformers.append(("numeric", "passthrough", policy.fields.numeric))
    if policy.fields.categorical:
        onehot = OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=5, dtype=np.float32
        )
        transformers.append(("categorical", onehot, policy.fields.categorical))
    return ColumnTransformer(transformers, sparse_threshold=0.3, verbose_feature_names_out=True)
