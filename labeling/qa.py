"""Reviewer quality: judged on all the evidence, with intervals that carry the reference's own
uncertainty and flags that mean evidence.

A reviewer's sensitivity (right on violating items) and specificity (right on benign ones) are
measured on two kinds of evidence: gold checks, where the answer is known, and items other
reviewers also decided, where the answer is what all the votes say under the reviewers' fitted
error rates (`flywheel.noise`). That reference is uncertain: a few violating items decided with
one other reviewer, or with a careless one, do not make a known answer. So the answer on every
such item is drawn from its posterior, the reviewer's right and wrong answers are counted on
each draw, and the bounds are those of the mixture of each draw's exact (Clopper-Pearson)
confidence distribution (`flywheel.stats.mixed_bounds`): an interval that covers the truth when
the reference is thin, and equals the exact one when it is known. This holds for imported
history as well as Label Studio decisions: a careless reviewer with no gold checks is still
judged on the items they shared. Once a model has scored the labelled items (training leaves
their held-out scores in the lake), the noise model's share of violations is learnt per band of
that score (`_bands`): with one or two votes per item the votes alone cannot tell rare
violations and careful reviewers from commoner violations and reviewers who miss more, and the
bands are what settle it where gold checks are few.

The bar applies to balanced accuracy (the mean of the two rates: golden sets are enriched in
violations, traffic is not, so plain accuracy would depend on the mix a reviewer happened to
get), with bounds at `labeling.confidence`: a flag opens when the upper bound is under the bar
and clears only when the lower bound is over it (`judge`). A reviewer without enough evidence
either way is reported as unjudged, and the report says which evidence would judge them: how
many violating (or benign) gold checks, which the push then mixes into the gold checks it sends
(`labeling.sample.gold_sample`), within the policy's gold rate. At a low base rate it is
usually the violating ones: a reviewer shares few violating items with anyone.

Beside it: accuracy on gold checks alone with its bounds, the fitted confusion matrix,
agreement with the consensus, Cohen's kappa for every pair with shared items, Krippendorff's
alpha for the whole team, and pace. The report goes to the lake (`labeling/<policy>/qa.json`),
where monitoring and dataset building read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import combinations

import krippendorff
import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from sklearn.metrics import cohen_kappa_score

from flywheel.aggregate import Reliability, fit_reliability, latest_per_reviewer, reviewer_speed
from flywheel.files import write_json_atomic
from flywheel.lake import Lake, content_hash, utc_now
from flywheel.noise import TruthDraws, sample_truth, score_strata
from flywheel.policy import Policy
from flywheel.stats import Rate, min_n_for_bound, mixed_bounds, mixed_lower_bound

MIN_SHARED_ITEMS = 5  # a kappa on fewer shared items says nothing
MAX_ASK = 200  # the most gold checks of one class asked for a reviewer at a time


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), digits)


def _gold(votes: pd.DataFrame, golden: pd.DataFrame | None, policy: Policy) -> pd.DataFrame:
    columns = ["n_gold", "correct", "n_pos", "tp", "n_neg", "tn"]
    if golden is None or golden.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="reviewer_id"))
    checked = votes.merge(golden[["item_id", "label"]], on="item_id", suffixes=("", "_gold"))
    positive = checked["label_gold"].eq(policy.labels.positive)
    correct = checked["label"].eq(checked["label_gold"])
    return (
        pd.DataFrame(
            {
                "reviewer_id": checked["reviewer_id"],
                "n_gold": 1,
                "correct": correct.astype(int),
                "n_pos": positive.astype(int),
                "tp": (correct & positive).astype(int),
                "n_neg": (~positive).astype(int),
                "tn": (correct & ~positive).astype(int),
            }
        )
        .groupby("reviewer_id")[columns]
        .sum()
    )


def _consensus(fitted: Reliability) -> pd.Series:
    """Each reviewer's agreement with the label of items someone else also decided: the label
    the other votes give (leave-one-out), so a reviewer is not measured against themselves."""
    shared = fitted.votes[~fitted.votes["known"] & fitted.votes["p_others"].notna()]
    if shared.empty:
        return pd.Series(dtype=float)
    agrees = shared["says_positive"] == (shared["p_others"] > 0.5)
    return agrees.groupby(shared["reviewer_id"]).mean()


def _pairs(votes: pd.DataFrame) -> list[dict]:
    table = votes.pivot(index="item_id", columns="reviewer_id", values="label")
    pairs = []
    for a, b in combinations(sorted(table.columns), 2):
        both = table[[a, b]].dropna()
        if len(both) < MIN_SHARED_ITEMS:
            continue
        # with one label between them kappa is undefined (no chance agreement to beat)
        single = pd.unique(both[[a, b]].to_numpy().ravel()).size < 2
        kappa = None if single else cohen_kappa_score(both[a], both[b])
        pairs.append(
            {
                "reviewers": [a, b],
                "shared_items": len(both),
                "agreement": _round(both[a].eq(both[b]).mean()),
                "cohen_kappa": _round(kappa),
            }
        )
    return pairs


def _alpha(votes: pd.DataFrame, policy: Policy) -> float | None:
    shared = votes[votes.groupby("item_id")["reviewer_id"].transform("size") > 1]
    if shared.empty or shared["label"].nunique() < 2:
        return None
    coded = shared.assign(code=shared["label"].eq(policy.labels.positive).astype(float))
    matrix = coded.pivot(index="reviewer_id", columns="item_id", values="code").to_numpy()
    return _round(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))


@dataclass(frozen=True)
class Evidence:
    """One reviewer's answers on the items whose answer is known or others also decided,
    counted on each draw of the reference: right on violating items out of how many, right on
    benign items out of how many."""

    right_positive: np.ndarray
    positives: np.ndarray
    right_negative: np.ndarray
    negatives: np.ndarray
    shared_items: int  # items decided with someone else (gold checks apart)
    _bounds: dict = field(default_factory=dict, compare=False, repr=False)

    def sensitivity(self, confidence: float) -> tuple[float | None, float, float]:
        return self._rate("sensitivity", self.right_positive, self.positives, confidence)

    def specificity(self, confidence: float) -> tuple[float | None, float, float]:
        return self._rate("specificity", self.right_negative, self.negatives, confidence)

    def _rate(self, name: str, right: np.ndarray, n: np.ndarray, confidence: float):
        """A rate at a confidence, computed once (the flag and the ask both read it)."""
        key = (name, confidence)
        if key not in self._bounds:
            self._bounds[key] = _estimate(right, n, confidence)
        return self._bounds[key]


def _estimate(right: np.ndarray, n: np.ndarray, confidence: float):
    """A rate over the draws: its value (right over items, summed over the draws) and its
    mixed exact bounds (`flywheel.stats.mixed_bounds`)."""
    value = float(right.sum() / n.sum()) if n.sum() else None
    low, high = mixed_bounds(right, n, confidence)
    return value, low, high


def _evidence(draws: TruthDraws, among: np.ndarray | None = None) -> dict[str, Evidence]:
    """Per reviewer, their answers counted on every draw of the truth, on the items that say
    something about them: gold checks and items someone else decided too (an item they decided
    alone would only measure them against their own vote). `among` (per vote) restricts the
    count to some votes, e.g. one queue's, still against the truth drawn from all of them."""
    counts = draws.vote_counts()
    wanted = draws.known[draws.vote_item] | (counts[draws.vote_item] > 1)
    useful = np.flatnonzero(wanted & (True if among is None else among))
    item, reviewer = draws.vote_item[useful], draws.vote_reviewer[useful]
    says = draws.says_positive[useful][:, None]
    truth = draws.truth[item]
    n = len(draws.reviewers)
    one_hot = csr_matrix((np.ones(len(item)), (reviewer, np.arange(len(item)))), (n, len(item)))

    def per_reviewer(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(one_hot @ matrix.astype(np.float64))

    right_positive = per_reviewer(truth & says)
    positives = per_reviewer(truth)
    right_negative = per_reviewer(~truth & ~says)
    negatives = per_reviewer(~truth)
    shared = np.bincount(reviewer[~draws.known[item]], minlength=n)
    return {
        r: Evidence(
            right_positive[j], positives[j], right_negative[j], negatives[j], int(shared[j])
        )
        for j, r in enumerate(draws.reviewers)
    }


def judge(
    evidence: Evidence, evidence_items: int, rules, was_flagged: bool
) -> tuple[str, float | None, float | None]:
    """A reviewer's standing from the bounds of their balanced accuracy.

    The bounds combine the two rates' one-sided bounds, each at half the error allowance
    (Bonferroni), so the balanced accuracy lies under its upper bound (and over its lower one)
    with at least the stated confidence, the reference's doubt included. A flag opens when the
    upper bound is under the bar (the evidence shows the reviewer below it) and clears only
    when the lower bound is over it; in between the reviewer keeps the standing they had, so a
    flag does not flicker on noise. With less evidence than `labeling.min_gold_checks` items
    the reviewer is unjudged, not fine.
    """
    if evidence_items < rules.min_gold_checks:
        return ("flagged" if was_flagged else "unjudged"), None, None
    bar = rules.min_reviewer_accuracy
    half = 1.0 - (1.0 - rules.confidence) / 2.0
    _, sens_low, sens_high = evidence.sensitivity(half)
    _, spec_low, spec_high = evidence.specificity(half)
    low, high = (sens_low + spec_low) / 2.0, (sens_high + spec_high) / 2.0
    if high < bar:
        return "flagged", low, high
    if low > bar:
        return "meets the bar", low, high
    return ("flagged" if was_flagged else "unjudged"), low, high


def evidence_needed(evidence: Evidence, rules) -> dict[str, int]:
    """For a reviewer the evidence cannot judge yet: about how many more violating and benign
    gold checks would, if they kept answering as they have. The rate whose bound is further
    from its value is asked for first (at a low base rate, sensitivity: few shared items are
    violating); both when one alone would not do."""
    bar = rules.min_reviewer_accuracy
    half = 1.0 - (1.0 - rules.confidence) / 2.0
    sens, sens_low, sens_high = evidence.sensitivity(half)
    spec, spec_low, spec_high = evidence.specificity(half)
    # a class not seen at all is asked for as many items as a flawless record needs to show
    # the lowest rate with which the other one could still reach the bar
    blank = min_n_for_bound(1.0, 2.0 * bar - 1.0, half) or 1
    if sens is None or spec is None:
        return {
            "violating": blank if sens is None else 0,
            "benign": blank if spec is None else 0,
        }
    above = (sens + spec) / 2.0 > bar
    margin = 2.0 * abs((sens + spec) / 2.0 - bar)
    if margin <= 0:
        return {"violating": 0, "benign": 0}
    spread = {
        "violating": (sens - sens_low) if above else (sens_high - sens),
        "benign": (spec - spec_low) if above else (spec_high - spec),
    }
    values = {"violating": sens, "benign": spec}
    counts = {"violating": evidence.positives.mean(), "benign": evidence.negatives.mean()}
    first = max(spread, key=spread.get)
    other = "benign" if first == "violating" else "violating"
    wanted = {first: margin - spread[other], other: spread[other]}
    if wanted[first] <= 0:  # the other rate alone is too loose: tighten both to half the margin
        wanted = {first: margin / 2.0, other: margin / 2.0}
    asks = {
        kind: _more_items(values[kind], counts[kind], wanted[kind], above, half)
        if wanted[kind] < spread[kind]
        else 0
        for kind in ("violating", "benign")
    }
    if not any(asks.values()):  # bounds that are not symmetric: ask for the looser rate anyway
        asks[first] = rules.min_gold_checks
    return asks


def _more_items(rate: float, have: float, spread: float, above: bool, confidence: float) -> int:
    """Items of one class beyond `have` at which a rate like `rate` is bounded within `spread`
    of it on the side that decides (the lower bound for a reviewer above the bar), at most
    `MAX_ASK` at a time: a record that sits near the bar would need thousands, and gold checks,
    whose answers are known, usually move the estimate before that."""
    value, bar = (rate, rate - spread) if above else (1.0 - rate, 1.0 - rate - spread)
    if value <= max(bar, 0.0):  # this rate cannot decide it, however many items
        return 0
    needed = min_n_for_bound(value, max(bar, 0.0), confidence, limit=100 * MAX_ASK)
    if needed is None:
        return MAX_ASK
    return min(max(math.ceil(needed - have), 0), MAX_ASK)


def _bands(votes: pd.DataFrame, scores: pd.Series | None, policy: Policy) -> pd.Series | None:
    """The noise model's strata: bands of a model's held-out score where there are scores.

    With one or two votes per item and one share of violations per component, the votes alone
    do not tell "violations rare, reviewers careful" from "violations commoner, reviewers
    missing more of them": the prior chooses, and with plenty of evidence the intervals close
    around its choice. Bands of the score break the tie (each band's share is learnt from the
    votes in it, and their differences pin the reviewers' rates), as they do for the threshold
    rules. Items no model has scored (decided since the last training) share one more band.
    The model only sorts items into bands: which answer is right is still the votes'."""
    if scores is None or scores.empty:
        return None
    scored = scores[scores.index.isin(votes["item_id"])]
    if scored.empty:
        return None
    says = votes[votes["item_id"].isin(scored.index)]
    majority = says["label"].eq(policy.labels.positive).groupby(says["item_id"]).mean() > 0.5
    return pd.Series(score_strata(scored.to_numpy(), int(majority.sum())), index=scored.index)


def _reason(standing: str, balanced, high, bar: float, said: str) -> str:
    """Why a reviewer (a person or automated) stands where they do, on what evidence."""
    if standing == "flagged" and high is not None and high < bar:
        return f"balanced accuracy {balanced:.2f} (at most {high:.2f}) < {bar:.2f} on {said}"
    if standing == "flagged":
        return f"flagged earlier and not yet shown above {bar:.2f}, on {said}"
    if standing == "unjudged":
        return f"not enough evidence either way on {said}"
    return ""


def _asking(needs: dict | None) -> str:
    """What the reason adds about the evidence that would judge a reviewer."""
    wanted = [f"{n} {kind}" for kind, n in (needs or {}).items() if n]
    return f": about {' and '.join(wanted)} gold checks more would judge them" if wanted else ""


def _rates(e: Evidence, confidence: float) -> dict:
    """Sensitivity and specificity with their bounds, as the report shows them."""
    sens, spec = e.sensitivity(confidence), e.specificity(confidence)
    return {
        "sensitivity": _round(sens[0]),
        "sensitivity_ci": [_round(sens[1]), _round(sens[2])],
        "specificity": _round(spec[0]),
        "specificity_ci": [_round(spec[1]), _round(spec[2])],
    }


def _by_queue(draws: TruthDraws, votes: pd.DataFrame, queues: pd.Series, rules) -> dict:
    """Reviewer → queue → their rates on that queue's tasks, with bounds at the policy's
    confidence; `queues` maps Label Studio task ids to review queues (imported decisions and
    tasks of no queue count only overall)."""
    if "task_id" not in votes:
        return {}
    queue = votes["task_id"].astype(str).map(queues).to_numpy()
    out: dict[str, dict] = {}
    for name in sorted(q for q in pd.unique(queue) if isinstance(q, str) and q):
        mine = queue == name
        evidence = _evidence(draws, mine)
        decided = votes.loc[mine, "reviewer_id"].value_counts()
        for reviewer, e in evidence.items():
            if reviewer not in decided.index:
                continue
            out.setdefault(reviewer, {})[name] = {
                "decisions": int(decided[reviewer]),
                "evidence_items": e.shared_items,
                **_rates(e, rules.confidence),
            }
    return out


def _answers_evidence(draws: TruthDraws, answers: pd.DataFrame, positive: str) -> Evidence:
    """An automated reviewer's answers counted on every draw of the truth people's votes give:
    its own answer is no vote, so every item a person decided says something about it."""
    truth = draws.rows(answers["item_id"])
    says = answers["label"].eq(positive).to_numpy()[:, None]
    known = draws.known[draws.items.get_indexer(pd.Index(answers["item_id"]))]
    return Evidence(
        (truth & says).sum(axis=0).astype(float),
        truth.sum(axis=0).astype(float),
        (~truth & ~says).sum(axis=0).astype(float),
        (~truth).sum(axis=0).astype(float),
        int((~known).sum()),
    )


def autonomy(
    draws: TruthDraws, answers: pd.DataFrame, policy: Policy, name: str, granted_before: list
) -> dict:
    """Where an automated reviewer may decide alone: for each queue and each label L it gives
    there, two lower bounds at its `autonomy.confidence`, mixed over the truth's draws:
    - its accuracy when it says L (the share of those answers people's truth confirms);
    - how rarely it says L when the truth is the other label (on the queue's items of that
      label: for `benign`, its sensitivity; for the positive label, its specificity).
    The first alone is not enough where one label is rare: a reviewer that calls everything
    benign is right on 98% of its answers in a queue with 2% violations, and would let every
    violation through. Granted where both bounds reach `min_accuracy` on at least `min_checks`
    answers, and only there; re-judged on every report, so a grant whose bound fell is revoked
    (and listed as such). A queue is `all` for a policy without queues."""
    spec = next((r for r in policy.automated_reviewers if f"auto:{r.name}" == name), None)
    rules = spec.autonomy if spec is not None else None
    out: dict = {"granted": [], "refused": [], "revoked": []}
    if rules is None:
        out["off"] = True
        return out
    queue = answers["review_queue"].fillna("").astype(str).replace("", "all")
    for where, mine in answers.groupby(queue, sort=True):
        truth_all = draws.rows(mine["item_id"])
        for label, part in mine.groupby("label", sort=True):
            positive = label == policy.labels.positive
            says = (mine["label"] == label).to_numpy()[:, None]
            is_label = truth_all if positive else ~truth_all
            right = (is_label & says).sum(axis=0).astype(float)
            n = np.full(draws.draws, float(len(part)))
            low = mixed_lower_bound(right, n, rules.confidence)
            # the other label's items it did not call L
            other = ~is_label
            kept = mixed_lower_bound(
                (other & ~says).sum(axis=0).astype(float),
                other.sum(axis=0).astype(float),
                rules.confidence,
            )
            entry = {
                "queue": where,
                "label": str(label),
                "answers": len(part),
                "accuracy": _round(float(right.mean() / len(part))),
                "low": _round(low),
                "other_label_kept_low": _round(kept),
            }
            if len(part) < rules.min_checks:
                why = f"{len(part)} answers, fewer than {rules.min_checks}"
            elif low < rules.min_accuracy:
                why = f"accuracy at least {low:.3f}, under {rules.min_accuracy:.3f}"
            elif kept < rules.min_accuracy:
                why = (
                    f"it says {label} on at most {1 - kept:.3f} of the other label's items, "
                    f"over {1 - rules.min_accuracy:.3f}"
                )
            else:
                out["granted"].append(entry)
                continue
            out["refused"].append({**entry, "reason": why})
    now = {(g["queue"], g["label"]) for g in out["granted"]}
    out["revoked"] = [g for g in granted_before if (g["queue"], g["label"]) not in now]
    return out


def automated_reviewers(
    draws: TruthDraws,
    verdicts: pd.DataFrame,
    policy: Policy,
    was_flagged: set[str],
    previous: dict | None = None,
) -> list[dict]:
    """The automated reviewers' rows of the report, judged as people are (`judge`), against
    the truth drawn from people's votes alone: they take no part in the reference, so a poor
    one cannot move how people are judged. Their latest answer on each item people decided
    counts; an item they could not answer counts as a failure, not as a verdict."""
    rules = policy.labeling
    before = {
        r["reviewer_id"]: (r.get("autonomy") or {}).get("granted", [])
        for r in (previous or {}).get("reviewers", [])
        if r.get("kind") == "automated"
    }
    latest = verdicts.sort_values("asked_at").drop_duplicates(
        ["reviewer_id", "item_id"], keep="last"
    )
    rows = []
    for reviewer, mine in latest.groupby("reviewer_id", sort=True):
        answered = mine[mine["label"].notna()]
        answers = answered[answered["item_id"].isin(draws.items)]
        e = _answers_evidence(draws, answers, policy.labels.positive)
        n_gold = len(answers) - e.shared_items
        gold = answers[draws.known[draws.items.get_indexer(pd.Index(answers["item_id"]))]]
        right = int(
            (
                draws.rows(gold["item_id"])[:, 0]
                == gold["label"].eq(policy.labels.positive).to_numpy()
            ).sum()
        )
        gold_rate = Rate(right, n_gold, rules.confidence)
        standing, low, high = judge(e, len(answers), rules, reviewer in was_flagged)
        rates = _rates(e, rules.confidence)
        balanced = (
            (rates["sensitivity"] + rates["specificity"]) / 2
            if rates["sensitivity"] is not None and rates["specificity"] is not None
            else None
        )
        said = f"{len(answers)} items people decided ({n_gold} gold checks)"
        reason = _reason(standing, balanced, high, rules.min_reviewer_accuracy, said)
        by_queue = {}
        for queue, part in answers.groupby(answers["review_queue"].fillna("").astype(str)):
            if queue:
                by_queue[queue] = {
                    "decisions": len(part),
                    "evidence_items": len(part),
                    **_rates(
                        _answers_evidence(draws, part, policy.labels.positive), rules.confidence
                    ),
                }
        rows.append(
            {
                "reviewer_id": reviewer,
                "kind": "automated",
                "decisions": len(answered),
                "asked": len(mine),
                "failures": int(mine["label"].isna().sum()),
                "gold_checks": n_gold,
                "gold_accuracy": _round(right / n_gold if n_gold else None),
                "gold_accuracy_ci": [_round(gold_rate.low), _round(gold_rate.high)],
                "overlap_items": e.shared_items,
                "violating_evidence": _round(e.positives.mean(), 1),
                "benign_evidence": _round(e.negatives.mean(), 1),
                **rates,
                "balanced_accuracy": _round(balanced),
                "balanced_accuracy_ci": [_round(low), _round(high)],
                "standing": standing,
                "flagged": standing == "flagged",
                "reason": reason,
                "by_queue": by_queue,
                "autonomy": autonomy(draws, answers, policy, reviewer, before.get(reviewer, [])),
            }
        )
    return rows


def reviewer_quality(
    decisions: pd.DataFrame,
    golden: pd.DataFrame | None,
    policy: Policy,
    previous: dict | None = None,
    scores: pd.Series | None = None,
    queues: pd.Series | None = None,
    verdicts: pd.DataFrame | None = None,
) -> dict:
    """The QA report of a policy's reviewers, as plain data; `previous` is the last report,
    whose open flags stay open until the evidence clears them; `scores` (item id → a model's
    held-out score, `Lake.labelled_scores`) band the noise model by score; `queues` (task id →
    review queue) adds each reviewer's rates per queue; `verdicts` (`Lake.verdicts`) adds the
    automated reviewers, judged against people (`automated_reviewers`)."""
    rules = policy.labeling
    bar = rules.min_reviewer_accuracy
    report = {
        "policy": policy.name,
        "computed_at": utc_now().isoformat(),
        "bar": {"min_balanced_accuracy": bar, "min_evidence_items": rules.min_gold_checks},
        "confidence": rules.confidence,
        "reviewers": [],
        "pairs": [],
        "krippendorff_alpha": None,
        "flagged": [],
        "unjudged": [],
    }
    if decisions.empty:
        return report
    was_flagged = set((previous or {}).get("flagged", []))
    votes = latest_per_reviewer(decisions)
    known = (
        golden.set_index("item_id")["label"].eq(policy.labels.positive)
        if golden is not None and not golden.empty
        else None
    )
    fitted = fit_reliability(votes, policy, known)
    draws = sample_truth(votes, policy, known, _bands(votes, scores, policy))
    gold = _gold(votes, golden, policy)
    evidence = _evidence(draws)
    consensus = _consensus(fitted)
    speed = reviewer_speed(votes)
    per_queue = _by_queue(draws, votes, queues, rules) if queues is not None else {}
    for reviewer in sorted(speed.index):
        g = gold.loc[reviewer] if reviewer in gold.index else pd.Series(0, index=gold.columns)
        n_gold = int(g["n_gold"])
        accuracy = g["correct"] / n_gold if n_gold else None
        gold_rate = Rate(int(g["correct"]), n_gold, rules.confidence)
        e = evidence[reviewer]
        sensitivity = e.sensitivity(rules.confidence)
        specificity = e.specificity(rules.confidence)
        items = n_gold + e.shared_items
        standing, low, high = judge(e, items, rules, reviewer in was_flagged)
        balanced = (
            (sensitivity[0] + specificity[0]) / 2
            if sensitivity[0] is not None and specificity[0] is not None
            else None
        )
        said = f"{n_gold} gold checks and {e.shared_items} items shared with others"
        needs = evidence_needed(e, rules) if standing != "meets the bar" else None
        reason = _reason(standing, balanced, high, bar, said) + (
            _asking(needs) if standing == "unjudged" else ""
        )
        row = speed.loc[reviewer]
        report["reviewers"].append(
            {
                "reviewer_id": reviewer,
                "decisions": int(row["decisions"]),
                "gold_checks": n_gold,
                "gold_accuracy": _round(accuracy),
                "gold_accuracy_ci": [_round(gold_rate.low), _round(gold_rate.high)],
                "gold_sensitivity": _round(g["tp"] / g["n_pos"] if g["n_pos"] else None),
                "gold_specificity": _round(g["tn"] / g["n_neg"] if g["n_neg"] else None),
                "overlap_items": e.shared_items,
                "violating_evidence": _round(e.positives.mean(), 1),
                "benign_evidence": _round(e.negatives.mean(), 1),
                "consensus_agreement": _round(consensus.get(reviewer)),
                "sensitivity": _round(sensitivity[0]),
                "sensitivity_ci": [_round(sensitivity[1]), _round(sensitivity[2])],
                "specificity": _round(specificity[0]),
                "specificity_ci": [_round(specificity[1]), _round(specificity[2])],
                "fitted_sensitivity": _round(fitted.reviewers.loc[reviewer, "sensitivity"]),
                "fitted_specificity": _round(fitted.reviewers.loc[reviewer, "specificity"]),
                "balanced_accuracy": _round(balanced),
                "balanced_accuracy_ci": [_round(low), _round(high)],
                "standing": standing,
                "needs_gold_checks": needs,
                "decisions_per_active_hour": _round(row["decisions"] / row["active_hours"], 2),
                "median_seconds_per_decision": _round(row["median_seconds"], 1),
                "p90_seconds_per_decision": _round(row["p90_seconds"], 1),
                "flagged": standing == "flagged",
                "reason": reason,
                "by_queue": per_queue.get(reviewer, {}),
            }
        )
    if verdicts is not None and not verdicts.empty:
        report["reviewers"] += automated_reviewers(draws, verdicts, policy, was_flagged, previous)
    report["pairs"] = _pairs(votes)
    report["krippendorff_alpha"] = _alpha(votes, policy)
    report["flagged"] = [r["reviewer_id"] for r in report["reviewers"] if r["flagged"]]
    report["unjudged"] = [
        r["reviewer_id"] for r in report["reviewers"] if r["standing"] == "unjudged"
    ]
    return report


def read_qa(policy: Policy, lake: Lake) -> dict | None:
    """The latest QA report in the lake, if any."""
    path = lake.labeling_path(policy.name, "qa.json")
    return json.loads(path.read_text()) if path.is_file() else None


def gold_mix(report: dict | None) -> float:
    """The share of the next gold checks to draw from violating golden items: what the
    unjudged reviewers' asks add up to (`needs_gold_checks`), half when nobody asks. Label
    Studio hands a task to whoever opens it, so the checks reach the whole team; the asks only
    change their mix, within the policy's gold rate."""
    asks = [r.get("needs_gold_checks") or {} for r in (report or {}).get("reviewers", [])]
    violating = sum(a.get("violating", 0) for a in asks)
    benign = sum(a.get("benign", 0) for a in asks)
    return violating / (violating + benign) if violating + benign else 0.5


def run_qa(policy: Policy, lake: Lake) -> dict:
    """Compute the report from the lake and store it there, for monitoring and for dataset
    building (which leaves flagged reviewers' decisions out).

    The same evidence keeps its judgement: when no decision, golden item or QA rule changed
    since the last report, and that report was already banded by a model's scores (or there
    are still none), it stands. Judging the same votes again with each new model's bands would
    test the same reviewers repeatedly (a flag somewhere by chance) and would change the
    dataset, and so the model, on a rerun that brought nothing new."""
    golden = lake.golden(policy.name)
    golden_frame = golden.frame if golden is not None else None
    decisions = lake.decisions(policy.name)
    verdicts = lake.verdicts(policy.name)
    scores = lake.labelled_scores(policy.name)
    path = lake.labeling_path(policy.name, "qa.json")
    previous = read_qa(policy, lake)
    evidence = content_hash(
        decisions,
        *([golden_frame] if golden_frame is not None else []),
        *([verdicts] if not verdicts.empty else []),
        extra=policy.labeling.model_dump(mode="json"),
    )
    if (
        previous is not None
        and previous.get("evidence") == evidence
        and (previous.get("scored") or scores is None)
    ):
        return previous
    ledger = lake.pushed_tasks(policy.name) if policy.queues is not None else pd.DataFrame()
    queues = (
        ledger.set_index(ledger["task_id"].astype(str))["review_queue"].dropna()
        if "review_queue" in ledger
        else None
    )
    report = reviewer_quality(decisions, golden_frame, policy, previous, scores, queues, verdicts)
    report["evidence"] = evidence
    report["scored"] = scores is not None
    write_json_atomic(report, path)
    return report
