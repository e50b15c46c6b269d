"""Manual ledger entries: bills, fuel, waste clearances, hazardous-waste moves."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Request

from central.api.deps import TenantDep
from central.entries import add_entries
from central.ledger import EntryKind
from central.uploads import import_upload

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["ledger"])


@router.post("/ledger/{kind}")
def post_entries(t: TenantDep, kind: EntryKind,
                 entries: Annotated[list[dict[str, Any]], Body()]) -> dict[str, int]:
    """Add or update bills, fuel, clearance or hazardous-waste entries (all or none)."""
    result = add_entries(t.ledger, kind, entries, t.config, t.profile)
    return {"inserted": result.inserted, "updated": result.updated,
            "unchanged": result.unchanged}


@router.post("/ledger/{kind}/import",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string"}},
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                     "schema": {"type": "string", "format": "binary"}}}}})
async def import_entries(request: Request, t: TenantDep, kind: EntryKind,
                         format: Literal["csv", "xlsx"] = "csv") -> dict[str, Any]:
    """Import a CSV (UTF-8 or GBK/GB18030) or XLSX file of entries (the request body);
    all rows or none. Parsed off the event loop, streamed, size-limited (413)."""
    result = await import_upload(request, t.ledger, kind, format, t.config, t.profile)
    return {"inserted": result.put.inserted, "updated": result.put.updated,
            "unchanged": result.put.unchanged, "rows": result.rows,
            "encoding": result.encoding}
