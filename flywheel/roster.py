"""The roster: who reviews which queues, in which languages, how fast, and when.

A policy with `queues:` points to a roster file (YAML). Every reviewer has a Label Studio user,
languages, other skills, the queues they work, their pace in decisions per hour and their
shifts; checks on load make sure that every reviewer's queues exist and need only skills they
have, and that every queue can be worked by someone. Pushes fill each queue only up to what its
reviewers can decide within its SLA (`queue_capacity`), and the forecast staffs from the same
figures.

```yaml
timezone: Europe/Lisbon
reviewers:
  - id: rev-ana
    user: ana@example.org          # the Label Studio user
    languages: [en, pt]
    skills: [senior]               # beside languages, e.g. for appeals
    queues: [general, portuguese]
    decisions_per_hour: 30
    shifts:
      - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
```
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from flywheel.errors import FlywheelError
from flywheel.language import iso_code
from flywheel.policy import Policy, _Section, describe_problem

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class Shift(_Section):
    """Working hours on some weekdays, in the roster's time zone; an end before the start runs
    past midnight."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1)
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"{value!r} is not a time of day as HH:MM")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Shift:
        if self.start == self.end:
            raise ValueError("a shift must start and end at different times")
        return self

    def intervals(self, day: datetime) -> list[tuple[datetime, datetime]]:
        """The shift's hours that start on `day` (midnight, time zone aware), if it works then."""
        if DAYS[day.weekday()] not in self.days:
            return []
        begin = datetime.combine(day.date(), time.fromisoformat(self.start), day.tzinfo)
        end = datetime.combine(day.date(), time.fromisoformat(self.end), day.tzinfo)
        if end <= begin:
            end += timedelta(days=1)
        return [(begin, end)]


class Reviewer(_Section):
    id: str = Field(min_length=1)  # as decisions name them (`reviewer_id`)
    user: str = Field(min_length=1)  # the Label Studio user (e-mail)
    languages: list[str] = Field(min_length=1)
    skills: list[str] = Field(default_factory=list)
    queues: list[str] = Field(min_length=1)
    decisions_per_hour: float = Field(gt=0)
    shifts: list[Shift] = Field(min_length=1)

    @property
    def can(self) -> set[str]:
        """Everything a queue may ask of a reviewer: languages are skills too."""
        return {*self.languages, *self.skills}

    def on_shift(self, start: datetime, end: datetime, zone: ZoneInfo) -> list[tuple[float, float]]:
        """The reviewer's shifts between `start` and `end` (time zone aware), as hours from
        `start`, in order."""
        spans = []
        day = datetime.combine((start.astimezone(zone) - timedelta(days=1)).date(), time(), zone)
        while day < end:
            for begin, finish in (i for s in self.shifts for i in s.intervals(day)):
                lo, hi = max(begin, start), min(finish, end)
                if hi > lo:
                    spans.append(
                        ((lo - start).total_seconds() / 3600, (hi - start).total_seconds() / 3600)
                    )
            day = datetime.combine((day + timedelta(days=1)).date(), time(), zone)
        return sorted(spans)

    def hours(self, start: datetime, end: datetime, zone: ZoneInfo) -> float:
        """Hours on shift between `start` and `end` (time zone aware)."""
        return sum(hi - lo for lo, hi in self.on_shift(start, end, zone))


class Roster(_Section):
    timezone: str = "UTC"
    reviewers: list[Reviewer] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    @model_validator(mode="after")
    def _unique(self) -> Roster:
        for key in ("id", "user"):
            values = [getattr(r, key) for r in self.reviewers]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"reviewers: {key} listed twice: {', '.join(dupes)}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def working(self, queue: str) -> list[Reviewer]:
        return [r for r in self.reviewers if queue in r.queues]

    @property
    def languages(self) -> list[str]:
        return sorted({c for r in self.reviewers for c in r.languages})


def check_roster(roster: Roster, policy: Policy, source: str) -> Roster:
    """Every reviewer's queues exist and need only skills they have; every queue has someone."""
    assert policy.queues is not None
    known = {q.name: q for q in policy.queues.define}
    for code in policy.queues.languages:
        iso_code(code)
    for i, reviewer in enumerate(roster.reviewers):
        for code in reviewer.languages:
            try:
                iso_code(code)
            except FlywheelError as exc:
                raise FlywheelError(f"{source}: reviewers[{i}] ({reviewer.id}): {exc}") from None
        for name in reviewer.queues:
            if name not in known:
                raise FlywheelError(
                    f"{source}: reviewers[{i}] ({reviewer.id}): unknown queue {name!r} "
                    f"(the policy's queues: {', '.join(known)})"
                )
            lacking = sorted(set(known[name].skills) - reviewer.can)
            if lacking:
                raise FlywheelError(
                    f"{source}: reviewers[{i}] ({reviewer.id}): works {name!r} but lacks its "
                    f"skills {', '.join(lacking)}"
                )
    for queue in policy.queues.define:
        if not roster.working(queue.name):
            needs = f" (skills: {', '.join(queue.skills)})" if queue.skills else ""
            raise FlywheelError(
                f"{source}: queue {queue.name!r}{needs}: no rostered reviewer works it, so its "
                "tasks would never be decided"
            )
    return roster


def load_roster(policy: Policy) -> Roster:
    """The policy's roster, validated against it (`queues.roster`, resolved when the policy
    was loaded)."""
    if policy.queues is None:
        raise FlywheelError(f"policy {policy.name} has no queues, so no roster")
    path = Path(policy.queues.roster)
    if not path.is_file():
        raise FlywheelError(f"{policy.name}: queues.roster: roster file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FlywheelError(f"{path}: not valid YAML") from exc
    try:
        roster = Roster.model_validate(raw)
    except ValidationError as exc:
        raise FlywheelError(describe_problem(exc, str(path), Roster)) from exc
    return check_roster(roster, policy, str(path))
