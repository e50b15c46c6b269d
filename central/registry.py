"""The registry's time-varying denominators: floor area (建筑面积) and 用能人数.

Both change over time (a building taken out of use, a new school term), and a report uses the
values valid in its period (STANDARDS.md §2). A figure for a period divides by the
**time-weighted mean** over that period: a building of 7,000 m² for the first half of a year
and 14,300 m² for the second half counts as their day-weighted mean for the year, and as
exactly 7,000 m² for a January report. Changes take effect at local midnight of `since`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime

from central.institution import Building, Headcount, InstitutionConfig


def _midnight(day: date, tz_key: str) -> float:
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz_key)).timestamp()


def _mean(steps: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Time-weighted mean of a step function given as (from_ts, value), first from -inf."""
    if end <= start:
        # A zero-length period: the value in force at `start`.
        value = steps[0][1]
        for ts, v in steps:
            if ts <= start:
                value = v
        return value
    total = 0.0
    parts: list[tuple[float, float]] = []
    for i, (ts, value) in enumerate(steps):
        lo = max(ts, start)
        hi = min(steps[i + 1][0], end) if i + 1 < len(steps) else end
        if hi > lo:
            parts.append((value, hi - lo))
            total += hi - lo
    if len({v for v, _ in parts}) == 1:
        return parts[0][0]  # one value in force: exact, no rounding through the weights
    return math.fsum(v * w for v, w in parts) / total


def area_steps(building: Building, tz_key: str) -> list[tuple[float, float]]:
    return [(-math.inf, building.floor_area_m2)] + [
        (_midnight(c.since, tz_key), c.floor_area_m2) for c in building.floor_area_changes]


def headcount_steps(headcount: Headcount, tz_key: str) -> list[tuple[float, float]]:
    return [(-math.inf, headcount.energy_users)] + [
        (_midnight(c.since, tz_key), c.energy_users) for c in headcount.changes]


def mean_floor_area(institution: InstitutionConfig, start: float, end: float,
                    building: str | None = None) -> float:
    """Time-weighted mean floor area over [start, end) (POSIX seconds), one building or all."""
    tz = institution.institution.timezone
    return math.fsum(_mean(area_steps(b, tz), start, end) for b in institution.buildings
                     if building is None or b.id == building)


def mean_energy_users(institution: InstitutionConfig, start: float, end: float) -> float:
    """Time-weighted mean 用能人数 over [start, end): students as their daily average."""
    return _mean(headcount_steps(institution.headcount, institution.institution.timezone),
                 start, end)
