"""同比, 环比 and the 14th Five-Year progress of a month, quarter or year
(central/baseyear.py; method in docs/comparisons.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from central.api.deps import ReaderDep, SettingsDep, TenantDep
from central.baseyear import (
    Comparisons,
    co2_factor_for,
    comparisons_for,
    last_complete,
    span_for,
    today_local,
)
from central.errors import ReportError

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["compliance"])


@router.get("/comparisons")
def get_comparisons(
    reader: ReaderDep, t: TenantDep, settings: SettingsDep,
    period: Literal["month", "quarter", "year"] = "month",
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    number: Annotated[int | None, Query(ge=1, le=12, description="month 1–12 or quarter "
                                       "1–4; default: the last complete one")] = None,
    building: Annotated[str | None, Query(max_length=64, description="one building: its "
                                          "main meters and bills, no per-person figures")
                        ] = None,
) -> Comparisons:
    """The period's figures with their 同比 (same days a year earlier) and 环比 (the
    previous period of the same kind), each "—" (null `change`, with `status` and `reason`)
    where either side lacks coverage; and the progress of the period's year to date against
    the base year's 14th FYP targets. Without `year`, the last complete month (quarter,
    year); a period named that is not over yet ends at today's midnight (whole days)."""
    today = today_local(settings.clock.now(), t.config)
    if year is None:
        year, last = last_complete(period, today)
        number = number or last
    if number is None:
        number = 12 if period == "month" else 4  # a year named without its month: the last
    if building is not None and building not in {b.id for b in t.config.buildings}:
        raise ReportError(f"building: unknown building (got {building!r})")
    if period == "quarter" and number > 4:
        raise ReportError(f"number: a quarter is 1 to 4 (got {number})")
    span = span_for(period, year, number, today)
    return comparisons_for(reader, t.ledger, t.config, t.profile, span, period, today=today,
                           co2=co2_factor_for(t.config), building=building)
