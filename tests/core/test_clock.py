import threading

import pytest

from ketmonitor.clock import ManualClock, ScaledClock, parse_utc, utc_iso


def test_utc_iso_round_trips_with_a_z():
    assert utc_iso(1_767_225_600.25) == "2026-01-01T00:00:00.250Z"
    assert parse_utc("2026-01-01T00:00:00.250Z") == 1_767_225_600.25
    assert parse_utc("2026-01-01T01:00:00+01:00") == 1_767_225_600.0


def test_scaled_clock_runs_fast_and_stops_at_the_end_of_a_batch():
    clock = ScaledClock(10_000.0, wall_anchor=1_000.0, stop_at=50.0)
    assert clock.sleep_until(50.0)  # returns once simulated time reached the end
    assert clock.monotonic() == 50.0
    assert clock.wall() == 1_050.0
    with pytest.raises(ValueError):
        ScaledClock(0)


def test_manual_clock_wakes_sleepers_when_advanced():
    clock = ManualClock()
    woke = threading.Event()
    t = threading.Thread(target=lambda: clock.sleep_until(5.0) and woke.set())
    t.start()
    assert not woke.wait(0.1)
    clock.advance(5.0)
    assert woke.wait(5)
    t.join()


def test_an_ended_batch_clock_says_later_times_are_unreachable():
    clock = ScaledClock(10.0, stop_at=60.0)
    assert clock.reachable(60.0) and not clock.reachable(60.5)
    assert ManualClock().reachable(1e9)


@pytest.mark.parametrize("text", ["2026-01-01T00:00:00", "2026-01-01T00:00:00.250", "2026-01-01",
                                  "yesterday", "", None, 1_767_225_600])
def test_a_time_without_a_zone_or_not_a_time_is_refused(text):
    """Never read as local time: the same text would mean a different instant on each machine."""
    with pytest.raises(ValueError):
        parse_utc(text)
