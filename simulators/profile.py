"""Deterministic load profiles whose integrals are known exactly.

The simulators exist so that CI can compare the central's compliance figures with a ground
truth. That only works if the truth is exact and cheap: a profile is therefore
*piecewise-constant per simulated minute*, so the energy (or water volume) between any two
instants is a finite sum, computed here to float64 precision, and the meter registers the edge
reads are this integral plus the initial reading.

The value of a minute depends only on

- local time of day in Asia/Shanghai (UTC+8, no daylight saving; 8 h is a whole number of
  minutes, so local and UTC minute boundaries coincide),
- the kind of day (`DayKind`): working day according to `holidays.China`, which knows the
  调休 make-up workdays (2026-02-14 is a Saturday that is worked), falling back to Mon–Fri
  for years whose schedule it does not know yet; rest day; or school vacation, which is
  institution calendar data (`WorkCalendar.vacations`),
- the building's `ProfileParams` (base and peak load, the shape of a working day, rest-day
  and vacation factors), and
- a seeded pseudo-random factor (±`variation`) drawn per day from a generator seeded with
  (seed, day), so a run is reproducible with no stored state and no dependence on the order
  in which instants are asked for.

Costs: one local day (1,440 minute values and their prefix sums) is computed on demand and
kept in a bounded LRU cache, and so is each calendar month's prefix of day totals; an
`integral` costs O(1) plus one step per month it spans, and is a pure function of its
arguments (no dependence on earlier calls), so a simulated year stays cheap and exact.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from holidays.countries.china import China

LOCAL_UTC_OFFSET_S = 8 * 3600
"""Asia/Shanghai has been UTC+8 without daylight saving since 1991."""

MINUTES_PER_DAY = 1440
_LOCAL_OFFSET_MIN = LOCAL_UTC_OFFSET_S // 60
_EPOCH_DAY = dt.date(1970, 1, 1)
_DAY_CACHE_SIZE = 64
_MONTH_CACHE_SIZE = 600  # 50 years of month prefixes, ~260 KB

Keypoints = tuple[tuple[float, float], ...]
"""A day shape: (hour of local day 0–24, fraction of the peak above base 0–1), in time order.

The fraction is interpolated linearly between keypoints and sampled at the start of each
minute; two keypoints at the same hour make a step.
"""

TEACHING: Keypoints = (
    # Classrooms: lights, projectors, AC. Morning ramp from 06:30 (self-study) to the 08:00
    # lessons, lunch break, afternoon lessons until 17:30, dinner, evening study until 21:30.
    (0.0, 0.0),
    (6.5, 0.0),
    (7.0, 0.3),
    (8.0, 1.0),
    (12.0, 1.0),
    (12.0, 0.35),
    (14.0, 0.35),
    (14.0, 1.0),
    (17.5, 1.0),
    (17.5, 0.3),
    (18.5, 0.3),
    (18.5, 0.75),
    (21.5, 0.75),
    (22.0, 0.0),
    (24.0, 0.0),
)
DORMITORY: Keypoints = (
    # Boarding students: wake-up at 06:00, empty during lessons, noon rest, and the evening
    # peak (showers, water heaters, lights) between evening study and lights-out at 22:30.
    (0.0, 0.05),
    (6.0, 0.05),
    (6.0, 0.7),
    (7.0, 0.7),
    (7.0, 0.1),
    (12.0, 0.1),
    (12.0, 0.6),
    (13.5, 0.6),
    (13.5, 0.1),
    (17.5, 0.1),
    (17.5, 0.45),
    (18.5, 0.45),
    (18.5, 0.15),
    (21.5, 0.15),
    (21.5, 1.0),
    (22.5, 1.0),
    (23.0, 0.1),
    (24.0, 0.05),
)
ADMIN: Keypoints = (
    # Offices: 08:00–12:00 and 14:00–17:30 with a lunch dip, a tail of overtime until 20:00.
    (0.0, 0.0),
    (7.5, 0.0),
    (8.0, 1.0),
    (12.0, 1.0),
    (12.0, 0.5),
    (14.0, 0.5),
    (14.0, 1.0),
    (17.5, 1.0),
    (18.5, 0.2),
    (20.0, 0.05),
    (22.0, 0.0),
    (24.0, 0.0),
)
SHAPES: dict[str, Keypoints] = {"teaching": TEACHING, "dormitory": DORMITORY, "admin": ADMIN}
"""Built-in working-day shapes by building kind; a scenario names one or gives keypoints."""


class DayKind(enum.StrEnum):
    WORKDAY = "workday"
    REST_DAY = "rest_day"  # weekend or statutory holiday
    VACATION = "vacation"  # school vacation (寒暑假): overrides working and rest days


@dataclass(frozen=True, slots=True)
class DateRange:
    """An inclusive range of local dates, e.g. a school vacation."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"date range ends ({self.last}) before it starts ({self.first})")

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.first <= day <= self.last


