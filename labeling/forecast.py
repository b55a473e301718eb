"""What the review queues will look like over the next days: SLA compliance and the staff needed.

The queues' future is simulated (`simpy`), not read off a steady-state formula: reviewers work
shifts, so a queue is served eight hours a day and a task that arrives at night waits for the
morning; Erlang C's steady state, which assumes the same staff at every hour, cannot say
whether a 24-hour SLA holds across a night. And a reviewer who works several queues serves
whichever needs them, which a fixed split of their hours would not capture. Each simulated
future:

- starts from the tasks waiting now (their ages count against the SLA, their scores are
  known);
- draws each queue's arrivals hour by hour from a Poisson process: the day's rate drawn from
  its posterior given the arrivals seen over the last days (Gamma, Jeffreys prior), spread
  over the hours of the day by a profile drawn from theirs (Dirichlet, one pseudo-arrival
  spread evenly), so the forecast's spread carries how little a few days of history say, and
  a queue that saw nothing for a week expects little; each arrival's score is drawn from the
  queue's recent ones (an even chance where none is known);
- lets each rostered reviewer, whenever on shift and free, take a queue's head as the push
  and Label Studio order it: its oldest task due for escalation (past `queues.escalate_at`
  of its SLA and still savable, in a queue with no task late, `labeling.escalate`), else its
  most harmful with aging (`labeling.route.harm`, `queues.age_weight`); among the queues they
  work, specialty first: the queues with work waiting that the fewest reviewers can work (a
  rare language's readers on its queues before the ones everyone shares), and among those the
  head with the most harm now; at their pace (exponential service times), finishing the task
  in hand at a shift's end.

The order within a queue matters to the forecast only when the queue is short of hands: then
the order decides which tasks wait past the SLA, and harm's order (high scores first, aging
behind) keeps neither the same tasks in time as oldest first would nor as many, so the
forecast follows it rather than the simpler oldest first.

A task meets its SLA when it is decided within its queue's `sla_hours` of arriving. Every
future runs until the last arrival's SLA has passed, so no task is left uncounted. Over
`futures` futures, each day's compliance and the horizon's are reported as the expected share
and the 5th and 95th percentiles of the futures' shares: a queue on a knife edge (worked at
about the rate it fills) has a wide band, and its band, not its mean, is what to plan on. The
staff a queue needs is the fewest reviewers working it, drawn round-robin from its own
rostered reviewers (their shifts and paces), whose expected compliance over the horizon
reaches the target. How close the forecast comes to what happens is measured by
`benchmarks/queues.py`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import simpy

from flywheel.policy import AGE_WEIGHT
from labeling.route import UNSCORED, probability

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
    waiting_scores: tuple[float, ...] = ()  # the waiting tasks' scores, as `waiting_ages`
    scores: tuple[float, ...] = ()  # recent tasks' scores, that arrivals' scores are drawn from


@dataclass(frozen=True)
class DayForecast:
    day: int  # 0: today's arrivals (and the tasks waiting now)
    tasks: float  # expected tasks
    within_sla: float | None  # expected share decided within the SLA; None: no task expected
    low: float | None  # 5th percentile over the simulated futures
    high: float | None  # 95th percentile


@dataclass(frozen=True)
class Outlook:
    """One queue's forecast: day by day, and over the whole horizon."""

    days: list[DayForecast]
    within_sla: float | None  # the horizon's expected share decided within the SLA
    low: float | None  # 5th percentile of the horizon's share over the simulated futures
    high: float | None  # 95th percentile


