"""Interval records from cumulative registers: boundaries, gaps, resets, conservation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.intervals import MeterState, Outcome, feed
from protocols.wire import IntervalFlag

GAP, EST, RESET = IntervalFlag.GAP, IntervalFlag.ESTIMATED, IntervalFlag.RESET
MIN = 60_000


def run(readings: list[tuple[int, float]], interval_s: int = 900, max_gap_s: float = 150):
    state = MeterState()
    closed = []
    outcomes = []
    for ts, value in readings:
        result = feed(state, ts, value, interval_s=interval_s, max_gap_s=max_gap_s)
        outcomes.append(result.outcome)
        closed.extend(result.closed)
    return state, closed, outcomes


def test_readings_on_boundaries_give_exact_intervals() -> None:
    _, closed, _ = run([(k * MIN, 100.0 + 2 * k) for k in range(31)])
    assert [(c.start_ms, c.quantity, c.flags) for c in closed] == [
        (0, pytest.approx(30.0), frozenset()),
        (900_000, pytest.approx(30.0), frozenset()),
    ]


def test_consumption_is_split_linearly_across_a_boundary() -> None:
    # 10 kWh between 14:00 and 16:00 minutes past: 1 min before, 1 min after the boundary.
    _, closed, _ = run([(0, 0.0), (14 * MIN, 14.0), (16 * MIN, 24.0)], max_gap_s=15 * 60)
    assert len(closed) == 1
    assert closed[0].quantity == pytest.approx(14.0 + 5.0)
    # No reading at 15:00: the split is interpolated (docs/wire-protocol.md, `estimated`).
    assert closed[0].flags == frozenset({EST})


def test_interpolated_split_flags_both_sides_and_exact_boundaries_none() -> None:
    _, closed, _ = run([(0, 0.0), (14 * MIN, 14.0), (16 * MIN, 24.0), (30 * MIN, 38.0),
                        (45 * MIN, 53.0)], max_gap_s=15 * 60)
    # 0–15 and 15–30 hold interpolated shares; 30–45 was read on both boundaries.
    assert [c.flags for c in closed] == [frozenset({EST}), frozenset({EST}), frozenset()]
    assert sum(c.quantity for c in closed) == pytest.approx(53.0)


def test_a_reading_just_after_the_boundary_counts_as_on_it() -> None:
    """On the real clock a slot's read is stamped a few ms after the boundary: not an
    interpolation worth flagging (every interval would be estimated)."""
    _, closed, _ = run([(3, 0.0), (MIN + 2, 1.0), (15 * MIN + 40, 15.0), (30 * MIN + 1, 30.0)],
                       max_gap_s=15 * 60)
    assert [c.flags for c in closed[1:]] == [frozenset()]
    _, closed, _ = run([(0, 0.0), (15 * MIN + 2001, 15.0)], max_gap_s=30 * 60)
    assert closed[0].flags == frozenset({EST})


def test_no_consumption_across_a_boundary_is_exact() -> None:
    _, closed, _ = run([(0, 5.0), (14 * MIN, 5.0), (16 * MIN, 5.0), (30 * MIN, 5.0)],
                       max_gap_s=15 * 60)
    assert [c.flags for c in closed] == [frozenset(), frozenset()]


def test_first_reading_mid_interval_flags_that_interval_as_gap() -> None:
    _, closed, outcomes = run([(5 * MIN, 10.0), (15 * MIN, 20.0)])
    assert outcomes == [Outcome.FIRST, Outcome.ACCEPTED]
    assert closed[0].start_ms == 0
    assert closed[0].quantity == pytest.approx(10.0)
    assert GAP in closed[0].flags


def test_long_gap_flags_every_interval_it_touches() -> None:
    _, closed, _ = run([(0, 0.0), (MIN, 1.0), (46 * MIN, 46.0)], max_gap_s=150)
    assert [c.start_ms // MIN for c in closed] == [0, 15, 30]
    assert all({GAP, EST} <= c.flags for c in closed)
    assert sum(c.quantity for c in closed) == pytest.approx(45.0)


def test_gap_within_tolerance_is_not_flagged() -> None:
    _, closed, _ = run([(0, 0.0), (2 * MIN, 2.0), (15 * MIN, 15.0)], max_gap_s=14 * 60)
    assert closed[0].flags == frozenset()


def test_counter_going_backwards_is_a_flagged_reset_never_negative() -> None:
    _, closed, outcomes = run([(0, 500.0), (10 * MIN, 510.0), (15 * MIN, 3.0)])
    assert outcomes[-1] is Outcome.RESET
    assert closed[0].quantity == pytest.approx(13.0)
    assert {RESET, EST} <= closed[0].flags


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_invalid_values_are_rejected_without_changing_state(value: float) -> None:
    state, _, outcomes = run([(0, 1.0), (MIN, value)])
    assert outcomes[-1] is Outcome.REJECTED_VALUE
    assert state.last_value == 1.0


def test_reading_not_after_previous_is_rejected() -> None:
    state, _, outcomes = run([(MIN, 1.0), (MIN, 2.0), (0, 3.0)])
    assert outcomes[1:] == [Outcome.REJECTED_TIME, Outcome.REJECTED_TIME]
    assert state.last_value == 1.0


@given(st.lists(st.tuples(st.integers(1, 4 * 3600_000), st.floats(0, 1e4)), min_size=2,
                max_size=60))
def test_intervals_plus_open_part_conserve_consumption(steps: list[tuple[int, float]]) -> None:
    """Sum of closed intervals + the open remainder == last − first reading (no resets)."""
    ts, value = 0, 1000.0
    readings = [(ts, value)]
    for dt, dv in steps:
        ts, value = ts + dt, value + dv
        readings.append((ts, value))
    state, closed, _ = run(readings)
    total = sum(c.quantity for c in closed) + state.open_quantity
    assert total == pytest.approx(value - 1000.0, rel=1e-9, abs=1e-6)
    starts = [c.start_ms for c in closed]
    assert starts == sorted(set(starts))
    assert all(s % 900_000 == 0 for s in starts)


NOW_MS = 1_781_000_000_000  # June 2026
DAY = 86_400_000


def test_a_clock_step_from_1970_is_not_spread_over_decades() -> None:
    """A Pi that booted at 1970, read its meter, then NTP set the clock: the delta lands in
    the interval of the first real reading, flagged, instead of ~2 million 15-min intervals."""
    state, closed, outcomes = run([(5 * MIN, 100.0), (10 * MIN, 101.0), (NOW_MS, 103.5),
                                   (NOW_MS + 15 * MIN, 104.5)])
    assert outcomes == [Outcome.FIRST, Outcome.ACCEPTED, Outcome.CLOCK_STEP, Outcome.ACCEPTED]
    assert len(closed) == 2
    at_1970, after_step = closed
    assert (at_1970.start_ms, at_1970.quantity) == (0, pytest.approx(1.0))
    assert GAP in at_1970.flags  # its end is unknown
    assert after_step.start_ms == NOW_MS - NOW_MS % 900_000
    assert after_step.flags >= {GAP, EST}
    total = sum(c.quantity for c in closed) + state.open_quantity
    assert total == pytest.approx(104.5 - 100.0)


def test_readings_more_than_a_year_apart_are_a_clock_step() -> None:
    _, closed, outcomes = run([(NOW_MS - 400 * DAY, 10.0), (NOW_MS, 30.0)])
    assert outcomes[1] is Outcome.CLOCK_STEP
    # The first reading's interval (started mid-interval, so GAP) closes with nothing in it;
    # the 20 units stay open in the interval of NOW_MS.
    assert [(c.quantity, GAP in c.flags) for c in closed] == [(0.0, True)]


def test_a_ten_day_outage_is_still_a_gap_spread_over_its_intervals() -> None:
    _, closed, outcomes = run([(NOW_MS - 10 * DAY, 10.0), (NOW_MS, 970.0)])
    assert outcomes[1] is Outcome.ACCEPTED
    assert len(closed) == 10 * 96 - 1 or len(closed) == 10 * 96
    assert all(c.flags >= {GAP, EST} for c in closed)
