"""Devices with their latest points, and the edges' health."""

from __future__ import annotations

from fastapi import APIRouter

from central.api.deps import ReaderDep, SettingsDep, TenantDep
from central.api.models import DeviceOut, PointOut
from central.edgehealth import EdgeHealth, edge_health
from central.reader import TenantReader

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["devices"])


def _points(reader: TenantReader) -> dict[tuple[str, str], list[PointOut]]:
    out: dict[tuple[str, str], list[PointOut]] = {}
    for key, s in sorted(reader.latest_samples().items()):
        out.setdefault((key.edge, key.device), []).append(
            PointOut(point=key.point, unit=s.unit, ts=s.ts, value=s.value))
    return out


@router.get("/devices")
def get_devices(reader: ReaderDep, t: TenantDep) -> list[DeviceOut]:
    """Configured meters and AC units, then any other device its edges reported, each
    with the latest sample of every point."""
    seen = _points(reader)
    out: list[DeviceOut] = []
    done: set[tuple[str, str]] = set()
    for m in t.config.meters:
        if (m.edge, m.device) in done:
            continue
        done.add((m.edge, m.device))
        out.append(DeviceOut(edge=m.edge, device=m.device, kind="meter",
                             building=m.building, zone=m.zone, energy=m.energy.value,
                             role=m.role.value, item=m.item,
                             points=seen.get((m.edge, m.device), [])))
    for a in t.config.ac_units:
        if (a.edge, a.device) in done:
            continue
        done.add((a.edge, a.device))
        out.append(DeviceOut(edge=a.edge, device=a.device, kind="ac", building=a.building,
                             zone=a.zone, points=seen.get((a.edge, a.device), [])))
    for (edge, device), points in seen.items():
        if (edge, device) not in done:
            out.append(DeviceOut(edge=edge, device=device, kind="other", building=None,
                                 points=points))
    return out


@router.get("/edges")
def get_edges(reader: ReaderDep, settings: SettingsDep) -> list[EdgeHealth]:
    """Health of the institution's edges: online, last seen, clock, outbox depth."""
    return edge_health(reader, settings.clock.now())
