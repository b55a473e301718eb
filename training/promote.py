"""The promotion gate: the challenger replaces the champion only when it is better on the
golden set, by the policy's rules.

Both models are re-scored on the current golden set (it may have grown since they were trained).
At its own thresholds, the ones it would serve with, the challenger must not be shown to miss
the policy's targets (auto-action precision and review recall): each is a one-sided exact test
at `promotion.confidence`, failing only when the golden set's upper bound is under the target
(`gate` says why that direction). Against a champion it is compared where the
champion operates (`training.evaluate.compare_where_champion_operates`): at each operating point
its recall may not drop (at the champion's FPR), and its FPR may not rise (at the champion's
recall), by more than the policy's tolerances with the policy's confidence (a bootstrap bound).
A golden set of a few hundred items resolves a recall to a golden item or two; a difference that
small is not evidence, and a gate that read it as such would reject as good a model most of the
time, and with it every new pattern the reviewers taught it. The verdict and its reasons are
recorded on the challenger's version; `dry_run` records nothing and moves nothing. An ML
engineer may promote a rejected challenger with a reason (`promote --force --reason TEXT`): the
override, its reason and the failed checks are recorded beside the verdict.
"""

from __future__ import annotations

import getpass
import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from flywheel.errors import FlywheelError
from flywheel.lake import Lake, utc_now
from flywheel.policy import Policy
from flywheel.registry import (
    CHALLENGER,
    CHAMPION,
    TAG_OVERRIDE_REASON,
    TAG_VERDICT,
    ModelVersionRef,
    connect,
    get_version,
)
from flywheel.runtime import load_model
from flywheel.settings import Settings
from flywheel.stats import Rate, operating_rates
from training.evaluate import Paired, binary_metrics, compare_where_champion_operates


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


class Verdict(BaseModel):
    """What the gate found and did; `payload()` is its JSON form for scripts."""

    policy: str
    challenger: ModelVersionRef | None
    champion: ModelVersionRef | None
    golden_version: str | None = None
    challenger_metrics: dict[str, float | int | None] = {}
    champion_metrics: dict[str, float | int | None] = {}
    paired: list[Paired] = []  # where the champion operates
    challenger_rates: dict[str, dict[str, Rate]] = {}  # operating_rates: point → measure
    champion_rates: dict[str, dict[str, Rate]] = {}
    checks: list[Check] = []
    promoted: bool = False
    dry_run: bool = False
    note: str = ""
    override_reason: str | None = None  # promoted over a failed gate, and why

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
            if self.override_reason:
                return "would be promoted by override" if self.dry_run else "promoted by override"
            return "rejected"
        return "would be promoted" if self.dry_run else "promoted"

    @property
    def recorded(self) -> str:
        """The `promotion_verdict` tag: promoted, rejected or overridden."""
        if self.passed:
            return "promoted"
        return "overridden" if self.override_reason else "rejected"

    def payload(self) -> dict:
        """The verdict as scripts read it (`flywheel promote --json`): versions as numbers,
        rates as value, bounds and n."""

        def rates(table: dict[str, dict[str, Rate]]) -> dict:
            return {p: {m: r.as_dict() for m, r in ms.items()} for p, ms in table.items()}

        return {
            "policy": self.policy,
            "outcome": self.note or self.outcome,
            "dry_run": self.dry_run,
            "challenger": self.challenger.version if self.challenger else None,
            "champion": self.champion.version if self.champion else None,
            "golden_version": self.golden_version,
            "override_reason": self.override_reason,
            "checks": [vars(c) for c in self.checks],
            "challenger_metrics": self.challenger_metrics,
            "champion_metrics": self.champion_metrics,
            "challenger_rates": rates(self.challenger_rates),
            "champion_rates": rates(self.champion_rates),
            "paired": [vars(figure) for figure in self.paired],
        }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _target_check(name: str, rate: Rate, target: float, what: str) -> Check:
    """Fail only when the golden set shows the rate under its target (its upper bound is)."""
    missing = rate.surely_below(target)
    verdict = "shows it below" if missing else "does not show it below"
    return Check(
        name,
        not missing,
        f"{what} {rate.describe()} vs target {target}: the golden set {verdict} "
        f"at {rate.confidence:.0%} confidence",
    )


