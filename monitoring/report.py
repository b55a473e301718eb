"""The monitoring report as a typed record: what a run found, as `report.json` holds it.

`run_monitor` assembles a run's figures from its parts (drift, emerging risk, golden-set and
audit rates, health) and validates them into `MonitoringReport`; its readers (alert conditions,
the history row, `flywheel monitor`, the demo, flows) read attributes, and a part that changes
its shape fails here, by name, not in a reader's `.get()` chain. Sections are typed where they
are read; detail nobody reads by name is kept as written (`extra="allow"`) and lands in the file.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Typed where read; further keys are kept as written."""

    model_config = ConfigDict(extra="allow")


class Figure(_Open):
    """A rate measured on a sample, with its bounds and how many items it rests on."""

    value: float | None = None
    low: float | None = None
    high: float | None = None
    n: float | None = None
    needs_items: float | None = None  # what the audit's planned half-width needs

    @property
    def count(self) -> str:
        """How many items it rests on, as people read it (a weighted count keeps a decimal)."""
        if self.n is None:
            return "?"
        return f"{self.n:.0f}" if float(self.n).is_integer() else f"{self.n:.1f}"


class Window(_Closed):
    since: str
    until: str
    predictions: int


class Promotion(_Closed):
    """How the champion got its alias."""

    version: int
    verdict: str | None = None
    override_reason: str | None = None
    failed_checks: str | None = None
    note: str | None = None


class ScoringPath(_Closed):
    version: int
    path: str  # compiled or reference
    note: str | None = None


class FieldDrift(_Open):
    drifted: bool | None = None
    method: str | None = None
    value: float | None = None
    threshold: float | None = None


class DriftDay(_Open):
    day: str
    items: int
    drifted: list[str] = []
    score_drifted: bool | None = None


class Drift(_Open):
    drifted_share: float | None = None
    fields: dict[str, FieldDrift] = {}
    score: FieldDrift | None = None
    days: list[DriftDay] = []
    notes: list[str] = []


class Cluster(_Open):
    """An emerging or novel cluster of items."""

    top: list[str]
    size: int
    growth: float
    emerging: bool
    allowed_share: float
    bursting_share: float
    per_day: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    representatives: list[str] = []


class Emerging(_Open):
    clusters: list[Cluster] = []


class Golden(_Open):
    """One model's golden-set rates: `slices[slice][operating point][measure]`."""

    version: int
    items: int
    slices: dict[str, dict[str, dict[str, Figure]]] = {}

    def rate(self, point: str, measure: str, slice_: str = "all") -> Figure | None:
        return self.slices.get(slice_, {}).get(point, {}).get(measure)


class Audit(_Open):
    audited_items: int = 0
    rates: dict[str, Figure] = {}


class Production(_Open):
    audit: Audit
    scores: dict[str, Any] | None = None
    scores_vs_audit: dict[str, Any] | None = None
    # per model version: appeals received, decided, overturned, the overturn rate with bounds
    appeals: dict[str, Any] | None = None


class Backlog(_Open):
    open_tasks: int = 0
    sla_breaches: int = 0
    escalated: dict[str, int] = {}  # undecided escalated tasks per review queue


class Health(_Open):
    backlog: Backlog = Field(default_factory=Backlog)
    fallback_share: float | None = None
    flagged_reviewers: list[str] = []
    flag_evidence: dict[str, str] = {}


class AlertChanges(_Closed):
    opened: list[str] = []
    open: list[str] = []
    resolved: list[str] = []


class MonitoringReport(_Closed):
    policy: str
    run_id: str
    computed_at: str
    window: Window
    notes: list[str] = []
    promotion: Promotion | None = None
    models: dict[str, int] = {}
    scoring: dict[str, ScoringPath] = {}
    drift: Drift | None = None
    emerging: Emerging | None = None
    golden: dict[str, Golden] | None = None
    production: Production
    health: Health
    alerts: AlertChanges = Field(default_factory=AlertChanges)
    files: dict[str, str] = {}

    @property
    def champion_golden(self) -> Golden | None:
        return (self.golden or {}).get("champion")

    def as_json(self) -> dict[str, Any]:
        """The report as `report.json` holds it: no NaN or infinity (a missing rate is null)."""
        return _clean(self.model_dump(mode="python"))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
