"""The 公共机构能源资源消费统计 return as XLSX (central/statreturn.py): the same figures as
the quarterly or annual report of the period."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from central.api.deps import ReaderDep, SettingsDep, TenantDep
from central.reports import gather
from central.statreturn import render_statistics_return

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["compliance"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/statistics-return", response_class=Response,
            responses={200: {"content": {XLSX: {}}}})
def statistics_return(
    reader: ReaderDep, t: TenantDep, settings: SettingsDep,
    year: Annotated[int, Query(ge=2000, le=2100)],
    quarter: Annotated[int | None, Query(ge=1, le=4, description="none: the year")] = None,
) -> Response:
    """The quarterly (or, without `quarter`, annual) statistics return as XLSX."""
    data = gather(reader, t.ledger, t.config, t.profile,
                  kind="annual" if quarter is None else "quarterly", year=year,
                  number=quarter, now=settings.clock.now())
    name = f"{t.id}-statistics-{year}{'' if quarter is None else f'-Q{quarter}'}.xlsx"
    return Response(render_statistics_return(data, t.config), media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
