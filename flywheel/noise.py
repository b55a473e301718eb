"""The reviewers' own errors, carried into every figure read off their labels.

Reviewer labels are not the truth. At a 3% base rate, a reviewer who marks 2% of benign items
violating makes almost as many false "violating" labels as there are real ones, and a rule that
takes labels as truth guarantees something about the labels, at the price of chasing their
errors. What this module gives the rules instead: draws from the posterior of every item's
true class given all the votes, under the Dawid-Skene model (each reviewer has a sensitivity and
a specificity, and errs independently of the item given its class), with the reviewers' rates and
each stratum's share of violations uncertain too. A figure computed on each draw and bounded
over their mixture (`flywheel.stats.mixed_bounds`, `chance_below`) carries the uncertainty of
the reference as well as the sample's.

- **Gibbs sampling** (data augmentation): each item's truth given the rates and shares; each
  reviewer's rates given the truth (Beta); each stratum's share given the truth (Beta). Items
  whose truth is known (gold checks on golden items) stay fixed and pin the rates of whoever
  decided them. The chain starts at the prior's mean and is seeded: the same votes give the
  same draws.
- **Priors**: Beta(9, 1) on each reviewer's sensitivity and specificity (a trained reviewer
  is right about nine times in ten, a belief worth ten decisions), restricted to better than
  chance (their sum above 1), which also keeps the two classes from swapping; Jeffreys'
  Beta(1/2, 1/2) on each stratum's share of violations. With one or two votes per item and
  one share for all, the votes alone do not identify the model: "violations rare, reviewers
  careful" and "violations commoner, reviewers missing more of them" fit them about equally
  (at a low base rate a chain started from the vote settles in the second). The prior is what
  prefers the first; gold checks and score bands are what settle it.
- **Strata**: the share of violations is a parameter of each stratum. By default a stratum is a
  connected component of the reviewer graph (as in `flywheel.aggregate`). The threshold rules
  stratify by a model's held-out score (`score_strata`), and so does reviewer QA once a model
  has scored the labelled items: a violating vote on an item scored among benign ones is then
  weighed against how often reviewers err, and a benign vote on an item scored among
  violations against how often they miss, with the share in each band learnt from the votes
  there, not from the model.

What it assumes, and so what a guarantee built on it assumes: a reviewer's errors do not depend
on the item beyond its class (the Dawid-Skene assumption, which the aggregation already makes).
Reviewers who err mostly on hard items break it; the README's "Operating thresholds" says how.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from flywheel.aggregate import item_strata, latest_per_reviewer
from flywheel.policy import Policy

DRAWS = 400  # posterior draws kept
BURN_IN = 200  # sweeps discarded before the first kept draw
# Beta prior on each reviewer's sensitivity and specificity: a trained reviewer is right about
# nine times in ten, a belief worth ten decisions (module docstring: what it settles)
RATE_PRIOR = (9.0, 1.0)
START = RATE_PRIOR[0] / sum(RATE_PRIOR)  # the rates the chain starts from: the prior's mean
SHARE_PRIOR = (0.5, 0.5)  # Beta prior on each stratum's share of violations (Jeffreys)
CLIP = 1e-9
FIRST_STRATUM = 25  # items in the top score band; each band below holds twice the one above
STRATA_REACH = 2.0  # bands reach down to twice as many items as were labelled violating
REDRAWS = 50  # tries at a better-than-chance pair of rates before keeping the last sweep's


@dataclass(frozen=True)
class TruthDraws:
    """Posterior draws of each item's truth and each reviewer's rates."""

    items: pd.Index  # item ids, sorted
    truth: np.ndarray  # bool, items × draws
    known: np.ndarray  # bool per item: its truth was given (a gold check), not drawn
    reviewers: pd.Index  # reviewer ids, sorted
    sensitivity: np.ndarray  # draws × reviewers
    specificity: np.ndarray  # draws × reviewers
    vote_item: np.ndarray  # per vote (each reviewer's latest on an item): the item's position
    vote_reviewer: np.ndarray  # per vote: the reviewer's position
    says_positive: np.ndarray  # per vote: it said violating

    @property
    def draws(self) -> int:
        return self.truth.shape[1]

    @property
    def p_positive(self) -> np.ndarray:
        """Each item's posterior chance of violating."""
        return self.truth.mean(axis=1)

    def rows(self, item_ids) -> np.ndarray:
        """The truth draws of these items, in their order (every one must have a vote)."""
        position = self.items.get_indexer(pd.Index(item_ids))
        if (position < 0).any():
            missing = pd.Index(item_ids)[position < 0][:3].tolist()
            raise ValueError(f"no votes for items {missing}")
        return self.truth[position]

    def vote_counts(self) -> np.ndarray:
        """How many reviewers decided each item."""
        return np.bincount(self.vote_item, minlength=len(self.items))

    def noise(self, confidence: float) -> list[dict]:
        """The noise assumed, per reviewer: votes, and each rate's posterior mean with the
        central interval holding `confidence` of it (two-sided)."""
        tail = (1.0 - confidence) / 2.0 * 100.0
        votes = np.bincount(self.vote_reviewer, minlength=len(self.reviewers))
        rows = []
        for j, reviewer in enumerate(self.reviewers):
            row = {"reviewer_id": reviewer, "votes": int(votes[j])}
            for name, draws in (
                ("sensitivity", self.sensitivity),
                ("specificity", self.specificity),
            ):
                low, high = np.percentile(draws[:, j], [tail, 100.0 - tail])
                row[name] = round(float(draws[:, j].mean()), 4)
                row[f"{name}_interval"] = [round(float(low), 4), round(float(high), 4)]
            rows.append(row)
        return rows


