"""Emerging risk: recent likely-violating items unlike anything the model was trained on.

Candidates are the window's items that the model scored at least at its review threshold or that
reviewers confirmed. A candidate's novelty, for a policy with text, is the share of its TF-IDF
weight on words the training data never had (a new scheme comes with new words,
mixed into ordinary ones, so nearest-neighbour similarity hides it); without text, it is the
distance of its standardised signals to the nearest training item. Novel candidates are
clustered (k-means) and each cluster is described by its top new terms (or signals), its size,
its growth (items in the second half of the window against the first) and a few examples.
Clusters are ranked by growth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer

from flywheel.policy import Policy

EXAMPLES = 3
TOP_TERMS = 6


def _text_space(reference: pd.DataFrame, candidates: pd.DataFrame, policy: Policy):
    """Candidates' TF-IDF over a vocabulary that includes their own new words, and, per
    candidate, the share of its weight on words the training data never had (single words:
    pairs of known words are new all the time and mean nothing)."""
    texts = candidates[policy.fields.text].fillna("").astype(str).agg(" ".join, axis=1)
    known = TfidfVectorizer(min_df=2)
    known.fit(reference[policy.fields.text].fillna("").astype(str).agg(" ".join, axis=1))
    vectorizer = TfidfVectorizer(sublinear_tf=True)
    matrix = vectorizer.fit_transform(texts)
    names = vectorizer.get_feature_names_out()
    unseen = ~np.isin(names, known.get_feature_names_out())
    squared = matrix.multiply(matrix)
    novelty = np.asarray(squared[:, unseen].sum(axis=1)).ravel()
    return matrix, names, unseen, novelty


def _signal_space(reference: pd.DataFrame, candidates: pd.DataFrame, policy: Policy):
    """Standardised signals; novelty is the distance to the nearest training item, squashed."""
    columns, names = [], []
    for field in policy.fields.numeric:
        ref = pd.to_numeric(reference[field], errors="coerce")
        mean, std = ref.mean(), ref.std() or 1.0
        for frame in (reference, candidates):
            frame[f"_z_{field}"] = (
                (pd.to_numeric(frame[field], errors="coerce") - mean) / std
            ).fillna(0)
        columns.append(f"_z_{field}")
        names.append(field)
    for field in policy.fields.categorical:
        for value in sorted(reference[field].dropna().astype(str).unique()):
            for frame in (reference, candidates):
                frame[f"_c_{field}_{value}"] = (frame[field].astype(str) == value).astype(float)
            columns.append(f"_c_{field}_{value}")
            names.append(f"{field} = {value}")
    ref = reference[columns].to_numpy(dtype=float)
    cand = candidates[columns].to_numpy(dtype=float)
    nearest = np.array([np.sqrt(((ref - row) ** 2).sum(axis=1)).min() for row in cand])
    novelty = 1.0 - np.exp(-nearest / max(len(columns), 1) ** 0.5)
    return sparse.csr_matrix(cand), np.array(names), np.ones(len(names), dtype=bool), novelty


def emerging_clusters(
    reference: pd.DataFrame,
    window: pd.DataFrame,
    policy: Policy,
    review_threshold: float,
    confirmed: set[str],
    since: pd.Timestamp,
    until: pd.Timestamp,
) -> dict:
    """Novel likely-violating items in the window, clustered and ranked by growth."""
    rules = policy.monitoring
    high = window["score"].astype(float).fillna(0) >= review_threshold
    candidates = window[high | window["item_id"].isin(confirmed)].drop_duplicates("item_id")
    report = {"candidates": len(candidates), "novel": 0, "clusters": []}
    if candidates.empty or reference.empty:
        return report
    candidates = candidates.reset_index(drop=True)
    space = _text_space if policy.fields.text else _signal_space
    matrix, names, new_terms, novelty = space(reference.copy(), candidates.copy(), policy)
    novel = np.flatnonzero(novelty >= rules.novelty)
    report["novel"] = len(novel)
    if len(novel) < rules.min_cluster_size:
        return report
    k = int(min(rules.max_clusters, max(1, len(novel) // rules.min_cluster_size)))
    model = KMeans(n_clusters=k, n_init=4, random_state=0).fit(matrix[novel])
    middle = since + (until - since) / 2
    chosen = candidates.iloc[novel].assign(cluster=model.labels_)
    for cluster, members in chosen.groupby("cluster"):
        if len(members) < rules.min_cluster_size:
            continue
        weight = np.where(new_terms, model.cluster_centers_[cluster], -np.inf)
        when = pd.to_datetime(members["scored_at"], utc=True)
        early, late = int((when < middle).sum()), int((when >= middle).sum())
        text = policy.fields.text[0] if policy.fields.text else None
        report["clusters"].append(
            {
                "size": len(members),
                "growth": round((late + 1) / (early + 1), 2),
                "first_half": early,
                "second_half": late,
                "top": [str(n) for n in names[np.argsort(-weight)[:TOP_TERMS]]],
                "mean_score": round(float(members["score"].astype(float).mean()), 3),
                "examples": [
                    {"item_id": r["item_id"], **({text: r[text]} if text else {})}
                    for _, r in members.head(EXAMPLES).iterrows()
                ],
            }
        )
    report["clusters"].sort(key=lambda c: (-c["growth"], -c["size"]))
    return report
