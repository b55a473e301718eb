"""Where a run's results go beyond its JSON: Evidently's workspace and the health page.

The workspace (`lake/monitoring/workspace`) keeps every run's Evidently snapshots (drift, and the
champion's golden-set precision and recall) in a project per policy, with a dashboard of panels,
so `evidently ui --workspace .flywheel/lake/monitoring/workspace` opens on their history.
The health page (`lake/monitoring/health.html`) is one self-contained page with every policy's
key figures over time, for an operations lead who wants one place to look.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd

from flywheel.files import atomic_path
from flywheel.lake import Lake
from flywheel.policy import Policy
from monitoring.drift import SCORE
from monitoring.emerging import signature_note

COUNTS = {"open_tasks", "open_alerts", "alerts"}  # every other plotted series is a rate in [0, 1]
SERIES = [
    ("drifted_share", "share of drifted fields"),
    ("golden_precision", "golden-set precision (auto_action)"),
    ("golden_recall", "golden-set recall (review)"),
    ("audit_auto_action_fpr", "production FPR of auto_action (audit)"),
    ("audit_allow_fnr", "production FNR of allow (audit)"),
    ("open_tasks", "open review tasks"),
    ("open_alerts", "open alerts"),
]


def add_to_workspace(lake: Lake, policy: Policy, snapshots: list, run_id: str) -> None:
    """Store a run's snapshots (drift, golden) under the policy's project; the project is made,
    with its dashboard, on first use, and a project from before the dashboard gets one."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(lake.workspace))
    found = workspace.search_project(f"flywheel {policy.name}")
    project = found[0] if found else workspace.create_project(f"flywheel {policy.name}")
    if not project.dashboard.model().panels:
        for panel in dashboard_panels(policy):
            project.dashboard.add_panel(panel)
    for snapshot in snapshots:
        workspace.add_run(project.id, snapshot, name=run_id)


def dashboard_panels(policy: Policy) -> list:
    """What `evidently ui` shows for a policy: drift over runs (the share of drifted fields,
    the score's drift, each field's) and the champion's golden-set precision and recall."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel, text_panel

    def metric(legend: str, name: str, tag: str, **labels: str) -> PanelMetric:
        return PanelMetric(legend=legend, metric=name, metric_labels=labels, tags=[tag])

    targets = policy.targets
    return [
        text_panel(
            f"Flywheel · {policy.name}",
            f"One point per monitoring run. Targets: auto_action precision "
            f"{targets.auto_action_precision}, review recall {targets.review_recall}. "
            "The intervals of every rate are on the console and in each run's report.json.",
        ),
        line_plot_panel(
            "Share of drifted fields",
            [metric("share", "DriftedColumnsCount", "drift", value_type="share")],
            size="half",
        ),
        line_plot_panel(
            "Score drift (Wasserstein distance, normed)",
            [metric("score", "ValueDrift", "drift", column=SCORE)],
            size="half",
        ),
        line_plot_panel(
            "Golden-set precision and recall of the champion",
            [
                metric(
                    f"{measure} at {point}",
                    measure.capitalize(),
                    "golden",
                    classification_name=point,
                )
                for point, measure in (("auto_action", "precision"), ("review", "recall"))
            ],
        ),
        line_plot_panel(
            "Drift per field",
            [
                metric(field, "ValueDrift", "drift", column=field)
                for field in policy.feature_columns
            ],
        ),
    ]


def plots_page(
    title: str,
    frames: dict[str, pd.DataFrame],
    x: str,
    series: list[tuple[str, str]],
    summaries: dict[str, str],
    empty: str,
    extras: dict[str, str] | None = None,
) -> str:
    """A self-contained page, a section of stacked plots per frame (plotly's script inlined once,
    so it opens without a network), each followed by its HTML in `extras`. Rates keep the axis
    from 0 to 1 (a constant 1.0 is not drawn on an axis to 2), and whole-number x values (cycles)
    are ticked at whole numbers."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sections = []
    for name, frame in sorted(frames.items()):
        if frame.empty:
            continue
        figure = make_subplots(
            rows=len(series),
            cols=1,
            shared_xaxes=True,
            subplot_titles=[label for _, label in series],
            vertical_spacing=0.03,
        )
        for row, (column, label) in enumerate(series, start=1):
            figure.add_trace(
                go.Scatter(x=frame[x], y=frame[column], mode="lines+markers", name=label),
                row=row,
                col=1,
            )
            if column not in COUNTS:
                figure.update_yaxes(range=[0, 1.05], row=row, col=1)
            else:
                figure.update_yaxes(rangemode="tozero", row=row, col=1)
        if pd.api.types.is_integer_dtype(frame[x]):
            figure.update_xaxes(dtick=1)
        figure.update_layout(height=180 * len(series), showlegend=False, title=name)
        sections.append(
            f"<section><h2>{escape(name)}</h2><p>{escape(summaries.get(name, ''))}</p>"
            + (extras or {}).get(name, "")
            + figure.to_html(full_html=False, include_plotlyjs=not sections)
            + "</section>"
        )
    body = "".join(sections) or f"<p>{escape(empty)}</p>"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def clusters_html(emerging: dict | None, text_limit: int = 160) -> str:
    """The latest run's emerging clusters as a table: what an operations lead acts on."""
    clusters = (emerging or {}).get("clusters") or []
    if not clusters:
        return "<p>No emerging cluster in the latest run.</p>"
    rows = []
    for c in clusters:
        examples = "<br>".join(
            escape(
                str(
                    next(
                        (v for k, v in e.items() if k not in {"item_id", "score", "decision"}),
                        e["item_id"],
                    )
                )[:text_limit]
            )
            for e in c["examples"]
        )
        days = ", ".join(f"{d}: {n}" for d, n in c["per_day"].items())
        note = signature_note(c)
        rows.append(
            f"<tr><td>{'alert' if c['emerging'] else 'novel'}</td><td>{escape(', '.join(c['top']))}</td>"
            f"<td>{c['size']}</td><td>{escape(days)}</td><td>{c['allowed_share']:.0%}</td>"
            f"<td>{c['bursting_share']:.0%}{'<br>' + escape(note) if note else ''}</td><td>{examples}</td></tr>"
        )
    return (
        f"<h3>Emerging clusters (run {escape(str(emerging.get('run_id', '')))})</h3>"
        "<table border='1' cellpadding='4' style='border-collapse:collapse'><tr><th>kind</th>"
        "<th>top terms</th><th>items</th><th>per day</th><th>allowed by the champion</th>"
        "<th>carry bursting terms</th><th>examples</th></tr>" + "".join(rows) + "</table>"
    )


def write_health_page(lake: Lake, histories: dict[str, pd.DataFrame]) -> Path:
    """Every policy's monitoring history as plots on one page, with its emerging clusters."""
    summaries = {}
    for policy, frame in histories.items():
        if not frame.empty:
            latest = frame.iloc[-1]
            summaries[policy] = (
                f"{len(frame)} runs; latest {latest['computed_at']}: champion v"
                f"{latest['champion']}, {int(latest['open_alerts'])} open alerts."
            )
    page = plots_page(
        "Flywheel: policy health over time",
        histories,
        "computed_at",
        SERIES,
        summaries,
        "No monitoring runs yet: run flywheel monitor.",
        {policy: clusters_html(lake.latest_emerging(policy)) for policy in histories},
    )
    path = lake.health_page
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
