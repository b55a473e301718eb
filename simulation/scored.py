"""Scored worlds: items with a model's scores and reviewers' votes, and nothing else, for
measuring the rules that read only scores and votes (operating thresholds, reviewer QA) over
many seeded draws.

Violations come at a base rate; the model's scores are logistic-normal, two classes apart
(`LOGIT_POSITIVE`, `LOGIT_NEGATIVE`: a strong model, whose true recall, precision and review
share at any threshold are known exactly); each item is decided by one reviewer, or by two
for `overlap` of them, drawn from a team whose every member errs at their own rates whatever
the item (`simulation.world.team`). Everything a rule sees follows the platform's formats: the
votes are decisions (`item_id`, `reviewer_id`, `label`, `decided_at`, `known`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import norm

from simulation.world import Reviewer

LOGIT_POSITIVE = (2.5, 1.6)  # mean and spread of violating items' scores, on the logit scale
LOGIT_NEGATIVE = (-4.0, 1.3)
POSITIVE, NEGATIVE = "violating", "benign"


@dataclass(frozen=True)
class ScoredWorld:
    prevalence: float
    truth: np.ndarray  # per item: violating
    scores: np.ndarray  # per item: the model's score
    votes: pd.DataFrame  # the decisions
    labels: np.ndarray  # per item: the vote (a tie is benign)
    team: tuple[Reviewer, ...]

    @property
    def items(self) -> pd.Series:
        return pd.Series(np.arange(len(self.scores)))


def scored_world(
    rng: np.random.Generator,
    prevalence: float,
    team: tuple[Reviewer, ...],
    decisions: int = 12_000,
    overlap: float = 0.125,
    gold_checks: float = 0.0,
) -> ScoredWorld:
    """About `decisions` decisions on items of which `overlap` are decided twice, and
    `gold_checks` as many again on golden items (half violating, answers known), each by one
    reviewer; golden items have no score and are not among the world's items."""
    n = round(decisions / (1 + overlap))
    truth = rng.random(n) < prevalence
    scores = expit(np.where(truth, rng.normal(*LOGIT_POSITIVE, n), rng.normal(*LOGIT_NEGATIVE, n)))
    counts = np.where(rng.random(n) < overlap, 2, 1)
    item = np.repeat(np.arange(n), counts)
    picks = np.argsort(rng.random((n, len(team))), axis=1)
    who = picks[np.arange(len(team)) < counts[:, None]]
    right = np.where(
        truth[item], [team[k].sensitivity for k in who], [team[k].specificity for k in who]
    )
    says = np.where(rng.random(len(item)) < right, truth[item], ~truth[item])
    votes = pd.DataFrame(
        {
            "item_id": item,
            "reviewer_id": [team[k].reviewer_id for k in who],
            "label": np.where(says, POSITIVE, NEGATIVE),
            "decided_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "known": pd.array([None] * len(item), "boolean"),
        }
    )
    labels = np.bincount(item, says, n) / counts > 0.5
    if gold_checks:
        votes = pd.concat([votes, _gold_checks(rng, team, round(gold_checks * decisions), n)])
    return ScoredWorld(prevalence, truth, scores, votes, labels, team)


def _gold_checks(rng, team: tuple[Reviewer, ...], k: int, first: int) -> pd.DataFrame:
    """`k` gold checks: golden items numbered from `first`, half violating, one reviewer each."""
    known = np.arange(k) < k // 2
    who = rng.integers(0, len(team), k)
    right = np.where(known, [team[j].sensitivity for j in who], [team[j].specificity for j in who])
    says = np.where(rng.random(k) < right, known, ~known)
    return pd.DataFrame(
        {
            "item_id": first + np.arange(k),
            "reviewer_id": [team[j].reviewer_id for j in who],
            "label": np.where(says, POSITIVE, NEGATIVE),
            "decided_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "known": pd.array(known, "boolean"),
        }
    )


def true_recall(threshold: float) -> float:
    """The share of violating items scored at or above `threshold`."""
    return float(norm.sf(logit(np.clip(threshold, 1e-12, 1 - 1e-12)), *LOGIT_POSITIVE))


def true_share(threshold: float, prevalence: float) -> float:
    """The share of all items scored at or above `threshold`."""
    z = logit(np.clip(threshold, 1e-12, 1 - 1e-12))
    return float(
        prevalence * norm.sf(z, *LOGIT_POSITIVE) + (1 - prevalence) * norm.sf(z, *LOGIT_NEGATIVE)
    )


def true_precision(threshold: float, prevalence: float) -> float:
    """The share of items scored at or above `threshold` that violate."""
    z = logit(np.clip(threshold, 1e-12, 1 - 1e-12))
    hit = prevalence * norm.sf(z, *LOGIT_POSITIVE)
    return float(hit / (hit + (1 - prevalence) * norm.sf(z, *LOGIT_NEGATIVE)))


def oracle_threshold(recall: float) -> float:
    """The threshold a known truth would serve for `recall`."""
    return float(expit(norm.isf(recall, *LOGIT_POSITIVE)))