def sample_truth(
    votes: pd.DataFrame,
    policy: Policy,
    known: pd.Series | None = None,
    strata: pd.Series | None = None,
    draws: int = DRAWS,
    burn_in: int = BURN_IN,
    seed: int = 0,
) -> TruthDraws:
    """Draws of every voted item's truth and every reviewer's rates (module docstring).

    `votes`: decisions (`item_id`, `reviewer_id`, `label`, `decided_at`; each reviewer's latest
    word per item counts). `known`: item id → truth (bool) for items whose answer is known.
    `strata`: item id → the stratum whose share of violations the item shares; items it does
    not name share one more, and by default strata are the reviewer graph's components."""
    votes = latest_per_reviewer(votes)
    items = pd.Index(np.sort(votes["item_id"].unique()))
    reviewers = pd.Index(np.sort(votes["reviewer_id"].unique()))
    item = items.get_indexer(votes["item_id"])
    reviewer = reviewers.get_indexer(votes["reviewer_id"])
    says = votes["label"].eq(policy.labels.positive).to_numpy()
    n_items, n_reviewers = len(items), len(reviewers)

    truth = np.full(n_items, np.nan)
    if known is not None and len(known):
        truth = known.astype(float).reindex(items).to_numpy(dtype=float)
    clamped = ~np.isnan(truth)
    stratum = item_strata(items, strata, item, reviewer, n_reviewers)
    n_strata = int(stratum.max()) + 1 if n_items else 0
    free = ~clamped

    rng = np.random.default_rng(seed)
    # start where the prior puts reviewers: each right on START of each class, each
    # stratum's share what its votes say under that, and the truth drawn from them. (At a low
    # base rate the votes also fit "violations common, mostly missed, never invented"; a
    # chain started from the vote can settle there and not leave.)
    sensitivity = np.full(n_reviewers, START)
    specificity = np.full(n_reviewers, START)
    vote_share = np.bincount(stratum[item], says, n_strata) / np.maximum(
        np.bincount(stratum[item], minlength=n_strata), 1
    )
    shares = np.clip((vote_share - (1 - START)) / (2 * START - 1), CLIP, 1 - CLIP)
    current = _draw_truth(shares, stratum, item, says, sensitivity, specificity, reviewer, rng)
    current = np.where(clamped, truth > 0.5, current)
    kept = np.empty((n_items, draws), dtype=bool)
    kept_sensitivity = np.empty((draws, n_reviewers))
    kept_specificity = np.empty((draws, n_reviewers))
    for sweep in range(burn_in + draws):
        sensitivity, specificity = _draw_rates(
            current[item], says, reviewer, n_reviewers, sensitivity, specificity, rng
        )
        positives = np.bincount(stratum[free], current[free], n_strata)
        sizes = np.bincount(stratum[free], minlength=n_strata)
        shares = np.clip(
            rng.beta(SHARE_PRIOR[0] + positives, SHARE_PRIOR[1] + sizes - positives), CLIP, 1 - CLIP
        )
        current = np.where(
            clamped,
            truth > 0.5,
            _draw_truth(shares, stratum, item, says, sensitivity, specificity, reviewer, rng),
        )
        if sweep >= burn_in:
            kept[:, sweep - burn_in] = current
            kept_sensitivity[sweep - burn_in] = sensitivity
            kept_specificity[sweep - burn_in] = specificity
    return TruthDraws(
        items,
        kept,
        clamped,
        reviewers,
        kept_sensitivity,
        kept_specificity,
        item,
        reviewer,
        says,
    )


