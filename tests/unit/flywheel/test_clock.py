"""The platform's clock: the wall clock in a real home, a simulation's where one runs."""

from datetime import UTC, datetime, timedelta

import pytest

from flywheel import clock
from flywheel.errors import FlywheelError
from flywheel.lake import utc_now


def test_a_home_without_a_simulated_clock_runs_on_the_wall_clock(settings):
    before = datetime.now(UTC)
    assert before <= clock.now(settings) <= datetime.now(UTC)
    stamp = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert clock.at(stamp, settings) == stamp and not clock.simulated(settings)


def test_the_simulated_clock_moves_forward_and_maps_stamps_taken_before_each_jump(
    settings, monkeypatch
):
    """Each jump holds from the wall-clock moment it was made on: a stamp taken before it
    (by Label Studio, say) maps as it did then; the clock never goes back."""
    wall = datetime.now(UTC)
    before = wall - timedelta(minutes=5)
    ahead = wall + timedelta(days=2)
    assert clock.advance(settings, ahead) >= ahead
    assert clock.simulated(settings)
    assert clock.now(settings) - ahead < timedelta(seconds=5)
    assert clock.at(before, settings) == before, "a stamp from before the jump moved"
    between = datetime.now(UTC)
    later = ahead + timedelta(hours=3)
    clock.advance(settings, later)
    assert clock.at(datetime.now(UTC), settings) >= later
    jumped = clock.at(between, settings)
    assert ahead <= jumped < later, "a stamp between the jumps keeps the first jump"
    present = clock.now(settings)
    assert clock.advance(settings, ahead) >= present, "the clock went back"
    monkeypatch.setenv("FLYWHEEL_HOME", str(settings.home))
    assert utc_now() >= later, "the lake's stamps are not on the home's clock"


def test_a_broken_clock_file_is_a_clear_error(settings):
    clock.clock_path(settings).parent.mkdir(parents=True, exist_ok=True)
    clock.clock_path(settings).write_text("{not json")
    with pytest.raises(FlywheelError, match="not a simulated clock"):
        clock.now(settings)
