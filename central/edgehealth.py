"""The health of an institution's edges: the one model the API, the built-in page and the
overview share.

An edge is **online** when the central has seen its birth and no death since (`connected`)
and heard from it within `ONLINE_WITHIN_S`; `connected` is null until a birth or death was
seen. The outbox depth is what the edge last reported (an event whose data carries
`outbox_depth`); null when it never did, never invented. Likewise the disk status,
from the edge's last `alarm.outbox_disk` notice (`disk_pressure`, `dropped_records`).
Every configured edge of the institution is listed, in id order, including one that has
never connected.
"""

from __future__ import annotations

import math

from pydantic import Field

from central.reader import TenantReader
from central.view import View

__all__ = ["ONLINE_WITHIN_S", "EdgeHealth", "edge_health"]

ONLINE_WITHIN_S = 300.0  # an edge heard from within this many seconds counts as online


class EdgeHealth(View):
    edge: str = Field(examples=["edge-1"])
    site: str | None = Field(examples=["site-1"])
    online: bool = Field(description="birth seen and no death since, and heard from within "
                         f"{ONLINE_WITHIN_S:g} s", examples=[True])
    connected: bool | None = Field(description="MQTT birth/death state; null: never seen")
    last_seen: float | None = Field(description="central's clock, POSIX seconds")
    age_s: float | None = Field(examples=[12.0])
    epoch: int | None
    software: str | None = Field(examples=["0.1.0"])
    clock_synced: bool | None = Field(description="the edge's clock state at its last birth")
    outbox_depth: int | None = Field(description="last reported by the edge (an event with "
                                     "data.outbox_depth), null if never reported")
    disk_pressure: bool | None = Field(None, description="the edge's last disk status "
                                       "(alarm.outbox_disk): true while its outbox refuses "
                                       "new records; null if never reported")
    dropped_records: int | None = Field(None, description="records the edge could not "
                                        "write in its last disk-pressure episode")


def edge_health(reader: TenantReader, now: float) -> list[EdgeHealth]:
    """Every edge of the reader's institution, as of `now` (the central's clock)."""
    states = {e.edge: e for e in reader.edges()}
    out = []
    for edge in sorted(reader.edges_owned):
        latest = reader.latest_event_with(edge, "outbox_depth")
        v = None if latest is None else latest["outbox_depth"]
        depth = (int(v) if isinstance(v, int | float) and not isinstance(v, bool)
                 and math.isfinite(v) else None)
        disk = reader.latest_event_with(edge, "disk_pressure") or {}
        pressure = disk.get("disk_pressure")
        lost = disk.get("dropped_records")
        extra = {"disk_pressure": pressure if isinstance(pressure, bool) else None,
                 "dropped_records": lost if type(lost) is int else None}
        r = states.get(edge)
        if r is None:
            out.append(EdgeHealth(edge=edge, site=None, online=False, connected=None,
                                  last_seen=None, age_s=None, epoch=None, software=None,
                                  clock_synced=None, outbox_depth=depth, **extra))
            continue
        age = None if r.last_seen is None else max(0.0, now - float(r.last_seen))
        out.append(EdgeHealth(
            edge=edge, site=r.site, connected=r.online,
            online=r.online is not False and age is not None and age <= ONLINE_WITHIN_S,
            last_seen=r.last_seen, age_s=age, epoch=r.epoch, software=r.software,
            clock_synced=r.synced, outbox_depth=depth, **extra))
    return out
