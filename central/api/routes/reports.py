"""Reports as HTML, PDF, XLSX or JSON (docs/reports.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from central.api.deps import ReaderDep, SettingsDep, TenantDep
from central.report_output import produce

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["compliance"])


@router.get("/reports/{report}", response_class=Response, responses={200: {"content": {
    "text/html": {}, "application/pdf": {}, "application/json": {},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
def get_report(
    reader: ReaderDep, t: TenantDep, settings: SettingsDep,
    report: Literal["monthly", "quarterly", "annual", "ledger", "scoring"],
    year: Annotated[int, Query(ge=2000, le=2100)],
    number: Annotated[int | None, Query(ge=1, le=12, description="month or quarter")] = None,
    lang: Literal["zh", "en"] = "zh",
    format: Literal["html", "pdf", "xlsx", "json"] = "html",
) -> Response:
    """A report as HTML, PDF, XLSX or JSON (see docs/reports.md)."""
    content, media, name = produce(reader, t.ledger, t.config, t.profile, report=report,
                                   fmt=format, year=year, number=number, lang=lang,
                                   now=settings.clock.now())
    return Response(content, media_type=media, headers={
        "Content-Disposition": f'inline; filename="{name}"'})
