"""Events, the audit trail and the alarms of the institution's edges."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from central.alarms import alarm_states, read_alarm_events
from central.api.deps import ReaderDep, SettingsDep
from central.api.models import AlarmOut, EventOut
from central.api.params import MAX_ROWS, to_ms
from central.reader import TenantReader
from central.storeport import StoredEvent

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["events"])


def _event(ev: StoredEvent) -> EventOut:
    try:
        parsed = json.loads(ev.data)
    except ValueError:
        parsed = {"raw": ev.data}
    return EventOut(edge=ev.edge, epoch=ev.epoch, seq=ev.seq, ts=ev.ts, name=ev.name,
                    severity=ev.severity, device=ev.device,
                    data=parsed if isinstance(parsed, dict) else {"value": parsed},
                    synced=ev.synced)


def _events(reader: TenantReader, *, names: Sequence[str] | None = None,
            prefix: str | None = None, start_ms: int | None = None,
            end_ms: int | None = None, limit: int) -> list[EventOut]:
    return [_event(ev) for ev in reader.events(None, names=names, prefix=prefix,
                                               start_ms=start_ms, end_ms=end_ms, limit=limit)]


@router.get("/events")
def get_events(
    reader: ReaderDep,
    name: Annotated[str | None, Query(
        pattern=r"^[a-z][a-z0-9_.]{0,63}\*?$",
        description="exact name, or a prefix ending in `*` (e.g. `alarm.*`)",
        examples=["alarm.*"])] = None,
    since: Annotated[datetime | None, Query(examples=["2025-07-01T00:00:00"])] = None,
    until: Annotated[datetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200,
) -> list[EventOut]:
    """Events from the institution's edges, newest first."""
    names = prefix = None
    if name is not None:
        if name.endswith("*"):
            prefix = name[:-1]
        else:
            names = [name]
    tz = reader.institution.institution.tz
    return _events(reader, names=names, prefix=prefix,
                   start_ms=None if since is None else to_ms("since", since, tz),
                   end_ms=None if until is None else to_ms("until", until, tz), limit=limit)


@router.get("/audit")
def get_audit(reader: ReaderDep,
              limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200) -> list[EventOut]:
    """The audit trail: every device-changing decision (`audit.write` events) and every
    command's result (`command.result`), newest first."""
    return _events(reader, names=["audit.write", "command.result"], limit=limit)


@router.get("/alarms")
def get_alarms(
    reader: ReaderDep, settings: SettingsDep,
    state: Annotated[Literal["raised", "cleared", "all"],
                     Query(description="raised: only alarms still active")] = "raised",
) -> list[AlarmOut]:
    """The current state of every alarm (`alarm.<kind>` per edge, device, rule and point):
    the latest raised/cleared event up to now decides; events of any other state change
    nothing (central/alarms.py)."""
    until = int(settings.clock.now() * 1000) + 1
    return [AlarmOut(name=a.name, edge=a.edge, device=a.device, rule=a.rule, point=a.point,
                     state=a.state, since=a.since, data=a.data)
            for a in alarm_states(read_alarm_events(reader, until), until)
            if state in ("all", a.state)]
