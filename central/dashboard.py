"""The built-in page's model: everything the page draws, built from one institution's reader.

    Dashboard  the whole page: live power and today's energy per building and meter, month
               to date by building and 分项 item, AC setpoint compliance, after-hours energy,
               compliance gauges, alarms, waste and bins, edge health, ingest counters
               (`GET …/dashboard`, and `GET …/overview`, the same model)
    LivePower  live power and the last hour's power sparkline (`GET …/dashboard/live`)

Every figure comes from the module that owns it: `central.metrics` (period and year-to-date
figures), `central.alarms` (alarm state), `central.edgehealth` (edges), `central.waste`
(bin levels through `metrics.bin_levels`). This module only picks and groups, and reads
nothing but the `TenantReader` it is given, so it cannot show another institution's data.
Where a source does not exist (an edge that never reported its outbox depth) the field is
null and the page says so instead of inventing a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from central import metrics
from central.alarms import (
    AlarmEvent,
    AlarmKindSummary,
    AlarmState,
    alarm_states,
    alarm_view,
    read_alarm_events,
    recent_alarm_events,
)
from central.carbon_read import CarbonCard, carbon_card
from central.compliance import ComplianceReport, quantity_of
from central.cost import PeriodCost, month_cost
from central.coverage import Coverage
from central.edgehealth import EdgeHealth, edge_health
from central.energy import EnergyType
from central.figures import AcCompliance, AfterHours, ItemLine, WasteMonth
from central.formulas import item_breakdown, waste_monthly
from central.institution import InstitutionType, MeterRole
from central.ledger import Ledger
from central.period import Period
from central.profile import CoefficientProfile
from central.reader import TenantReader
from central.storeport import local_midnight_ms
from central.view import View
from central.waste import BinLevel

__all__ = ["Dashboard", "LivePower", "build_dashboard", "build_live", "step_sum"]

STALE_AFTER_S = 300.0  # a live reading older than this is shown but not summed
LIVE_WINDOW_S = 3600  # the sparkline's span
LIVE_POINTS = 60  # one point per minute of it
RECENT_ALARMS = 20



class InstitutionView(View):
    id: str
    name: str
    type: InstitutionType
    timezone: str


class LiveValue(View):
    point: str
    value: float | int | bool | str
    unit: str
    ts: int  # ms
    age_s: float
    stale: bool


class MeterView(View):
    edge: str
    device: str
    point: str
    energy: EnergyType
    role: MeterRole
    item: str | None
    unit: str
    today: float
    live: LiveValue | None


class BuildingView(View):
    id: str
    name: str
    floor_area_m2: float
    power_w: float | None  # fresh live power of its main electricity meters
    energy_kwh_today: float
    water_m3_today: float
    energy_kwh_month: float  # main electricity meters, month to date
    water_m3_month: float
    meters: list[MeterView]


class MonthFigures(View):
    start: datetime
    end: datetime
    electricity_kwh: float
    items: list[ItemLine]  # 分项 sub-meters by item code
    ac: AcCompliance
    after_hours: AfterHours
    coverage: Coverage | None = None


class Alarms(View):
    active: list[AlarmState]  # open now (central.alarms), newest first
    recent: list[AlarmEvent]  # the newest alarm events, unknown states included
    today: list[AlarmKindSummary]  # raised and cleared since local midnight, per kind
    unknown_state: int  # alarm events whose state is neither raised nor cleared


class Waste(View):
    year: int
    bins: list[BinLevel]  # every configured bin's latest fill
    monthly: list[WasteMonth]  # clearances of the year per month and category
    clearances: int
    weight_kg: float


class Dashboard(View):
    institution: InstitutionView
    now: float
    local_time: datetime
    today: date
    power_w: float | None
    energy_kwh_today: float
    water_m3_today: float
    compliance: ComplianceReport
    buildings: list[BuildingView]
    month: MonthFigures
    alarms: Alarms
    waste: Waste
    edges: list[EdgeHealth]
    ingest: dict[str, Any] | None
    cost: PeriodCost | None = None  # the month so far (central/cost.py); None: no tariff
    carbon: CarbonCard | None = None  # the CO₂ card: month and year to date


class PowerPoint(View):
    ts: int  # ms, end of the minute
    power_w: float | None  # None: no fresh reading of any main electricity meter


class BuildingPower(View):
    id: str
    name: str
    power_w: float | None


class LivePower(View):
    now: float
    local_time: datetime
    power_w: float | None
    buildings: list[BuildingPower]
    series: list[PowerPoint]


# -- assembly (pure over the reader's reads) --------------------------------------------


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


def _buildings(reader: TenantReader, profile: CoefficientProfile, *, now: float,
               midnight_ms: int, month_start: float) -> list[BuildingView]:
    institution = reader.institution
    tz = institution.institution.tz
    now_ms = int(now * 1000)
    today = reader.period_sums(midnight_ms, now_ms, tz, [m.key for m in institution.meters]) \
        if now_ms > midnight_ms else {}
    # From the rollups (whole days, whole hours), as the month's metrics read them.
    month = reader.period_sums(int(month_start * 1000), int(max(month_start, now) * 1000), tz,
                               [m.key for m in institution.main_meters()]) \
        if now > month_start else {}
    latest = reader.latest_samples()
    out: list[BuildingView] = []
    for b in institution.buildings:
        meters: list[MeterView] = []
        power: float | None = None
        kwh = water = kwh_month = water_month = 0.0
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
                    kwh_month += month.get(m.key, 0.0)
                    if (live is not None and not live.stale and m.live_point == "power_w"
                            and isinstance(live.value, int | float)):
                        power = (power or 0.0) + float(live.value)
                elif m.energy is EnergyType.WATER:
                    water += used
                    water_month += month.get(m.key, 0.0)
            meters.append(MeterView(edge=m.edge, device=m.device, point=m.point,
                                    energy=m.energy, role=m.role, item=m.item,
                                    unit=profile.unit_of(m), today=used, live=live))
        out.append(BuildingView(id=b.id, name=b.name, floor_area_m2=b.floor_area_m2,
                                power_w=power, energy_kwh_today=kwh, water_m3_today=water,
                                energy_kwh_month=kwh_month, water_m3_month=water_month,
                                meters=meters))
    return out


def _alarms(reader: TenantReader, *, now: float, midnight_ms: int) -> Alarms:
    until = int(now * 1000) + 1  # events at or before now
    events = read_alarm_events(reader, until)
    today = alarm_view(events, midnight_ms, until, reader.institution.institution.tz)
    active = [a for a in alarm_states(events, until) if a.state == "raised"]
    active.sort(key=lambda a: a.since, reverse=True)
    return Alarms(active=active, recent=recent_alarm_events(reader, until, RECENT_ALARMS),
                  today=today.summary, unknown_state=today.unknown_state)


def build_dashboard(reader: TenantReader, ledger: Ledger, profile: CoefficientProfile, *,
                    now: float, ingest: dict[str, Any] | None = None) -> Dashboard:
    institution = reader.institution
    info = institution.institution
    tz = info.tz
    local = datetime.fromtimestamp(now, tz)
    today = local.date()
    midnight_ms = local_midnight_ms(today, tz)
    m0 = Period.month(today.year, today.month, tz).start
    buildings = _buildings(reader, profile, now=now, midnight_ms=midnight_ms, month_start=m0)
    m1 = max(m0, now)
    # The month's figures the page shows, not all of `period_metrics` (its standby, alarms
    # and waste would read the month's plug samples and every alarm event, unused here).
    energy = metrics.period_energy(reader, ledger, institution, profile, start=m0, end=m1)
    y0, y1 = Period.year(today.year, tz).bounds
    clearances = ledger.clearances(y0, min(y1, max(y0, now)))
    powers = [b.power_w for b in buildings if b.power_w is not None]
    compliance = metrics.compliance_for(reader, institution, profile, now=now,
                                        year=local.year, ledger=ledger)
    return Dashboard(
        institution=InstitutionView(id=info.id, name=info.name, type=info.type,
                                    timezone=info.timezone),
        now=now, local_time=local, today=today,
        power_w=sum(powers) if powers else None,
        energy_kwh_today=sum(b.energy_kwh_today for b in buildings),
        water_m3_today=sum(b.water_m3_today for b in buildings),
        compliance=compliance,
        buildings=buildings,
        month=MonthFigures(
            start=datetime.fromtimestamp(m0, tz), end=datetime.fromtimestamp(m1, tz),
            electricity_kwh=quantity_of(energy.quantities, EnergyType.ELECTRICITY),
            items=item_breakdown(institution, energy.sums, energy.electricity_kwh, None),
            ac=metrics.ac_for(reader, institution, start=m0, end=m1),
            after_hours=metrics.main_after_hours(reader, institution,
                                                 energy.main_electricity, start=m0, end=m1),
            coverage=metrics.coverage_for(reader, institution, start=m0, end=m1,
                                          sums=energy.sums, bills=energy.bills,
                                          cuts=energy.cuts, lines=energy.energy_by_type)),
        alarms=_alarms(reader, now=now, midnight_ms=midnight_ms),
        waste=Waste(year=today.year, bins=metrics.bin_levels(reader, institution, now=now),
                    monthly=waste_monthly(clearances, tz),
                    clearances=len(clearances),
                    weight_kg=math.fsum(c.weight_kg or 0.0 for c in clearances)),
        edges=edge_health(reader, now),
        ingest=ingest,
        cost=month_cost(reader, ledger, institution, profile, start=m0, end=m1, energy=energy),
        carbon=carbon_card(reader, ledger, institution, profile, now=now, month_start=m0,
                           month_energy=energy, year_report=compliance))


def build_live(reader: TenantReader, *, now: float, window_s: int = LIVE_WINDOW_S,
               points: int = LIVE_POINTS) -> LivePower:
    """Live power now (fresh readings only, as on the page) and a step-function sum of the
    main electricity meters' power over the last `window_s`."""
    institution = reader.institution
    tz = institution.institution.tz
    now_ms = int(now * 1000)
    step = window_s * 1000 // points
    ticks = [now_ms - (points - 1 - i) * step for i in range(points)]
    stale_ms = int(STALE_AFTER_S * 1000)
    series: list[tuple[str, list[tuple[int, float]]]] = []  # (building, power samples)
    for m in institution.main_meters():
        if m.energy is not EnergyType.ELECTRICITY or m.live_point != "power_w":
            continue
        raw = reader.sample_series(m.key._replace(point="power_w"), ticks[0], now_ms + 1)
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
