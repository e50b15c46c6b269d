"""CO₂: the year to date and each month, with the emission factors used (docs/carbon.md).
Any period's CO₂ is also in `/metrics` (`carbon`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from central.api.deps import ReaderDep, SettingsDep, TenantDep
from central.carbon_read import CarbonYear, carbon_year

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["compliance"])


@router.get("/carbon")
def get_carbon(
    reader: ReaderDep, t: TenantDep, settings: SettingsDep,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> CarbonYear:
    """tCO₂, kgCO₂/m² and kgCO₂/person of the year to date and tCO₂ of each month, computed
    now from the stored quantities and the emission factors valid in each part of the year
    (each factor used is listed with its source). A month without data is null, never 0."""
    now = settings.clock.now()
    if year is None:
        year = datetime.fromtimestamp(now, t.config.institution.tz).year
    return carbon_year(reader, t.ledger, t.config, t.profile, year=year, now=now)
