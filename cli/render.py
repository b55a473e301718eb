"""How commands show their results: tables and lines for people, within 80 columns.

Commands compute; this module renders what they computed (a verdict, a monitoring run, reviewer
QA, alerts), so what people read is written in one place.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.common import err, out

if TYPE_CHECKING:
    from monitoring.report import Cluster, DriftDay, Figure, MonitoringReport
    from training.promote import Verdict


@contextmanager
def progress_bar() -> Iterator:
    """A `flywheel.progress.Progress` callback that draws one bar per step on stderr (so
    stdout stays the result, JSON included); steps without a total show a spinner. Nothing is
    drawn when stderr is not a terminal, so logs stay plain."""
    bars = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    steps: dict[str, int] = {}

    def report(step: str, done: int, total: int | None = None) -> None:
        if step not in steps:
            for other in steps.values():  # a new step means the earlier ones are over
                bars.update(other, visible=False)
            steps[step] = bars.add_task(step, total=total)
        bars.update(steps[step], completed=done, total=total)

    with bars:
        yield report


def print_flags(report: dict) -> None:
    """One line per flagged reviewer with the evidence, and who could not be judged yet."""
    for r in report["reviewers"]:
        if r["flagged"]:
            out.print(f"flagged {r['reviewer_id']}: {r['reason']}")
    if report.get("unjudged"):
        out.print(f"not judged yet (too little evidence): {', '.join(report['unjudged'])}")


def print_guarantee(tags: dict[str, str], policy) -> None:
    """What the thresholds promise, on what, and at what staffing cost (the version's tags),
    wrapped for an 80-column terminal."""
    import textwrap

    from training.thresholds import NOTE_SEPARATOR

    if "threshold_rule" not in tags:
        return
    targets = policy.targets

    def share(key: str) -> str:
        value = tags.get(key, "none")
        return "?" if value == "none" else f"{float(value):.1%}"

    expected = tags.get("threshold_expected_positives")
    truly = f", about {float(expected):,.0f} truly violating" if expected else ""
    lines = [
        f"guarantee: review recall {targets.review_recall} and auto-action precision "
        f"{targets.auto_action_precision}, each at {float(tags['threshold_confidence']):.0%} "
        f"confidence on the truth, from {int(tags['threshold_positives']):,} labelled "
        f"positives{truly} of {int(tags['threshold_items']):,} ({tags['threshold_source']})",
        f"noise assumed: {tags.get('threshold_noise', 'none: the labels taken as truth')}",
        f"expected: {share('expected_review_share')} of traffic to review "
        f"(a threshold on the truth: {share('truth_threshold_review_share')}), "
        f"{share('expected_auto_action_share')} to auto-action "
        f"(on {tags.get('expected_shares_on', 'labelled items')})",
    ]
    if tags.get("review_guarantee") == "not shown":
        lines.append(f"recall {targets.review_recall} is NOT shown at these thresholds")
    if tags.get("threshold_notes", "none") != "none":
        lines += [f"note: {note}" for note in tags["threshold_notes"].split(NOTE_SEPARATOR)]
    for line in lines:
        out.print(textwrap.fill(line, width=78, initial_indent="  ", subsequent_indent="    "))


def _rate_cell(rate) -> str:
    """A golden rate as `value [low, high]`, the bounds at the gate's confidence."""
    if rate is None or rate.value is None:
        return "–"
    return f"{rate.value:.3f} [{rate.low:.3f}, {rate.high:.3f}]"


def render_verdict(verdict: Verdict) -> None:
    """Both models side by side on the golden set, each rate with its bounds, then the verdict
    and every check."""
    import textwrap

    if verdict.note:
        out.print(f"{verdict.policy}: {verdict.note}; nothing to do")
        return
    champion = f"champion v{verdict.champion.version}" if verdict.champion else "champion (none)"
    table = Table(
        title=f"{verdict.policy}: golden set {verdict.golden_version}", title_justify="left"
    )
    table.add_column("metric")
    table.add_column(champion, justify="right")
    table.add_column(f"challenger v{verdict.challenger.version}", justify="right")
    for key in ("items", "positives"):
        table.add_row(
            key,
            _cell(verdict.champion_metrics.get(key)),
            _cell(verdict.challenger_metrics.get(key)),
        )
    for point in ("auto_action", "review"):
        for measure in ("precision", "recall", "fpr"):
            table.add_row(
                f"{point} {measure}",
                _rate_cell((verdict.champion_rates.get(point) or {}).get(measure)),
                _rate_cell((verdict.challenger_rates.get(point) or {}).get(measure)),
            )
    for key in ("pr_auc", "roc_auc", "ece"):
        table.add_row(
            key,
            _cell(verdict.champion_metrics.get(key)),
            _cell(verdict.challenger_metrics.get(key)),
        )
    for figure in verdict.paired:
        table.add_row(
            f"{figure.name} {figure.where}", _cell(figure.champion), _cell(figure.challenger)
        )
    out.print(table)
    recall = verdict.challenger_rates.get("review", {}).get("recall")
    if recall is not None:
        out.print(f"[dim]bounds: one-sided, {recall.confidence:.0%} confidence each[/]")
    colour = {"promoted": "green", "would be promoted": "green", "rejected": "red"}.get(
        verdict.outcome, "yellow"
    )
    out.print(f"verdict: [bold {colour}]{verdict.outcome}[/]")
    for check in verdict.checks:
        mark = "[green]✓[/]" if check.passed else "[red]✗[/]"
        lines = textwrap.wrap(check.detail, width=74, subsequent_indent="  ")
        out.print(f"  {mark} " + "\n    ".join(lines))
    if verdict.override_reason:
        out.print(f"override: {verdict.override_reason}")
    if verdict.dry_run:
        out.print("dry run: nothing was recorded and no alias moved")


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def print_status(status) -> None:
    state = "running" if status.running else "stopped"
    pid = f" (pid {status.pid})" if status.pid else ""
    out.print(f"Label Studio {state} at {status.url}{pid}: {status.detail}")


def render_qa(report: dict, policy: str) -> None:
    """Each reviewer's standing with its evidence and bounds, within 80 columns."""
    from rich import box

    table = Table(
        title=f"Reviewers of {policy}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("reviewer", "decided", "gold", "shared", "sens", "spec", "balanced", "bounds"):
        table.add_column(column, justify="left" if column == "reviewer" else "right")
    table.add_column("standing")

    def two(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    for r in report["reviewers"]:
        low, high = r["balanced_accuracy_ci"]
        table.add_row(
            r["reviewer_id"],
            str(r["decisions"]),
            str(r["gold_checks"]),
            str(r["overlap_items"]),
            two(r["sensitivity"]),
            two(r["specificity"]),
            two(r["balanced_accuracy"]),
            f"{two(low)}–{two(high)}" if low is not None else "",
            "FLAGGED" if r["flagged"] else r["standing"].replace("meets the bar", "meets bar"),
        )
    out.print(table)
    alpha = report["krippendorff_alpha"]
    out.print(
        f"bar: balanced accuracy {report['bar']['min_balanced_accuracy']}, bounds at "
        f"{report['confidence']:.0%} confidence; Krippendorff's alpha "
        + ("–" if alpha is None else f"{alpha:.2f}")
    )
    print_flags(report)
    _render_qa_by_queue(report, two)
    _render_autonomy(report, two)


def _render_qa_by_queue(report: dict, two) -> None:
    """Each reviewer's rates per review queue, when the policy has queues."""
    from rich import box

    rows = [
        (r["reviewer_id"], q, v)
        for r in report["reviewers"]
        for q, v in r.get("by_queue", {}).items()
    ]
    if not rows:
        return
    table = Table(title="Per queue", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("reviewer", "queue", "decided", "sensitivity", "specificity"):
        table.add_column(column, justify="right" if column == "decided" else "left")
    for reviewer, queue, v in rows:
        sens_low, sens_high = v["sensitivity_ci"]
        spec_low, spec_high = v["specificity_ci"]
        table.add_row(
            reviewer, queue, str(v["decisions"]),
            f"{two(v['sensitivity'])} ({two(sens_low)}–{two(sens_high)})",
            f"{two(v['specificity'])} ({two(spec_low)}–{two(spec_high)})",
        )  # fmt: skip
    out.print(table)


def _render_autonomy(report: dict, two) -> None:
    """Where each automated reviewer may decide alone, and where not and why."""
    from rich import box

    rows = [
        (r["reviewer_id"], kind, g)
        for r in report["reviewers"]
        for kind in ("granted", "refused", "revoked")
        for g in (r.get("autonomy") or {}).get(kind, [])
    ]
    if not rows:
        return
    table = Table(title="Autonomy", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("reviewer", "queue", "label", "answers", "accuracy", "alone"):
        table.add_column(column, justify="right" if column in ("answers", "accuracy") else "left")
    for reviewer, kind, g in rows:
        accuracy = f"{two(g.get('accuracy'))} (≥ {two(g.get('low'))})" if "low" in g else ""
        table.add_row(
            reviewer, g["queue"], g["label"], str(g.get("answers", "")), accuracy,
            {"granted": "yes", "refused": "no", "revoked": "REVOKED"}[kind],
        )  # fmt: skip
    out.print(table)


SHOWN_DAYS = 3  # forecast days that fit 80 columns


def render_queues(statuses: list, policy: str, forecast: bool, target: float = 0.0) -> None:
    """Each queue's backlog (and forecast) within 80 columns."""
    from rich import box

    table = Table(
        title=f"Review queues of {policy}" + (" (forecast)" if forecast else ""),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("queue")
    table.add_column("SLA h", justify="right")
    table.add_column("open", justify="right")
    if forecast:
        for d in statuses[0].days[:SHOWN_DAYS] if statuses else []:
            table.add_column("today" if d.day == 0 else f"day +{d.day}", justify="right")
        table.add_column("staff", justify="right")
    else:
        for column in ("oldest h", "past SLA", "in/h", "in log", "on shift"):
            table.add_column(column, justify="right")
    for s in statuses:
        row = [s.queue, f"{s.sla_hours:g}", f"{s.open:g}"]
        if forecast:
            row += [
                "–" if d.within_sla is None else f"{d.within_sla:.0%} ({d.low:.0%}–{d.high:.0%})"
                for d in s.days[:SHOWN_DAYS]
            ]
            gap = s.longest_gap_hours is not None and s.longest_gap_hours > s.sla_hours
            needed = (
                str(s.reviewers_needed)
                if s.reviewers_needed is not None
                else "gap"
                if gap
                else ">200"
            )
            row.append(f"{needed}/{s.rostered}")
        else:
            oldest = "–" if s.oldest_hours is None else f"{s.oldest_hours:.1f}"
            row += [
                oldest, str(s.past_sla), f"{s.arrivals_per_hour:g}", str(s.waiting_in_log),
                f"{s.on_shift}/{s.rostered}",
            ]  # fmt: skip
        table.add_row(*row)
    out.print(table)
    if forecast:
        note = (
            f"Share of each day's tasks decided within the SLA (5th–95th percentile of "
            f"simulated days); staff: reviewers needed for {target:.0%} over the horizon / "
            "rostered (gap: the shifts leave the queue unworked for longer than its SLA)."
            + (
                " --json gives every day."
                if statuses and len(statuses[0].days) > SHOWN_DAYS
                else ""
            )
        )
        out.print(textwrap.fill(note, 80))


def render_monitor(report: MonitoringReport) -> None:
    """The run as a short table an operations lead can read."""
    table = Table(title=f"{report.policy}: monitoring run {report.run_id}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("interval / note")

    def rate(figure: Figure | None) -> tuple[str, str]:
        """A sampled figure: its value, and its bounds with the items behind them."""
        if figure is None or figure.value is None:
            return "–", ""
        bounds = f"{figure.low:.3f}–{figure.high:.3f}" if figure.low is not None else ""
        return f"{figure.value:.3f}", bounds + (
            f" on {figure.count}" if figure.n is not None else ""
        )

    table.add_row("predictions in window", f"{report.window.predictions:,}", "")
    if report.promotion:
        table.add_row(
            "champion", f"v{report.promotion.version}", report.promotion.verdict or "no verdict"
        )
    drift = report.drift
    if drift:
        share = drift.drifted_share
        table.add_row(
            "drifted fields",
            "–" if share is None else f"{share:.0%}",
            ", ".join(n for n, f in drift.fields.items() if f.drifted),
        )
        score = drift.score
        table.add_row(
            "score drift",
            "yes" if score and score.drifted else "no",
            (score.method if score else None) or "",
        )
    champion = report.champion_golden
    if champion:
        table.add_row(
            "golden precision (auto_action)", *rate(champion.rate("auto_action", "precision"))
        )
        table.add_row("golden recall (review)", *rate(champion.rate("review", "recall")))
    audit = report.production.audit.rates
    for name in ("auto_action_fpr", "allow_fnr", "auto_action_precision"):
        figure = audit.get(name)
        value, interval = rate(figure)
        needs = figure.needs_items if figure else None
        note = interval + (f" (needs ~{needs:.0f})" if needs and interval else "")
        table.add_row(f"production {name} (audit)", value, note)
    health = report.health
    table.add_row("open review tasks", str(health.backlog.open_tasks), "")
    table.add_row("flagged reviewers", ", ".join(health.flagged_reviewers) or "none", "")
    out.print(table)
    render_drift_days(drift.days if drift else [])
    render_clusters(report.emerging.clusters if report.emerging else [])
    for note in report.notes:
        out.print(f"note: {note}")
    for key in report.alerts.opened:
        out.print(f"alert opened: {key}")
    for key in report.alerts.resolved:
        out.print(f"alert resolved: {key}")
    out.print(f"report: {report.files['report']}")


def render_drift_days(days: list[DriftDay]) -> None:
    """Drift per day, when a day's change may be diluted in the window's figures."""
    drifted = [d for d in days if d.drifted or d.score_drifted]
    if drifted:
        out.print("drift per day:")
    for d in drifted:
        score = " + score" if d.score_drifted else ""
        out.print(f"  {d.day} ({d.items} items): {', '.join(d.drifted) or '-'}{score}")


def render_clusters(clusters: list[Cluster]) -> None:
    """Each emerging cluster: its terms, size, allowed share and two examples, within 80
    columns."""
    from monitoring.emerging import signature_note

    for c in clusters:
        kind = "emerging cluster" if c.emerging else "novel cluster"
        out.print(
            f"{kind}: {', '.join(c.top[:4])}\n"
            f"  {c.size} items, {c.allowed_share:.0%} allowed, "
            f"{c.bursting_share:.0%} with bursting terms, growth {c.growth:.1f}x",
            soft_wrap=False,
        )
        if note := signature_note(c.model_dump()):
            out.print(f"  {note}", soft_wrap=False)
        for e in c.examples[:2]:
            text = next((v for k, v in e.items() if k not in {"item_id", "score", "decision"}), "")
            out.print(f"  e.g. {e['item_id']}: {str(text)[:56]}", soft_wrap=False)


def render_alerts(alerts: list, all_alerts: bool) -> None:
    """Alerts as a table (or a line saying there are none)."""
    if not alerts:
        out.print("no open alerts" if not all_alerts else "no alerts")
        return
    table = Table()
    for column in ("policy", "kind", "subject", "message", "opened", "resolved"):
        table.add_column(column)
    for a in alerts:
        table.add_row(
            a.policy, a.kind, a.subject, a.message, a.opened_at[:19], (a.resolved_at or "")[:19]
        )
    out.print(table)
