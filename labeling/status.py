"""Each review queue now and over the next days, from the lake and the roster.

Now: the tasks open (pushed, still owed decisions), the oldest one's age and how many are past
the SLA, what arrived per hour over the last week, the candidates waiting in the prediction log
for room, and the reviewers on shift. Next days: the forecast (`labeling.forecast`) of the
share decided within the SLA, from the tasks open, the week's pushes per hour of the day and
the roster's shifts and paces; and the staff that would hold `queues.sla_target` on the whole
demand, the candidates waiting in the log included. A task's SLA runs from when it entered its
queue (its push); a candidate in the log has none yet.

The report goes to the lake (`labeling/<policy>/queues.json`), where the console and its
Prometheus metrics read it; `flywheel queues status|forecast` prints it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from flywheel.files import write_json_atomic
from flywheel.lake import Lake
from flywheel.policy import Policy
from flywheel.roster import Roster, load_roster
from labeling.dispatch import open_tasks
from labeling.forecast import DayForecast, Load, Worker, forecast, staff_needed

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
    compliance_low: float | None = None  # the 5th-95th percentile of the futures' compliance
    compliance_high: float | None = None
    # to hold queues.sla_target over the horizon on the tasks not yet past their SLA (None:
    # more than the search tries, as when the shifts leave a gap longer than the SLA)
    reviewers_needed: int | None = None
    longest_gap_hours: float | None = None  # the longest time in the horizon nobody works it


def _recent(
    pushed: pd.DataFrame, now: pd.Timestamp, began: pd.Timestamp
) -> tuple[pd.DataFrame, np.ndarray, float]:
    """The tasks pushed over the last week, or since the queues' first work arrived (`began`)
    if later, their counts per hour of the day, and over how many days: a queue that got
    nothing in that time has seen zero arrivals for as long, not for no time at all."""
    stamps = pd.to_datetime(pushed.get("pushed_at", pd.Series(dtype=object)), utc=True)
    since = max(now - pd.Timedelta(days=HISTORY_DAYS), began)
    inside = ((stamps >= since) & (stamps <= now)).to_numpy()
    counts = np.bincount(stamps[inside].dt.hour.to_numpy(), minlength=24).astype(float)
    return pushed[inside], counts, max((now - since).total_seconds() / 86400, 1 / 24)


def _scores(frame: pd.DataFrame) -> tuple[float, ...]:
    """The tasks' scores (NaN where a task has none, as a gold check)."""
    if "score" not in frame:
        return tuple(float("nan") for _ in range(len(frame)))
    return tuple(pd.to_numeric(frame["score"], errors="coerce").astype(float))


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
    waiting = open_tasks(ledger, lake.decisions(policy.name), policy.labeling.overlap)
    owed = {str(q): float(v) for q, v in waiting.groupby("review_queue")["owed"].sum().items()}
    if waiting_in_log is None:
        routed = lake.labeling_state(policy.name).get("routed", {})
        waiting_in_log = {q: r["waiting"] for q, r in routed.items()}
    began = pd.to_datetime(ledger["pushed_at"], utc=True).min() if not ledger.empty else now
    # a push takes the work that arrived since the one before: the first one's arrivals
    # are spread over the traffic it drew on, not over the hours since it went out
    since = lake.labeling_state(policy.name).get("queues_since")
    if since is not None:
        began = min(began, pd.Timestamp(since))
    loads, ages = [], {}
    for queue in policy.queues.define:
        mine = waiting[waiting["review_queue"] == queue.name]
        ages[queue.name] = (
            now - pd.to_datetime(mine["pushed_at"], utc=True)
        ).dt.total_seconds().to_numpy() / 3600
        pushed = (
            ledger[ledger["review_queue"] == queue.name] if "review_queue" in ledger else ledger
        )
        recent, counts, seen = _recent(pushed, now, began)
        loads.append(
            Load(queue.name, queue.sla_hours, tuple(ages[queue.name]), tuple(counts), seen,
                 queue.severity, waiting_scores=_scores(mine), scores=_scores(recent))
        )  # fmt: skip
    horizon = now + timedelta(hours=days * 24 + max(q.sla_hours for q in policy.queues.define))
    team = tuple(
        Worker(
            r.decisions_per_hour / policy.labeling.overlap,
            tuple(r.on_shift(now, horizon, roster.zone)),
            tuple(r.queues),
        )
        for r in roster.reviewers
    )
    escalate_at, age_weight = policy.queues.escalate_at, policy.queues.age_weight
    ahead = forecast(loads, team, days, futures, 0, escalate_at, age_weight) if days else {}
    target = policy.queues.sla_target
    # Staff is read on the demand: the tasks open and not past their SLA (staff cannot save
    # those), and the candidates waiting in the log for room, as if pushed now. The forecast
    # of compliance is read on what the queues hold: a candidate in the log has no SLA running
    # until a push gives it room, and pushes give it only as much as the roster can decide.
    savable = []
    for load in loads:
        keep = [k for k, age in enumerate(load.waiting_ages) if age < load.sla_hours]
        log = waiting_in_log.get(load.name, 0)
        savable.append(
            replace(
                load,
                waiting_ages=(*(load.waiting_ages[k] for k in keep), *([0.0] * log)),
                waiting_scores=(*(load.waiting_scores[k] for k in keep), *([float("nan")] * log)),
            )
        )
    out = []
    for queue, load in zip(policy.queues.define, loads, strict=True):
        rostered = roster.working(queue.name)
        mine = ages[queue.name]
        out.append(
            QueueStatus(
                queue=queue.name,
                sla_hours=queue.sla_hours,
                severity=queue.severity,
                open=round(owed.get(queue.name, 0.0), 1),
                oldest_hours=round(float(mine.max()), 2) if len(mine) else None,
                past_sla=int((mine > queue.sla_hours).sum()),
                arrivals_per_hour=round(sum(load.hourly_counts) / load.observed_days / 24, 2),
                waiting_in_log=int(waiting_in_log.get(queue.name, 0)),
                on_shift=sum(
                    1 for r in rostered if r.hours(now, now + timedelta(minutes=1), roster.zone) > 0
                ),
                rostered=len(rostered),
                days=ahead[queue.name].days if days else [],
                expected_compliance=ahead[queue.name].within_sla if days else None,
                compliance_low=ahead[queue.name].low if days else None,
                compliance_high=ahead[queue.name].high if days else None,
                reviewers_needed=staff_needed(
                    savable,
                    team,
                    queue.name,
                    target,
                    days,
                    max(futures // 4, 10),
                    escalate_at=escalate_at,
                    age_weight=age_weight,
                )
                if days
                else None,
                longest_gap_hours=round(_longest_gap(team, queue.name, days * 24), 1)
                if days
                else None,
            )
        )
    return out


def _longest_gap(workers: tuple[Worker, ...], queue: str, hours: float) -> float:
    """The longest stretch of the next `hours` when none of the queue's reviewers is on shift."""
    spans = sorted(span for w in workers if queue in w.queues for span in w.shifts)
    longest, reached = 0.0, 0.0
    for start, end in spans:
        longest = max(longest, start - reached)
        reached = max(reached, end)
    return max(longest, hours - reached)


def write_status(policy: Policy, lake: Lake, statuses: list[QueueStatus], now: datetime) -> None:
    """The latest status in the lake, for the console and Prometheus."""
    write_json_atomic(
        {"policy": policy.name, "computed_at": pd.Timestamp(now).isoformat(),
         "queues": [asdict(s) for s in statuses]},
        lake.labeling_path(policy.name, "queues.json"),
    )  # fmt: skip
