"""What each queue will look like over the next days: SLA compliance and the staff it needs.

A queue's future is simulated (`simpy`), not read off a steady-state formula: reviewers work
shifts, so a queue is served eight hours a day and a task that arrives at night waits for the
morning; Erlang C's steady state, which assumes the same staff at every hour, cannot say
whether a 24-hour SLA holds across a night. Each simulated future:

- starts from the tasks waiting now (their ages count against the SLA);
- draws arrivals hour by hour from a Poisson process whose rate for each hour of the day is
  drawn from its posterior given the counts seen over the last days (Gamma, Jeffreys prior),
  so the forecast's spread carries how little a few days of history say about the rate;
- lets each rostered reviewer take the oldest task whenever on shift, at their pace in this
  queue (exponential service times), finishing the task in hand at a shift's end.

A task meets its SLA when it is decided within `sla_hours` of arriving. Every future runs until
the last arrival's SLA has passed, so no task is left uncounted. Over `futures` futures, each
day's compliance is reported as the mean and the 5th and 95th percentiles. The staff needed is
the smallest team, drawn round-robin from the queue's own reviewers (their shifts and paces),
whose expected compliance over the horizon reaches `queues.sla_target`.

The push orders tasks by harm with aging rather than oldest first (`labeling.route`); near
its SLA a task has the aging term's full weight and goes first, so the share decided in time
is close to the oldest-first share the forecast assumes, and the queue benchmark measures how
close (`benchmarks/queues.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import simpy

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class Worker:
    """One reviewer as a queue sees them: tasks an hour while on shift, and the shifts (hours
    from now, in order)."""

    pace: float
    shifts: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Load:
    """What a queue's future is simulated from."""

    sla_hours: float
    waiting_ages: tuple[float, ...]  # hours each waiting task has already waited
    hourly_counts: tuple[float, ...]  # tasks that arrived in each hour of the day (24 values)
    observed_days: float  # over how many days those counts were seen
    workers: tuple[Worker, ...]


@dataclass(frozen=True)
class DayForecast:
    day: int  # 0: today's arrivals (and the tasks waiting now)
    tasks: float  # expected tasks
    within_sla: float | None  # expected share decided within the SLA; None: no task expected
    low: float | None  # 5th percentile over the simulated futures
    high: float | None  # 95th percentile


def _future(load: Load, days: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One simulated future: each task's day and whether it met its SLA."""
    env = simpy.Environment()
    store = simpy.PriorityStore(env)
    counts = np.asarray(load.hourly_counts, dtype=float)
    rates = rng.gamma(counts + 0.5, 1.0 / max(load.observed_days, 1e-9))
    hours = np.arange(days * HOURS_PER_DAY)
    n = rng.poisson(rates[hours % HOURS_PER_DAY])
    arrivals = np.sort(np.repeat(hours, n) + rng.random(int(n.sum())))
    # a task is (its arrival time, its index); waiting ones arrived in the past
    born = np.concatenate([-np.asarray(load.waiting_ages, dtype=float), arrivals])
    decided = np.full(len(born), np.inf)
    for k in range(len(load.waiting_ages)):
        store.put(simpy.PriorityItem(born[k], k))

    def arrive():
        for k in range(len(load.waiting_ages), len(born)):
            yield env.timeout(born[k] - env.now)
            store.put(simpy.PriorityItem(born[k], k))

    def work(worker: Worker):
        for start, end in worker.shifts:
            if env.now < start:
                yield env.timeout(start - env.now)
            while env.now < end:
                get = store.get()
                got = yield get | env.timeout(end - env.now)
                if get not in got:
                    get.cancel()
                    break
                yield env.timeout(rng.exponential(1.0 / worker.pace))
                decided[got[get].item] = env.now

    env.process(arrive())
    for worker in load.workers:
        env.process(work(worker))
    env.run(until=days * HOURS_PER_DAY + load.sla_hours)
    day = np.maximum(np.floor(born / HOURS_PER_DAY), 0).astype(int)
    return day, decided - born <= load.sla_hours


def forecast(load: Load, days: int, futures: int, seed: int = 0) -> list[DayForecast]:
    """Each day's expected SLA compliance over `futures` simulated futures."""
    rng = np.random.default_rng(seed)
    tasks = np.zeros((futures, days))
    met = np.zeros((futures, days))
    for f in range(futures):
        day, ok = _future(load, days, rng)
        tasks[f] = np.bincount(day, minlength=days)[:days]
        met[f] = np.bincount(day, weights=ok, minlength=days)[:days]
    out = []
    for d in range(days):
        some = tasks[:, d] > 0
        share = met[some, d] / tasks[some, d]
        out.append(
            DayForecast(
                day=d,
                tasks=float(tasks[:, d].mean()),
                # the expected share of tasks: a future with more tasks weighs more
                within_sla=float(met[:, d].sum() / tasks[:, d].sum()) if some.any() else None,
                low=float(np.percentile(share, 5)) if some.any() else None,
                high=float(np.percentile(share, 95)) if some.any() else None,
            )
        )
    return out


def compliance(days: list[DayForecast]) -> float | None:
    """The horizon's expected share of tasks decided within the SLA."""
    total = sum(d.tasks for d in days)
    if total == 0:
        return None
    return sum(d.tasks * (d.within_sla or 0.0) for d in days) / total


def staff_needed(
    load: Load, target: float, days: int, futures: int, seed: int = 0, most: int = 200
) -> int | None:
    """The fewest reviewers, drawn round-robin from the queue's own (their shifts and paces),
    whose expected compliance over the horizon reaches `target`; None if `most` do not."""
    if not load.workers:
        return None

    def meets(n: int) -> bool:
        team = tuple(load.workers[i % len(load.workers)] for i in range(n))
        share = compliance(forecast(replace(load, workers=team), days, futures, seed))
        return share is None or share >= target

    if meets(0):
        return 0
    low, high = 0, 1
    while not meets(high):
        low, high = high, high * 2
        if high > most:
            return None if not meets(most) else _search(meets, low, most)
    return _search(meets, low, high)


def _search(meets, low: int, high: int) -> int:
    """The least n in (low, high] that meets, `meets(high)` being true (more staff never
    hurts, up to the simulation's noise, which a shared seed keeps apart from n)."""
    while high - low > 1:
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return high
