"""The promotion gate: the challenger replaces the champion only when it is better on the
golden set, by the policy's rules.

Both models are re-scored on the current golden set (it may have grown since they were trained).
At its own thresholds, the ones it would serve with, the challenger must meet the policy's
targets: auto-action precision and review recall. Against a champion it is compared where the
champion operates (`training.evaluate.compare_where_champion_operates`): at each operating point
its recall may not drop (at the champion's FPR), and its FPR may not rise (at the champion's
recall), by more than the policy's tolerances with the policy's confidence (a bootstrap bound).
A golden set of a few hundred items resolves a recall to a golden item or two; a difference that
small is not evidence, and a gate that read it as such would reject as good a model most of the
time, and with it every new pattern the reviewers taught it. The verdict and its reasons are
recorded on the challenger's version; `dry_run` records nothing and moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flywheel.errors import FlywheelError
from flywheel.lake import Lake, utc_now
from flywheel.policy import Policy
from flywheel.registry import (
    CHALLENGER,
    CHAMPION,
    ModelVersionRef,
    connect,
    get_version,
    load_model,
)
from flywheel.settings import Settings
from training.evaluate import Paired, binary_metrics, compare_where_champion_operates


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Verdict:
    policy: str
    challenger: ModelVersionRef | None
    champion: ModelVersionRef | None
    golden_version: str | None = None
    challenger_metrics: dict = field(default_factory=dict)
    champion_metrics: dict = field(default_factory=dict)
    paired: list[Paired] = field(default_factory=list)  # where the champion operates
    checks: list[Check] = field(default_factory=list)
    promoted: bool = False
    dry_run: bool = False
    note: str = ""

    @property
    def reasons(self) -> list[str]:
        failed = [c.detail for c in self.checks if not c.passed]
        return failed or [c.detail for c in self.checks]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def outcome(self) -> str:
        if not self.checks:
            return "unchanged"
        if not self.passed:
            return "rejected"
        return "would be promoted" if self.dry_run else "promoted"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def gate(policy: Policy, challenger: dict, paired: list[Paired] | None) -> list[Check]:
    """The checks a challenger's golden-set figures must pass (pure: figures in, checks out).
    `paired` compares it with the champion; None for the first model of a policy."""
    targets, rules = policy.targets, policy.promotion
    checks = [
        Check(
            "golden positives",
            challenger["positives"] >= rules.min_golden_positives,
            f"golden set has {challenger['positives']} positive items "
            f"(promotion.min_golden_positives {rules.min_golden_positives})",
        )
    ]
    precision = challenger["auto_action_precision"]
    checks.append(
        Check(
            "auto-action precision",
            precision is not None and precision >= targets.auto_action_precision,
            f"auto-action precision {_fmt(precision)} vs target {targets.auto_action_precision}"
            + (" (the model auto-actions no golden item)" if precision is None else ""),
        )
    )
    recall = challenger["review_recall"]
    checks.append(
        Check(
            "review recall",
            recall is not None and recall >= targets.review_recall,
            f"review recall {_fmt(recall)} vs target {targets.review_recall}",
        )
    )
    if paired is None:
        return checks
    for figure in paired:
        tolerance = (
            rules.recall_drop_tolerance if figure.measure == "recall" else rules.fpr_rise_tolerance
        )
        checks.append(
            Check(
                figure.name,
                figure.worse_by_at_least <= tolerance,
                f"{figure.name} {_fmt(figure.challenger)} vs champion {_fmt(figure.champion)} "
                f"{figure.where}: worse by {_fmt(figure.worse_by)}, by at least "
                f"{_fmt(figure.worse_by_at_least)} at {rules.confidence:.0%} confidence "
                f"(may be worse by {tolerance})",
            )
        )
    return checks


def promote(policy: Policy, settings: Settings, dry_run: bool = False) -> Verdict:
    """Gate the challenger against the champion on the golden set; move `champion` if it passes."""
    client = connect(settings)
    challenger = get_version(client, policy.name, CHALLENGER)
    champion = get_version(client, policy.name, CHAMPION)
    verdict = Verdict(policy.name, challenger, champion, dry_run=dry_run)
    if challenger is None:
        raise FlywheelError(
            f"no challenger for {policy.name}: run `flywheel train --policy {policy.name}`"
        )
    if champion is not None and champion.version == challenger.version:
        verdict.note = f"version {challenger.version} is already the champion"
        return verdict
    golden = Lake(settings.lake_dir).golden(policy.name)
    if golden is None:
        raise FlywheelError(
            f"no golden set for {policy.name}: import one with "
            f"`flywheel golden import FILE --policy {policy.name}`"
        )
    verdict.golden_version = golden.version
    truth = golden.frame["label"].eq(policy.labels.positive).to_numpy()

    def figures(ref: ModelVersionRef) -> tuple[dict, np.ndarray]:
        scores = load_model(client, ref, policy).score(golden.frame)
        return binary_metrics(truth, scores, ref.thresholds), scores

    verdict.challenger_metrics, challenger_scores = figures(challenger)
    if champion is not None:
        verdict.champion_metrics, champion_scores = figures(champion)
        verdict.paired = compare_where_champion_operates(
            truth,
            challenger_scores,
            champion_scores,
            verdict.champion_metrics,
            policy.promotion.confidence,
        )
    verdict.checks = gate(
        policy, verdict.challenger_metrics, verdict.paired if champion is not None else None
    )
    if dry_run:
        return verdict
    for key, value in {
        "promotion_reasons": "; ".join(verdict.reasons),
        "promotion_checked_at": utc_now().isoformat(),
        "promotion_golden_version": golden.version,
        "promotion_compared_to": str(champion.version) if champion else "none",
        "promotion_verdict": "promoted" if verdict.passed else "rejected",
    }.items():
        client.set_model_version_tag(policy.name, str(challenger.version), key, value[:5000])
    if verdict.passed:
        client.set_registered_model_alias(policy.name, CHAMPION, str(challenger.version))
        verdict.promoted = True
    return verdict