def gate(
    policy: Policy,
    challenger: dict,
    paired: list[Paired] | None,
    rates: dict,
    auto_action_off: bool = False,
) -> list[Check]:
    """The checks a challenger's golden-set figures must pass (pure: figures in, checks out).
    `paired` compares it with the champion; None for the first model of a policy. `rates` are
    the challenger's golden rates with bounds (`flywheel.stats.operating_rates`).

    Each target is a one-sided test at `promotion.confidence` whose null is "the model meets
    its target": the thresholds were already chosen to meet it with a guarantee, on more data
    than a golden set holds, so the gate asks the golden set for evidence against that and
    fails the model only where the golden set shows the target missed. Comparing the point
    estimate with the target would fail a model exactly at its target half the time.
    """
    targets, rules = policy.targets, policy.promotion
    checks = [
        Check(
            "golden positives",
            challenger["positives"] >= rules.min_golden_positives,
            f"golden set has {challenger['positives']} positive items "
            f"(promotion.min_golden_positives {rules.min_golden_positives})",
        )
    ]
    precision = (rates.get("auto_action") or {}).get("precision")
    if auto_action_off:
        checks.append(
            Check(
                "auto-action precision",
                True,
                "auto-action is off (the thresholds could not show its precision): nothing to check",
            )
        )
    elif precision is None or not precision.n:
        checks.append(
            Check(
                "auto-action precision",
                True,
                "auto-action precision untested: no golden item reaches the auto-action threshold",
            )
        )
    else:
        checks.append(
            _target_check(
                "auto-action precision",
                precision,
                targets.auto_action_precision,
                "auto-action precision",
            )
        )
    recall = (rates.get("review") or {}).get("recall")
    if recall is None or not recall.n:
        checks.append(Check("review recall", False, "review recall: no positive golden item"))
    else:
        checks.append(
            _target_check("review recall", recall, targets.review_recall, "review recall")
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


def promote(
    policy: Policy, settings: Settings, dry_run: bool = False, override_reason: str | None = None
) -> Verdict:
    """Gate the challenger against the champion on the golden set; move `champion` if it passes,
    or, with `override_reason`, even though it failed (the override is recorded on the version).

    One gate per policy runs at a time in a home (the CLI, the flows and the demo all come
    here), and `champion` moves only if it still points where the gate read it: a gate never
    replaces a model it was not compared with, even one moved by hand or from another home."""
    if override_reason is not None and not override_reason.strip():
        raise FlywheelError("an override needs a reason (--reason TEXT): it is recorded")
    with Lake(settings.lake_dir).lock(policy.name, "promote"):
        return _gate_and_move(policy, settings, dry_run, override_reason)


def _gate_and_move(
    policy: Policy, settings: Settings, dry_run: bool, override_reason: str | None
) -> Verdict:
    client = connect(settings)
    challenger = get_version(client, policy.name, CHALLENGER)
    champion = get_version(client, policy.name, CHAMPION)
    verdict = Verdict(policy=policy.name, challenger=challenger, champion=champion, dry_run=dry_run)
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
    confidence = policy.promotion.confidence

    def figures(ref: ModelVersionRef) -> tuple[dict, dict, np.ndarray]:
        scores = load_model(client, ref, policy, settings.allow_pickle_models).score(golden.frame)
        return (
            binary_metrics(truth, scores, ref.thresholds),
            operating_rates(truth, ref.thresholds.decide(scores), confidence),
            scores,
        )

    verdict.challenger_metrics, verdict.challenger_rates, challenger_scores = figures(challenger)
    if champion is not None:
        verdict.champion_metrics, verdict.champion_rates, champion_scores = figures(champion)
        operates = dict(verdict.champion_metrics)
        if math.isinf(champion.thresholds.auto_action):
            # a champion that never auto-actions has no operating point there to compare at
            operates |= {"auto_action_fpr": None, "auto_action_recall": None}
        verdict.paired = compare_where_champion_operates(
            truth, challenger_scores, champion_scores, operates, confidence
        )
    verdict.checks = gate(
        policy,
        verdict.challenger_metrics,
        verdict.paired if champion is not None else None,
        verdict.challenger_rates,
        auto_action_off=math.isinf(challenger.thresholds.auto_action),
    )
    if not verdict.passed and override_reason is not None:
        verdict.override_reason = override_reason.strip()
    if dry_run:
        return verdict
    moves = verdict.passed or verdict.override_reason
    now = get_version(client, policy.name, CHAMPION)
    if moves and getattr(now, "version", None) != getattr(champion, "version", None):
        raise FlywheelError(
            f"{policy.name}: the champion moved from {_named(champion)} to {_named(now)} while "
            f"the gate compared version {challenger.version} with it; nothing was recorded or "
            "promoted (run the gate again)"
        )
    tags = {
        "promotion_reasons": "; ".join(verdict.reasons),
        "promotion_checked_at": utc_now().isoformat(),
        "promotion_golden_version": golden.version,
        "promotion_compared_to": str(champion.version) if champion else "none",
        TAG_VERDICT: verdict.recorded,
    }
    if verdict.override_reason:
        tags |= {
            TAG_OVERRIDE_REASON: verdict.override_reason,
            "promotion_failed_checks": "; ".join(c.name for c in verdict.checks if not c.passed),
            "promotion_overridden_by": getpass.getuser(),
        }
    for key, value in tags.items():
        client.set_model_version_tag(policy.name, str(challenger.version), key, value[:5000])
    if moves:
        client.set_registered_model_alias(policy.name, CHAMPION, str(challenger.version))
        verdict.promoted = True
    return verdict


def _named(ref: ModelVersionRef | None) -> str:
    return f"version {ref.version}" if ref is not None else "none"
