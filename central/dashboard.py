"""JSON behind the built-in dashboard: everything the page draws, in two requests.

    GET /api/v1/dashboard       the whole page: compliance gauges, today and month to date
                                by building and 分项 item, AC setpoint compliance,
                                after-hours energy, alarms, waste, edge health (polled ~10 s)
    GET /api/v1/dashboard/live  live power and the last hour's power sparkline (polled ~2 s)

The page shell at `/` (central/page.py) carries no data, so these routes are where access
control applies. Every figure is computed by the modules that own it (`central.overview`,
`central.metrics`, `central.compliance`); this module only picks and groups. Where a source
does not exist yet (the edge does not report its outbox depth) the field is null and the
page says so instead of inventing a number.

No `from __future__ import annotations` here: the routes are built inside
`dashboard_router` and FastAPI must see the store dependency's real annotation.
"""

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from central.compliance import ComplianceReport
from central.config import EnergyType, InstitutionConfig
from central.coverage import Coverage
from central.ledger import Ledger
from central.metrics import (
    AcCompliance,
    AfterHours,
    ItemLine,
    WasteMonth,
    period_metrics,
    waste_monthly,
)
from central.overview import STALE_AFTER_S, InstitutionView, Overview, build_overview
from central.period import Period
from central.profile import CoefficientProfile
from central.store import Store, event_data
from central.storeport import StoreReader
from protocols.clock import Clock

LIVE_WINDOW_S = 3600  # the sparkline's span
LIVE_POINTS = 60  # one point per minute of it
ALARM_LOOKBACK = 500  # most recent alarm events read to decide which are still raised
ALARM_WINDOW_S = 30 * 86_400  # ... within this window, so the scan of `events` stays bounded
RECENT_ALARMS = 20
FILL_POINT = "fill_pct"  # bin-fill sensors (docs/devices)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class BuildingEnergy(_View):
    id: str
    name: str
    floor_area_m2: float
    power_w: float | None  # fresh live power of its main electricity meters
    energy_kwh_today: float
    water_m3_today: float
    energy_kwh_month: float  # main electricity meters, month to date
    water_m3_month: float


class MonthFigures(_View):
    start: datetime
    end: datetime
    electricity_kwh: float
    items: list[ItemLine]  # 分项 sub-meters by item code
    ac: AcCompliance
    after_hours: AfterHours
    coverage: Coverage | None = None


class Alarm(_View):
    kind: str  # leak, lights_on, bin_full, actuation_failed, …: the name after "alarm."
    state: Literal["raised", "cleared"]
    edge: str
    device: str | None
    rule: str | None
    severity: str
    ts: int  # ms, the edge's clock
    data: dict[str, Any]


class Alarms(_View):
    active: list[Alarm]  # last event per (edge, device, kind, rule) in 30 days is "raised"
    recent: list[Alarm]  # newest first


class BinLevel(_View):
    edge: str
    device: str
    fill_pct: float
    ts: int  # ms
    age_s: float
    stale: bool


class Waste(_View):
    year: int
    bins: list[BinLevel]
    monthly: list[WasteMonth]  # clearances of the year per month and category
    clearances: int
    weight_kg: float


class EdgeHealth(_View):
    edge: str
    site: str
    online: bool | None
    software: str | None
    last_seen: float | None
    age_s: float | None
    clock_synced: bool | None  # as the edge reported at its last connection
    outbox_depth: int | None  # None: the edge does not report it (yet)


class Dashboard(_View):
    institution: InstitutionView
    now: float
    local_time: datetime
    today: date
    power_w: float | None
    energy_kwh_today: float
    water_m3_today: float
    compliance: ComplianceReport
    buildings: list[BuildingEnergy]
    month: MonthFigures
    alarms: Alarms
    waste: Waste
    edges: list[EdgeHealth]
    ingest: dict[str, Any] | None


class PowerPoint(_View):
    ts: int  # ms, end of the minute
    power_w: float | None  # None: no fresh reading of any main electricity meter


class BuildingPower(_View):
    id: str
    name: str
    power_w: float | None


