"""Interval records from a cumulative register (kWh, m³): pure, no I/O, no clock reads.

Consumption between two readings is spread linearly over the time between them and cut at
interval boundaries (aligned to the Unix epoch, so 15-minute intervals are aligned in
Beijing time too). Readings taken exactly on boundaries give exact intervals; the sum of all
intervals always equals last reading − first reading, so nothing is created or lost by the
split.

Nothing is silently absorbed:
- readings further apart than `max_gap_s` → every interval touched is flagged GAP+ESTIMATED;
- the register going backwards → RESET+ESTIMATED, the new value is taken as consumed since
  the reset (a replaced or zeroed meter starts near 0), and the caller emits an event;
- a first reading in the middle of an interval → that interval is flagged GAP (its start is
  unknown), never reported as complete;
- a reading at or before the previous reading's time is returned as rejected.
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
         max_gap_s: float) -> FeedResult:
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
        closed.append(ClosedInterval(state.open_start_ms, interval_s, state.open_quantity,
                                     frozenset(state.open_flags)))
        state.open_start_ms = boundary
        state.open_quantity = 0.0
        state.open_flags = set()
        cursor = boundary
    if cursor < ts_ms:
        state.open_quantity += delta - allotted
        state.open_flags |= piece_flags
    state.last_ts_ms, state.last_value = ts_ms, value
    return FeedResult(outcome, tuple(closed))
