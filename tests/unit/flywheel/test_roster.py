import copy
from datetime import UTC, datetime, timedelta

import pytest

from flywheel.errors import FlywheelError
from flywheel.roster import load_roster
from tests.conftest import QUEUES, ROSTER, queued_policy

MONDAY = datetime(2026, 12, 7, tzinfo=UTC)


def test_the_roster_is_found_beside_the_policy_and_counts_shift_hours(tmp_path):
    policy = queued_policy(tmp_path)
    roster = load_roster(policy)
    ana, bo = roster.reviewers
    assert ana.hours(MONDAY, MONDAY + timedelta(days=1), roster.zone) == 8.0
    # an overnight shift: Monday 22:00 to Tuesday 06:00, and Sunday night's does not exist
    assert bo.hours(MONDAY, MONDAY + timedelta(days=1), roster.zone) == 2.0
    assert bo.hours(MONDAY, MONDAY + timedelta(days=7), roster.zone) == 40.0
    # Friday night's shift runs into Saturday
    saturday = MONDAY + timedelta(days=5)
    assert bo.hours(saturday, saturday + timedelta(days=2), roster.zone) == 6.0
    assert roster.working("urgent") == [bo] and roster.languages == ["en", "es", "pt"]


def test_a_roster_in_another_time_zone_shifts_the_hours(tmp_path):
    roster = copy.deepcopy(ROSTER)
    roster["timezone"] = "America/Sao_Paulo"  # UTC-3: 09:00-17:00 there is 12:00-20:00 UTC
    loaded = load_roster(queued_policy(tmp_path, roster=roster))
    ana = loaded.reviewers[0]
    noon = MONDAY + timedelta(hours=12)
    assert ana.hours(MONDAY, noon, loaded.zone) == 0.0
    assert ana.hours(noon, noon + timedelta(hours=10), loaded.zone) == 8.0


def _broken(queues=None, roster=None):
    return copy.deepcopy(queues or QUEUES), copy.deepcopy(roster or ROSTER)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda q, r: q["routes"].insert(0, {"queue": "nope"}),
            r"routes\[0\]: unknown queue 'nope'",
        ),
        (
            lambda q, r: q["routes"].insert(
                0, {"queue": "general", "when": {"field": {"colour": ["red"]}}}
            ),
            r"queues.routes\[0\].when: unknown field 'colour'",
        ),
        (
            lambda q, r: q["routes"].insert(
                0, {"queue": "general", "when": {"language": ["portuguese"]}}
            ),
            r"not a two-letter ISO 639-1",
        ),
        (lambda q, r: q["routes"].pop(), r"the last route must have no `when`"),
        (
            lambda q, r: q["define"].append({"name": "german", "sla_hours": 8, "skills": ["de"]}),
            r"queue 'german' \(skills: de\): no rostered reviewer works it",
        ),
        (
            lambda q, r: r["reviewers"][0]["queues"].append("appeals"),
            r"reviewers\[0\] \(rev-ana\): works 'appeals' but lacks its skills senior",
        ),
        (
            lambda q, r: r["reviewers"][1]["queues"].append("spanish"),
            r"reviewers\[1\] \(rev-bo\): unknown queue 'spanish'",
        ),
        (lambda q, r: r["reviewers"][1].update(user="ana@example.org"), r"user listed twice"),
        (lambda q, r: r.update(timezone="Mars/Olympus"), r"unknown time zone"),
        (
            lambda q, r: r["reviewers"][0]["shifts"][0].update(end="25:00"),
            r"reviewers.0.shifts.0.end: .*not a time of day",
        ),
        (lambda q, r: r["reviewers"][0].update(languages=["xx"]), r"rev-ana.*'xx'.*lingua"),
    ],
)
def test_a_broken_queue_or_roster_is_refused_on_load_naming_what(tmp_path, change, message):
    queues, roster = _broken()
    change(queues, roster)
    with pytest.raises(FlywheelError, match=message):
        queued_policy(tmp_path, queues, roster)


def test_a_missing_roster_file_is_named(tmp_path):
    queues, _ = _broken()
    queues["roster"] = "elsewhere.yaml"
    with pytest.raises(FlywheelError, match=r"queues.roster: roster file not found: .*elsewhere"):
        queued_policy(tmp_path, queues)