class LivePower(_View):
    now: float
    local_time: datetime
    power_w: float | None
    buildings: list[BuildingPower]
    series: list[PowerPoint]


# -- assembly (pure over the store's reads) ---------------------------------------------


def step_sum(series: Sequence[Sequence[tuple[int, float]]], ticks: Sequence[int],
             max_age_ms: int) -> list[float | None]:
    """At each tick, the sum over series of the last value at or before it, each counted only
    while younger than `max_age_ms`; None where no series has a value."""
    out: list[float | None] = []
    cursors = [0] * len(series)
    for t in ticks:
        total: float | None = None
        for i, samples in enumerate(series):
            j = cursors[i]
            while j < len(samples) and samples[j][0] <= t:
                j += 1
            cursors[i] = j
            if j and t - samples[j - 1][0] <= max_age_ms:
                total = (total or 0.0) + samples[j - 1][1]
        out.append(total)
    return out


def alarm_state(events: Sequence[Alarm]) -> list[Alarm]:
    """Alarms whose newest event (per edge, device, kind and rule) is "raised", newest first.
    `events` must be newest first."""
    seen: set[tuple[str, str | None, str, str | None]] = set()
    active: list[Alarm] = []
    for a in events:
        key = (a.edge, a.device, a.kind, a.rule)
        if key in seen:
            continue
        seen.add(key)
        if a.state == "raised":
            active.append(a)
    return active


def _alarm_events(store: StoreReader, since_ms: int, limit: int) -> list[Alarm]:
    out: list[Alarm] = []
    for ev in store.events(None, prefix="alarm.", start_ms=since_ms, limit=limit):
        data = event_data(ev.data) or {}
        state = data.get("state")
        rule = data.get("rule")
        out.append(Alarm(kind=ev.name[len("alarm."):], edge=ev.edge,
                         state="cleared" if state == "cleared" else "raised",
                         device=ev.device, rule=rule if isinstance(rule, str) else None,
                         severity=ev.severity, ts=ev.ts, data=data))
    return out


def _clock_synced(store: StoreReader) -> dict[str, bool | None]:
    return {e.edge: e.synced for e in store.edges()}


def build_dashboard(store: Store, ledger: Ledger, institution: InstitutionConfig,
                    profile: CoefficientProfile, *, now: float,
                    ingest: dict[str, Any] | None = None) -> Dashboard:
    o: Overview = build_overview(store, institution, profile, now=now, ingest=ingest,
                                 ledger=ledger)
    tz = institution.institution.tz
    m0 = Period.month(o.today.year, o.today.month, tz).start
    month = period_metrics(store, ledger, institution, profile, start=m0, end=max(m0, now))
    month_sums = store.interval_sums(int(m0 * 1000), int(max(m0, now) * 1000),
                                     [m.key for m in institution.main_meters()]) \
        if now > m0 else {}
    buildings = []
    for b in o.buildings:
        mains = [m for m in institution.main_meters() if m.building == b.id]
        buildings.append(BuildingEnergy(
            id=b.id, name=b.name, floor_area_m2=b.floor_area_m2, power_w=b.power_w,
            energy_kwh_today=b.energy_kwh_today, water_m3_today=b.water_m3_today,
            energy_kwh_month=math.fsum(month_sums.get(m.key, 0.0) for m in mains
                                       if m.energy is EnergyType.ELECTRICITY),
            water_m3_month=math.fsum(month_sums.get(m.key, 0.0) for m in mains
                                     if m.energy is EnergyType.WATER)))

    events = _alarm_events(store, int((now - ALARM_WINDOW_S) * 1000), ALARM_LOOKBACK)
    bins = []
    for key, s in sorted(store.latest_samples([FILL_POINT]).items()):
        if isinstance(s.value, bool) or not isinstance(s.value, int | float):
            continue
        age = now - s.ts / 1000
        bins.append(BinLevel(edge=key.edge, device=key.device, fill_pct=float(s.value),
                             ts=s.ts, age_s=age, stale=age > STALE_AFTER_S))
    y0, y1 = Period.year(o.today.year, tz).bounds
    clearances = ledger.clearances(y0, min(y1, max(y0, now)))
    synced = _clock_synced(store)
    return Dashboard(
        institution=o.institution, now=o.now, local_time=o.local_time, today=o.today,
        power_w=o.power_w, energy_kwh_today=o.energy_kwh_today,
        water_m3_today=o.water_m3_today, compliance=o.compliance, buildings=buildings,
        month=MonthFigures(start=month.start, end=month.end,
                           electricity_kwh=month.electricity_kwh, items=month.items,
                           ac=month.ac, after_hours=month.after_hours,
                           coverage=month.coverage),
        alarms=Alarms(active=alarm_state(events), recent=events[:RECENT_ALARMS]),
        waste=Waste(year=o.today.year, bins=bins, monthly=waste_monthly(clearances, tz),
                    clearances=len(clearances),
                    weight_kg=math.fsum(c.weight_kg or 0.0 for c in clearances)),
        edges=[EdgeHealth(edge=e.edge, site=e.site, online=e.online, software=e.software,
                          last_seen=e.last_seen, age_s=e.age_s,
                          clock_synced=synced.get(e.edge), outbox_depth=None)
               for e in o.edges],
        ingest=o.ingest)


