"""The built-in page's data: the whole page (polled ~10 s) and live power (~2 s).

The page shell at `/` (central/page.py) carries no data, so these routes are where access
control applies. `…/overview` answers the same model as `…/dashboard` (kept for the callers
that read it: monitoring probes, the demo)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from central.api.deps import CentralCountersDep, ReaderDep, SettingsDep, TenantDep
from central.dashboard import Dashboard, LivePower, build_dashboard, build_live

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["dashboard"])


@router.get("/dashboard", summary="Everything the built-in dashboard shows")
def get_dashboard(reader: ReaderDep, t: TenantDep, settings: SettingsDep,
                  ingest: CentralCountersDep) -> Dashboard:
    return build_dashboard(reader, t.ledger, t.profile, now=settings.clock.now(),
                           ingest=ingest)


@router.get("/dashboard/live", summary="Live power and its recent history")
def get_live(
    reader: ReaderDep, settings: SettingsDep,
    minutes: Annotated[int, Query(ge=5, le=24 * 60,
                                  description="span of the power history")] = 60,
) -> LivePower:
    return build_live(reader, now=settings.clock.now(), window_s=minutes * 60)


@router.get("/overview", tags=["compliance"])
def get_overview(reader: ReaderDep, t: TenantDep, settings: SettingsDep,
                 ingest: CentralCountersDep) -> Dashboard:
    """What the built-in page shows: live power, today's energy, compliance, alarms, bins,
    edges (the dashboard's model)."""
    return build_dashboard(reader, t.ledger, t.profile, now=settings.clock.now(),
                           ingest=ingest)
