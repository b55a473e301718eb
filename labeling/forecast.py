"""What the review queues will look like over the next days: SLA compliance and the staff needed.

The queues' future is simulated (`simpy`), not read off a steady-state formula: reviewers work
shifts, so a queue is served eight hours a day and a task that arrives at night waits for the
morning; Erlang C's steady state, which assumes the same staff at every hour, cannot say
whether a 24-hour SLA holds across a night. And a reviewer who works several queues serves
whichever needs them, which a fixed split of their hours would not capture. Each simulated
future:

- starts from the tasks waiting now (their ages count against the SLA);
- draws each queue's arrivals hour by hour from a Poisson process: the day's rate drawn from
  its posterior given the arrivals seen over the last days (Gamma, Jeffreys prior), spread
  over the hours of the day by a profile drawn from theirs (Dirichlet, one pseudo-arrival
  spread evenly), so the forecast's spread carries how little a few days of history say, and
  a queue that saw nothing for a week expects little;
- lets each rostered reviewer, whenever on shift and free, take a queue's head: its oldest
  task due for escalation (past `queues.escalate_at` of its SLA and still savable,
  `labeling.escalate`), else its oldest; among the queues they work, the head with the most
  harm now (the queue's severity times an even chance plus the head's age over the SLA,
  `labeling.route.harm`) per reviewer who can work that queue (a specialist's hours go where
  few others can stand in); at their pace (exponential service times), finishing the task in
  hand at a shift's end.

A task meets its SLA when it is decided within its queue's `sla_hours` of arriving. Every
future runs until the last arrival's SLA has passed, so no task is left uncounted. Over
`futures` futures, each day's compliance is reported as the expected share and the 5th and
95th percentiles. The staff a queue needs is the fewest reviewers working it, drawn round-robin
from its own rostered reviewers (their shifts and paces), whose expected compliance over the
horizon reaches the target.

The push orders tasks by harm with aging rather than by age alone (`labeling.route`); near its
SLA a task has the aging term's full weight and goes first, so the share decided in time is
close to what this order gives, and the queue benchmark measures how close
(`benchmarks/queues.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from labeling.route import UNSCORED

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class Worker:
    """One reviewer: tasks an hour while on shift (decisions an hour over the decisions each
    task needs), their shifts (hours from now, in order) and the queues they work."""

    pace: float
    shifts: tuple[tuple[float, float], ...]
    queues: tuple[str, ...]


@dataclass(frozen=True)
class Load:
    """What one queue's future is simulated from."""

    name: str
    sla_hours: float
    waiting_ages: tuple[float, ...]  # hours each waiting task has already waited
    hourly_counts: tuple[float, ...]  # tasks that arrived in each hour of the day (24 values)
    observed_days: float  # over how many days those counts were seen
    severity: float = 1.0


@dataclass(frozen=True)
class DayForecast:
    day: int  # 0: today's arrivals (and the tasks waiting now)
    tasks: float  # expected tasks
    within_sla: float | None  # expected share decided within the SLA; None: no task expected
    low: float | None  # 5th percentile over the simulated futures
    high: float | None  # 95th percentile


