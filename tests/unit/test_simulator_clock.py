import time

import pytest

from local.simulator.clock import SimClock, iso_timestamp


def test_clock_runs_scale_times_faster():
    clock = SimClock(scale=600)
    start = clock.now()

    time.sleep(0.05)

    assert clock.now() - start >= 30


def test_advance_jumps_forward():
    clock = SimClock(scale=1)
    start = clock.now()

    clock.advance(7200)

    assert clock.now() - start >= 7200


def test_advance_backwards_rejected():
    with pytest.raises(ValueError, match="back"):
        SimClock().advance(-1)


def test_set_scale_keeps_current_time():
    clock = SimClock(scale=1)
    before = clock.now()

    clock.set_scale(1000)

    assert clock.now() - before < 5


def test_real_seconds_until_divides_by_scale():
    clock = SimClock(scale=600)

    assert clock.real_seconds_until(clock.now() + 600) == pytest.approx(1, abs=0.05)


def test_iso_timestamp_has_milliseconds_and_z():
    assert iso_timestamp(0.5) == "1970-01-01T00:00:00.500Z"