def _arrivals(load: Load, days: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Arrival hours, and their scores drawn from the queue's recent ones."""
    counts = np.asarray(load.hourly_counts, dtype=float)
    daily = rng.gamma(counts.sum() + 0.5, 1.0 / max(load.observed_days, 1e-9))
    rates = daily * rng.dirichlet(counts + 1.0 / HOURS_PER_DAY)
    hours = np.arange(days * HOURS_PER_DAY)
    n = rng.poisson(rates[hours % HOURS_PER_DAY])
    born = np.sort(np.repeat(hours, n) + rng.random(int(n.sum())))
    return born, _scores(load.scores, len(born), rng)


def _scores(seen: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` violation probabilities resampled from the scores `seen` (`labeling.route.
    probability`); an even chance each where none was seen."""
    return rng.choice(probability(seen), n) if len(seen) else np.full(n, UNSCORED)


def _waiting(load: Load) -> tuple[np.ndarray, np.ndarray]:
    """The waiting tasks as born times (negative: before now), oldest first, with their
    violation probabilities (an even chance each where `waiting_scores` is empty)."""
    ages = np.asarray(load.waiting_ages, dtype=float)
    if load.waiting_scores and len(load.waiting_scores) != len(ages):
        raise ValueError(f"queue {load.name}: a score for each waiting task, or none")
    p = probability(load.waiting_scores) if load.waiting_scores else np.full(len(ages), UNSCORED)
    order = np.argsort(-ages, kind="stable")
    return -ages[order], p[order]


def _future(
    loads: list[Load],
    workers: tuple[Worker, ...],
    days: int,
    rng: np.random.Generator,
    escalate_at: float | None,
    age_weight: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One simulated future: per queue, each task's day and whether it met its SLA."""
    env = simpy.Environment()
    by_name = {load.name: load for load in loads}
    born, score = {}, {}  # per queue, in arrival order: the waiting tasks, then arrivals
    for load in loads:
        then, was = _waiting(load)
        later, will = _arrivals(load, days, rng)
        born[load.name] = np.concatenate([then, later])
        score[load.name] = np.concatenate([was, will])
    decided = {name: np.full(len(b), np.inf) for name, b in born.items()}
    taken = {name: np.zeros(len(b), dtype=bool) for name, b in born.items()}
    ranked: dict[str, list] = {name: [] for name in born}  # arrived, by harm with aging
    arrived = dict.fromkeys(born, 0)  # how many have arrived
    savable = dict.fromkeys(born, 0)  # the first not taken and not past its SLA
    late = dict.fromkeys(born, 0)  # tasks before it not taken: past their SLA, undecided
    signal = [env.event()]
    capable = {name: max(sum(name in w.queues for w in workers), 1) for name in born}

    def arrive(name: str):
        # harm with aging, (p + w (now - born) / sla) severity, ranks a queue's tasks the same
        # at every moment: by p - w born / sla
        key = -(score[name] - age_weight * born[name] / by_name[name].sla_hours)
        for k, t in enumerate(born[name]):
            if t > env.now:
                yield env.timeout(t - env.now)
            heapq.heappush(ranked[name], (key[k], k))
            arrived[name] += 1
            signal[0].succeed()
            signal[0] = env.event()

    def head(name: str) -> int | None:
        """The queue's next task: its oldest one due for escalation (past `escalate_at` of
        the SLA, not past the SLA) if any and no task of the queue is late, else its most
        harmful."""
        b, done, sla = born[name], taken[name], by_name[name].sla_hours
        if escalate_at is not None:
            k = savable[name]
            while k < arrived[name] and (done[k] or env.now - b[k] >= sla):
                late[name] += not done[k]
                k += 1
            savable[name] = k
            if k < arrived[name] and env.now - b[k] >= escalate_at * sla and not late[name]:
                return k
        heap = ranked[name]
        while heap and done[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def pick(worker: Worker) -> tuple[str, int] | None:
        """Among the worker's queues with work waiting, those the fewest reviewers can work
        first (specialty first: where few can stand in, nobody else will take the task), and
        among them the head with the most harm now."""
        best, urgency = None, (-np.inf, -np.inf)
        for name in worker.queues:
            k = head(name) if name in born else None
            if k is None:
                continue
            load = by_name[name]
            age = env.now - born[name][k]
            u = load.severity * (score[name][k] + age_weight * age / load.sla_hours)
            if (-capable[name], u) > urgency:
                best, urgency = (name, k), (-capable[name], u)
        if best is not None:
            taken[best[0]][best[1]] = True
            late[best[0]] -= best[1] < savable[best[0]]
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
    age_weight: float = AGE_WEIGHT,
) -> dict[str, Outlook]:
    """Each queue's expected SLA compliance per day and over the horizon, over `futures`
    simulated futures; `escalate_at` (`queues.escalate_at`): tasks that far into their SLA,
    and savable, first; `age_weight` (`queues.age_weight`): the aging in harm's order."""
    rng = np.random.default_rng(seed)
    tasks = {load.name: np.zeros((futures, days)) for load in loads}
    met = {load.name: np.zeros((futures, days)) for load in loads}
    for f in range(futures):
        for name, (day, ok) in _future(loads, workers, days, rng, escalate_at, age_weight).items():
            tasks[name][f] = np.bincount(day, minlength=days)[:days]
            met[name][f] = np.bincount(day, weights=ok, minlength=days)[:days]
    return {name: _outlook(tasks[name], met[name]) for name in tasks}


def _share(tasks: np.ndarray, met: np.ndarray) -> tuple[float | None, ...]:
    """Over futures: the expected share met, and the 5th and 95th percentiles of the futures'
    shares; None where none is expected. A future with more tasks weighs more in all three,
    so the band is the one the mean is taken over (a few futures with many late tasks among
    many with one task each move both, not the mean alone)."""
    some = tasks > 0
    if not some.any():
        return None, None, None
    share, weight = met[some] / tasks[some], tasks[some]
    order = np.argsort(share, kind="stable")
    share, cumulative = share[order], np.cumsum(weight[order]) / weight.sum()

    def percentile(q: float) -> float:
        return float(share[min(np.searchsorted(cumulative, q), len(share) - 1)])

    return float(met.sum() / tasks.sum()), percentile(0.05), percentile(0.95)


def _outlook(tasks: np.ndarray, met: np.ndarray) -> Outlook:
    days = [
        DayForecast(d, float(tasks[:, d].mean()), *_share(tasks[:, d], met[:, d]))
        for d in range(tasks.shape[1])
    ]
    return Outlook(days, *_share(tasks.sum(axis=1), met.sum(axis=1)))


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
    age_weight: float = AGE_WEIGHT,
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
        ahead = forecast(loads, team, days, futures, seed, escalate_at, age_weight)[queue]
        return ahead.within_sla is None or ahead.within_sla >= target

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
