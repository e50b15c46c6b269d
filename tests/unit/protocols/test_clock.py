"""SystemClock distrusts a 1970 wall clock and counts steps of the wall clock."""

from __future__ import annotations

from protocols.clock import PLAUSIBLE_FLOOR, SystemClock

NOW = 1_790_000_000.0  # 2026-09-21


class FakeTime:
    def __init__(self, wall: float) -> None:
        self.wall = wall
        self.mono = 100.0

    def tick(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def clock_at(t: FakeTime) -> SystemClock:
    return SystemClock(wall=lambda: t.wall, monotonic=lambda: t.mono)


def test_a_clock_at_1970_is_not_synced_until_it_is_set() -> None:
    t = FakeTime(86_400.0)  # 1970-01-02: a Pi without RTC or network time
    clock = clock_at(t)
    assert clock.synced is False
    t.wall = NOW  # NTP sets it
    assert clock.synced is True
    assert PLAUSIBLE_FLOOR < NOW


def test_steps_of_the_wall_clock_are_counted_both_ways() -> None:
    t = FakeTime(NOW)
    clock = clock_at(t)
    for _ in range(10):
        t.tick(1.0)
        clock.now()
    assert clock.jumps == 0
    t.wall += 2 * 86_400  # +2 days
    clock.now()
    t.wall -= 2 * 86_400 + 3_600  # corrected, and one hour further back
    clock.now()
    assert clock.jumps == 2
    assert clock.last_jump_s == -(2 * 86_400 + 3_600)
    t.tick(0.5)
    clock.now()
    assert clock.jumps == 2  # ordinary passage of time is no jump


def test_whoever_checks_ntp_can_withdraw_trust() -> None:
    clock = clock_at(FakeTime(NOW))
    clock.set_synced(False)
    assert clock.synced is False
