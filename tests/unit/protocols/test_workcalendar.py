"""The shared working calendar: 调休 make-up workdays, statutory holidays, overrides, and
the explicit fallback state for a year without an official schedule."""

from __future__ import annotations

from datetime import date

import chinese_calendar
import pytest

from protocols.workcalendar import DaySource, Fallback, WorkingCalendar, year_is_known


@pytest.mark.parametrize(("day", "working", "source", "makeup"), [
    (date(2026, 2, 14), True, DaySource.OFFICIAL, True),  # Saturday 调休 before Spring Festival
    (date(2025, 1, 26), True, DaySource.OFFICIAL, True),  # Sunday 调休
    (date(2026, 10, 1), False, DaySource.OFFICIAL, False),  # National Day
    (date(2026, 10, 2), False, DaySource.OFFICIAL, False),
    (date(2026, 6, 19), False, DaySource.OFFICIAL, False),  # Dragon Boat Festival (Friday)
    (date(2026, 6, 15), True, DaySource.OFFICIAL, False),  # an ordinary Monday
    (date(2026, 6, 20), False, DaySource.OFFICIAL, False),  # an ordinary Saturday
    (date(2027, 3, 1), True, DaySource.FALLBACK, False),  # 2027: no schedule yet, Monday
    (date(2027, 3, 6), False, DaySource.FALLBACK, False),  # 2027 Saturday
])
def test_days(day: date, working: bool, source: DaySource, makeup: bool) -> None:
    info = WorkingCalendar().classify(day)
    assert (info.working, info.source, info.makeup_workday) == (working, source, makeup)
    assert info.known is (source is not DaySource.FALLBACK)


def test_2027_is_unknown_and_2026_known() -> None:
    assert year_is_known(2026)
    assert not year_is_known(2027)


@pytest.mark.parametrize(("fallback", "monday", "saturday"), [
    (Fallback.WEEKDAYS, True, False),
    (Fallback.ALL_WORKING, True, True),
    (Fallback.ALL_OFF, False, False),
])
def test_fallback_is_configured_not_guessed(fallback: Fallback, monday: bool,
                                            saturday: bool) -> None:
    cal = WorkingCalendar(fallback=fallback)
    assert cal.classify(date(2027, 3, 1)).working is monday
    assert cal.classify(date(2027, 3, 6)).working is saturday
    assert cal.classify(date(2027, 3, 1)).source is DaySource.FALLBACK
    # A known year is never affected by the fallback.
    assert cal.is_working_day(date(2026, 2, 14)) is True


def test_overrides_win_and_make_a_day_known() -> None:
    cal = WorkingCalendar(workdays=[date(2027, 2, 6), date(2026, 10, 1)],
                          holidays=[date(2026, 6, 15), date(2027, 2, 11)])
    assert cal.classify(date(2026, 10, 1)).working  # even a statutory holiday
    assert not cal.classify(date(2026, 6, 15)).working  # a school's own day off
    saturday = cal.classify(date(2027, 2, 6))
    assert saturday.working
    assert saturday.known
    assert saturday.source is DaySource.OVERRIDE
    assert not cal.is_working_day(date(2027, 2, 11))
    assert cal.is_known(date(2027, 2, 11))


def test_agrees_with_chinesecalendar_for_2025_and_2026() -> None:
    cal = WorkingCalendar()
    day = date(2025, 1, 1)
    mismatches = []
    while day < date(2027, 1, 1):
        if cal.is_working_day(day) != chinese_calendar.is_workday(day):
            mismatches.append(day)
        day = date.fromordinal(day.toordinal() + 1)
    assert mismatches == []
