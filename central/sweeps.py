"""Period figures computed in one pass over time-ordered data. Pure: no I/O, no clock reads.

Why this module exists: the AC setpoint share used to look up "the value in force at t" by
rescanning a unit's samples from the start for every time step, so a month of 1-minute
samples (43,200 per point) took quadratic time — a monthly report ran for minutes. Here
each series is walked once with a cursor that only moves forward, so the work is linear in
the samples (plus one sort of their timestamps, already in order when read from a store).

Invariant kept on purpose: the results are those of the former definition
(tests/unit/central/test_sweeps.py keeps that definition as a reference and compares both
over random sample streams), with the spans added as exact integer milliseconds and divided
once, so cutting the window anywhere (at local midnights, for the per-day cache in
central/accache.py) leaves the sum unchanged to the last bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

SampleValue = float | int | bool | str
Samples = Sequence[tuple[int, SampleValue]]
ON_VALUES = (True, 1, "on", "true", "1")


def _ordered(samples: Samples) -> tuple[list[int], list[SampleValue]]:
    """Timestamps and values in time order; a stable sort keeps the list order of equal
    timestamps. Store reads are already ordered, so the sort is one pass."""
    stamps = [ts for ts, _ in samples]
    if stamps != sorted(stamps):
        samples = sorted(samples, key=lambda s: s[0])
        stamps = [ts for ts, _ in samples]
    return stamps, [v for _, v in samples]


class AcRule(NamedTuple):
    """What the AC sweep judges against: the thresholds, the judged modes and the hold."""

    summer_min: float
    winter_max: float
    cooling: tuple[str, ...]
    heating: tuple[str, ...]
    max_hold_ms: int


class AcPoints(NamedTuple):
    """One judged AC unit's points (`on` None: judged by its mode alone)."""

    edge: str
    device: str
    setpoint: str
    mode: str
    on: str | None


def ac_seconds(series: Iterable[tuple[Samples, Samples] | tuple[Samples, Samples, Samples]],
               start_ms: int, end_ms: int, *, summer_min: float, winter_max: float,
               cooling: Iterable[str], heating: Iterable[str], max_hold_ms: int
               ) -> tuple[float, float]:
    """(judged seconds, compliant seconds) of AC units over [start_ms, end_ms).

    Each unit is (setpoint samples, mode samples[, on samples]), each in time order. The
    window is cut at every sample time of the unit; on each piece the values in force at
    its start decide: a sample holds until the next one of its point, at most
    `max_hold_ms`; a piece where a setpoint or mode is unknown (or the setpoint is not a
    number) is not judged; with on samples, only time the unit is on is judged. A piece
    ends early where any of its samples expires. Cooling modes comply when setpoint ≥
    `summer_min`, heating modes when setpoint ≤ `winter_max`; other modes are not judged.

    Spans are added as integer milliseconds and divided once at the end, so the result
    does not depend on how the window is cut: the sum of the pieces of [a, m) and [m, b)
    is that of [a, b) exactly (central/accache.py caches whole days on that ground)."""
    rule = AcRule(summer_min, winter_max, tuple(cooling), tuple(heating), max_hold_ms)
    judged = compliant = 0
    for unit_series in series:
        on = unit_series[2] if len(unit_series) > 2 else ()
        j, c = unit_ms(unit_series[0], unit_series[1], on, start_ms, end_ms, rule,
                       with_on=bool(on))
        judged += j
        compliant += c
    return judged / 1000, compliant / 1000


def unit_ms(setpoints: Samples, modes: Samples, ons: Samples, start_ms: int, end_ms: int,
            rule: AcRule, *, with_on: bool) -> tuple[int, int]:
    """(judged ms, compliant ms) of one unit over [start_ms, end_ms): `ac_seconds`' rule,
    with whether on/off decides given explicitly (`with_on`: the unit has an on sample
    somewhere, not necessarily among `ons`; then time without a known "on" is not
    judged)."""
    cool, heat = set(rule.cooling), set(rule.heating)
    summer_min, winter_max, max_hold_ms = rule.summer_min, rule.winter_max, rule.max_hold_ms
    judged = compliant = 0
    sp_ts, sp_v = _ordered(setpoints)
    md_ts, md_v = _ordered(modes)
    on_ts, on_v = _ordered(ons) if with_on else ([], [])
    points = sorted({*sp_ts, *md_ts, *on_ts, start_ms, end_ms})
    points = [p for p in points if start_ms <= p <= end_ms]
    # Cursors: index of the next sample of each point not yet in force.
    i_sp = i_md = i_on = 0
    n_sp, n_md, n_on = len(sp_ts), len(md_ts), len(on_ts)
    for k in range(len(points) - 1):
        a = points[k]
        while i_sp < n_sp and sp_ts[i_sp] <= a:
            i_sp += 1
        while i_md < n_md and md_ts[i_md] <= a:
            i_md += 1
        # In force at a: the last sample at or before it, while younger than the hold.
        if i_sp == 0 or i_md == 0:
            continue
        sp_since, md_since = sp_ts[i_sp - 1], md_ts[i_md - 1]
        if a - sp_since >= max_hold_ms or a - md_since >= max_hold_ms:
            continue
        sp, mode = sp_v[i_sp - 1], md_v[i_md - 1]
        if isinstance(sp, str | bool):
            continue
        # A piece ends early where any sample in force expires.
        seg_end = min(points[k + 1], sp_since + max_hold_ms, md_since + max_hold_ms)
        if with_on:
            while i_on < n_on and on_ts[i_on] <= a:
                i_on += 1
            if i_on == 0 or a - on_ts[i_on - 1] >= max_hold_ms \
                    or on_v[i_on - 1] not in ON_VALUES:
                continue  # off, or on/off unknown
            seg_end = min(seg_end, on_ts[i_on - 1] + max_hold_ms)
        span = seg_end - a
        if span <= 0:
            continue
        m = str(mode)
        if m in cool:
            judged += span
            compliant += span if float(sp) >= summer_min else 0
        elif m in heat:
            judged += span
            compliant += span if float(sp) <= winter_max else 0
    return judged, compliant
