"""Interval records from a cumulative register (kWh, m³): pure, no I/O, no clock reads.

Consumption between two readings is spread linearly over the time between them and cut at
interval boundaries (aligned to the Unix epoch, so 15-minute intervals are aligned in
Beijing time too). Readings taken exactly on boundaries give exact intervals; the sum of all
intervals always equals last reading − first reading, so nothing is created or lost by the
split.

Nothing is silently absorbed:
- a boundary that falls between two readings, neither within `on_boundary_s` (2 s: the
  latency of a poll slot on the real clock) of it → the consumption is split there by
  linear interpolation, so the intervals on both sides are flagged ESTIMATED (unless
  nothing was consumed: then the split is exact);
- readings further apart than `max_gap_s` → every interval touched is flagged GAP+ESTIMATED;
- the register going backwards → RESET+ESTIMATED, the new value is taken as consumed since
  the reset (a replaced or zeroed meter starts near 0), and the caller emits an event;
- a first reading in the middle of an interval → that interval is flagged GAP (its start is
  unknown), never reported as complete;
- a reading at or before the previous reading's time is returned as rejected;
- a wall-clock step forward — the previous reading stamped before 2024 (a Pi that booted at
  1970 before NTP) or more than `clock_step_s` earlier — is CLOCK_STEP: the time between the
  two readings is not real, so the consumption is not spread over decades of intervals (which
  also hung the poller): the open interval is closed as GAP and the delta goes to the
  interval of the new reading, flagged GAP+ESTIMATED. Totals are still conserved.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from protocols.wire import IntervalFlag


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    FIRST = "first"  # no previous reading: nothing to compute yet
    RESET = "reset"  # register went backwards
    REJECTED_TIME = "rejected_time"  # not after the previous reading
    REJECTED_VALUE = "rejected_value"  # NaN / infinite / negative
    CLOCK_STEP = "clock_step"  # the previous reading's time was not real (see module doc)


PLAUSIBLE_FLOOR_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z, as protocols.clock
CLOCK_STEP_S = 366 * 86_400  # readings further apart than this: a clock step, not an outage
ON_BOUNDARY_S = 2.0  # a reading this close to a boundary counts as read on it (poll latency)


@dataclass(frozen=True, slots=True)
class ClosedInterval:
    start_ms: int
    duration_s: int
    quantity: float
    flags: frozenset[IntervalFlag]


@dataclass(slots=True)
class MeterState:
    """What must survive a restart for one cumulative point (persisted by the outbox)."""

    last_ts_ms: int | None = None
    last_value: float | None = None
    open_start_ms: int | None = None  # start of the interval being accumulated
    open_quantity: float = 0.0
    open_flags: set[IntervalFlag] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class FeedResult:
    outcome: Outcome
    closed: tuple[ClosedInterval, ...] = ()


def _floor(ts_ms: int, length_ms: int) -> int:
    return ts_ms - ts_ms % length_ms


def feed(state: MeterState, ts_ms: int, value: float, *, interval_s: int,
         max_gap_s: float, clock_step_s: float = CLOCK_STEP_S,
         on_boundary_s: float = ON_BOUNDARY_S) -> FeedResult:
    """Add one reading; mutates `state` and returns the intervals it closed."""
    if not math.isfinite(value) or value < 0:
        return FeedResult(Outcome.REJECTED_VALUE)
    length = interval_s * 1000
    if state.last_ts_ms is None or state.last_value is None:
        state.last_ts_ms, state.last_value = ts_ms, value
        state.open_start_ms = _floor(ts_ms, length)
        state.open_quantity = 0.0
        # Started mid-interval: consumption before the first reading is unknown.
        state.open_flags = set() if ts_ms == state.open_start_ms else {IntervalFlag.GAP}
        return FeedResult(Outcome.FIRST)
    t0, v0 = state.last_ts_ms, state.last_value
    if ts_ms <= t0:
        return FeedResult(Outcome.REJECTED_TIME)
    outcome = Outcome.ACCEPTED
    piece_flags: set[IntervalFlag] = set()
    delta = value - v0
    if delta < 0:
        outcome = Outcome.RESET
        delta = value
        piece_flags |= {IntervalFlag.RESET, IntervalFlag.ESTIMATED}
    if (ts_ms - t0) > max_gap_s * 1000:
        piece_flags |= {IntervalFlag.GAP, IntervalFlag.ESTIMATED}
    if state.open_start_ms is None:
        state.open_start_ms = _floor(t0, length)
    if ts_ms >= PLAUSIBLE_FLOOR_MS and (t0 < PLAUSIBLE_FLOOR_MS
                                        or ts_ms - t0 > clock_step_s * 1000):
        return _clock_step(state, ts_ms, value, delta, piece_flags, interval_s)
    closed: list[ClosedInterval] = []
    span = ts_ms - t0
    cursor = t0
    allotted = 0.0
    while True:
        boundary = state.open_start_ms + length
        if ts_ms < boundary:
            break
        # The share of this piece that falls before the boundary.
        share = delta - allotted if boundary == ts_ms else delta * (boundary - t0) / span - allotted
        allotted += share
        state.open_quantity += share
        state.open_flags |= piece_flags
        # No reading at the boundary: the split there is interpolated, on both sides.
        interpolated = (delta != 0 and boundary != ts_ms
                        and min(boundary - t0, ts_ms - boundary) > on_boundary_s * 1000)
        if interpolated:
            state.open_flags.add(IntervalFlag.ESTIMATED)
        closed.append(ClosedInterval(state.open_start_ms, interval_s, state.open_quantity,
                                     frozenset(state.open_flags)))
        state.open_start_ms = boundary
        state.open_quantity = 0.0
        state.open_flags = {IntervalFlag.ESTIMATED} if interpolated else set()
        cursor = boundary
    if cursor < ts_ms:
        state.open_quantity += delta - allotted
        state.open_flags |= piece_flags
    state.last_ts_ms, state.last_value = ts_ms, value
    return FeedResult(outcome, tuple(closed))


def _clock_step(state: MeterState, ts_ms: int, value: float, delta: float,
                flags: set[IntervalFlag], interval_s: int) -> FeedResult:
    """Close the open interval (its end is unknown) and start again at `ts_ms` with the
    whole delta in the new reading's interval: nothing lost, nothing spread over time that
    did not pass."""
    closed: tuple[ClosedInterval, ...] = ()
    assert state.open_start_ms is not None
    if state.open_quantity != 0.0 or state.open_flags:
        closed = (ClosedInterval(state.open_start_ms, interval_s, state.open_quantity,
                                 frozenset(state.open_flags | {IntervalFlag.GAP})),)
    state.open_start_ms = _floor(ts_ms, interval_s * 1000)
    state.open_quantity = delta
    state.open_flags = flags | {IntervalFlag.GAP, IntervalFlag.ESTIMATED}
    state.last_ts_ms, state.last_value = ts_ms, value
    return FeedResult(Outcome.CLOCK_STEP, closed)
