import math

import numpy as np
import pytest

from labeling.forecast import Load, Worker, forecast, staff_needed

ALWAYS = ((0.0, 1e6),)


def _steady(rate: float, workers: int, pace: float, sla: float, ages=()):
    """A queue whose arrival rate is known to within a hair (a year of hourly counts), and
    its team."""
    days = 365.0
    load = Load("q", sla, tuple(ages), (rate * days,) * 24, days)
    return [load], (Worker(pace, ALWAYS, ("q",)),) * workers


def _erlang_c(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def _mmc_within(t: float, lam: float, mu: float, c: int) -> float:
    """P(wait + service <= t) in the M/M/c queue's steady state."""
    wait = _erlang_c(c, lam / mu)
    theta = c * mu - lam
    both = (mu * math.exp(-theta * t) - theta * math.exp(-mu * t)) / (mu - theta)
    return 1 - ((1 - wait) * math.exp(-mu * t) + wait * both)


def test_on_a_staffed_queue_the_forecast_is_erlangs_answer():
    lam, mu, c, sla = 2.5, 1.0, 4, 1.5
    ahead = forecast(*_steady(lam, c, mu, sla), days=10, futures=20, seed=1)["q"]
    expected = _mmc_within(sla, lam, mu, c)
    assert ahead.within_sla == pytest.approx(expected, abs=0.02), expected
    assert all(d.low <= d.within_sla <= d.high for d in ahead.days)
    assert ahead.low <= ahead.within_sla <= ahead.high
    assert sum(d.tasks for d in ahead.days) == pytest.approx(lam * 240, rel=0.02)


def test_a_night_without_reviewers_breaches_what_arrives_too_long_before_the_morning():
    """One fast reviewer on 09:00-17:00 every day, a 12-hour SLA: what arrives between 17:00
    and 21:00 waits past its SLA for the morning, everything else is decided in time."""
    shifts = tuple((24.0 * d + 9, 24.0 * d + 17) for d in range(30))
    load = Load("q", 12.0, (), (20 * 10.0,) * 24, 10.0)
    ahead = forecast([load], (Worker(2000.0, shifts, ("q",)),), days=5, futures=10, seed=2)["q"]
    assert ahead.within_sla == pytest.approx(1 - 4 / 24, abs=0.01)
    # Erlang C's steady state, with one reviewer at every hour, would promise all of it
    assert _mmc_within(12.0, 20, 2000.0, 1) > 0.999


def test_without_reviewers_nothing_is_decided_and_old_tasks_have_already_breached():
    load = Load("q", 4.0, (10.0, 1.0), (0.0,) * 24, 7.0)
    (today,) = forecast([load], (), days=1, futures=5)["q"].days
    # none seen in a week is not none to come: the rate's posterior (Jeffreys) allows a few
    assert today.within_sla == 0.0 and 2.0 <= today.tasks < 10


def test_the_staff_needed_is_erlangs_where_erlang_holds():
    lam, mu, sla, target = 5.5, 1.0, 3.0, 0.9
    needed = staff_needed(*_steady(lam, 1, mu, sla), "q", target, days=4, futures=8, seed=3)
    erlang = next(c for c in range(6, 40) if _mmc_within(sla, lam, mu, c) >= target)
    assert abs(needed - erlang) <= 1, (needed, erlang)
    assert staff_needed(*_steady(0.0, 1, mu, sla), "q", target, days=2, futures=2) == 0


def test_a_few_days_of_history_widen_the_forecast():
    sure, team = _steady(3.0, 4, 1.0, 1.0)
    unsure = [Load("q", 1.0, (), (3.0,) * 24, 1.0)]  # the same rate, one day seen
    spread = [
        np.mean(
            [d.high - d.low for d in forecast(loads, team, days=2, futures=40, seed=4)["q"].days]
        )
        for loads in (sure, unsure)
    ]
    assert spread[1] > spread[0]


def test_a_reviewer_of_two_queues_serves_the_one_that_needs_them():
    """One fast reviewer on two queues, all day: a quiet queue is not starved by a busy one,
    and a severe queue's tasks wait less than a mild one's at the same load."""
    always = ((0.0, 500.0),)
    busy = Load("busy", 4.0, (), (24 * 3.0,) * 24, 24.0)
    quiet = Load("quiet", 4.0, (), (24 * 0.2,) * 24, 24.0)
    both = forecast([busy, quiet], (Worker(4.0, always, ("busy", "quiet")),), 4, 10, seed=5)
    assert both["quiet"].within_sla > 0.7 and both["busy"].within_sla > 0.7
    mild = Load("mild", 2.0, (), (24 * 1.6,) * 24, 24.0, severity=1.0)
    severe = Load("severe", 2.0, (), (24 * 1.6,) * 24, 24.0, severity=3.0)
    shared = forecast([mild, severe], (Worker(3.4, always, ("mild", "severe")),), 4, 10, seed=6)
    assert shared["severe"].within_sla > shared["mild"].within_sla


def test_a_short_handed_queue_keeps_its_likely_violations_in_time_as_harms_order_does():
    """Ten tasks an hour for a reviewer who decides six: in the oldest-first order the backlog
    soon outlasts the 2-hour SLA for every task, while harm's order (without aging) decides the
    half scored 0.9 first, at five an hour, most of them in time, and lets the rest wait."""
    days = 365.0
    seen = Load("q", 2.0, (), (10 * days,) * 24, days)
    scored = Load("q", 2.0, (), (10 * days,) * 24, days, scores=(0.9, 0.1))
    team = (Worker(6.0, ALWAYS, ("q",)),)
    by_age = forecast([seen], team, days=5, futures=10, seed=7, age_weight=0.0)["q"]
    by_harm = forecast([scored], team, days=5, futures=10, seed=7, age_weight=0.0)["q"]
    assert by_age.within_sla < 0.1 < 0.3 < by_harm.within_sla < 0.5


def test_the_band_weighs_futures_by_their_tasks_as_the_mean_does():
    """Nineteen futures with one task, decided in time, and one with twenty, all late: a task
    is more likely late than not (the mean, 19 of 39), and the band says so."""
    from labeling.forecast import _share

    tasks = np.array([1.0] * 19 + [20.0])
    met = np.array([1.0] * 19 + [0.0])
    mean, low, high = _share(tasks, met)
    assert mean == pytest.approx(19 / 39)
    assert low == 0.0 and high == 1.0


def test_a_queue_with_a_late_task_escalates_nothing_as_escalation_does():
    """The short-handed queue above escalates until its first task is late, and then
    leaves its tasks in harm's order (escalating there would only make the fresher, likelier
    violations late in turn); with a task already late (waiting five hours on a 2-hour SLA,
    scored 0, never reached once the reviewer starts an hour on), it escalates nothing
    (`labeling.escalate`), and its future is harm's order alone, draw for draw."""
    days = 365.0
    hourly = (10 * days,) * 24
    fresh = Load("q", 2.0, (), hourly, days, scores=(0.9, 0.1))
    behind = Load("q", 2.0, (5.0,), hourly, days, waiting_scores=(0.0,), scores=(0.9, 0.1))
    team = (Worker(6.0, ((1.0, 1e6),), ("q",)),)

    def within(load: Load, escalate_at: float | None) -> float:
        return forecast([load], team, 5, 10, seed=7, escalate_at=escalate_at, age_weight=0.0)[
            "q"
        ].within_sla

    assert within(fresh, 0.75) != within(fresh, None)
    assert within(behind, 0.75) == within(behind, None)
