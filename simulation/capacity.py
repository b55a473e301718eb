"""A review team with finite hours, and the work that arrives for it over simulated hours.

The world: review tasks arrive through the day (a Poisson process with a daily swing), in three
languages, one of them rare; each carries the champion's calibrated score, and is a violation
with that probability. The team: reviewers who read some of the languages, work eight-hour
shifts that together cover the day, at their own pace, scaled so that the team, and the
readers of each language, can decide a chosen share of what arrives (its capacity).

`work` plays the team against the tasks (simpy) under one of three ways of choosing the next
task:

- `oldest` (ROOST's Coop): the policy's queues and who may work them, the oldest task first;
- `score` (Flywheel before queues): one queue for everyone, the highest score first with a
  small age bonus (`labeling.review_age_weight`); a reviewer who meets a task in a language
  they cannot read skips it, after reading it for a while, and Label Studio hands it to
  someone else;
- `harm` (Flywheel's routing): the policy's queues and skills, expected harm with aging
  (`labeling.route.harm`), and a task near its SLA escalated to the head of its queue
  (`queues.escalate_at`) in a queue with no task late (`labeling.escalate`); a reviewer of
  several queues works the ones the fewest of the team can work first;
- `truth` (a reference no ordering can have): the policy's queues and skills, the violating
  tasks first by severity, knowing which they are, without aging or escalation (specialists
  on their own queues first, as under `harm`): how much of the exposure an ordering can touch
  at all, with this team on these shifts.

Each task's decision time is recorded; `benchmarks/queues.py` turns them into SLA compliance,
harm exposure and utilisation, and checks the queues' forecast against them.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from flywheel.policy import Policy, parse_policy
from labeling.route import harm, route

LANGUAGES = {"en": 0.70, "pt": 0.25, "sw": 0.05}
SKIP_SHARE = 0.15  # of a decision's time, spent finding out a task is in a language one cannot read
SHIFTS = ((6.0, 14.0), (14.0, 22.0), (22.0, 30.0))  # hours of the day; the night one ends at 6
POLICY = parse_policy(
    """
name: queues_bench
labels: {positive: violating, negative: benign}
fields: {text: [text], numeric: [score_field]}
targets: {auto_action_precision: 0.95, review_recall: 0.9}
labeling: {overlap: 1, review_age_weight: 0.02}
queues:
  roster: unused.yaml
  escalate_at: 0.75
  age_weight: 0.02
  sla_target: 0.95
  define:
    - {name: swahili, sla_hours: 24, skills: [sw]}
    - {name: urgent_pt, sla_hours: 4, severity: 3, skills: [pt]}
    - {name: portuguese, sla_hours: 24, skills: [pt]}
    - {name: urgent, sla_hours: 4, severity: 3}
    - {name: general, sla_hours: 24}
  routes:
    - {queue: swahili, when: {language: [sw]}}
    - {queue: urgent_pt, when: {language: [pt], score_at_least: 0.8}}
    - {queue: portuguese, when: {language: [pt]}}
    - {queue: urgent, when: {score_at_least: 0.8}}
    - {queue: general}
