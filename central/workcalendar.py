"""The Chinese working calendar for after-hours accounting: the shared core in
`protocols.workcalendar` (`holidays.China` with 调休 make-up workdays) plus the
institution's overrides from its config.

A year for which the package knows no 调休 (2027 at the time of writing) is not guessed
silently: such days fall back to Monday–Friday and are counted in `unknown_days`, which every
result that used the calendar reports.
"""

from __future__ import annotations

from central.institution import CalendarOverrides
from protocols.workcalendar import Fallback, year_is_known
from protocols.workcalendar import WorkingCalendar as _CoreCalendar

__all__ = ["WorkingCalendar", "year_is_known"]


class WorkingCalendar(_CoreCalendar):
    def __init__(self, overrides: CalendarOverrides | None = None) -> None:
        o = overrides or CalendarOverrides()
        super().__init__(workdays=o.workdays, holidays=o.holidays, fallback=Fallback.WEEKDAYS)
