"""What the console shows, read from the lake and the registry: plain records for the pages.

The console writes nothing. It reads what the packages wrote: each monitoring run's report
(`report.json`, the typed `MonitoringReport`), the alert store, labeling's ledger, decisions and
latest QA report, the prediction log (counted inside DuckDB, never loaded) and the model
registry. Reports are immutable once written, so each is parsed once and kept by path.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel import clock
from flywheel.errors import FlywheelError
from flywheel.lake import Lake
from flywheel.policy import Monitoring, Policy, load_policy
from flywheel.predictions import traffic
from flywheel.settings import Settings
from monitoring.alerts import Alert, AlertStore
from monitoring.health import first_decisions
from monitoring.report import Figure, MonitoringReport

RUNS_SHOWN = 200  # the newest monitoring runs a policy page plots
OLDEST_SHOWN = 15  # open tasks listed per policy on the queues page
TRAFFIC_DAYS = 14
DECISIONS = ("allow", "review", "auto_action")


@dataclass(frozen=True)
class Home:
    """One Flywheel home as the console reads it."""

    settings: Settings

    @property
    def lake(self) -> Lake:
        return Lake(self.settings.lake_dir)

    def policies(self) -> dict[str, Policy | None]:
        """Every policy this home holds data of, with its policy file when one is found (its
        targets and SLA draw the target lines); a home of several policies shows them all."""
        root = self.settings.lake_dir
        names = set(self.lake.monitored_policies()) | {
            p.name
            for kind in ("predictions", "decisions", "labeling")
            if (root / kind).is_dir()
            for p in (root / kind).iterdir()
            if p.is_dir() and not p.name.startswith(("_", "."))
        }
        found: dict[str, Policy | None] = {}
        for name in sorted(names):
            try:
                found[name] = load_policy(name, self.settings)
            except (FlywheelError, OSError, ValueError):
                found[name] = None
        return found


# monitoring runs ---------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _parsed(path: str, stamp: int) -> MonitoringReport | None:
    try:
        return MonitoringReport.model_validate_json(Path(path).read_bytes())
    except (OSError, ValueError):
        return None


def reports(home: Home, policy: str, newest: int = RUNS_SHOWN) -> list[MonitoringReport]:
    """The newest monitoring runs' reports, oldest first (a run without a readable report is
    left out: a run being written, or one from a release whose report differs)."""
    lake = home.lake
    run_ids = [p.stem.removeprefix("part-") for p in lake.history_files(policy)][-newest:]
    found = []
    for run_id in run_ids:
        path = lake.run_dir(policy, run_id) / "report.json"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            continue
        report = _parsed(str(path), stamp)
        if report is not None:
            found.append(report)
    return found


def _figure(figure: Figure | None, prefix: str) -> dict[str, float | None]:
    return {
        prefix: figure.value if figure else None,
        f"{prefix}_low": figure.low if figure else None,
        f"{prefix}_high": figure.high if figure else None,
        f"{prefix}_n": figure.n if figure else None,
    }


def series(runs: list[MonitoringReport]) -> pd.DataFrame:
    """A row of figures per run, each rate with its bounds and the items behind it."""
    rows = []
    for r in runs:
        golden = r.champion_golden
        audit = r.production.audit.rates
        drift = r.drift
        rows.append(
            {
                "run_id": r.run_id,
                "computed_at": pd.Timestamp(r.computed_at),
                "champion": r.models.get("champion"),
                "predictions": r.window.predictions,
                "drifted_share": drift.drifted_share if drift else None,
                "score_drift": drift.score.value if drift and drift.score else None,
                "score_drift_threshold": drift.score.threshold if drift and drift.score else None,
                **_figure(golden.rate("auto_action", "precision") if golden else None, "gp"),
                **_figure(golden.rate("review", "recall") if golden else None, "gr"),
                **_figure(audit.get("auto_action_fpr"), "fpr"),
                **_figure(audit.get("allow_fnr"), "fnr"),
                **_figure(audit.get("auto_action_precision"), "ap"),
                "open_tasks": r.health.backlog.open_tasks,
                "sla_breaches": r.health.backlog.sla_breaches,
                "open_alerts": len(r.alerts.open),
            }
        )
    return pd.DataFrame(rows)


# traffic and queues ------------------------------------------------------------------------


def daily_traffic(home: Home, policy: Policy, days: int = TRAFFIC_DAYS) -> pd.DataFrame:
    """Predictions per hour (and day) and decision over the last `days` days."""
    return traffic(home.settings, policy, clock.now(home.settings).timestamp() - days * 86400)


def decision_mix(frame: pd.DataFrame, since: pd.Timestamp) -> dict[str, Any]:
    """How many predictions since `since`, the share of each decision and of fallback."""
    recent = frame[frame["hour"] >= since.tz_localize(None)] if not frame.empty else frame
    total = int(recent["predictions"].sum()) if not recent.empty else 0
    by = recent.groupby("decision")["predictions"].sum() if total else pd.Series(dtype=float)
    fallback = int(recent.loc[recent["fallback"], "predictions"].sum()) if total else 0
    return {
        "predictions": total,
        "shares": {d: (float(by.get(d, 0)) / total if total else None) for d in DECISIONS},
        "fallback_share": fallback / total if total else None,
    }


@dataclass(frozen=True)
class Queue:
    name: str
    open: int
    oldest_hours: float | None
    breaches: int
    sla_hours: float | None = None  # a review queue's own SLA (None: the policy's)
    escalated: int = 0  # open tasks escalated near their SLA


@dataclass(frozen=True)
class Backlog:
    sla_hours: float
    queues: list[Queue] = field(default_factory=list)
    oldest: list[dict[str, Any]] = field(default_factory=list)
    project_id: int | None = None
    routed: bool = False  # the policy's review queues (`queues:`), not the task's purpose

    @property
    def open(self) -> int:
        return sum(q.open for q in self.queues)

    @property
    def breaches(self) -> int:
        return sum(q.breaches for q in self.queues)

    @property
    def oldest_hours(self) -> float | None:
        return max((q.oldest_hours for q in self.queues if q.open), default=None)


def _slas(policy: Policy | None) -> dict[str, float]:
    return {q.name: q.sla_hours for q in policy.queues.define} if policy and policy.queues else {}


def backlog(home: Home, name: str, policy: Policy | None) -> Backlog:
    """Open review tasks now, per queue (every queue the policy defines, and every one tasks
    were pushed to, open or not), their age against the SLA (each review queue's own, with
    `queues:`), the escalated ones, and the oldest few."""
    sla = (policy.monitoring if policy else Monitoring()).sla_hours  # the default without a file
    slas = _slas(policy)
    lake = home.lake
    ledger = lake.pushed_tasks(name)
    project = lake.labeling_state(name).get("project_id")
    if ledger.empty:
        return Backlog(sla, project_id=project, routed=bool(slas))
    by = "review_queue" if slas and "review_queue" in ledger else "queue"
    ledger = ledger[ledger[by].notna() & ledger[by].ne("")]
    waiting = ledger[~ledger["task_id"].isin(first_decisions(ledger, lake.decisions(name)).index)]
    now = pd.Timestamp(clock.now(home.settings))
    age = (now - pd.to_datetime(waiting["pushed_at"], utc=True)).dt.total_seconds() / 3600
    limit = waiting[by].map(slas).fillna(sla) if slas else sla
    escalated = set(lake.escalations(name)["task_id"].astype(str))
    waiting = waiting.assign(
        age_hours=age, limit=limit, escalated=waiting["task_id"].astype(str).isin(escalated)
    )
    groups = dict(list(waiting.groupby(by)))
    queues = []
    for q in sorted(set(slas) | set(ledger[by].unique())):
        mine = groups.get(q)
        if mine is None:
            queues.append(Queue(str(q), 0, None, 0, slas.get(q)))
            continue
        queues.append(
            Queue(
                str(q),
                len(mine),
                float(mine["age_hours"].max()),
                int((mine["age_hours"] > mine["limit"]).sum()),
                slas.get(q),
                int(mine["escalated"].sum()),
            )
        )
    oldest = waiting.nlargest(OLDEST_SHOWN, "age_hours")
    rows = [
        {
            "task_id": str(row.task_id),
            "item_id": str(row.item_id),
            "queue": str(getattr(row, by)),
            "age_hours": float(row.age_hours),
            "late": bool(row.age_hours > row.limit),
            "escalated": bool(row.escalated),
            "reason": "" if pd.isna(row.reason) else str(row.reason),
            "project_id": int(row.project_id) if "project_id" in waiting else project,
        }
        for row in oldest.itertuples()
    ]
    return Backlog(
        sla, sorted(queues, key=lambda q: (-q.open, q.name)), rows, project, routed=by != "queue"
    )


def sla_compliance(home: Home, name: str, policy: Policy | None) -> dict[str, pd.DataFrame]:
    """Per review queue and day of push: the share of its tasks decided within the queue's
    SLA, with exact bounds at the policy's monitoring confidence and the tasks behind it. A
    task still open within its SLA has no outcome yet and is left out; one open past it counts
    as missed."""
    from flywheel.stats import Rate

    slas = _slas(policy)
    ledger = home.lake.pushed_tasks(name)
    if not slas or ledger.empty or "review_queue" not in ledger:
        return {}
    ledger = ledger[ledger["review_queue"].isin(list(slas))]
    first = first_decisions(ledger, home.lake.decisions(name))
    pushed = pd.to_datetime(ledger["pushed_at"], utc=True)
    decided = pd.to_datetime(ledger["task_id"].map(first), utc=True)
    limit = pd.to_timedelta(ledger["review_queue"].map(slas), unit="h")
    now = pd.Timestamp(clock.now(home.settings))
    known = decided.notna() | (now - pushed > limit)
    met = decided.notna() & (decided - pushed <= limit)
    frame = pd.DataFrame(
        {"queue": ledger["review_queue"], "day": pushed.dt.floor("D"), "met": met}
    )[known]
    confidence = policy.monitoring.confidence if policy else Monitoring().confidence
    out = {}
    for queue, rows in frame.groupby("queue"):
        days = rows.groupby("day")["met"].agg(["sum", "count"]).reset_index()
        pairs = zip(days["sum"], days["count"], strict=True)
        rates = [Rate(int(k), int(n), confidence) for k, n in pairs]
        out[str(queue)] = pd.DataFrame(
            {
                "computed_at": days["day"],
                "compliance": [r.value for r in rates],
                "compliance_n": days["count"],
                "compliance_low": [r.low for r in rates],
                "compliance_high": [r.high for r in rates],
            }
        )
    return out


def queue_forecast(home: Home, name: str) -> dict[str, Any] | None:
    """Labeling's latest forecast (`flywheel queues forecast`), if any."""
    path = home.lake.labeling_path(name, "queues.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# reviewers, alerts, models -----------------------------------------------------------------


def reviewer_quality(home: Home, policy: str) -> dict[str, Any] | None:
    """Labeling's latest reviewer-quality report (None before the first QA run)."""
    path = home.lake.labeling_path(policy, "qa.json")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def alerts(home: Home) -> list[Alert]:
    """Every alert, newest first."""
    store = AlertStore(home.settings.lake_dir)
    return sorted(store.all(), key=lambda a: a.last_seen_at, reverse=True)


@dataclass(frozen=True)
class Version:
    version: int
    created: pd.Timestamp
    aliases: tuple[str, ...]
    review: float | None
    auto_action: float | None
    verdict: str
    reasons: str
    override: str
    dataset: str
    golden_precision: float | None
    golden_recall: float | None
    review_share: float | None = None  # expected share of traffic to review
    truth_share: float | None = None  # what a threshold on the truth would review (estimated)
    guarantee: str = ""  # whether the recall target is shown at the served thresholds
    notes: str = ""  # the thresholds' notes: why a target is not shown, what would show it


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def model_versions(home: Home, policy: str) -> list[Version]:
    """Every registered version of the policy's model, newest first, with what its tags say."""
    from flywheel.registry import connect

    client = connect(home.settings)
    try:
        found = client.search_model_versions(f"name = '{policy}'")
    except Exception as exc:  # an unregistered name on some stores
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return []
        raise
    aliases: dict[int, list[str]] = {}
    if found:
        for alias, number in client.get_registered_model(policy).aliases.items():
            aliases.setdefault(int(number), []).append(alias)
    versions = []
    for v in found:
        tags = v.tags or {}
        auto = _number(tags.get("threshold_auto_action"))
        versions.append(
            Version(
                version=int(v.version),
                # MLflow stamps on the wall clock; a simulated home runs ahead of it
                created=pd.Timestamp(
                    clock.at(pd.Timestamp(v.creation_timestamp, unit="ms", tz="UTC"), home.settings)
                ),
                aliases=tuple(sorted(aliases.get(int(v.version), []))),
                review=_number(tags.get("threshold_review")),
                auto_action=None if auto is None or math.isinf(auto) else auto,
                verdict=tags.get("promotion_verdict", ""),
                reasons=tags.get("promotion_reasons", ""),
                override=tags.get("promotion_override_reason", ""),
                dataset=tags.get("dataset_version", ""),
                golden_precision=_number(tags.get("golden_auto_action_precision")),
                golden_recall=_number(tags.get("golden_review_recall")),
                review_share=_number(tags.get("expected_review_share")),
                truth_share=_number(tags.get("truth_threshold_review_share")),
                guarantee=tags.get("review_guarantee", ""),
                notes=""
                if tags.get("threshold_notes") == "none"
                else tags.get("threshold_notes", ""),
            )
        )
    return sorted(versions, key=lambda v: -v.version)
