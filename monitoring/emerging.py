"""Emerging risk, found in all of the window's traffic whatever the champion scored it.

A campaign the champion scores low is allowed, never reviewed and never learnt, so nothing here
starts from the model's suspects. Two pieces of evidence:

1. **Bursts.** Each day of the window is tested against the traffic before it (the prediction
   log's `monitoring.baseline_days` before that day, or the champion's training data when the
   log holds fewer items than the day). Every term (the words and word pairs of the text fields)
   and every signal (a categorical value, a numeric field's decile of the training data, and the
   pairs of these across fields) is a test: the day's count of items carrying it against the
   baseline's, by the exact conditional binomial test of two Poisson counts. Ordinary day-to-day
   variation is allowed for by quasi-likelihood: counts are divided by a dispersion, the median
   squared Pearson residual over every term and day (a few bursting terms do not move a median,
   a noisy platform does). The tests are Bonferroni-corrected over every term and day tested, at
   `monitoring.confidence`. No fixed ratio: a rise counts when chance and ordinary variation
   cannot explain it, which takes fewer items for a new word than for a common one.
2. **Clusters.** The window's items that carry a bursting term, or that are novel against the
   training data (`flywheel.novelty`), are clustered with scikit-learn's HDBSCAN on those unusual
   terms (for a policy without text, on its signals), so the number of clusters is found, not
   set, and one-off oddities stay noise. Each cluster is described with class-based TF-IDF
   (BERTopic's c-TF-IDF, against the rest of the traffic as one more class): its top terms, its
   size per day, its growth, the share the champion allowed, examples, and representatives for
   the exploration queue (clusters under `monitoring.min_cluster_size` only when they emerge).
   A cluster is *emerging* when most of its items carry a bursting term, or when its signature
   bursts: the items of a day carrying any of its most distinctive unusual words, tested
   against the baseline like one more term (a campaign that varies its wording spreads over
   many words, none frequent enough alone). That, not its growth, is what opens an alert.

Counts come from samples of at most `monitoring.drift_sample` items per day and per baseline
(each day states its traffic and the items tested), and each figure states the items behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import betainc
from sklearn.cluster import HDBSCAN
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from flywheel.novelty import joined_text, known_words, novelty
from flywheel.policy import Policy

EXAMPLES = 3
TOP_TERMS = 6
REPRESENTATIVES = 50  # allowed items per cluster offered to the exploration queue
TOP_BURSTS = 30
MIN_COUNT = 3  # a term on fewer items, day and baseline together, is not tested
MAX_CLUSTER_ITEMS = 5000  # HDBSCAN's distances are quadratic in the items clustered
# cores nearer than this merge: unit vectors at distance 1 have cosine 0.5, so two cores whose
# terms occur with the same terms more than half the time are one campaign
MERGE_DISTANCE = 1.0
MAX_DIMENSIONS = 500  # the most frequent unusual terms, when there are more
PEARSON_MEDIAN = 0.454936  # median of a chi-squared variable with one degree of freedom
TRAINING = "the champion's training data"


@dataclass
class Tokens:
    """Which items carry which terms and signals, over one frame of items."""

    names: np.ndarray  # term or signal names, one per column
    kinds: np.ndarray  # "text" or "signal"
    fields: np.ndarray  # the field behind a signal ("" for text), so pairs span two fields
    matrix: sparse.csr_matrix  # items × names, 1 where the item carries it


@dataclass
class Bursts:
    """The window's days over one token space: the items tested, each day's rows, what burst."""

    window: pd.DataFrame  # the window's items tested, with a `_day` column
    tokens: Tokens  # over the window's items first, then each day's baseline
    days: list[tuple[pd.Timestamp, np.ndarray, np.ndarray]]  # day, its rows, its baseline's rows
    dispersion: float
    tested: int  # terms and days tested, the Bonferroni family
    significant: pd.DataFrame  # the bursts
    summary: dict  # for the report


def _tokens(items: pd.DataFrame, reference: pd.DataFrame, policy: Policy) -> Tokens:
    """Terms of the text fields (words and word pairs), and signals: categorical values and
    numeric deciles of the training data (a value the training data never had is its own)."""
    blocks, names, kinds, fields = [], [], [], []
    if policy.fields.text:
        texts = joined_text(items, policy)
        vectorizer = CountVectorizer(binary=True, ngram_range=(1, 2), min_df=MIN_COUNT)
        try:
            blocks.append(vectorizer.fit_transform(texts))
            words = vectorizer.get_feature_names_out()
            names += list(words)
            kinds += ["text"] * len(words)
            fields += [""] * len(words)
        except ValueError:  # no term reaches the minimum count
            pass
    for field in policy.fields.numeric:
        values = pd.to_numeric(items[field], errors="coerce")
        edges = np.unique(
            np.nanquantile(pd.to_numeric(reference[field], errors="coerce"), np.linspace(0, 1, 11))
        )
        if len(edges) < 2:
            continue
        bins = np.digitize(values.to_numpy(dtype=float), edges[1:-1])
        labels = [f"{field} < {edges[1]:g}"]
        labels += [f"{field} {lo:g}–{hi:g}" for lo, hi in pairwise(edges[1:-1])]
        labels += [f"{field} ≥ {edges[-2]:g}"]
        present = ~np.isnan(values.to_numpy(dtype=float))
        rows = np.flatnonzero(present)
        blocks.append(
            sparse.csr_matrix(
                (np.ones(len(rows)), (rows, bins[present])), shape=(len(items), len(labels))
            )
        )
        names += labels
        kinds += ["signal"] * len(labels)
        fields += [field] * len(labels)
    for field in policy.fields.categorical:
        column = items[field].astype("string")
        values = sorted(column.dropna().unique())
        codes = pd.Categorical(column, categories=values).codes
        rows = np.flatnonzero(codes >= 0)
        blocks.append(
            sparse.csr_matrix(
                (np.ones(len(rows)), (rows, codes[rows])), shape=(len(items), len(values))
            )
        )
        names += [f"{field} = {v}" for v in values]
        kinds += ["signal"] * len(values)
        fields += [field] * len(values)
    matrix = sparse.hstack(blocks).tocsr() if blocks else sparse.csr_matrix((len(items), 0))
    return Tokens(np.array(names, dtype=object), np.array(kinds), np.array(fields), matrix)


def _counts(tokens: Tokens, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items carrying each term and signal among `rows`, then each pair of signals of two fields."""
    part = tokens.matrix[rows]
    singles = np.asarray(part.sum(axis=0)).ravel()
    signal = np.flatnonzero(tokens.kinds == "signal")
    if len(signal) < 2:
        return singles, np.zeros(0)
    block = part[:, signal]
    pairs = (block.T @ block).toarray()
    upper = np.triu_indices(len(signal), k=1)
    return singles, pairs[upper]


