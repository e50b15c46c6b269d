"""The demo school's history before metering began: monthly utility bills of the base year
(2020 by default) and of the two years before the demo's, so its 同比 and 14th Five-Year
progress have something to compare (docs/comparisons.md). Only years before the demo's own
are written: the current year's figures stay the metered ones the demo's tests check.

The quantities are made up to look like a school's: electricity per m² and month following
a school year (winter and early-summer peaks, the summer holiday low), water per person;
the two years before the demo's use 3 % and 7 % less electricity (1 % and 3 % less
water) than the base year.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

from central.ledger import Bill

# kWh per m² in each month of the base year (a school year: the holidays are the lows)
KWH_PER_M2 = (4.2, 2.9, 3.4, 3.0, 3.2, 4.1, 2.6, 1.8, 3.5, 3.1, 3.3, 4.4)
M3_PER_PERSON = (0.9, 0.5, 1.0, 1.0, 1.1, 1.2, 0.6, 0.4, 1.1, 1.0, 1.0, 0.9)
# the two years before the demo's, against the base year
FACTORS = {2: {"electricity": 0.97, "water": 0.99}, 1: {"electricity": 0.93, "water": 0.97}}


def history_bills(institution: dict[str, Any], *, now_year: int) -> list[Bill]:
    """Monthly electricity and water bills of the base year and of the two years before
    `now_year` (only years before it), for the institution as a whole."""
    base = int(institution.get("baseline", {}).get("base_year", 2020))
    area = sum(float(b["floor_area_m2"]) for b in institution["buildings"])
    head = institution["headcount"]
    users = float(head["staff"]) + float(head.get("students_daily_avg", 0.0)) + float(
        head.get("other", 0.0))
    bills: list[Bill] = []
    for year in sorted({base, now_year - 2, now_year - 1}):
        if year >= now_year:
            continue
        factor = FACTORS.get(now_year - year, {}) if year != base else {}
        e, w = factor.get("electricity", 1.0), factor.get("water", 1.0)
        for month in range(1, 13):
            last = date(year, month, calendar.monthrange(year, month)[1])
            first = date(year, month, 1)
            bills.append(Bill(ref=f"demo-elec-{year}-{month:02}", energy="electricity",
                              period_start=first, period_end=last,
                              quantity=round(area * KWH_PER_M2[month - 1] * e),
                              supplier="国网 State Grid", note="demo: base-year history"))
            bills.append(Bill(ref=f"demo-water-{year}-{month:02}", energy="water",
                              period_start=first, period_end=last, unit="m3",
                              quantity=round(users * M3_PER_PERSON[month - 1] * w),
                              supplier="自来水公司 Water works",
                              note="demo: base-year history"))
    return bills
