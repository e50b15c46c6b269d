"""What the built-in page shows, assembled from the store: live power and flow per meter and
building, today's energy and water since local midnight, the compliance figures, edge
state and ingest counters.

Kept apart from the HTTP layer so the same figures feed the JSON endpoint and the
server-rendered page, and so a test can check them without a web server.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from central import metrics
from central.alarms import AlarmView
from central.compliance import ComplianceReport
from central.config import EnergyType, InstitutionConfig, InstitutionType, MeterRole
from central.ledger import Ledger
from central.profile import CoefficientProfile
from central.store import Store, local_midnight_ms
from central.waste import BinLevel

STALE_AFTER_S = 300.0  # a live reading older than this is shown but not summed
ONLINE_WITHIN_S = 300.0  # an edge heard from within this many seconds counts as online


def edge_online(connected: bool | None, age_s: float | None) -> bool:
    """One answer for `/edges`, the overview and the dashboard: a birth and no death since
    (a clean stop publishes a death), and heard from within ONLINE_WITHIN_S."""
    return connected is not False and age_s is not None and age_s <= ONLINE_WITHIN_S


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class LiveValue(_View):
    point: str
    value: float | int | bool | str
    unit: str
    ts: int  # ms
    age_s: float
    stale: bool


class MeterView(_View):
    edge: str
    device: str
    point: str
    energy: EnergyType
    role: MeterRole
    item: str | None
    unit: str
    today: float
    live: LiveValue | None


class BuildingView(_View):
    id: str
    name: str
    floor_area_m2: float
    power_w: float | None  # fresh power_w of main electricity meters
    energy_kwh_today: float
    water_m3_today: float
    meters: list[MeterView]


class EdgeView(_View):
    edge: str
    site: str
    epoch: int | None
    online: bool | None
    software: str | None
    last_seen: float | None
    age_s: float | None


class InstitutionView(_View):
    id: str
    name: str
    type: InstitutionType
    timezone: str


class Overview(_View):
    institution: InstitutionView
    now: float
    local_time: datetime
    today: date
    power_w: float | None
    energy_kwh_today: float
    water_m3_today: float
    buildings: list[BuildingView]
    compliance: ComplianceReport
    alarms: AlarmView  # open at `now` (open_leaks among them); raised/cleared today
    bins: list[BinLevel]  # latest fill per bin with its category
    edges: list[EdgeView]
    ingest: dict[str, Any] | None


def compliance_for(store: Store, institution: InstitutionConfig,
                   profile: CoefficientProfile, *, now: float, year: int,
                   ledger: Ledger | None = None) -> ComplianceReport:
    """Year-to-date figures (see `central.metrics.compliance_for`)."""
    return metrics.compliance_for(store, institution, profile, now=now, year=year,
                                  ledger=ledger)


def build_overview(store: Store, institution: InstitutionConfig,
                   profile: CoefficientProfile, *, now: float,
                   ingest: dict[str, Any] | None = None,
                   ledger: Ledger | None = None) -> Overview:
    tz = institution.institution.tz
    local = datetime.fromtimestamp(now, tz)
    midnight_ms = local_midnight_ms(local.date(), tz)
    now_ms = int(now * 1000)
    today = store.period_sums(midnight_ms, now_ms, tz, [m.key for m in institution.meters]) \
        if now_ms > midnight_ms else {}
    latest = store.latest_samples()

    buildings: list[BuildingView] = []
    for b in institution.buildings:
        meters: list[MeterView] = []
        power: float | None = None
        kwh = water = 0.0
        for m in (m for m in institution.meters if m.building == b.id):
            used = today.get(m.key, 0.0)
            live = None
            if m.live_point is not None:
                sample = latest.get(m.key._replace(point=m.live_point))
                if sample is not None:
                    age = now - sample.ts / 1000
                    live = LiveValue(point=m.live_point, value=sample.value, unit=sample.unit,
                                     ts=sample.ts, age_s=age, stale=age > STALE_AFTER_S)
            if m.role is MeterRole.MAIN:
                if m.energy is EnergyType.ELECTRICITY:
                    kwh += used
                    if (live is not None and not live.stale and m.live_point == "power_w"
                            and isinstance(live.value, int | float)):
                        power = (power or 0.0) + float(live.value)
                elif m.energy is EnergyType.WATER:
                    water += used
            meters.append(MeterView(edge=m.edge, device=m.device, point=m.point,
                                    energy=m.energy, role=m.role, item=m.item,
                                    unit=profile.unit_of(m), today=used, live=live))
        buildings.append(BuildingView(id=b.id, name=b.name, floor_area_m2=b.floor_area_m2,
                                      power_w=power, energy_kwh_today=kwh,
                                      water_m3_today=water, meters=meters))

    powers = [b.power_w for b in buildings if b.power_w is not None]
    edges = []
    for e in store.edges():
        edge_age = None if e.last_seen is None else max(0.0, now - e.last_seen)
        edges.append(EdgeView(edge=e.edge, site=e.site, epoch=e.epoch,
                              online=edge_online(e.online, edge_age), software=e.software,
                              last_seen=e.last_seen, age_s=edge_age))
    info = institution.institution
    return Overview(
        institution=InstitutionView(id=info.id, name=info.name, type=info.type,
                                    timezone=info.timezone),
        now=now, local_time=local, today=local.date(),
        power_w=sum(powers) if powers else None,
        energy_kwh_today=sum(b.energy_kwh_today for b in buildings),
        water_m3_today=sum(b.water_m3_today for b in buildings),
        buildings=buildings,
        compliance=compliance_for(store, institution, profile, now=now, year=local.year,
                                  ledger=ledger),
        alarms=metrics.alarms_for(store, institution, start=midnight_ms / 1000, end=now),
        bins=metrics.bin_levels(store, institution, now=now),
        edges=edges, ingest=ingest)