def _pair_names(tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """Names of the signal pairs in `_counts` order, and which pairs span two fields."""
    signal = np.flatnonzero(tokens.kinds == "signal")
    upper = np.triu_indices(len(signal), k=1)
    first, second = signal[upper[0]], signal[upper[1]]
    names = np.array(
        [f"{a} & {b}" for a, b in zip(tokens.names[first], tokens.names[second], strict=True)],
        dtype=object,
    )
    return names, tokens.fields[first] != tokens.fields[second]


def burst_p_values(x: np.ndarray, n: int, y: np.ndarray, m: int, dispersion: float) -> np.ndarray:
    """One-sided p-values that a count of `x` items in `n` came from the baseline's rate (`y` in
    `m`): conditionally on x + y, x is Binomial(x + y, n / (n + m)) under no change. Counts are
    divided by the dispersion first (quasi-likelihood)."""
    p0 = n / (n + m)
    k = np.asarray(x, dtype=float) / dispersion
    total = (np.asarray(x, dtype=float) + np.asarray(y, dtype=float)) / dispersion
    # P(X >= k) for X ~ Binomial(total, p0), continued to real counts by the incomplete beta
    return np.where(k > 0, betainc(np.maximum(k, 1e-12), total - k + 1.0, p0), 1.0)


def _dispersion(tests: list[tuple]) -> float:
    """The median squared Pearson residual over every term and day with enough expected items,
    scaled to be 1 for pure binomial variation; at least 1."""
    residuals = []
    for x, n, y, m in tests:
        p0 = n / (n + m)
        total = x + y
        expected = total * p0
        ok = expected >= 5
        if ok.any():
            var = total[ok] * p0 * (1 - p0)
            residuals.append((x[ok] - expected[ok]) ** 2 / var)
    if not residuals:
        return 1.0
    return max(1.0, float(np.median(np.concatenate(residuals))) / PEARSON_MEDIAN)


def _sample(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    return frame.sample(n, random_state=0) if len(frame) > n else frame


def _periods(log: pd.DataFrame, reference: pd.DataFrame, policy: Policy, since, until):
    """Each day of the window with its baseline: the log's earlier traffic, or the training data."""
    rules = policy.monitoring
    when = pd.to_datetime(log["scored_at"], utc=True)
    days = when[(when >= since) & (when <= until)].dt.floor("D").drop_duplicates().sort_values()
    for day in days:
        traffic = log[
            (when >= max(day, since)) & (when < day + pd.Timedelta(days=1)) & (when <= until)
        ]
        current = _sample(traffic, rules.drift_sample).assign(_traffic=len(traffic))
        earlier = log[
            (when < max(day, since)) & (when >= day - pd.Timedelta(days=rules.baseline_days))
        ]
        if len(earlier) >= len(current):
            yield day, current, _sample(earlier, rules.drift_sample), "earlier traffic"
        else:
            yield day, current, reference, TRAINING


def detect_bursts(
    log: pd.DataFrame, reference: pd.DataFrame, policy: Policy, since, until
) -> Bursts:
    """The window's days, their baselines and the significant bursts, over one token space."""
    periods = list(_periods(log, reference, policy, since, until))
    if not periods:
        summary = {"days": [], "tests": 0, "dispersion": 1.0, "level": None, "bursts": []}
        empty = log.iloc[0:0]
        return Bursts(empty, _tokens(empty, reference, policy), [], 1.0, 0, pd.DataFrame(), summary)
    window = pd.concat([p[1].assign(_day=p[0]) for p in periods], ignore_index=True)
    baselines = [p[2] for p in periods]
    pool = pd.concat([window, *baselines], ignore_index=True)
    tokens = _tokens(pool, reference, policy)
    pair_names, spans = _pair_names(tokens)
    names = np.concatenate([tokens.names, pair_names[spans]]) if len(pair_names) else tokens.names
    tests, days = [], []
    for (day, *_), rows_base in zip(periods, _offsets(baselines, len(window)), strict=True):
        rows_cur = np.flatnonzero(window["_day"].to_numpy() == day)
        days.append((day, rows_cur, rows_base))
        xs, xp = _counts(tokens, rows_cur)
        ys, yp = _counts(tokens, rows_base)
        x = np.concatenate([xs, xp[spans]]) if len(xp) else xs
        y = np.concatenate([ys, yp[spans]]) if len(yp) else ys
        tests.append((x, len(rows_cur), y, len(rows_base)))
    dispersion = _dispersion(tests)
    found, tested = [], 0
    for (day, _, _, source), (x, n, y, m) in zip(periods, tests, strict=True):
        # the family: every term and day seen on enough items on both sides together, a
        # selection on x + y, the count the conditional test is conditional on, so each
        # p-value stays exact
        eligible = x + y >= MIN_COUNT
        tested += int(eligible.sum())
        p = burst_p_values(x[eligible], n, y[eligible], m, dispersion)
        found.append(
            pd.DataFrame(
                {
                    "term": names[eligible],
                    "day": day.date().isoformat(),
                    "items": x[eligible].astype(int),
                    "day_items": n,
                    "baseline_items_with": y[eligible].astype(int),
                    "baseline_items": m,
                    "baseline": source,
                    "p_value": p,
                }
            )
        )
    bursts = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
    alpha = 1 - policy.monitoring.confidence
    level = alpha / max(tested, 1)
    significant = bursts[bursts["p_value"] <= level].sort_values("p_value") if tested else bursts
    summary = {
        "days": [
            {
                "day": d.date().isoformat(),
                "traffic": int(c["_traffic"].iloc[0]),
                "items": len(c),
                "baseline": s,
                "baseline_items": len(b),
            }
            for d, c, b, s in periods
        ],
        "tests": tested,
        "dispersion": round(dispersion, 3),
        "level": level,
        "bursts": [
            {
                **row,
                "share": row["items"] / row["day_items"],
                "baseline_share": row["baseline_items_with"] / max(row["baseline_items"], 1),
            }
            for row in significant.head(TOP_BURSTS).to_dict("records")
        ],
    }
    return Bursts(window, tokens, days, dispersion, tested, significant, summary)


def _offsets(baselines: list[pd.DataFrame], start: int):
    """Row numbers of each baseline in the pool (window first, then the baselines in turn)."""
    for base in baselines:
        yield np.arange(start, start + len(base))
        start += len(base)


def _class_tfidf(matrix: sparse.csr_matrix, labels: np.ndarray, classes: list[int]) -> np.ndarray:
    """BERTopic's c-TF-IDF: a term's frequency in a class times log(1 + A / its frequency over
    all classes), A the mean number of terms per class; one row per class in `classes`."""
    groups = [*classes, -1]
    counts = np.vstack([np.asarray(matrix[labels == g].sum(axis=0)).ravel() for g in groups])
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    idf = np.log1p(counts.sum(axis=1).mean() / np.maximum(counts.sum(axis=0), 1))
    return (tf * idf)[: len(classes)]


def emerging_risk(
    log: pd.DataFrame,
    reference: pd.DataFrame,
    policy: Policy,
    since: pd.Timestamp,
    until: pd.Timestamp,
) -> dict:
    """Bursts and clusters of the window (see the module docstring), as plain data."""
    rules = policy.monitoring
    log = log.drop_duplicates("item_id", keep="last").reset_index(drop=True)
    report: dict = {"candidates": 0, "novel": 0, "clusters": [], "bursts": [], "days": []}
    if log.empty or reference.empty:
        return report
    bursts = detect_bursts(log, reference, policy, since, until)
    window, tokens = bursts.window, bursts.tokens
    report |= bursts.summary
    if window.empty:
        return report
    rows = len(window)
    matrix = tokens.matrix[:rows]
    novel = novelty(reference, window, policy) >= rules.novelty
    burst_terms = set(bursts.significant["term"]) if not bursts.significant.empty else set()
    carries = _carries(window, tokens, matrix, burst_terms)
    candidates = np.flatnonzero(novel | carries)
    report |= {"candidates": len(candidates), "novel": int(novel.sum())}
    if len(candidates) < _core_size(rules.min_cluster_size):
        return report
    if len(candidates) > MAX_CLUSTER_ITEMS:
        candidates = np.sort(np.random.default_rng(0).choice(candidates, MAX_CLUSTER_ITEMS, False))
    suspects = matrix[candidates]
    columns = _unusual(tokens, suspects, burst_terms, reference, policy)
    space = suspects[:, columns].tocsr()
    keep = np.asarray(space.sum(axis=1)).ravel() > 0
    candidates, space = candidates[keep], space[keep]
    if len(candidates) < _core_size(rules.min_cluster_size):
        return report
    found = _clusters(space, rules.min_cluster_size)
    labels = np.full(rows, -1)
    labels[candidates] = found
    centrality = np.zeros(rows)
    centrality[candidates] = _centrality(space, found)
    sizes = pd.Series(labels[labels >= 0]).value_counts()
    classes = sorted(sizes.index[sizes >= _core_size(rules.min_cluster_size)])
    if not classes:
        return report
    weights = _class_tfidf(matrix, labels, classes)
    # each cluster's signature, tested on every day: more tests in the family
    level = (1 - rules.confidence) / (bursts.tested + len(classes) * len(bursts.days))
    clusters = []
    for i, c in enumerate(classes):
        cluster = _describe(
            window, labels == c, weights[i], tokens, carries, centrality, since, until, policy
        )
        cluster |= _signature_burst(bursts, _signature(weights[i], columns, tokens, policy), level)
        cluster["emerging"] = cluster["bursting_share"] >= 0.5 or cluster["signature_bursts"]
        if cluster["emerging"] or cluster["size"] >= rules.min_cluster_size:
            clusters.append(cluster)
    clusters.sort(key=lambda c: (not c["emerging"], -c["size"]))
    report["clusters"] = clusters[: rules.max_clusters]
    return report


def _carries(window, tokens: Tokens, matrix, burst_terms: set[str]) -> np.ndarray:
    """Which window items carry a term or signal that burst (a burst signal pair: both parts)."""
    carries = np.zeros(len(window), dtype=bool)
    index = {name: i for i, name in enumerate(tokens.names)}
    for term in burst_terms:
        parts = [index[p] for p in term.split(" & ")] if term not in index else [index[term]]
        hit = np.ones(len(window), dtype=bool)
        for column in parts:
            hit &= matrix[:, column].toarray().ravel() > 0
        carries |= hit
    return carries


def _unusual(tokens: Tokens, matrix, burst_terms: set[str], reference, policy: Policy):
    """The columns clusters are found on: the terms that burst and the words the training data
    never had (the most frequent of them, when there are many); a policy without text adds all
    of its signals."""
    known = known_words(reference, policy) if policy.fields.text else set()
    singles = {t for term in burst_terms for t in term.split(" & ")}
    unusual = np.array(
        [
            i
            for i, (name, kind) in enumerate(zip(tokens.names, tokens.kinds, strict=True))
            if name in singles
            or (kind == "text" and " " not in name and name not in known)
            or (kind == "signal" and not policy.fields.text)
        ],
        dtype=int,
    )
    if len(unusual) > MAX_DIMENSIONS:
        counts = np.asarray(matrix[:, unusual].sum(axis=0)).ravel()
        unusual = np.sort(unusual[np.argsort(-counts, kind="stable")[:MAX_DIMENSIONS]])
    return unusual


def _signature(weights: np.ndarray, columns: np.ndarray, tokens: Tokens, policy: Policy):
    """A cluster's most distinctive unusual words (its signals, for a policy without text)."""
    kind = "text" if policy.fields.text else "signal"
    ranked = columns[np.argsort(-weights[columns], kind="stable")]
    return [i for i in ranked if tokens.kinds[i] == kind and weights[i] > 0][:TOP_TERMS]


def _signature_burst(bursts: Bursts, signature: list[int], level: float) -> dict:
    """The day on which the most items carried any of the signature's terms, against that day's
    baseline, by the burst test; `signature_bursts` when it passes the family's level."""
    carried = np.asarray(bursts.tokens.matrix[:, signature].sum(axis=1)).ravel() > 0
    best = None
    for day, rows, base in bursts.days:
        x, y = int(carried[rows].sum()), int(carried[base].sum())
        if x + y < MIN_COUNT:
            continue
        p = float(
            burst_p_values(np.array([x]), len(rows), np.array([y]), len(base), bursts.dispersion)[0]
        )
        if best is None or p < best["p_value"]:
            best = {
                "day": day.date().isoformat(),
                "items": x,
                "day_items": len(rows),
                "baseline_items_with": y,
                "baseline_items": len(base),
                "p_value": p,
            }
    return {
        "signature": [str(bursts.tokens.names[i]) for i in signature],
        "signature_burst": best,
        "signature_bursts": best is not None and best["p_value"] <= level,
    }


def _cooccurrence_space(space: sparse.csr_matrix) -> np.ndarray:
    """Items as the mix of terms their terms occur with: one campaign's items sit together
    even when they share none of its words, because its words occur together across its items.
    Rows are unit length, so distances compare directions."""
    carried = (space > 0).astype(float)
    together = normalize((carried.T @ carried).toarray(), norm="l1")
    return normalize(carried @ together)


def _clusters(space: sparse.csr_matrix, min_size: int) -> np.ndarray:
    """HDBSCAN cores, then each leftover item joins the core it shares the most distinctive
    unusual terms with, by c-TF-IDF (BERTopic's outlier reduction); -1 for none."""
    labels = (
        HDBSCAN(
            min_cluster_size=_core_size(min_size),
            min_samples=MIN_COUNT,
            cluster_selection_epsilon=MERGE_DISTANCE,
            allow_single_cluster=True,
            copy=True,
        )
        .fit(_cooccurrence_space(space))
        .labels_
    )
    cores = sorted(set(labels) - {-1})
    left = np.flatnonzero(labels == -1)
    if cores and len(left):
        profiles = normalize(_class_tfidf(space, labels, cores))
        similarity = normalize(space[left].astype(float)) @ profiles.T
        best = np.asarray(similarity.argmax(axis=1)).ravel()
        joined = np.asarray(similarity.max(axis=1)).ravel() > 0
        labels[left[joined]] = np.array(cores)[best[joined]]
    return labels


def _core_size(min_size: int) -> int:
    """The smallest core HDBSCAN keeps. A cluster smaller than `monitoring.min_cluster_size`
    is reported only when it emerges: one campaign whose wording varies can split into two
    cores, each too small alone."""
    return max(MIN_COUNT, min_size // 2)


def _centrality(space: sparse.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """Each clustered item's cosine to its cluster's mean: the most typical first as examples."""
    unit = normalize(space.astype(float))
    centrality = np.zeros(len(labels))
    for cluster in set(labels) - {-1}:
        member = labels == cluster
        centre = normalize(np.asarray(unit[member].mean(axis=0)))
        centrality[member] = (unit[member] @ centre.T).ravel()
    return centrality


def _describe(
    window: pd.DataFrame,
    member: np.ndarray,
    weights: np.ndarray,
    tokens: Tokens,
    carries: np.ndarray,
    centrality: np.ndarray,
    since: pd.Timestamp,
    until: pd.Timestamp,
    policy: Policy,
) -> dict:
    members = window[member]
    when = pd.to_datetime(members["scored_at"], utc=True)
    middle = since + (until - since) / 2
    early, late = int((when < middle).sum()), int((when >= middle).sum())
    allowed = members["decision"].eq("allow")
    ranked = np.argsort(-centrality[member], kind="stable")
    text = policy.fields.text[0] if policy.fields.text else None
    examples = [
        {
            "item_id": members.iloc[i]["item_id"],
            "score": _round(members.iloc[i]["score"]),
            "decision": members.iloc[i]["decision"],
            **(
                {text: members.iloc[i][text]}
                if text
                else {"signals": _signals(members.iloc[i], policy)}
            ),
        }
        for i in ranked[:EXAMPLES]
    ]
    bursting = float(carries[member].mean())
    return {
        "size": len(members),
        "per_day": {
            str(k): int(v) for k, v in members["_day"].dt.date.value_counts().sort_index().items()
        },
        "growth": round((late + 1) / (early + 1), 2),
        "first_half": early,
        "second_half": late,
        "allowed": int(allowed.sum()),
        "allowed_share": round(float(allowed.mean()), 3),
        "mean_score": _round(members["score"].astype(float).mean()),
        "top": _top(weights, tokens, "text" if policy.fields.text else "signal"),
        "top_signals": _top(weights, tokens, "signal") if policy.fields.text else [],
        "bursting_share": round(bursting, 3),
        "examples": examples,
        "representatives": [str(members.iloc[i]["item_id"]) for i in ranked if allowed.iloc[i]][
            :REPRESENTATIVES
        ],
        # every member, for review queues that route a cluster's items (labeling.route)
        "members": sorted(members["item_id"].astype(str).unique().tolist()),
    }


def _top(weights: np.ndarray, tokens: Tokens, kind: str) -> list[str]:
    """The most distinctive terms (or signals) of a cluster, by c-TF-IDF."""
    ranked = [i for i in np.argsort(-weights, kind="stable") if tokens.kinds[i] == kind]
    return [str(tokens.names[i]) for i in ranked[:TOP_TERMS] if weights[i] > 0]


def _signals(row: pd.Series, policy: Policy) -> str:
    names = [*policy.fields.numeric, *policy.fields.categorical]
    return " · ".join(f"{n} = {row[n]}" for n in names if pd.notna(row[n]))


def _round(value) -> float | None:
    return None if pd.isna(value) else round(float(value), 3)


def signature_note(cluster: dict) -> str:
    """The cluster's own words bursting together, when they do: a camouflaged campaign spreads
    its wording so that no single term bursts, yet items carrying any of its words do."""
    burst = cluster.get("signature_burst")
    if not cluster.get("signature_bursts") or not burst:
        return ""
    return (
        f"{burst['items']} of {burst['day_items']} items on {burst['day']} carry its words "
        f"({burst['baseline_items_with']} of {burst['baseline_items']} before)"
    )
