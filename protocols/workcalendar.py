"""The Chinese working calendar, shared by the edge (after-hours rules) and the central
(after-hours accounting): `holidays.China` (statutory holidays and 调休 make-up workdays)
plus the operator's overrides.

A year for which the package knows no 调休 yet (2027 at the time of writing; each year's
schedule is announced in November or December) is never guessed silently: such a day is
classified with `known=False` and `source="fallback"`, and the configured `Fallback` decides
whether it counts as a working day. Callers show that state (the central counts unknown
days, the edge raises a `calendar.fallback` event).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import holidays


class Fallback(enum.StrEnum):
    """What a day of a year without an official schedule counts as."""

    WEEKDAYS = "weekdays"  # Monday–Friday work, weekends off (the usual pattern)
    ALL_WORKING = "all_working"  # every day is a working day (after-hours rules act less)
    ALL_OFF = "all_off"  # every day is a day off (after-hours rules act all day)


class DaySource(enum.StrEnum):
    OVERRIDE = "override"  # the operator's file said so
    OFFICIAL = "official"  # holidays.China for a year it knows
    FALLBACK = "fallback"  # a year without an official schedule: the configured fallback


@dataclass(frozen=True, slots=True)
class DayInfo:
    day: date
    working: bool
    source: DaySource
    holiday: str | None = None  # the holiday's name, if the day is one

    @property
    def known(self) -> bool:
        return self.source is not DaySource.FALLBACK

    @property
    def makeup_workday(self) -> bool:
        """A weekend day that is a working day (调休)."""
        return self.working and self.day.weekday() >= 5


@functools.cache
def _china(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("CN", years=year)


@functools.cache
def year_is_known(year: int) -> bool:
    """The package has this year's schedule: at least one weekend make-up workday (every
    year since 2004 has had one)."""
    cn = _china(year)
    return any(d.year == year for d in cn.weekend_workdays)


class WorkingCalendar:
    """Working days: the operator's overrides first (a day in both lists is a workday), then
    the official schedule, then the fallback for years without one."""

    def __init__(self, *, workdays: Iterable[date] = (), holidays: Iterable[date] = (),
                 fallback: Fallback = Fallback.WEEKDAYS) -> None:
        self._work = frozenset(workdays)
        self._off = frozenset(holidays)
        self.fallback = Fallback(fallback)

    def classify(self, day: date) -> DayInfo:
        if day in self._work:
            return DayInfo(day, True, DaySource.OVERRIDE)
        if day in self._off:
            return DayInfo(day, False, DaySource.OVERRIDE)
        if not year_is_known(day.year):
            if self.fallback is Fallback.ALL_WORKING:
                working = True
            elif self.fallback is Fallback.ALL_OFF:
                working = False
            else:
                working = day.weekday() < 5
            return DayInfo(day, working, DaySource.FALLBACK)
        cn = _china(day.year)
        name = cn.get(day)
        return DayInfo(day, bool(cn.is_working_day(day)), DaySource.OFFICIAL,
                       str(name) if name else None)

    def is_known(self, day: date) -> bool:
        return self.classify(day).known

    def is_working_day(self, day: date) -> bool:
        return self.classify(day).working
