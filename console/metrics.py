"""The monitoring figures for Prometheus: the console's `GET /metrics`.

Monitoring runs are batch jobs that end; the console is the long-running reader of what they
wrote, so it is what Prometheus scrapes. Each scrape reads the latest run's report of every
policy (parsed once, see `figures.reports`), the open alerts, the live backlog and the latest
reviewer-quality report, and exposes them as gauges labelled by policy, and by field, queue,
reviewer, operating point or rate where they apply. A figure measured on a sample comes with its
bounds and its count as series of their own (`…_low`, `…_high`, `…_items`), so an alert rule can
ask whether a rate is surely past a limit, as Flywheel's own alerts do. The policy's targets and
alert limits are exported too, so rules and dashboards read them instead of repeating numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from console.figures import (
    Home,
    alerts,
    backlog,
    queue_forecast,
    reports,
    reviewer_quality,
    sla_compliance,
)
from monitoring.report import FieldDrift, Figure, MonitoringReport

PREFIX = "flywheel_"


class _Families:
    """Gauge families made on first use, so a scrape holds only the figures that exist."""

    def __init__(self) -> None:
        self.families: dict[str, GaugeMetricFamily] = {}

    def set(self, name: str, help_text: str, labels: dict[str, str], value: Any) -> None:
        if value is None:
            return
        family = self.families.get(name)
        if family is None:
            family = GaugeMetricFamily(PREFIX + name, help_text, labels=list(labels))
            self.families[name] = family
        family.add_metric(list(labels.values()), float(value))

    def figure(self, name: str, help_text: str, labels: dict[str, str], f: Figure | None) -> None:
        """A rate, its bounds and the items it rests on, as four series."""
        if f is None or f.value is None:
            return
        self.set(name, help_text, labels, f.value)
        self.set(f"{name}_low", f"Lower bound of: {help_text}", labels, f.low)
        self.set(f"{name}_high", f"Upper bound of: {help_text}", labels, f.high)
        self.set(f"{name}_items", f"Items behind: {help_text}", labels, f.n)


class MonitoringCollector(Collector):
    """Collects every policy's latest monitoring figures at each scrape."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def collect(self) -> Iterator[Metric]:
        out = _Families()
        info = InfoMetricFamily(
            PREFIX + "champion",
            "The champion in the latest run and how it got its alias.",
            labels=["policy"],
        )
        every_alert = alerts(self.home)
        for name, policy in self.home.policies().items():
            p = {"policy": name}
            latest = reports(self.home, name, newest=1)
            if latest:
                report = latest[-1]
                _report(out, p, report)
                promotion = report.promotion
                info.add_metric(
                    [name],
                    {
                        "version": str(report.models.get("champion", "")),
                        "verdict": (promotion.verdict or "none") if promotion else "none",
                    },
                )
            if policy is not None:
                _limits(out, p, policy)
            queues = backlog(self.home, name, policy)
            for q in queues.queues:
                labels = p | {"queue": q.name}
                out.set("backlog_open_tasks", "Open review tasks now, by queue.", labels, q.open)
                age = q.oldest_hours * 3600 if q.oldest_hours is not None else 0.0
                out.set(
                    "backlog_oldest_age_seconds",
                    "Age of the oldest open task (0: none).",
                    labels,
                    age,
                )
                out.set(
                    "backlog_sla_breaches", "Open tasks older than the SLA.", labels, q.breaches
                )
                if queues.routed:
                    out.set(
                        "backlog_escalated",
                        "Open tasks escalated near their SLA, by review queue.",
                        labels,
                        q.escalated,
                    )
            _queues(out, p, self.home, name, policy)
            _reviewers(out, p, reviewer_quality(self.home, name))
            mine = [a for a in every_alert if a.policy == name and a.open]
            out.set("alerts_open", "Open Flywheel alerts.", p, len(mine))
            for a in mine:
                out.set(
                    "alert_open",
                    "An open Flywheel alert (1), by kind and subject.",
                    p | {"kind": a.kind, "subject": a.subject},
                    1,
                )
        yield info
        yield from out.families.values()


