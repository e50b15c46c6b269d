"""`Period`: local windows of one zone, including a DST zone where days are 23 or 25 h."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from central.period import Period

SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def test_year_month_quarter_bounds() -> None:
    y = Period.year(2026, SH)
    assert y.local_start().isoformat() == "2026-01-01T00:00:00+08:00"
    assert y.local_end().isoformat() == "2027-01-01T00:00:00+08:00"
    assert (y.first_day, y.last_day, y.day_count) == (date(2026, 1, 1), date(2026, 12, 31),
                                                        365)
    assert Period.quarter(2026, 4, SH) == Period.months(2026, 10, 12, SH)
    assert Period.month(2026, 12, SH).end == y.end
    assert [m.first_day.month for m in y.month_periods()] == list(range(1, 13))


def test_label_includes_the_last_day() -> None:
    assert Period.year(2026, SH).label("zh") == "2026年1月1日至2026年12月31日"
    assert Period.month(2026, 2, SH).label("zh") == "2026年2月1日至2026年2月28日"
    assert Period.year(2026, SH).label("en") == "01 Jan 2026 – 31 Dec 2026"


def test_dst_days_and_clipping() -> None:
    march = Period.month(2026, 3, BERLIN)
    assert march.seconds == 31 * 86400 - 3600  # one 23 h day
    assert Period.day(date(2026, 10, 25), BERLIN).seconds == 25 * 3600
    half = march.until(march.start + 86400 * 10.5)
    assert half.day_count == 11
    assert half.last_day == date(2026, 3, 11)
    assert [m.first_day for m in half.month_periods()] == [date(2026, 3, 1)]
    assert march.until(march.start - 5).empty
    bill = Period.days(date(2026, 3, 1), date(2026, 3, 31), BERLIN)
    assert bill == march
    assert half.fraction_of(bill) == pytest.approx(10.5 * 86400 / march.seconds)


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before its start"):
        Period(10.0, 5.0, SH)