"""
)


@dataclass(frozen=True)
class Member:
    """One reviewer: languages read, decisions an hour, the shift worked every day."""

    name: str
    languages: tuple[str, ...]
    pace: float
    shift: tuple[float, float]


def arrivals(
    rng: np.random.Generator, days: int, per_hour: float, score_shape: float = 2.0
) -> pd.DataFrame:
    """Review tasks over `days`: arrival hour, language, score, truth and effort, routed by
    POLICY. Scores are Beta(`score_shape`, `score_shape`): 2 is a champion unsure across its
    review band (ROC AUC about 0.76 on these tasks), 0.5 one that mostly knows (about 0.90)."""
    hours = np.arange(days * 24)
    swing = 1 + 0.5 * np.sin(2 * np.pi * ((hours % 24) - 10) / 24)  # busiest mid-afternoon
    n = rng.poisson(per_hour * swing)
    arrived = np.repeat(hours, n) + rng.random(int(n.sum()))
    order = np.argsort(arrived)
    arrived = arrived[order]
    size = len(arrived)
    score = rng.beta(score_shape, score_shape, size)
    tasks = pd.DataFrame(
        {
            "item_id": [f"t{k}" for k in range(size)],
            "arrived": arrived,
            "language": rng.choice(list(LANGUAGES), size, p=list(LANGUAGES.values())),
            "score": score,
            "truth": rng.random(size) < score,  # the score is calibrated
            # the work a decision on it takes, in units of a reviewer's mean: a property of
            # the task, so every ordering meets the same traffic (whoever decides it takes
            # effort / pace hours)
            "effort": rng.exponential(1.0, size),
            "purpose": "review",
            "decision": "review",
        }
    )
    tasks["queue"] = route(tasks, POLICY, tasks["language"], set())
    queues = {q.name: q for q in POLICY.queues.define}
    tasks["sla"] = tasks["queue"].map({n: q.sla_hours for n, q in queues.items()})
    tasks["severity"] = tasks["queue"].map({n: q.severity for n, q in queues.items()})
    return tasks


def team(rng: np.random.Generator, per_hour: float, capacity: float) -> list[Member]:
    """Twelve reviewers (eight read English only, three Portuguese too, one Swahili too) on
    the day's three shifts, at paces drawn apart and scaled so that the readers of each
    language can decide `capacity` times what arrives in it over a day (and the whole team
    `capacity` times all of it): a team at 100% is staffed for every language, as a lead
    staffs it. Were the paces scaled only as a whole, the three Portuguese readers would hold
    anywhere from 90% to 110% of the Portuguese work at "100%", and no ordering can decide
    tasks that nobody left on shift can read."""
    groups = {"en": [("en",)] * 8, "pt": [("en", "pt")] * 3, "sw": [("en", "sw")]}
    members, k = [], 0
    for language, readers in groups.items():
        raw = rng.uniform(20.0, 40.0, len(readers))
        shifts = [SHIFTS[(k + j) % 3] for j in range(len(readers))]
        hours = np.array([end - start for start, end in shifts])
        scale = capacity * per_hour * LANGUAGES[language] * 24 / float((raw * hours).sum())
        for j, langs in enumerate(readers):
            members.append(Member(f"rev-{k:02d}", langs, float(raw[j] * scale), shifts[j]))
            k += 1
    return members


def can_work(member: Member, queue: str, policy: Policy = POLICY) -> bool:
    skills = next(q.skills for q in policy.queues.define if q.name == queue)
    return set(skills) <= set(member.languages)


class _Board:
    """The waiting tasks, as one ordering sees them."""

    def __init__(
        self, tasks: pd.DataFrame, ordering: str, policy: Policy, members: list[Member]
    ) -> None:
        self.tasks, self.ordering, self.policy = tasks, ordering, policy
        # how many of the team can work each queue: a specialist's own queues come first
        self.capable = {
            q.name: max(sum(can_work(m, q.name, policy) for m in members), 1)
            for q in policy.queues.define
        }
        self.heaps: dict[str, list] = {}
        self.late = np.zeros(len(tasks), dtype=bool)  # past its SLA, not taken, seen so
        self.lates: dict[str, int] = {}  # per queue, how many
        self.fifo: dict[str, list] = {}  # per queue, by arrival: escalation's view
        self.taken = np.zeros(len(tasks), dtype=bool)
        self.skipped: dict[str, set[int]] = {}
        self.escalated = 0
        weight = policy.queues.age_weight
        age_bonus = policy.labeling.review_age_weight
        t = tasks["arrived"].to_numpy()
        if ordering == "oldest":
            self.key = t
        elif ordering == "truth":  # the violating ones first, each lot oldest first
            self.key = t - 1e6 * tasks["truth"].to_numpy()
        elif ordering == "score":
            self.key = -(tasks["score"].to_numpy() - age_bonus * t)
        else:  # harm with aging: (p + w (now - t) / sla) severity orders a queue by p - w t / sla
            self.key = -(tasks["score"].to_numpy() - weight * t / tasks["sla"].to_numpy())

    def lane(self, k: int) -> str:
        return "all" if self.ordering == "score" else self.tasks["queue"].iat[k]

    def add(self, k: int) -> None:
        heapq.heappush(self.heaps.setdefault(self.lane(k), []), (self.key[k], k))
        if self.ordering == "harm":
            heapq.heappush(
                self.fifo.setdefault(self.lane(k), []), (self.tasks["arrived"].iat[k], k)
            )

    def _head(self, heap: list) -> int | None:
        while heap and self.taken[heap[0][1]]:
            heapq.heappop(heap)
        return heap[0][1] if heap else None

    def take(self, member: Member, now: float) -> tuple[int | None, bool]:
        """The task `member` takes now, and whether they must first skip one they cannot
        read (the `score` ordering only: routing spares the others that)."""
        if self.ordering == "score":
            return self._take_scored(member)
        lanes = [q for q in self.heaps if can_work(member, q, self.policy)]
        # each lane's head: under harm, its task due for escalation first (the head of its
        # queue), else its most harmful; the lanes then compete on harm now
        heads = [
            k
            for k in (
                (self.ordering == "harm" and self._due(lane, now)) or self._head(self.heaps[lane])
                for lane in lanes
            )
            if k is not None
        ]
        if not heads:
            return None, False
        rows = self.tasks.iloc[heads]
        if self.ordering == "oldest":
            value = -rows["arrived"].to_numpy()
        else:
            if self.ordering == "truth":  # a violation's severity first, knowing which they are
                value = rows["truth"] * rows["severity"] + 1e-6 * (now - rows["arrived"])
            else:  # Flywheel's own harm now
                age = now - rows["arrived"]
                weight = self.policy.queues.age_weight
                value = harm(rows["score"], rows["severity"], age, rows["sla"], weight)
            # specialty first, as the forecast assumes: the queues the fewest can work
            scarcity = rows["queue"].map(self.capable).to_numpy()
            value = np.where(scarcity == scarcity.min(), value.to_numpy(), -np.inf)
        best = heads[int(np.argmax(value))]
        self.taken[best] = True
        if self.late[best]:
            self.lates[self.lane(best)] -= 1
        if self.ordering == "harm" and self._is_due(best, now):
            self.escalated += 1
        return best, False

    def _is_due(self, k: int, now: float) -> bool:
        """Past `escalate_at` of its SLA and not past the SLA itself: escalation can still
        save it (`labeling.escalate`)."""
        age, sla = now - self.tasks["arrived"].iat[k], self.tasks["sla"].iat[k]
        return bool(self.policy.queues.escalate_at * sla <= age < sla)

    def _due(self, lane: str, now: float) -> int | None:
        """The lane's oldest task still savable by escalation, if it is due and no task of the
        lane is late (`labeling.escalate`): tasks past their SLA stay in the fifo's way until
        taken, so look past them, counting them."""
        fifo = self.fifo.get(lane, [])
        while fifo and (
            self.taken[fifo[0][1]] or now - fifo[0][0] >= self.tasks["sla"].iat[fifo[0][1]]
        ):
            _, k = heapq.heappop(fifo)  # taken, or past saving: escalation is done with it
            if not self.taken[k]:  # late: the queue is short of hands
                self.late[k] = True
                self.lates[lane] = self.lates.get(lane, 0) + 1
        k = fifo[0][1] if fifo else None
        return k if k is not None and self._is_due(k, now) and not self.lates.get(lane) else None

    def _take_scored(self, member: Member) -> tuple[int | None, bool]:
        heap = self.heaps.get("all", [])
        mine = self.skipped.setdefault(member.name, set())
        passed = []
        found = None
        while True:
            k = self._head(heap)
            if k is None:
                break
            if self.tasks["language"].iat[k] in member.languages:
                found = k
                break
            passed.append(heapq.heappop(heap))
            if k not in mine:  # first meeting: reading it costs time, then skip
                mine.add(k)
                for item in passed:
                    heapq.heappush(heap, item)
                return None, True
        for item in passed:
            heapq.heappush(heap, item)
        if found is not None:
            self.taken[found] = True
        return found, False


def work(
    tasks: pd.DataFrame,
    members: list[Member],
    ordering: str,
    days: int,
    seed: int = 0,
    policy: Policy = POLICY,
) -> pd.DataFrame:
    """Play the team against the tasks for `days` (and one more for the last ones): each
    task's decision hour (inf if never decided) and who decided it."""
    rng = np.random.default_rng(seed)
    env = simpy.Environment()
    board = _Board(tasks, ordering, policy, members)
    decided = np.full(len(tasks), np.inf)
    by = np.full(len(tasks), "", dtype=object)
    busy = dict.fromkeys((m.name for m in members), 0.0)
    idle = dict.fromkeys((m.name for m in members), 0.0)
    signal = [env.event()]
    horizon = (days + 1) * 24.0

    def arrive():
        for k, t in enumerate(tasks["arrived"].to_numpy()):
            yield env.timeout(max(t - env.now, 0.0))
            board.add(k)
            signal[0].succeed()
            signal[0] = env.event()

    def review(member: Member):
        day = 0
        while day * 24 < horizon:
            start, end = day * 24 + member.shift[0], day * 24 + member.shift[1]
            day += 1
            if env.now < start:
                yield env.timeout(start - env.now)
            while env.now < min(end, horizon):
                k, skip = board.take(member, env.now)
                if skip:
                    spent = rng.exponential(SKIP_SHARE / member.pace)
                    busy[member.name] += spent
                    yield env.timeout(spent)
                    continue
                if k is None:
                    began = env.now
                    yield signal[0] | env.timeout(min(end, horizon) - env.now)
                    idle[member.name] += env.now - began
                    continue
                spent = float(tasks["effort"].iat[k]) / member.pace
                busy[member.name] += spent
                yield env.timeout(spent)
                decided[k], by[k] = env.now, member.name

    env.process(arrive())
    for member in members:
        env.process(review(member))
    env.run(until=horizon)
    # busy over the hours worked: a task in hand at a shift's end is finished, so a shift can
    # run over; idle is time on shift with nothing one could take
    worked = sum(busy.values()) + sum(idle.values())
    out = tasks.assign(decided=decided, reviewer=by)
    out.attrs.update(
        escalated=board.escalated,
        utilisation=sum(busy.values()) / worked if worked else 0.0,
        ordering=ordering,
    )
    return out