def _draw_rates(truth, says, reviewer, n_reviewers, sensitivity, specificity, rng):
    """Each reviewer's rates from their Beta posterior given the truth (`RATE_PRIOR`), redrawn
    until better than chance (the last sweep's kept where that fails)."""
    t, s = truth.astype(float), says.astype(float)
    right_pos = np.bincount(reviewer, t * s, n_reviewers)
    wrong_pos = np.bincount(reviewer, t * (1 - s), n_reviewers)
    right_neg = np.bincount(reviewer, (1 - t) * (1 - s), n_reviewers)
    wrong_neg = np.bincount(reviewer, (1 - t) * s, n_reviewers)
    right_pos, wrong_pos = right_pos + RATE_PRIOR[0], wrong_pos + RATE_PRIOR[1]
    right_neg, wrong_neg = right_neg + RATE_PRIOR[0], wrong_neg + RATE_PRIOR[1]
    new_sensitivity = rng.beta(right_pos, wrong_pos)
    new_specificity = rng.beta(right_neg, wrong_neg)
    for _ in range(REDRAWS):
        bad = new_sensitivity + new_specificity <= 1.0
        if not bad.any():
            break
        new_sensitivity[bad] = rng.beta(right_pos[bad], wrong_pos[bad])
        new_specificity[bad] = rng.beta(right_neg[bad], wrong_neg[bad])
    bad = new_sensitivity + new_specificity <= 1.0
    new_sensitivity[bad], new_specificity[bad] = sensitivity[bad], specificity[bad]
    return np.clip(new_sensitivity, CLIP, 1 - CLIP), np.clip(new_specificity, CLIP, 1 - CLIP)


def _draw_truth(shares, stratum, item, says, sensitivity, specificity, reviewer, rng):
    """Each item's truth drawn given its stratum's share and its votes."""
    log_odds = logit(shares)[stratum] + np.bincount(
        item, _contributions(says, sensitivity[reviewer], specificity[reviewer]), len(stratum)
    )
    return rng.random(len(stratum)) < expit(log_odds)


def _contributions(says, sensitivity, specificity) -> np.ndarray:
    """Each vote's log likelihood ratio, violating against benign."""
    return np.where(
        says,
        np.log(sensitivity) - np.log1p(-specificity),
        np.log1p(-sensitivity) - np.log(specificity),
    )


def score_strata(scores: np.ndarray, labelled_positives: int) -> np.ndarray:
    """Bands of the model's score, each with its own share of violations in the noise model:
    the top `FIRST_STRATUM` items, then bands twice as large as the one above, down to twice as
    many items as were labelled violating, and everything below in one band. Fine where
    violations are and the share changes fast, coarse where it is flat: every band's share is
    learnt from the votes in it, and a band of benign-scored items is best learnt whole."""
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    n = len(scores)
    reach = min(n, int(STRATA_REACH * max(labelled_positives, FIRST_STRATUM)))
    band = np.empty(n, dtype=int)
    start, size, number = 0, FIRST_STRATUM, 0
    while start < n:
        end = n if start >= reach else min(n, start + size)
        band[order[start:end]] = number
        start, size, number = end, size * 2, number + 1
    return band