@functools.lru_cache(maxsize=64)
def _china_calendar(year: int) -> China | None:
    """`holidays.China` for one year, or None when it does not know that year's 调休 yet.

    `holidays` computes statutory holidays for any year by rule, but the make-up workdays are
    published each winter; a year without them in `special_public_holidays` is unknown.
    """
    calendar = China(years=year)  # type: ignore[no-untyped-call]  # untyped __init__
    if year not in calendar.special_public_holidays:
        return None
    return calendar


def is_china_working_day(day: dt.date) -> bool:
    """Working day in mainland China, honouring 调休; Mon–Fri for years not yet published."""
    calendar = _china_calendar(day.year)
    if calendar is None:
        return day.weekday() < 5
    return bool(calendar.is_working_day(day))


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    """Which kind of day a local date is for one institution."""

    vacations: tuple[DateRange, ...] = ()

    def day_kind(self, day: dt.date) -> DayKind:
        if any(day in vacation for vacation in self.vacations):
            return DayKind.VACATION
        return DayKind.WORKDAY if is_china_working_day(day) else DayKind.REST_DAY


def _check_keypoints(shape: Sequence[tuple[float, float]]) -> None:
    if len(shape) < 2:
        raise ValueError(f"shape needs at least two keypoints, got {len(shape)}")
    previous = -math.inf
    for i, (hour, fraction) in enumerate(shape):
        if not 0.0 <= hour <= 24.0:
            raise ValueError(f"shape[{i}]: hour must be within 0–24, got {hour!r}")
        if hour < previous:
            raise ValueError(
                f"shape[{i}]: hours must not decrease, got {hour!r} after {previous!r}"
            )
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"shape[{i}]: fraction must be within 0–1, got {fraction!r}")
        previous = hour


