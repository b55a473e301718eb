"""Each review queue now and over the next days, from the lake and the roster.

Now: the tasks open (pushed, still owed decisions), the oldest one's age and how many are past
the SLA, what arrived per hour over the last week, the candidates waiting in the prediction log
for room, and the reviewers on shift. Next days: the forecast (`labeling.forecast`) from the
tasks waiting (open and in the log), the week's arrivals per hour of the day and the roster's
shifts and paces, with the staff that would hold `queues.sla_target`. A task's SLA runs from
when it entered its queue (its push).

The report goes to the lake (`labeling/<policy>/queues.json`), where the console and its
Prometheus metrics read it; `flywheel queues status|forecast` prints it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from flywheel.files import write_json_atomic
from flywheel.lake import Lake
from flywheel.policy import Policy
from flywheel.roster import Roster, load_roster
from labeling.capacity import paces
from labeling.dispatch import open_tasks
from labeling.forecast import DayForecast, Load, Worker, compliance, forecast, staff_needed

HISTORY_DAYS = 7  # arrivals are counted over this past week, per hour of the day


@dataclass(frozen=True)
class QueueStatus:
    queue: str
    sla_hours: float
    severity: float
    open: float  # tasks' worth of decisions still owed
    oldest_hours: float | None
    past_sla: int
    arrivals_per_hour: float
    waiting_in_log: int  # candidates routed here and not pushed yet (at the last push)
    on_shift: int  # rostered reviewers of the queue on shift now
    rostered: int
    days: list[DayForecast] = field(default_factory=list)
    expected_compliance: float | None = None
    reviewers_needed: int | None = None  # to hold queues.sla_target over the horizon


def _hourly(times: pd.Series, now: pd.Timestamp) -> tuple[np.ndarray, float]:
    """Counts per hour of the day over the last week (or since the first time, if later)."""
    stamps = pd.to_datetime(times, utc=True)
    since = now - pd.Timedelta(days=HISTORY_DAYS)
    recent = stamps[(stamps >= since) & (stamps <= now)]
    counts = np.bincount(recent.dt.hour.to_numpy(), minlength=24).astype(float)
    first = stamps.min() if len(stamps) else now
    days = max(min(HISTORY_DAYS, (now - max(first, since)).total_seconds() / 86400), 1 / 24)
    return counts, days


def queue_status(
    policy: Policy,
    lake: Lake,
    now: datetime,
    days: int = 3,
    futures: int = 100,
    roster: Roster | None = None,
    waiting_in_log: dict[str, int] | None = None,
) -> list[QueueStatus]:
    """Every queue's status, and its forecast over `days` (none when `days` is 0)."""
    assert policy.queues is not None
    roster = roster or load_roster(policy)
    now = pd.Timestamp(now)
    ledger = lake.pushed_tasks(policy.name)
    decisions = lake.decisions(policy.name)
    overlap = policy.labeling.overlap
    waiting = open_tasks(ledger, decisions, overlap)
    owed = {str(q): float(v) for q, v in waiting.groupby("review_queue")["owed"].sum().items()}
    if waiting_in_log is None:
        routed = lake.labeling_state(policy.name).get("routed", {})
        waiting_in_log = {q: r["waiting"] for q, r in routed.items()}
    work = {
        q.name: owed.get(q.name, 0.0) + waiting_in_log.get(q.name, 0) for q in policy.queues.define
    }
    pace = paces(policy, roster, work)
    out = []
    for queue in policy.queues.define:
        mine = waiting[waiting["review_queue"] == queue.name]
        ages = (now - pd.to_datetime(mine["pushed_at"], utc=True)).dt.total_seconds() / 3600
        pushed = (
            ledger[ledger["review_queue"] == queue.name] if "review_queue" in ledger else ledger
        )
        counts, seen = _hourly(pushed.get("pushed_at", pd.Series(dtype=object)), now)
        team = roster.working(queue.name)
        horizon = now + timedelta(hours=days * 24 + queue.sla_hours)
        workers = tuple(
            Worker(pace[r.id, queue.name], tuple(r.on_shift(now, horizon, roster.zone)))
            for r in team
            if pace[r.id, queue.name] > 0
        )
        backlog = (*ages.to_numpy(), *([0.0] * waiting_in_log.get(queue.name, 0)))
        load = Load(queue.sla_hours, backlog, tuple(counts), seen, workers)
        ahead = forecast(load, days, futures) if days else []
        target = policy.queues.sla_target
        out.append(
            QueueStatus(
                queue=queue.name,
                sla_hours=queue.sla_hours,
                severity=queue.severity,
                open=round(owed.get(queue.name, 0.0), 1),
                oldest_hours=round(float(ages.max()), 2) if len(ages) else None,
                past_sla=int((ages > queue.sla_hours).sum()),
                arrivals_per_hour=round(float(counts.sum() / seen / 24), 2),
                waiting_in_log=int(waiting_in_log.get(queue.name, 0)),
                on_shift=sum(
                    1 for r in team if r.hours(now, now + timedelta(minutes=1), roster.zone) > 0
                ),
                rostered=len(team),
                days=ahead,
                expected_compliance=compliance(ahead) if ahead else None,
                reviewers_needed=staff_needed(load, target, days, max(futures // 4, 10))
                if days
                else None,
            )
        )
    return out


def write_status(policy: Policy, lake: Lake, statuses: list[QueueStatus], now: datetime) -> None:
    """The latest status in the lake, for the console and Prometheus."""
    write_json_atomic(
        {"policy": policy.name, "computed_at": pd.Timestamp(now).isoformat(),
         "queues": [asdict(s) for s in statuses]},
        lake.labeling_path(policy.name, "queues.json"),
    )  # fmt: skip