def _queues(out: _Families, p: dict[str, str], home, name: str, policy) -> None:
    """Review queues: the latest day's SLA compliance with its bounds, and the forecast."""
    for queue, frame in sla_compliance(home, name, policy).items():
        last = frame.iloc[-1]
        labels = p | {"queue": queue}
        for suffix, column in (
            ("", "compliance"),
            ("_low", "compliance_low"),
            ("_high", "compliance_high"),
        ):
            out.set(
                f"queue_sla_compliance{suffix}",
                "Share of the latest day's tasks decided within the queue's SLA"
                + (" (bound)" if suffix else "") + ".",
                labels,
                last[column],
            )  # fmt: skip
        out.set(
            "queue_sla_compliance_tasks", "Tasks behind that share.", labels, last["compliance_n"]
        )
    forecast = queue_forecast(home, name) or {}
    for q in forecast.get("queues", []):
        labels = p | {"queue": q["queue"]}
        for d in q["days"]:
            if d["within_sla"] is not None:
                out.set(
                    "queue_forecast_sla_compliance",
                    "Expected share of a coming day's tasks decided within the SLA.",
                    labels | {"day": str(d["day"])},
                    d["within_sla"],
                )
        for suffix, key in (
            ("", "expected_compliance"),
            ("_low", "compliance_low"),
            ("_high", "compliance_high"),
        ):
            if q.get(key) is not None:
                out.set(
                    f"queue_forecast_horizon_sla_compliance{suffix}",
                    "Expected share of all the forecast's tasks decided within the SLA"
                    + (" (5th or 95th percentile of the simulated futures)" if suffix else "")
                    + ".",
                    labels,
                    q[key],
                )
        if q["reviewers_needed"] is not None:
            out.set(
                "queue_reviewers_needed",
                "Reviewers that would hold the policy's SLA target (forecast).",
                labels,
                q["reviewers_needed"],
            )
        out.set(
            "queue_reviewers_rostered", "Reviewers rostered on the queue.", labels, q["rostered"]
        )


def _appeals(out: _Families, p: dict[str, str], r: MonitoringReport) -> None:
    """Appeals per model version, beside the audit's FPR (exported with the audit rates)."""
    for version, a in ((r.production.appeals or {}).get("by_version") or {}).items():
        labels = p | {"model_version": version}
        out.set(
            "appeals_received", "Appeals of auto-actioned items received.", labels, a["received"]
        )
        out.set("appeals_decided", "Appeals reviewers have decided.", labels, a["decided"])
        rate = a["overturn_rate"]
        for suffix, key in (("", "value"), ("_low", "low"), ("_high", "high")):
            out.set(
                f"appeal_overturn_rate{suffix}",
                "Share of decided appeals overturned (appealed items select themselves: see "
                "the audit's FPR for auto_action's error rate)" + (" (bound)." if suffix else "."),
                labels,
                rate[key],
            )


