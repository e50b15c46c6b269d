"""The platform uploader's status and log (上传状态): what `greenguard upload` recorded in
its state file for the path's institution. The uploader is its own process; this route
only reads the file it keeps beside the store (`<db>.upload.<iid>.sqlite`), which
`central.service` names in `app.state.upload_database` (the store's path)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from central.api.deps import TenantDep
from central.upload.state import LogEntry, UploadState, upload_state_path

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["upload"])


class UploadLogOut(BaseModel):
    id: int
    ts: int  # ms
    building: str
    period: int | None  # ms, the period's start
    operation: str  # login, heartbeat, report, continuous
    outcome: str  # accepted, refused, timeout, unavailable, garbage
    detail: str


class UploadBuildingOut(BaseModel):
    building: str
    last_accepted: int | None  # ms, start of the newest accepted period
    backlog: int  # closed periods not yet accepted, at the uploader's last pass
    last_error: UploadLogOut | None


class UploadStatusOut(BaseModel):
    configured: bool  # false: no uploader has run for this institution
    buildings: list[UploadBuildingOut]
    counters: dict[str, int]  # "operation:outcome" -> total
    log: list[UploadLogOut]  # newest first


def _entry(e: LogEntry) -> UploadLogOut:
    return UploadLogOut(id=e.id, ts=e.ts, building=e.building, period=e.period,
                        operation=e.operation, outcome=e.outcome, detail=e.detail)


def _state_path(request: Request, iid: str) -> Path | None:
    database = getattr(request.app.state, "upload_database", None)
    if database is None:
        return None
    path = upload_state_path(Path(database), iid)
    return path if path.exists() else None


@router.get("/upload")
def upload_status(request: Request, t: TenantDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  building: str | None = None,
                  before_id: int | None = None) -> UploadStatusOut:
    """Last accepted period and backlog per building, the last error, the counters, and
    the upload log (newest first; page with `before_id`)."""
    path = _state_path(request, t.id)
    if path is None:
        return UploadStatusOut(configured=False, buildings=[], counters={}, log=[])
    state = UploadState(path, readonly=True)
    try:
        backlogs = state.backlogs()
        buildings = []
        for b in state.buildings():
            err = state.last_error(b)
            buildings.append(UploadBuildingOut(
                building=b, last_accepted=state.last_accepted(b), backlog=backlogs.get(b, 0),
                last_error=None if err is None else _entry(err)))
        return UploadStatusOut(
            configured=True, buildings=buildings, counters=state.counters(),
            log=[_entry(e) for e in state.entries(building=building, limit=limit,
                                                  before_id=before_id)])
    finally:
        state.close()
