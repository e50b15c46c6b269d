"""What the rules saved: the estimate of central/savings.py over a period (docs/savings.md)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from central.api.deps import ReaderDep, TenantDep
from central.api.params import in_range
from central.errors import ReportError
from central.period import Period
from central.savings import savings_for

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["savings"])

_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2}))?$|^(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})$")


def parse_period(text: str, tz: ZoneInfo) -> Period:
    """`2026` (a year), `2026-06` (a month) or `2026-06-01/2026-06-30` (local days, both
    inclusive); errors name `period` and the value."""
    m = _PERIOD.match(text.strip())
    try:
        if m is None:
            raise ValueError
        if m.group(3) is not None:
            first, last = date.fromisoformat(m.group(3)), date.fromisoformat(m.group(4))
            in_range("period", first)
            in_range("period", last)
            if last < first:
                raise ReportError(f"period: the last day is before the first (got {text!r})")
            if last - first > timedelta(days=366):
                raise ReportError(f"period: at most a year (got {text!r})")
            return Period.days(first, last, tz)
        year = int(m.group(1))
        in_range("period", date(year, 1, 1))
        if m.group(2) is None:
            return Period.year(year, tz)
        return Period.month(year, int(m.group(2)), tz)
    except ValueError:
        raise ReportError("period: expected YYYY, YYYY-MM or YYYY-MM-DD/YYYY-MM-DD "
                          f"(got {text!r})") from None


@router.get("/savings")
def get_savings(
    reader: ReaderDep, t: TenantDep,
    period: Annotated[str, Query(max_length=32, description="YYYY, YYYY-MM or "
                                 "YYYY-MM-DD/YYYY-MM-DD", examples=["2026-06"])],
    items: Annotated[bool, Query(description="each write's estimate too")] = False,
) -> dict[str, Any]:
    """The estimated energy the rules' audited writes avoided in the period (估算: load
    before the write held until the next working start, capped; docs/savings.md), per rule,
    building and month, in kWh, kgce, cost (by the institution's `tariff:`; null
    without one) and CO₂ (by its emission factors; null where no factor is valid)."""
    p = parse_period(period, t.config.institution.tz)
    report = savings_for(reader, t.config, t.profile, p)
    return {"period": period, "start": p.start, "end": p.end, **report.as_dict(items=items)}
