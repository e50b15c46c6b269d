"""Compliance figures: year to date, any period, and the waste ledger."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from central.api.deps import ReaderDep, SettingsDep, TenantDep
from central.api.params import in_range
from central.compliance import ComplianceReport
from central.errors import ReportError
from central.figures import PeriodMetrics
from central.metrics import compliance_for, period_metrics, waste_for
from central.period import Period

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["compliance"])


@router.get("/compliance")
def get_compliance(
    reader: ReaderDep, t: TenantDep, settings: SettingsDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> ComplianceReport:
    """Year-to-date compliance figures against the year's targets, with the score."""
    now = settings.clock.now()
    if year is None:
        year = datetime.fromtimestamp(now, t.config.institution.tz).year
    return compliance_for(reader, t.config, t.profile, now=now, year=year, ledger=t.ledger)


@router.get("/metrics")
def get_metrics(
    reader: ReaderDep, t: TenantDep, settings: SettingsDep,
    start: Annotated[date, Query(description="first local day", examples=["2025-01-01"])],
    end: Annotated[date, Query(description="day after the last (exclusive)",
                               examples=["2025-07-01"])],
    building: Annotated[str | None, Query(max_length=64)] = None,
) -> PeriodMetrics:
    """Every compliance metric over a period of local days (分项, PUE, quotas, ...)."""
    tz = t.config.institution.tz
    in_range("start", start)
    in_range("end", end)
    if end <= start:
        raise ReportError(f"end: must be after start (got {end.isoformat()})")
    if building is not None and building not in {b.id for b in t.config.buildings}:
        raise ReportError(f"building: unknown building (got {building!r})")
    s = datetime(start.year, start.month, start.day, tzinfo=tz).timestamp()
    e = datetime(end.year, end.month, end.day, tzinfo=tz).timestamp()
    return period_metrics(reader, t.ledger, t.config, t.profile, start=s,
                          end=min(e, max(s, settings.clock.now())), building=building)


@router.get("/waste")
def get_waste(reader: ReaderDep, t: TenantDep, settings: SettingsDep,
              year: Annotated[int, Query(ge=2000, le=2100)]) -> dict[str, Any]:
    """The year's clearance ledger (manual entries merged with clearances derived from
    bin-fill drops), monthly volumes by category, the hazardous-waste store balance and
    log, and the bins' latest fill levels."""
    s, e = Period.year(year, t.config.institution.tz).bounds
    now = settings.clock.now()
    view = waste_for(reader, t.ledger, t.config, start=s, end=min(e, max(s, now)), now=now)
    return {"year": year, **view.model_dump(mode="json")}
