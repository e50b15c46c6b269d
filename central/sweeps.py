"""Period figures computed in one pass over time-ordered data. Pure: no I/O, no clock reads.

Why this module exists: the AC setpoint share used to look up "the value in force at t" by
rescanning a unit's samples from the start for every time step, so a month of 1-minute
samples (43,200 per point) took quadratic time — a monthly report ran for minutes. Here
each series is walked once with a cursor that only moves forward, so the work is linear in
the samples (plus one sort of their timestamps, already in order when read from a store).

Invariant kept on purpose: the results are bit-for-bit those of the former definition
(tests/unit/central/test_sweeps.py keeps that definition as a reference and compares both
over random sample streams). The spans are added in the same order, one time step after the
other, so even the float rounding is the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

SampleValue = float | int | bool | str
Samples = Sequence[tuple[int, SampleValue]]
ON_VALUES = (True, 1, "on", "true", "1")


class _Cursor:
    """The sample in force at a time that only moves forward: the last sample at or before
    it (in list order among equal timestamps), while younger than `max_hold_ms`."""

    __slots__ = ("_i", "_n", "_samples", "since", "value")

    def __init__(self, samples: Samples) -> None:
        self._samples = samples
        self._n = len(samples)
        self._i = 0
        self.value: SampleValue | None = None
        self.since: int | None = None

    def advance(self, t: int) -> None:
        samples, i, n = self._samples, self._i, self._n
        while i < n and samples[i][0] <= t:
            self.since, self.value = samples[i]
            i += 1
        self._i = i

    def at(self, t: int, max_hold_ms: int) -> SampleValue | None:
        if self.since is None or t - self.since >= max_hold_ms:
            return None
        return self.value


def _ordered(samples: Samples) -> Samples:
    """The samples in time order; a stable sort keeps the list order of equal timestamps.
    Store reads are already ordered, so this is one comparison per sample."""
    if all(samples[i][0] <= samples[i + 1][0] for i in range(len(samples) - 1)):
        return samples
    return sorted(samples, key=lambda s: s[0])


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
    `summer_min`, heating modes when setpoint ≤ `winter_max`; other modes are not judged."""
    cool, heat = set(cooling), set(heating)
    judged = compliant = 0.0
    for unit_series in series:
        setpoints, modes = _ordered(unit_series[0]), _ordered(unit_series[1])
        ons: Samples = _ordered(unit_series[2]) if len(unit_series) > 2 else ()
        stamps = {ts for ts, _ in setpoints} | {ts for ts, _ in modes}
        stamps.update(ts for ts, _ in ons)
        stamps.update((start_ms, end_ms))
        points = sorted(p for p in stamps if start_ms <= p <= end_ms)
        sp_at, mode_at = _Cursor(setpoints), _Cursor(modes)
        on_at = _Cursor(ons) if ons else None
        for k in range(len(points) - 1):
            a, b = points[k], points[k + 1]
            sp_at.advance(a)
            mode_at.advance(a)
            sp, mode = sp_at.at(a, max_hold_ms), mode_at.at(a, max_hold_ms)
            if sp is None or mode is None or isinstance(sp, str | bool):
                continue
            seg_end = b
            if on_at is not None:
                on_at.advance(a)
                if on_at.at(a, max_hold_ms) not in ON_VALUES:
                    continue  # off, or on/off unknown
            # Every sample expires at most max_hold after it was taken; the cursors hold
            # the latest sample at or before a of each point (all known here).
            for c in (sp_at, mode_at, on_at):
                if c is not None and c.since is not None:
                    seg_end = min(seg_end, c.since + max_hold_ms)
            span = (seg_end - a) / 1000
            if span <= 0:
                continue
            m = str(mode)
            if m in cool:
                judged += span
                compliant += span if float(sp) >= summer_min else 0.0
            elif m in heat:
                judged += span
                compliant += span if float(sp) <= winter_max else 0.0
    return judged, compliant