def build_live(store: Store, institution: InstitutionConfig, *, now: float,
               window_s: int = LIVE_WINDOW_S, points: int = LIVE_POINTS) -> LivePower:
    """Live power now (fresh readings only, as in the overview) and a step-function sum of
    the main electricity meters' power over the last `window_s`."""
    tz = institution.institution.tz
    now_ms = int(now * 1000)
    step = window_s * 1000 // points
    ticks = [now_ms - (points - 1 - i) * step for i in range(points)]
    stale_ms = int(STALE_AFTER_S * 1000)
    series: list[tuple[str, list[tuple[int, float]]]] = []  # (building, power samples)
    for m in institution.main_meters():
        if m.energy is not EnergyType.ELECTRICITY or m.live_point != "power_w":
            continue
        raw = store.sample_series(m.key._replace(point="power_w"), ticks[0], now_ms + 1)
        series.append((m.building, [(ts, float(v)) for ts, v in raw
                                    if isinstance(v, int | float) and not isinstance(v, bool)]))
    buildings = [
        BuildingPower(id=b.id, name=b.name, power_w=step_sum(
            [s for building, s in series if building == b.id], [now_ms], stale_ms)[0])
        for b in institution.buildings]
    values = step_sum([s for _, s in series], ticks, stale_ms)
    powers = [b.power_w for b in buildings if b.power_w is not None]
    return LivePower(now=now, local_time=datetime.fromtimestamp(now, tz),
                     power_w=math.fsum(powers) if powers else None, buildings=buildings,
                     series=[PowerPoint(ts=t, power_w=v) for t, v in zip(ticks, values,
                                                                          strict=True)])


# -- HTTP -------------------------------------------------------------------------------


def dashboard_router(clock: Clock, ingest: Callable[[], dict[str, Any] | None],
                     open_store: Callable[..., Iterator[Store]]) -> APIRouter:
    """The dashboard's routes, per institution; `open_store` is the app's store dependency.
    Mounted behind the app's `authorize()`, which answers 404 for an institution the token
    may not see, so `request.app.state.tenants[iid]` exists here."""
    router = APIRouter(prefix="/api/v1/institutions/{iid}/dashboard", tags=["dashboard"])
    db_dep = Annotated[Store, Depends(open_store)]

    @router.get("", summary="Everything the built-in dashboard shows")
    def get_dashboard(db: db_dep, request: Request, iid: str) -> Dashboard:
        t = request.app.state.tenants[iid]
        return build_dashboard(db, t.ledger, t.config, t.profile, now=clock.now(),
                               ingest=ingest())

    @router.get("/live", summary="Live power and its recent history")
    def get_live(
        db: db_dep, request: Request, iid: str,
        minutes: Annotated[int, Query(ge=5, le=24 * 60,
                                      description="span of the power history")] = 60,
    ) -> LivePower:
        t = request.app.state.tenants[iid]
        return build_live(db, t.config, now=clock.now(), window_s=minutes * 60)

    return router