def _report(out: _Families, p: dict[str, str], r: MonitoringReport) -> None:
    from datetime import datetime

    _appeals(out, p, r)

    out.set(
        "monitor_run_timestamp_seconds",
        "When the latest monitoring run was computed.",
        p,
        datetime.fromisoformat(r.computed_at).timestamp(),
    )
    out.set(
        "monitor_window_predictions",
        "Predictions in the latest run's window.",
        p,
        r.window.predictions,
    )
    for alias, version in r.models.items():
        out.set(
            "model_version_monitored",
            "Model version by alias in the latest run.",
            p | {"alias": alias},
            version,
        )
    if r.drift is not None:
        out.set(
            "drift_share", "Share of the policy's fields that drifted.", p, r.drift.drifted_share
        )
        for field, d in r.drift.fields.items():
            _drift(out, "field", "a field", p | {"field": field}, d)
        if r.drift.score is not None:
            _drift(out, "score", "the score distribution", p, r.drift.score)
    for model, golden in (r.golden or {}).items():
        for slice_, points in golden.slices.items():
            for point, measures in points.items():
                for measure, figure in measures.items():
                    out.figure(
                        "golden_rate",
                        "A golden-set rate of a model at an operating point, in a slice.",
                        p | {"model": model, "slice": slice_, "point": point, "measure": measure},
                        figure,
                    )
    audit = r.production.audit
    out.set("audit_items", "Items audited blind in the latest window.", p, audit.audited_items)
    for rate, figure in audit.rates.items():
        out.figure(
            "audit_rate",
            "A production rate estimated from the blind audit.",
            p | {"rate": rate},
            figure,
        )
    out.set(
        "fallback_share",
        "Share of the window's predictions answered on fallback.",
        p,
        r.health.fallback_share,
    )
    emerging = r.emerging.clusters if r.emerging else []
    out.set(
        "emerging_clusters",
        "Emerging clusters in the latest run.",
        p,
        sum(c.emerging for c in emerging),
    )
    out.set(
        "novel_clusters",
        "Novel clusters (not bursting) in the latest run.",
        p,
        sum(not c.emerging for c in emerging),
    )


def _drift(out: _Families, name: str, what: str, labels: dict[str, str], d: FieldDrift) -> None:
    """A drift test's statistic, its threshold, and whether it failed."""
    out.set(
        f"{name}_drift", f"The drift statistic of {what} against training data.", labels, d.value
    )
    out.set(
        f"{name}_drift_threshold", f"The threshold of {what}'s drift test.", labels, d.threshold
    )
    if d.drifted is not None:
        out.set(
            f"{name}_drifted", f"{what.capitalize()} drifted (1) or not (0).", labels, d.drifted
        )


def _limits(out: _Families, p: dict[str, str], policy) -> None:
    """The policy's targets and alert limits, for rules and dashboards to compare with."""
    targets = policy.targets
    for name, value in (
        ("auto_action_precision", targets.auto_action_precision),
        ("review_recall", targets.review_recall),
    ):
        out.set("target", "A target of the policy.", p | {"target": name}, value)
    for name, value in policy.alert_limits.items():
        out.set(
            "alert_limit",
            "An alert limit of the policy (absent: that alert is off).",
            p | {"limit": name},
            value,
        )
    out.set(
        "sla_seconds",
        "Time within which a review task should be decided.",
        p,
        policy.monitoring.sla_hours * 3600,
    )
    out.set(
        "monitoring_confidence",
        "The confidence of the policy's intervals.",
        p,
        policy.monitoring.confidence,
    )


def _reviewers(out: _Families, p: dict[str, str], qa: dict | None) -> None:
    if not qa:
        return
    for r in qa.get("reviewers", []):
        labels = p | {"reviewer": str(r["reviewer_id"])}
        bounds = r.get("balanced_accuracy_ci") or [None, None]
        out.figure(
            "reviewer_balanced_accuracy",
            "A reviewer's balanced accuracy (gold checks and agreement).",
            labels,
            Figure(
                value=r.get("balanced_accuracy"),
                low=bounds[0],
                high=bounds[1],
                n=r.get("gold_checks"),
            ),
        )
        out.set(
            "reviewer_flagged",
            "The reviewer is flagged (1) or not (0).",
            labels,
            bool(r.get("flagged")),
        )
        out.set("reviewer_decisions", "Decisions the reviewer made.", labels, r.get("decisions"))
        out.set(
            "reviewer_decisions_per_active_hour",
            "The reviewer's pace.",
            labels,
            r.get("decisions_per_active_hour"),
        )


def registry(home: Home) -> CollectorRegistry:
    """The console's registry: the monitoring figures and the process's own collectors."""
    registry = CollectorRegistry()
    registry.register(MonitoringCollector(home))
    ProcessCollector(registry=registry)
    registry.register(PLATFORM_COLLECTOR)
    registry.register(GC_COLLECTOR)
    return registry
