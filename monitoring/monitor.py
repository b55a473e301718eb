"""One monitoring run of a policy: the figures, the report files, the alerts.

Each part says so when it cannot run (no champion yet, an empty window, no golden set, a field
absent from the traffic) instead of failing the run: an operations lead reading the report needs
to know what was not measured as much as what was.

Files: `lake/monitoring/<policy>/runs/<run id>/` holds `report.json` (every figure), and when
drift ran, Evidently's `drift.html` and `drift.json`; `history/` keeps one row of key figures
per run, for the health page over time.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from flywheel.audit import audit_plan
from flywheel.files import write_json_atomic
from flywheel.lake import Lake, utc_now, write_parquet_atomic
from flywheel.novelty import training_items
from flywheel.policy import Policy
from flywheel.predictions import read_predictions, unfiled_segments
from flywheel.registry import TAG_OVERRIDE_REASON, TAG_VERDICT, ModelVersionRef
from flywheel.runtime import Model
from flywheel.settings import Settings
from monitoring.alerts import TERM_SEPARATOR, AlertStore, Condition
from monitoring.drift import SCORE, detect_drift
from monitoring.emerging import emerging_risk, signature_note
from monitoring.golden import decide, golden_report, golden_snapshot
from monitoring.health import operational_health
from monitoring.page import add_to_workspace, write_health_page
from monitoring.production import (
    appeal_rates,
    audit_estimates,
    compare,
    labelled_tasks,
    score_estimates,
)
from monitoring.report import AlertChanges, Cluster, Figure, MonitoringReport

TERMS_IN_ALERT = 5
MIN_DAY_ITEMS = 200  # a day with fewer scored items is not tested for drift on its own


def _models(settings: Settings, policy: Policy) -> dict[str, Model]:
    from flywheel.registry import connect, get_version
    from flywheel.runtime import load_model

    client = connect(settings)
    models = {}
    for alias in ("champion", "challenger"):
        ref = get_version(client, policy.name, alias)
        if ref is not None:
            models[alias] = (
                models["champion"]
                if "champion" in models and models["champion"].ref.version == ref.version
                else load_model(client, ref, policy, settings.allow_pickle_models)
            )
    return models


def promotion_record(ref: ModelVersionRef) -> dict:
    """How the champion got its alias: the gate's verdict, an override and its reason, or no
    verdict at all (the alias moved outside `flywheel promote`, e.g. in MLflow's UI)."""
    verdict = ref.tags.get(TAG_VERDICT)
    record = {
        "version": ref.version,
        "verdict": verdict,
        "override_reason": ref.tags.get(TAG_OVERRIDE_REASON),
        "failed_checks": ref.tags.get("promotion_failed_checks"),
        "note": None,
    }
    if verdict is None:
        record["note"] = (
            f"champion v{ref.version} carries no promotion verdict: its alias was moved "
            "outside `flywheel promote` (by hand in MLflow, or a script), so no gate checked it"
        )
    elif verdict == "overridden":
        record["note"] = (
            f"champion v{ref.version} was promoted over a failed gate "
            f"({record['failed_checks']}): {record['override_reason']}"
        )
    elif verdict != "promoted":
        record["note"] = f"champion v{ref.version} carries the verdict {verdict!r}"
    return record


def _reference(lake: Lake, policy: Policy, champion: Model) -> pd.DataFrame | None:
    """The champion's training split, scored by the champion (None if not in this lake)."""
    frame = training_items(lake, policy, champion.ref, policy.monitoring.drift_sample)
    return None if frame is None else frame.assign(**{SCORE: champion.score(frame)})


def drift_per_day(reference: pd.DataFrame, current: pd.DataFrame, policy: Policy) -> list[dict]:
    """Drift of each day of a window longer than a day: a change that lasts one day is diluted
    in a week's figures. Days with fewer than `MIN_DAY_ITEMS` scored items are not tested."""
    days = pd.to_datetime(current["scored_at"], utc=True).dt.floor("D")
    if days.nunique() < 2:
        return []
    found = []
    for day, frame in current.groupby(days):
        if len(frame) < MIN_DAY_ITEMS:
            continue
        result = detect_drift(reference, frame, policy)
        found.append(
            {
                "day": day.date().isoformat(),
                "items": len(frame),
                "drifted_share": result.drifted_share,
                "drifted": [n for n, f in result.fields.items() if f.get("drifted")],
                "score": (result.score or {}).get("value"),
                "score_drifted": (result.score or {}).get("drifted"),
            }
        )
    return found


def conditions(policy: Policy, report: MonitoringReport) -> list[Condition]:
    """What in a run's figures crosses the policy's alert thresholds."""
    rules = policy.monitoring.alerts
    limits = policy.alert_limits
    found: list[Condition] = []

    def above(kind: str, subject: str, value, limit, what: str, below: bool = False) -> None:
        """A count against its limit (no sample behind it: backlog, breaches, shares)."""
        if value is None or limit is None:
            return
        if (value < limit) if below else (value > limit):
            word = "below" if below else "above"
            found.append(
                Condition(kind, subject, value, limit, f"{what} {value:.3f} {word} {limit:.3f}")
            )

    def shown(kind, subject, rate: Figure | None, limit, what: str, of: str, below=False) -> None:
        """A rate from a sample: only when its bounds show the bar crossed at the confidence."""
        if rate is None or rate.value is None or limit is None:
            return
        low, high = rate.low, rate.high
        crossed = (
            (high is not None and high < limit) if below else (low is not None and low > limit)
        )
        if crossed:
            word = "below" if below else "above"
            found.append(
                Condition(
                    kind,
                    subject,
                    rate.value,
                    limit,
                    f"{what} {rate.value:.3f} [{low:.3f}, {high:.3f}] on {rate.count} {of}: "
                    f"{word} {limit:.3f} at {confidence}",
                )
            )

    drift = report.drift
    share = drift.drifted_share if drift else None
    if rules.drift_share is not None and share is not None and share >= rules.drift_share:
        drifted = [name for name, f in drift.fields.items() if f.drifted]
        found.append(
            Condition(
                "drift",
                "fields",
                share,
                rules.drift_share,
                f"{share:.0%} of fields drifted ({', '.join(drifted)})",
            )
        )
    if rules.score_drift and drift and drift.score and drift.score.drifted:
        found.append(
            Condition(
                "drift",
                "score",
                drift.score.value,
                drift.score.threshold,
                "the score distribution drifted",
            )
        )
    confidence = f"{policy.monitoring.confidence:.0%} confidence"
    champion = report.champion_golden
    if champion:
        shown(
            "golden",
            "precision",
            champion.rate("auto_action", "precision"),
            limits["min_golden_precision"],
            "golden-set auto-action precision",
            "golden items auto-actioned",
            below=True,
        )
        shown(
            "golden",
            "recall",
            champion.rate("review", "recall"),
            limits["min_golden_recall"],
            "golden-set review recall",
            "violating golden items",
            below=True,
        )
    audit = report.production.audit.rates
    shown(
        "production",
        "auto_action_fpr",
        audit.get("auto_action_fpr"),
        rules.max_auto_action_fpr,
        "production FPR of auto_action (audit)",
        "audited benign items",
    )
    shown(
        "production",
        "allow_fnr",
        audit.get("allow_fnr"),
        rules.max_allow_fnr,
        "production FNR of allow (audit)",
        "audited violating items",
    )
    shown(
        "production",
        "auto_action_precision",
        audit.get("auto_action_precision"),
        limits["min_audit_precision"],
        "production auto-action precision (audit)",
        "audited auto-actioned items",
        below=True,
    )
    if rules.emerging and report.emerging:
        for cluster in report.emerging.clusters:
            grew = rules.emerging_growth is None or cluster.growth >= rules.emerging_growth
            if cluster.emerging and grew:
                found.append(emerging_condition(cluster))
    health = report.health
    above(
        "sla",
        "breaches",
        health.backlog.sla_breaches,
        rules.max_sla_breaches,
        "open review tasks past the SLA",
    )
    above(
        "fallback",
        "share",
        health.fallback_share,
        rules.max_fallback_share,
        "share of traffic on fallback",
    )
    above(
        "backlog", "open_tasks", health.backlog.open_tasks, rules.max_backlog, "open review tasks"
    )
    if rules.escalations:
        for queue, count in sorted(health.backlog.escalated.items()):
            found.append(
                Condition(
                    "escalated",
                    queue,
                    float(count),
                    0.0,
                    f"{count} task{'s' if count > 1 else ''} of queue {queue} neared the SLA "
                    "undecided and went to the head of the queue",
                )
            )
    if rules.flagged_reviewers:
        for reviewer in health.flagged_reviewers:
            why = health.flag_evidence.get(reviewer)
            found.append(
                Condition(
                    "reviewer",
                    reviewer,
                    None,
                    None,
                    f"reviewer {reviewer} is below the quality bar" + (f": {why}" if why else ""),
                )
            )
    return found


def emerging_condition(cluster: Cluster) -> Condition:
    """An emerging cluster as an alert whose message (and webhook) names its top terms."""
    terms = ", ".join(cluster.top[:TERMS_IN_ALERT])
    days = ", ".join(f"{d}: {n}" for d, n in cluster.per_day.items())
    note = signature_note(cluster.model_dump())
    return Condition(
        "emerging",
        TERM_SEPARATOR.join(sorted(cluster.top[:3])),
        cluster.size,
        None,
        f"emerging cluster ({terms}): {cluster.size} items ({days}), "
        f"{cluster.allowed_share:.0%} allowed by the champion, "
        f"{cluster.bursting_share:.0%} carry terms that burst" + (f"; {note}" if note else ""),
        terms=tuple(cluster.top),
    )


def run_monitor(
    policy: Policy,
    settings: Settings,
    lake: Lake,
    now: pd.Timestamp | None = None,
    since: pd.Timestamp | None = None,
) -> MonitoringReport:
    """Measure a policy, write the report files, update the alerts; the figures as a typed
    report (`monitoring.report`).

    The window is the policy's `window_days` up to `now`, unless `since` starts it (a cycle
    looks at the traffic since the previous cycle)."""
    now = now or pd.Timestamp(utc_now())
    run_id = now.strftime("%Y%m%dT%H%M%S%fZ")
    rules = policy.monitoring
    notes: list[str] = []
    log = read_predictions(settings, policy)
    for kept in unfiled_segments(settings):
        notes.append(
            f"prediction-log segment {kept['segment']} is kept unfiled until its policies load: "
            + "; ".join(f"{name}: {why}" for name, why in kept["policies"].items())
        )
    since = pd.Timestamp(since) if since is not None else now - timedelta(days=rules.window_days)
    scored_at = pd.to_datetime(log["scored_at"], utc=True)
    window = log[(scored_at >= since) & (scored_at <= now)].reset_index(drop=True)
    if window.empty:
        notes.append(f"no predictions in the window ({since.isoformat()} to {now.isoformat()})")
    report: dict = {
        "policy": policy.name,
        "run_id": run_id,
        "computed_at": now.isoformat(),
        "window": {
            "since": since.isoformat(),
            "until": now.isoformat(),
            "predictions": len(window),
        },
        "notes": notes,
    }
    models = _models(settings, policy)
    if "champion" not in models:
        notes.append("no champion yet: drift and golden-set figures need one")
    else:
        report["promotion"] = promotion_record(models["champion"].ref)
        if report["promotion"]["note"]:
            notes.append(report["promotion"]["note"])
    report["models"] = {alias: m.ref.version for alias, m in models.items()}
    report["scoring"] = {alias: m.describe() for alias, m in models.items()}
    notes += [
        f"{alias} v{m.version} scores on the reference path: {m.note}"
        for alias, m in models.items()
        if m.note
    ]

    drift = None
    if "champion" in models:
        reference = _reference(lake, policy, models["champion"])
        if reference is None:
            notes.append("the champion's training data is not in this lake: drift not measured")
        else:
            current = window[window["score"].notna()] if not window.empty else window
            drift = detect_drift(reference, current, policy)
            notes += drift.notes
            report["drift"] = drift.as_dict()
            report["drift"]["days"] = drift_per_day(reference, current, policy)
            report["emerging"] = emerging_risk(log, reference, policy, since, now)
            lake.write_emerging(
                policy.name,
                {"run_id": run_id, "computed_at": now.isoformat(), **report["emerging"]},
            )

    golden = lake.golden(policy.name)
    snapshots = [drift.snapshot] if drift is not None and drift.snapshot is not None else []
    if golden is None:
        notes.append("no golden set: golden-set error rates not measured")
    elif models:
        decided = {alias: decide(m, golden.frame, policy) for alias, m in models.items()}
        report["golden"] = {
            alias: golden_report(d, golden.frame, policy) for alias, d in decided.items()
        }
        if "champion" in decided:
            snapshots.append(golden_snapshot(decided["champion"]))

    # the audit speaks for the items scored in the policy's window (`window_days`), the window
    # its size was planned for, whatever shorter window a cycle looks at for drift
    audit_since = now - timedelta(days=rules.window_days)
    in_audit_window = log.loc[(scored_at >= audit_since) & (scored_at <= now), "item_id"]
    labelled = labelled_tasks(lake.pushed_tasks(policy.name), lake.decisions(policy.name), policy)
    labelled = labelled[labelled["item_id"].isin(set(in_audit_window))]
    plan = audit_plan(log, policy, now)
    audit = audit_estimates(labelled, rules.confidence)
    for name, figure in audit["rates"].items():
        if name in plan.denominators:
            figure["needs_items"] = plan.denominators[name]
            figure["wanted_half_width"] = plan.wanted.get(name)
    report["production"] = {
        "audit": audit,
        "audit_plan": plan.as_dict(),
        "scores": score_estimates(
            window["score"].to_numpy(dtype=float), window["decision"].to_numpy()
        )
        if not window.empty
        else None,
        "appeals": appeal_rates(
            lake.appeals(policy.name), lake.appeal_outcomes(policy.name), rules.confidence
        ),
    }
    if report["production"]["audit"]["audited_items"] == 0:
        notes.append("no decided blind-audit items: production error rates not estimated")
    elif report["production"]["scores"] is not None:
        report["production"]["scores_vs_audit"] = compare(
            report["production"]["scores"], report["production"]["audit"]
        )
    report["health"] = operational_health(lake, policy, window, now)
    typed = MonitoringReport.model_validate(report)

    found = conditions(policy, typed)
    store = AlertStore(settings.lake_dir, settings.alert_webhook_url)
    update = store.update(policy.name, found)
    typed.alerts = AlertChanges(
        opened=[a.key for a in update.opened],
        open=[a.key for a in update.opened + update.still_open],
        resolved=[a.key for a in update.resolved],
    )
    _write(lake, policy, typed, drift, snapshots)
    return typed


def _write(lake: Lake, policy: Policy, report: MonitoringReport, drift, snapshots: list) -> None:
    folder = lake.run_dir(policy.name, report.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    report.files = {"report": str(folder / "report.json")}
    if drift is not None and drift.snapshot is not None:
        drift.snapshot.save_html(str(folder / "drift.html"))
        (folder / "drift.json").write_text(drift.snapshot.json())
        report.files |= {
            "drift_html": str(folder / "drift.html"),
            "drift_json": str(folder / "drift.json"),
        }
    if snapshots:
        add_to_workspace(lake, policy, snapshots, report.run_id)
    write_parquet_atomic(_history_row(report), lake.history_part(policy.name, report.run_id))
    histories = {name: history(lake, name) for name in lake.monitored_policies()}
    report.files["health_page"] = str(write_health_page(lake, histories))
    write_json_atomic(report.as_json(), folder / "report.json")


def key_figures(report: MonitoringReport) -> dict:
    """A run's headline figures, flat: the history's row, the demo's table."""
    golden = report.champion_golden
    precision = golden.rate("auto_action", "precision") if golden else None
    recall = golden.rate("review", "recall") if golden else None
    audit = report.production.audit.rates
    drift = report.drift
    return {
        "run_id": report.run_id,
        "computed_at": pd.Timestamp(report.computed_at),
        "predictions": report.window.predictions,
        "champion": report.models.get("champion"),
        "drifted_share": drift.drifted_share if drift else None,
        "score_drift": drift.score.drifted if drift and drift.score else None,
        "golden_precision": precision.value if precision else None,
        "golden_precision_high": precision.high if precision else None,
        "golden_recall": recall.value if recall else None,
        "golden_recall_high": recall.high if recall else None,
        "audit_auto_action_fpr": _value(audit.get("auto_action_fpr")),
        "audit_allow_fnr": _value(audit.get("allow_fnr")),
        "open_tasks": report.health.backlog.open_tasks,
        "fallback_share": report.health.fallback_share,
        "open_alerts": len(report.alerts.open),
    }


def _value(figure: Figure | None) -> float | None:
    return figure.value if figure is not None else None


def _history_row(report: MonitoringReport) -> pd.DataFrame:
    return pd.DataFrame([key_figures(report)]).astype(
        {
            "drifted_share": "float64",
            "golden_precision": "float64",
            "golden_precision_high": "float64",
            "golden_recall": "float64",
            "golden_recall_high": "float64",
            "audit_auto_action_fpr": "float64",
            "audit_allow_fnr": "float64",
            "fallback_share": "float64",
        }
    )


def history(lake: Lake, policy: str) -> pd.DataFrame:
    files = lake.history_files(policy)
    return Lake.read_parquet(files).sort_values("computed_at") if files else pd.DataFrame()
