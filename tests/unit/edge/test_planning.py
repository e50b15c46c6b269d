"""The scheduler's planning functions are pure: tested without I/O or sleeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.poller import backoff_s, due_points, is_due, next_aligned, next_slot, poll_order

T0 = 1_772_416_800.0  # 2026-03-02 10:00 Beijing, a multiple of 3600


def test_slots_are_multiples_of_the_intervals() -> None:
    assert next_aligned(T0, 60) == T0
    assert next_aligned(T0 + 0.5, 60) == T0 + 60
    assert next_slot(T0, [60, 300]) == T0 + 60
    assert next_slot(T0 + 240, [300, 900]) == T0 + 300
    assert next_slot(T0 + 59.9, [60]) == T0 + 60


def test_per_point_intervals() -> None:
    intervals = {"energy_import_kwh": 60.0, "power_w": 60.0, "voltage_v": 300.0,
                 "frequency_hz": 900.0}
    assert due_points(intervals, T0) == set(intervals)
    assert due_points(intervals, T0 + 60) == {"energy_import_kwh", "power_w"}
    assert due_points(intervals, T0 + 300) == {"energy_import_kwh", "power_w", "voltage_v"}
    assert due_points(intervals, T0 + 30) == set()
    # one hour holds 60 + 60 + 12 + 4 point reads
    reads = sum(len(due_points(intervals, T0 + 60 * k)) for k in range(60))
    assert reads == 60 + 60 + 12 + 4


def test_fractional_intervals() -> None:
    assert is_due(T0 + 2.5, 2.5)
    assert not is_due(T0 + 2.4, 2.5)
    assert next_slot(T0 + 2.5, [2.5]) == pytest.approx(T0 + 5.0)


@pytest.mark.parametrize("interval", [900.0, 1000.0, 1800.0, 3600.0, 86_400.0])
def test_next_slot_moves_on_for_long_intervals(interval: float) -> None:
    """Regression: at 2026 epoch times a relative epsilon vanished for intervals of 1000 s
    and more, next_slot returned the slot itself and a poller spun on one slot."""
    slot = next_aligned(1_781_452_800.0, interval)  # 2026-06-15 00:00 Beijing
    assert next_aligned(slot, interval) == slot
    assert next_slot(slot, [interval]) == slot + interval
    assert next_slot(slot + interval / 2, [interval]) == slot + interval
    assert next_aligned(slot + 1e-3, interval) == slot + interval


@pytest.mark.parametrize(("failures", "expected"), [
    (0, 0), (1, 60), (2, 120), (3, 240), (4, 480), (5, 600), (50, 600)])
def test_backoff(failures: int, expected: float) -> None:
    assert backoff_s(failures, 60, 600) == expected


def test_backoff_never_below_the_interval() -> None:
    assert backoff_s(1, 900, 600) == 900
    assert backoff_s(9, 900, 600) == 900


@given(st.integers(1, 200), st.floats(0.5, 86_400), st.floats(1, 86_400))
def test_backoff_is_monotonic_and_capped(failures: int, interval: float, cap: float) -> None:
    now, later = backoff_s(failures, interval, cap), backoff_s(failures + 1, interval, cap)
    assert interval <= now <= later <= max(cap, interval)


def test_known_failing_devices_go_last() -> None:
    assert poll_order([True, False, None, True, False]) == [0, 2, 3, 1, 4]
    assert poll_order([]) == []


@given(st.lists(st.sampled_from([True, False, None]), max_size=30))
def test_poll_order_is_a_stable_partition(states: list[bool | None]) -> None:
    order = poll_order(states)
    assert sorted(order) == list(range(len(states)))
    healthy = [i for i in order if states[i] is not False]
    assert order[: len(healthy)] == healthy == sorted(healthy)
    assert order[len(healthy):] == sorted(order[len(healthy):])
