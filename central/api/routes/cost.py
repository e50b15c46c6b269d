"""Cost figures (central/cost.py): what the energy of a month or a year cost, by energy
type, time-of-use period, building, 分项 item and month, with the bill check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from central.api.deps import ReaderDep, SettingsDep, TenantDep
from central.cost import PeriodCost, period_cost
from central.errors import ReportError
from central.period import Period

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["compliance"])


@router.get("/cost")
def get_cost(
    reader: ReaderDep, t: TenantDep, settings: SettingsDep,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="none: this year")] = None,
    month: Annotated[int | None, Query(ge=1, le=12, description="none: the whole year")] = None,
    building: Annotated[str | None, Query(max_length=64)] = None,
) -> PeriodCost:
    """The cost of a month or a year up to now: metered quantities priced by the
    institution's tariff, bills by their amounts; null figures where nothing can be priced."""
    tz = t.config.institution.tz
    now = settings.clock.now()
    if year is None:
        year = datetime.fromtimestamp(now, tz).year
    if building is not None and building not in {b.id for b in t.config.buildings}:
        raise ReportError(f"building: unknown building (got {building!r})")
    span = Period.year(year, tz) if month is None else Period.month(year, month, tz)
    if span.start >= now:
        raise ReportError(f"{year}{'' if month is None else f'-{month:02d}'}: the period "
                          "has not started yet")
    return period_cost(reader, t.ledger, t.config, t.profile, start=span.start,
                       end=min(span.end, now), building=building)
