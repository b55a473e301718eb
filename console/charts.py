"""The console's charts as plotly figure specs: plain JSON the page hands to plotly.js.

Built as dictionaries, not with plotly's Python figure classes: a page makes a dozen of them, and
the dictionaries cost microseconds. Every rate is drawn with its interval as a band, every target
or alert limit as a dashed line, and time on a date axis.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

COLOURS = {"allow": "#4c956c", "review": "#f4a259", "auto_action": "#bc4b51"}
LINE = "#3d5a80"
BAND = "rgba(61, 90, 128, 0.18)"
TARGET = "#bc4b51"


def _values(column: pd.Series) -> list[Any]:
    """JSON-ready values: NaN and infinity are gaps."""
    out = []
    for v in column.tolist():
        if v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v))):
            out.append(None)
        elif isinstance(v, pd.Timestamp):
            out.append(v.isoformat())
        else:
            out.append(v)
    return out


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01},
        "height": 260,
        "margin": {"l": 56, "r": 16, "t": 36, "b": 40},
        "xaxis": {"type": "date", "title": {"text": ""}},
        "yaxis": {"title": {"text": y_title}},
        "legend": {"orientation": "h", "y": -0.25},
        "hovermode": "x unified",
        **extra,
    }


def _limit(value: float | None, label: str) -> tuple[list[dict], list[dict]]:
    """A dashed horizontal line across the chart, and its label."""
    if value is None:
        return [], []
    shape = {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": value,
        "y1": value,
        "line": {"color": TARGET, "dash": "dash", "width": 1.5},
    }
    note = {
        "xref": "paper",
        "x": 1,
        "xanchor": "right",
        "y": value,
        "yanchor": "bottom",
        "text": f"{label} {value:g}",
        "showarrow": False,
        "font": {"size": 11, "color": TARGET},
    }
    return [shape], [note]


def rate_chart(
    frame: pd.DataFrame,
    prefix: str,
    title: str,
    limit: float | None = None,
    limit_label: str = "target",
) -> dict[str, Any]:
    """A rate over monitoring runs: the estimate, its interval as a band, the items behind each
    point in the hover, and the target (or alert limit) it is held to."""
    x = _values(frame["computed_at"])
    n = _values(frame[f"{prefix}_n"])
    value = _values(frame[prefix])
    low, high = _values(frame[f"{prefix}_low"]), _values(frame[f"{prefix}_high"])
    text = [f"n = {c:.0f}" if c is not None else "n = ?" for c in n]
    data = [
        {
            "x": x,
            "y": high,
            "mode": "lines",
            "line": {"width": 0},
            "hoverinfo": "skip",
            "showlegend": False,
            "type": "scatter",
        },
        {
            "x": x,
            "y": low,
            "mode": "lines",
            "line": {"width": 0},
            "fill": "tonexty",
            "fillcolor": BAND,
            "name": "interval",
            "type": "scatter",
            "hoverinfo": "skip",
        },
        {
            "x": x,
            "y": value,
            "mode": "lines+markers",
            "name": "estimate",
            "type": "scatter",
            "line": {"color": LINE},
            "text": text,
            "customdata": [[lo, hi] for lo, hi in zip(low, high, strict=True)],
            "hovertemplate": "%{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}], %{text}"
            "<extra></extra>",
        },
    ]
    shown = [v for v in low + high + value + [limit] if v is not None]
    bottom = max(0.0, min(shown) - 0.05) if shown else 0.0
    top = min(1.0, max(shown) + 0.05) if shown else 1.0
    shapes, notes = _limit(limit, limit_label)
    layout = _layout(title, "rate", shapes=shapes, annotations=notes)
    layout["yaxis"]["range"] = [bottom, max(top, bottom + 0.05)]
    return {"data": data, "layout": layout}


def value_chart(
    frame: pd.DataFrame,
    column: str,
    title: str,
    y_title: str,
    limit: float | None = None,
    limit_label: str = "alert above",
) -> dict[str, Any]:
    """A figure without an interval (a share of drifted fields, a distance, a count)."""
    data = [
        {
            "x": _values(frame["computed_at"]),
            "y": _values(frame[column]),
            "type": "scatter",
            "mode": "lines+markers",
            "line": {"color": LINE},
            "name": y_title,
        }
    ]
    shapes, notes = _limit(limit, limit_label)
    layout = _layout(title, y_title, shapes=shapes, annotations=notes)
    layout["yaxis"]["rangemode"] = "tozero"
    return {"data": data, "layout": layout}


def traffic_chart(frame: pd.DataFrame, title: str) -> dict[str, Any]:
    """Predictions per day, stacked by decision."""
    data = []
    if not frame.empty:
        days = sorted(frame["day"].unique())
        for decision, colour in COLOURS.items():
            counts = frame[frame["decision"] == decision].groupby("day")["predictions"].sum()
            data.append(
                {
                    "x": [pd.Timestamp(d).isoformat() for d in days],
                    "y": [int(counts.get(d, 0)) for d in days],
                    "type": "bar",
                    "name": decision,
                    "marker": {"color": colour},
                }
            )
    layout = _layout(title, "predictions", barmode="stack")
    layout["xaxis"] |= {"dtick": 86400000, "tickformat": "%b %-d"}  # one tick a day, no hours
    return {"data": data, "layout": layout}


def thresholds_chart(versions: list, title: str) -> dict[str, Any]:
    """Each version's operating points, at the time it was registered."""
    ordered = sorted(versions, key=lambda v: v.version)
    x = [v.created.isoformat() for v in ordered]
    labels = [f"v{v.version}" for v in ordered]
    data = [
        {
            "x": x,
            "y": [getattr(v, point) for v in ordered],
            "text": labels,
            "type": "scatter",
            "mode": "lines+markers",
            "line": {"shape": "hv", "color": COLOURS[point]},
            "name": f"{point} from",
            "hovertemplate": f"%{{text}}: %{{y:.4f}}<extra>{point}</extra>",
        }
        for point in ("review", "auto_action")
    ]
    layout = _layout(title, "score threshold")
    layout["yaxis"]["range"] = [0, 1]
    return {"data": data, "layout": layout}


def policy_charts(
    runs: pd.DataFrame, traffic: pd.DataFrame, limits: dict[str, float | None]
) -> list[dict[str, Any]]:
    """A policy page's charts: traffic, then each figure over runs against its limit (the
    policy's `alert_limits`; none drawn for a policy without its file)."""
    figures = [traffic_chart(traffic, "Predictions per day")] if not traffic.empty else []
    if runs.empty:
        return figures
    thresholds = runs["score_drift_threshold"].dropna()
    return [
        *figures,
        rate_chart(
            runs, "gp", "Golden-set precision at auto_action", limits.get("min_golden_precision")
        ),
        rate_chart(runs, "gr", "Golden-set recall at review", limits.get("min_golden_recall")),
        rate_chart(
            runs,
            "fpr",
            "Production FPR of auto_action (blind audit)",
            limits.get("max_auto_action_fpr"),
            "alert above",
        ),
        rate_chart(
            runs,
            "fnr",
            "Production FNR of allow (blind audit)",
            limits.get("max_allow_fnr"),
            "alert above",
        ),
        value_chart(
            runs, "drifted_share", "Share of drifted fields", "share", limits.get("drift_share")
        ),
        value_chart(
            runs,
            "score_drift",
            "Score drift (distance)",
            "distance",
            thresholds.iloc[-1] if not thresholds.empty else None,
        ),
    ]