@dataclass(frozen=True, slots=True)
class ProfileParams:
    """What a scenario sets per meter. Units are the profile's: W for power, m³/h for flow.

    A minute's value is `(base + (peak - base) × shape(t) × day factor) × (1 + variation × u)`
    with u uniform in [-1, 1); the day factor is 1 on working days, `rest_day_factor` on
    weekends and holidays and `vacation_factor` in school vacations.
    """

    base: float
    peak: float
    shape: Keypoints = TEACHING
    rest_day_factor: float = 0.3
    vacation_factor: float = 0.15
    variation: float = 0.10
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and self.base >= 0):
            raise ValueError(f"base must be a finite value >= 0, got {self.base!r}")
        if not (math.isfinite(self.peak) and self.peak >= self.base):
            raise ValueError(f"peak must be finite and >= base ({self.base}), got {self.peak!r}")
        for name in ("rest_day_factor", "vacation_factor"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0–1, got {value!r}")
        if not 0.0 <= self.variation < 1.0:
            raise ValueError(f"variation must be within [0, 1), got {self.variation!r}")
        _check_keypoints(self.shape)

    def day_factor(self, kind: DayKind) -> float:
        if kind is DayKind.WORKDAY:
            return 1.0
        if kind is DayKind.REST_DAY:
            return self.rest_day_factor
        return self.vacation_factor


@functools.lru_cache(maxsize=32)
def _minute_fractions(shape: Keypoints) -> tuple[float, ...]:
    """The shape sampled at the start of each minute of the local day."""
    hours = [h for h, _ in shape]
    fractions = [f for _, f in shape]
    out: list[float] = []
    k = 0
    for minute in range(MINUTES_PER_DAY):
        hour = minute / 60.0
        # Advance to the last keypoint at or before `hour`; equal hours make a step.
        while k + 1 < len(hours) and hours[k + 1] <= hour:
            k += 1
        if hour < hours[0]:
            out.append(fractions[0])
        elif k + 1 >= len(hours):
            out.append(fractions[-1])
        else:
            h0, h1 = hours[k], hours[k + 1]
            f0, f1 = fractions[k], fractions[k + 1]
            out.append(f0 if h1 == h0 else f0 + (f1 - f0) * (hour - h0) / (h1 - h0))
    return tuple(out)


def _mix64(x: int) -> int:
    """SplitMix64 finaliser: decorrelates neighbouring (seed, day) pairs."""
    mask = (1 << 64) - 1
    x = (x + 0x9E3779B97F4A7C15) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return x ^ (x >> 31)


def unit_noise(*keys: int) -> float:
    """A reproducible pseudo-random number in [-1, 1) from integer keys (seed, minute, …)."""
    x = 0
    for key in keys:
        x = _mix64(x ^ (key & ((1 << 64) - 1)))
    return (x >> 11) * (2.0 / (1 << 53)) - 1.0


def _minute_of(t: float) -> int:
    """UTC minute number containing `t`, immune to `t / 60` rounding up to a boundary."""
    minute = math.floor(t / 60.0)
    return minute - 1 if minute * 60 > t else minute


def local_date(t: float) -> dt.date:
    """The Asia/Shanghai calendar date of POSIX time `t`."""
    return _EPOCH_DAY + dt.timedelta(days=math.floor((t + LOCAL_UTC_OFFSET_S) / 86400))


def local_day_start(day: dt.date) -> float:
    """POSIX time of local midnight at the start of `day`."""
    return float((day - _EPOCH_DAY).days * 86400 - LOCAL_UTC_OFFSET_S)


@dataclass(frozen=True, slots=True)
class _Day:
    values: tuple[float, ...]  # per local minute, profile unit
    prefix: tuple[float, ...]  # prefix[i] = Σ values[:i] × 60 s (unit·s); prefix[-1] = total


@dataclass(frozen=True, slots=True)
class _Month:
    first_day: int  # local day number of the 1st
    prefix: tuple[float, ...]  # prefix[i] = Σ totals of the month's first i days (unit·s)


class LoadProfile:
    """A piecewise-constant-per-minute load; see the module docstring.

    `integral` returns the total quantity (kWh, m³) between two POSIX times.
    """

    unit: ClassVar[str] = ""
    total_unit: ClassVar[str] = ""
    _unit_seconds_to_total: ClassVar[float] = 1.0 / 3600.0

    def __init__(self, params: ProfileParams, *, calendar: WorkCalendar | None = None) -> None:
        self.params = params
        self.calendar = calendar if calendar is not None else WorkCalendar()
        self._fractions = _minute_fractions(params.shape)
        self._day = functools.lru_cache(maxsize=_DAY_CACHE_SIZE)(self._compute_day)
        self._month = functools.lru_cache(maxsize=_MONTH_CACHE_SIZE)(self._compute_month)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"

    # -- per-minute values ------------------------------------------------------------

    def _compute_day(self, day_number: int) -> _Day:
        day = _EPOCH_DAY + dt.timedelta(days=day_number)
        p = self.params
        span = (p.peak - p.base) * p.day_factor(self.calendar.day_kind(day))
        rng = random.Random(_mix64((p.seed << 32) ^ (day_number & 0xFFFFFFFF)))
        var = p.variation
        values = tuple(
            (p.base + span * fraction) * (1.0 + var * (2.0 * rng.random() - 1.0))
            for fraction in self._fractions
        )
        prefix = tuple(itertools.accumulate((v * 60.0 for v in values), initial=0.0))
        return _Day(values, prefix)

    def minute_value(self, minute: int) -> float:
        """Value during UTC minute number `minute` (`floor(t / 60)`)."""
        day_number, index = divmod(minute + _LOCAL_OFFSET_MIN, MINUTES_PER_DAY)
        return self._day(day_number).values[index]

    def value_at(self, t: float) -> float:
        """Instantaneous value at POSIX time `t` (constant within each minute)."""
        return self.minute_value(_minute_of(t))

    def day_kind(self, t: float) -> DayKind:
        return self.calendar.day_kind(local_date(t))

    # -- integrals --------------------------------------------------------------------

    def _compute_month(self, year: int, month: int) -> _Month:
        first = dt.date(year, month, 1)
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        start = (first - _EPOCH_DAY).days
        totals = (self._day(d).prefix[-1] for d in range(start, (following - _EPOCH_DAY).days))
        return _Month(start, tuple(itertools.accumulate(totals, initial=0.0)))

    def _whole_days(self, first: int, stop: int) -> float:
        """Σ of day totals for local days [first, stop), in unit·s.

        Summed per calendar month through that month's prefix of day totals, so the result
        depends only on (first, stop), never on which intervals were asked for before, and
        costs one step per month spanned.
        """
        total = 0.0
        day = first
        while day < stop:
            date = _EPOCH_DAY + dt.timedelta(days=day)
            month = self._month(date.year, date.month)
            i = day - month.first_day
            j = min(stop - month.first_day, len(month.prefix) - 1)
            total += month.prefix[j] - month.prefix[i]
            day = month.first_day + j
        return total

    def _whole_minutes(self, first: int, stop: int) -> float:
        """Σ over UTC minutes [first, stop) of value × 60 s, in unit·s."""
        if stop <= first:
            return 0.0
        d0, i0 = divmod(first + _LOCAL_OFFSET_MIN, MINUTES_PER_DAY)
        d1, i1 = divmod(stop + _LOCAL_OFFSET_MIN, MINUTES_PER_DAY)
        if d0 == d1:
            prefix = self._day(d0).prefix
            return prefix[i1] - prefix[i0]
        head = self._day(d0).prefix
        tail = self._day(d1).prefix[i1] if i1 else 0.0
        return (head[-1] - head[i0]) + self._whole_days(d0 + 1, d1) + tail

    def integral(self, t0: float, t1: float) -> float:
        """Exact total (kWh or m³) between POSIX times t0 <= t1.

        Partial-minute lengths are differences of nearby floats (exact by Sterbenz's lemma)
        and whole minutes come from per-day and per-month prefix sums, so the result is a
        pure function of (t0, t1) and integral(a, b) + integral(b, c) equals integral(a, c)
        to about 1e-12 relative.
        """
        if not (math.isfinite(t0) and math.isfinite(t1)):
            raise ValueError(f"times must be finite, got {t0!r}, {t1!r}")
        if t1 < t0:
            raise ValueError(f"integral needs t0 <= t1, got {t0!r} > {t1!r}")
        m0 = _minute_of(t0)
        m1 = _minute_of(t1)
        if m0 == m1:
            return self.minute_value(m0) * (t1 - t0) * self._unit_seconds_to_total
        total = self.minute_value(m0) * ((m0 + 1) * 60 - t0)
        total += self._whole_minutes(m0 + 1, m1)
        total += self.minute_value(m1) * (t1 - m1 * 60)
        return total * self._unit_seconds_to_total

    def totals_by_day(self, days: Iterable[dt.date]) -> dict[dt.date, float]:
        """Total per local day (kWh or m³): handy for reports and plausibility tests."""
        return {
            day: self.integral(local_day_start(day), local_day_start(day) + 86400.0) for day in days
        }


class PowerProfile(LoadProfile):
    """Electric load in W; integrals in kWh."""

    unit: ClassVar[str] = "W"
    total_unit: ClassVar[str] = "kWh"
    _unit_seconds_to_total: ClassVar[float] = 1.0 / 3_600_000.0


class FlowProfile(LoadProfile):
    """Water flow in m³/h; integrals in m³."""

    unit: ClassVar[str] = "m3/h"
    total_unit: ClassVar[str] = "m3"
    _unit_seconds_to_total: ClassVar[float] = 1.0 / 3600.0


__all__ = [
    "ADMIN",
    "DORMITORY",
    "LOCAL_UTC_OFFSET_S",
    "SHAPES",
    "TEACHING",
    "DateRange",
    "DayKind",
    "FlowProfile",
    "Keypoints",
    "LoadProfile",
    "PowerProfile",
    "ProfileParams",
    "WorkCalendar",
    "is_china_working_day",
    "local_date",
    "local_day_start",
    "unit_noise",
]
