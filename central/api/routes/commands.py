"""Overrides sent to the institution's edges, and their status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam

from central.api.deps import CommandsDep, EngineerDep, ReaderDep, SettingsDep
from central.api.params import MAX_ROWS
from central.commands import CommandRequest, CommandView

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["commands"])


@router.post("/commands", status_code=202)
def post_command(reader: ReaderDep, settings: SettingsDep, service: CommandsDep,
                 request: CommandRequest, principal: EngineerDep) -> CommandView:
    """Send an override to an edge (engineer). 202: published with QoS 1; the status
    becomes the edge's answer (`applied`, `rejected`, ...) once its `command.result`
    event is ingested. 503 if the broker is unreachable (the command is kept as
    `unsent`)."""
    if not reader.owns(request.edge):
        raise HTTPException(status_code=404, detail=f"edge: {request.edge!r} is not an "
                            f"edge of institution {reader.id!r}")
    site = next((e.site for e in reader.edges() if e.edge == request.edge), None)
    if site is None:
        raise HTTPException(status_code=409, detail=f"edge: {request.edge!r} has never "
                            "connected, so its site (the command topic) is unknown")
    now_ms = int(settings.clock.now() * 1000)
    row = service.send(institution=reader.id, site=site, request=request,
                       created_by=principal.name, now_ms=now_ms)
    (view,) = service.views(reader, reader.id, now_ms=now_ms, command_id=row.id)
    return view


@router.get("/commands")
def list_commands(reader: ReaderDep, settings: SettingsDep, service: CommandsDep,
                  limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200
                  ) -> list[CommandView]:
    """Commands sent to the institution's edges with their status, newest first."""
    return service.views(reader, reader.id, now_ms=int(settings.clock.now() * 1000),
                         limit=limit)


@router.get("/commands/{command_id}")
def get_command(reader: ReaderDep, settings: SettingsDep, service: CommandsDep,
                command_id: Annotated[str, PathParam(pattern=r"^c-[0-9a-f]{16}$")]
                ) -> CommandView:
    found = service.views(reader, reader.id, now_ms=int(settings.clock.now() * 1000),
                          command_id=command_id)
    if not found:
        raise HTTPException(status_code=404, detail=f"command_id: no command "
                            f"{command_id!r} in institution {reader.id!r}")
    return found[0]
