"""The Chinese working calendar for after-hours accounting: `holidays.China` (statutory
holidays and 调休 make-up workdays) plus the institution's overrides.

A year for which the package knows no 调休 (2027 at the time of writing) is not guessed
silently: such days fall back to Monday–Friday and are counted in `unknown_days`, which every
result that used the calendar reports.
"""

from __future__ import annotations

import functools
from datetime import date

import holidays

from central.config import CalendarOverrides


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
    def __init__(self, overrides: CalendarOverrides | None = None) -> None:
        o = overrides or CalendarOverrides()
        self._work = frozenset(o.workdays)
        self._off = frozenset(o.holidays)

    def is_known(self, day: date) -> bool:
        return day in self._work or day in self._off or year_is_known(day.year)

    def is_working_day(self, day: date) -> bool:
        if day in self._work:
            return True
        if day in self._off:
            return False
        if not year_is_known(day.year):
            return day.weekday() < 5
        return bool(_china(day.year).is_working_day(day))