def _arrivals(load: Load, days: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.asarray(load.hourly_counts, dtype=float)
    daily = rng.gamma(counts.sum() + 0.5, 1.0 / max(load.observed_days, 1e-9))
    rates = daily * rng.dirichlet(counts + 1.0 / HOURS_PER_DAY)
    hours = np.arange(days * HOURS_PER_DAY)
    n = rng.poisson(rates[hours % HOURS_PER_DAY])
    return np.sort(np.repeat(hours, n) + rng.random(int(n.sum())))


def _future(
    loads: list[Load],
    workers: tuple[Worker, ...],
    days: int,
    rng: np.random.Generator,
    escalate_at: float | None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One simulated future: per queue, each task's day and whether it met its SLA."""
    env = simpy.Environment()
    by_name = {load.name: load for load in loads}
    born = {  # per queue, in arrival order: the waiting tasks (negative times), then arrivals
        load.name: np.concatenate(
            [-np.sort(np.asarray(load.waiting_ages, dtype=float))[::-1], _arrivals(load, days, rng)]
        )
        for load in loads
    }
    decided = {name: np.full(len(b), np.inf) for name, b in born.items()}
    taken = {name: np.zeros(len(b), dtype=bool) for name, b in born.items()}
    arrived = dict.fromkeys(born, 0)  # how many have arrived
    oldest = dict.fromkeys(born, 0)  # the first not taken
    savable = dict.fromkeys(born, 0)  # the first not taken and not past its SLA
    signal = [env.event()]
    capable = {name: max(sum(name in w.queues for w in workers), 1) for name in born}

    def arrive(name: str):
        for t in born[name]:
            if t > env.now:
                yield env.timeout(t - env.now)
            arrived[name] += 1
            signal[0].succeed()
            signal[0] = env.event()

    def head(name: str) -> int | None:
        """The queue's next task: its oldest one due for escalation (past `escalate_at` of
        the SLA, not past the SLA) if any, else its oldest."""
        b, done, sla = born[name], taken[name], by_name[name].sla_hours
        while oldest[name] < arrived[name] and done[oldest[name]]:
            oldest[name] += 1
        if oldest[name] >= arrived[name]:
            return None
        if escalate_at is not None:
            k = savable[name]
            while k < arrived[name] and (done[k] or env.now - b[k] >= sla):
                k += 1
            savable[name] = k
            if k < arrived[name] and env.now - b[k] >= escalate_at * sla:
                return k
        return oldest[name]

    def pick(worker: Worker) -> tuple[str, int] | None:
        """Among the worker's queues, the head with the most harm now (at an even chance of a
        violation), per reviewer who could take it: a specialist's hours go where few others
        can stand in."""
        best, urgency = None, -np.inf
        for name in worker.queues:
            k = head(name) if name in born else None
            if k is None:
                continue
            load = by_name[name]
            age = env.now - born[name][k]
            u = load.severity * (UNSCORED + age / load.sla_hours) / capable[name]
            if u > urgency:
                best, urgency = (name, k), u
        if best is not None:
            taken[best[0]][best[1]] = True
        return best

    def work(worker: Worker):
        for start, end in worker.shifts:
            if env.now < start:
                yield env.timeout(start - env.now)
            while env.now < end:
                task = pick(worker)
                if task is None:
                    yield signal[0] | env.timeout(end - env.now)
                    continue
                yield env.timeout(rng.exponential(1.0 / worker.pace))
                decided[task[0]][task[1]] = env.now

    for name in born:
        env.process(arrive(name))
    for worker in workers:
        if worker.pace > 0 and set(worker.queues) & set(born):
            env.process(work(worker))
    env.run(until=days * HOURS_PER_DAY + max(load.sla_hours for load in loads))
    out = {}
    for name, b in born.items():
        day = np.maximum(np.floor(b / HOURS_PER_DAY), 0).astype(int)
        out[name] = (day, decided[name] - b <= by_name[name].sla_hours)
    return out


def forecast(
    loads: list[Load],
    workers: tuple[Worker, ...],
    days: int,
    futures: int,
    seed: int = 0,
    escalate_at: float | None = None,
) -> dict[str, list[DayForecast]]:
    """Each queue's expected SLA compliance per day, over `futures` simulated futures;
    `escalate_at` (`queues.escalate_at`): tasks that far into their SLA, and savable, first."""
    rng = np.random.default_rng(seed)
    tasks = {load.name: np.zeros((futures, days)) for load in loads}
    met = {load.name: np.zeros((futures, days)) for load in loads}
    for f in range(futures):
        for name, (day, ok) in _future(loads, workers, days, rng, escalate_at).items():
            tasks[name][f] = np.bincount(day, minlength=days)[:days]
            met[name][f] = np.bincount(day, weights=ok, minlength=days)[:days]
    return {name: _days(tasks[name], met[name], days) for name in tasks}


def _days(tasks: np.ndarray, met: np.ndarray, days: int) -> list[DayForecast]:
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
    loads: list[Load],
    workers: tuple[Worker, ...],
    queue: str,
    target: float,
    days: int,
    futures: int,
    seed: int = 0,
    most: int = 200,
    escalate_at: float | None = None,
) -> int | None:
    """The fewest reviewers working `queue`, drawn round-robin from its own (their shifts,
    paces and other queues), the others as rostered, whose expected compliance over the
    horizon reaches `target` in `queue`; None if `most` do not."""
    own = [w for w in workers if queue in w.queues]
    others = tuple(w for w in workers if queue not in w.queues)
    if not own:  # nobody rostered to copy: one who works only this queue, at the mean pace
        pace = float(np.mean([w.pace for w in workers])) if workers else 1.0
        horizon = days * HOURS_PER_DAY + max(load.sla_hours for load in loads)
        own = [Worker(pace, ((0.0, horizon),), (queue,))]

    def meets(n: int) -> bool:
        team = others + tuple(own[i % len(own)] for i in range(n))
        share = compliance(forecast(loads, team, days, futures, seed, escalate_at)[queue])
        return share is None or share >= target

    if meets(0):
        return 0
    low, high = 0, 1
    while not meets(high):
        if high >= most:
            return None
        low, high = high, min(high * 2, most)
    while high - low > 1:  # the least n in (low, high] that meets
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return high
