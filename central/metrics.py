"""Figures for any institution, building and period, from interval records, samples and the
manual ledger (STANDARDS.md §2–§6). Assembly here reads the store and ledger; every formula
is a pure function below it, golden-tested by hand.

    综合能耗 kgce        Σ metered (main meters) + bills pro-rated to the period + vehicle fuel
    kgce/m², kgce/person  ÷ time-weighted mean floor area / 用能人数 over the period
    分项 breakdown        sub-meters by item code, rolled up to 01A00…01D00
    data centre / PUE     meters of item 01D10; PUE = data-centre total ÷ IT load (it_load)
    GB/T 51161 quota      electricity kWh ÷ m² per year, annualised; never mixed with kgce
    AC setpoint share     time the units ran compliant ÷ time they ran in a judged mode
    after-hours share     electricity outside working hours on working days, or on days off
    vehicles              L/100 km = litres ÷ km × 100, per car
    waste                 clearances per month and category; the hazardous store balance
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from central import codes, sweeps
from central.alarms import AlarmEvent, AlarmView, alarm_view
from central.compliance import (
    ComplianceReport,
    EnergyLine,
    ManualQuantity,
    compute,
    energy_lines,
    year_window,
)
from central.config import (
    AcUnit,
    ClearanceDetection,
    EnergyType,
    InstitutionConfig,
    MeterKey,
)
from central.ledger import Bill, Clearance, FuelEntry, HazardousMove, Ledger
from central.profile import CoefficientProfile
from central.registry import mean_energy_users, mean_floor_area
from central.standby import StandbyWaste, WorkingTime, plug_standby
from central.store import Store
from central.waste import BinLevel, bin_level, fill_drops, merge_clearances, sensor_clearances
from central.workcalendar import WorkingCalendar
from central.workinghours import Hours, hours_for

BIN_STALE_AFTER_S = 6 * 3600.0  # bin sensors report every few hours on battery


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class ItemLine(_View):
    code: str
    label_zh: str
    label_en: str
    kwh: float
    share: float | None  # of the main meters' electricity in the same scope


class DataCentre(_View):
    metered: bool
    meters: int
    kwh: float
    it_kwh: float | None
    pue: float | None


class QuotaCheck(_View):
    building: str
    quota_class: str
    climate_zone: str
    standard: str
    kwh: float
    floor_area_m2: float
    kwh_per_m2_a: float  # annualised over the period
    constraint: float
    guide: float
    verdict: Literal["within_guide", "within_constraint", "over_constraint"]
    annualised: bool  # the period is not a whole year


class AcCompliance(_View):
    units: int
    exempt_units: int
    judged_s: float
    compliant_s: float
    share: float | None
    summer_min_setpoint_c: float
    winter_max_setpoint_c: float


class AfterHours(_View):
    kwh: float
    after_hours_kwh: float
    share: float | None
    working_hours: str
    unknown_calendar_days: int  # days of a year the calendar has no 调休 data for


class VehicleLine(_View):
    id: str
    plate: str
    fuel: EnergyType
    litres: float
    km: float
    l_per_100km: float | None
    kgce: float
    entries: int


class WasteMonth(_View):
    month: str  # YYYY-MM
    category: str
    label_zh: str
    label_en: str
    weight_kg: float
    volume_l: float
    bins: int
    clearances: int


class HazardousBalance(_View):
    item: str
    unit: str
    stored_in: float
    taken_out: float
    balance: float


class WasteView(_View):
    levels: list[BinLevel]  # latest fill per bin, as of `now`
    clearances: list[Clearance]  # the clearance ledger of the period: manual + sensor
    sensor_clearances: int
    manual_clearances: int
    monthly: list[WasteMonth]
    hazardous_moves: list[HazardousMove]  # the store log of the period
    hazardous: list[HazardousBalance]  # store balance at the period's end (all moves)
    detection: ClearanceDetection


class BuildingSummary(_View):
    """The statistics-ledger figures of one building and period; equal to the same fields of
    `period_metrics(..., building=...)`."""

    building: str
    name: str
    start: datetime
    end: datetime
    electricity_kwh: float
    water_m3: float
    energy_kgce: float
    energy_kgce_for_area: float
    floor_area_m2: float
    kgce_per_m2: float | None


class PeriodMetrics(_View):
    institution_id: str
    building: str | None
    start: datetime
    end: datetime
    profile_id: str
    profile_version: str
    energy_by_type: list[EnergyLine]
    energy_kgce: float
    energy_kgce_for_area: float
    electricity_kwh: float
    water_m3: float
    floor_area_m2: float
    energy_users: float | None  # None for a building: 用能人数 is the institution's
    kgce_per_m2: float | None  # None when the floor area is 0 (all out of use)
    kgce_per_person: float | None
    water_m3_per_person: float | None
    items: list[ItemLine]
    data_centre: DataCentre
    quotas: list[QuotaCheck]
    ac: AcCompliance
    after_hours: AfterHours
    vehicles: list[VehicleLine]
    standby: StandbyWaste
    alarms: AlarmView
    waste: WasteView


# -- pure formulas -----------------------------------------------------------------


def local_day_bounds(day: date, tz: ZoneInfo) -> tuple[float, float]:
    nxt = day + timedelta(days=1)
    return (datetime(day.year, day.month, day.day, tzinfo=tz).timestamp(),
            datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp())


def bill_share(bill: Bill, start: float, end: float, tz: ZoneInfo) -> float:
    """The share of a bill's quantity that falls in [start, end): its days are equal parts,
    each day counted by the share of its seconds inside the window (DST-proof)."""
    lo = local_day_bounds(bill.period_start, tz)[0]
    hi = local_day_bounds(bill.period_end, tz)[1]
    overlap = max(0.0, min(hi, end) - max(lo, start))
    return overlap / (hi - lo)


def manual_quantities(bills: Iterable[Bill], fuel: Iterable[FuelEntry],
                      institution: InstitutionConfig, start: float, end: float, *,
                      building: str | None = None) -> list[ManualQuantity]:
    """Bills pro-rated to [start, end), vehicle fuel of the days in it (institution only)."""
    tz = institution.institution.tz
    out: list[ManualQuantity] = []
    for bill in bills:
        if building is not None and bill.building != building:
            continue
        share = bill_share(bill, start, end, tz)
        if share > 0:
            out.append(ManualQuantity(energy=bill.energy, unit=bill.unit,
                                      quantity=bill.quantity * share, source="bill"))
    if building is None:
        fuels = {v.id: EnergyType(v.fuel.value) for v in institution.vehicles}
        for entry in fuel:
            day_start = local_day_bounds(entry.day, tz)[0]
            if start <= day_start < end and entry.vehicle in fuels:
                out.append(ManualQuantity(energy=fuels[entry.vehicle], unit="L",
                                          quantity=entry.litres, source="vehicle"))
    return out


def item_breakdown(institution: InstitutionConfig, sums: Mapping[MeterKey, float],
                   main_kwh: float, building: str | None = None) -> list[ItemLine]:
    """Electricity per level-0 分项 item from meters carrying an item code."""
    table = codes.items()
    totals: dict[str, float] = defaultdict(float)
    for m in institution.meters:
        if (m.energy is EnergyType.ELECTRICITY and m.item is not None and not m.it_load
                and (building is None or m.building == building)):
            totals[table.top_item(m.item)] += sums.get(m.key, 0.0)
    out = []
    for code in sorted(totals):
        label = table.electricity_items.get(code)
        out.append(ItemLine(code=code, label_zh=label.zh if label else code,
                            label_en=label.en if label else code, kwh=totals[code],
                            share=totals[code] / main_kwh if main_kwh > 0 else None))
    return out


def data_centre(institution: InstitutionConfig, sums: Mapping[MeterKey, float],
                building: str | None = None) -> DataCentre:
    item = codes.items().data_centre_item
    total = [m for m in institution.meters if m.item == item and not m.it_load
             and (building is None or m.building == building)]
    it = [m for m in institution.meters if m.it_load
          and (building is None or m.building == building)]
    kwh = math.fsum(sums.get(m.key, 0.0) for m in total)
    it_kwh = math.fsum(sums.get(m.key, 0.0) for m in it) if it else None
    pue = kwh / it_kwh if total and it_kwh else None
    return DataCentre(metered=bool(total), meters=len(total) + len(it), kwh=kwh,
                      it_kwh=it_kwh, pue=pue)


def quota_check(institution: InstitutionConfig, sums: Mapping[MeterKey, float],
                start: float, end: float, building: str | None = None) -> list[QuotaCheck]:
    """GB/T 51161 per building with a quota class, in kWh/(m²·a): electricity of its main
    meters ÷ mean floor area, scaled to a year when the period is shorter."""
    zone = institution.institution.climate_zone
    table = codes.quotas()
    if zone is None or end <= start:
        return []
    tz = institution.institution.tz
    y0, y1 = year_window(tz, datetime.fromtimestamp(start, tz).year)
    year_s = y1 - y0
    out: list[QuotaCheck] = []
    for b in institution.buildings:
        if b.quota_class is None or (building is not None and b.id != building):
            continue
        kwh = math.fsum(sums.get(m.key, 0.0) for m in institution.main_meters()
                        if m.building == b.id and m.energy is EnergyType.ELECTRICITY)
        area = mean_floor_area(institution, start, end, b.id)
        if area <= 0:
            continue
        annualised = not math.isclose(end - start, year_s)
        per = kwh / area * (year_s / (end - start))
        q = table.classes[b.quota_class].values[zone]
        verdict: Literal["within_guide", "within_constraint", "over_constraint"] = (
            "within_guide" if per <= q.guide else
            "within_constraint" if per <= q.constraint else "over_constraint")
        out.append(QuotaCheck(building=b.id, quota_class=b.quota_class, climate_zone=zone,
                              standard=table.version, kwh=kwh, floor_area_m2=area,
                              kwh_per_m2_a=per, constraint=q.constraint, guide=q.guide,
                              verdict=verdict, annualised=annualised))
    return out


def working_window_ms(day: date, tz: ZoneInfo, start_min: int, end_min: int) -> tuple[int, int]:
    base = datetime(day.year, day.month, day.day, tzinfo=tz)
    return (int((base + timedelta(minutes=start_min)).timestamp() * 1000),
            int((base + timedelta(minutes=end_min)).timestamp() * 1000))


def after_hours(rows: Iterable[tuple[MeterKey, int, int, float]], start_ms: int, end_ms: int,
                tz: ZoneInfo, calendar: WorkingCalendar, hours: tuple[int, int],
                label: str) -> AfterHours:
    """Split each interval (clipped to the window) into working-time and after-hours parts
    in proportion to their overlap with the working window of each local day it touches."""
    total: list[float] = []
    outside: list[float] = []
    unknown: set[date] = set()
    windows: dict[date, tuple[int, int] | None] = {}
    for _key, st, du, q in rows:
        en = st + du * 1000
        lo, hi = max(st, start_ms), min(en, end_ms)
        if hi <= lo or du <= 0:
            continue
        part = q * (hi - lo) / (du * 1000)
        inside = 0
        day = datetime.fromtimestamp(lo / 1000, tz).date()
        last = datetime.fromtimestamp((hi - 1) / 1000, tz).date()
        while day <= last:
            if day not in windows:
                if not calendar.is_known(day):
                    unknown.add(day)
                windows[day] = (working_window_ms(day, tz, *hours)
                                if calendar.is_working_day(day) else None)
            w = windows[day]
            if w is not None:
                inside += max(0, min(hi, w[1]) - max(lo, w[0]))
            day += timedelta(days=1)
        total.append(part)
        outside.append(part * (1 - inside / (hi - lo)))
    kwh, off = math.fsum(total), math.fsum(outside)
    return AfterHours(kwh=kwh, after_hours_kwh=off, share=off / kwh if kwh > 0 else None,
                      working_hours=label, unknown_calendar_days=len(unknown))


Samples = sweeps.Samples
ON_VALUES = sweeps.ON_VALUES


def ac_compliance(series: Mapping[str, tuple[Samples, Samples] | tuple[Samples, Samples,
                                                                         Samples]],
                  start_ms: int, end_ms: int, *, summer_min: float, winter_max: float,
                  cooling: Iterable[str], heating: Iterable[str], max_hold_ms: int,
                  units: int, exempt: int) -> AcCompliance:
    """Time-weighted share of AC running time in a judged mode whose setpoint kept the rule.

    `series` maps a unit to its (setpoint samples, mode samples[, on samples]). Each sample
    holds until the next sample of the same point, at most `max_hold_ms`; time when either
    is unknown is not judged. With on samples, only time the unit is on is judged (a unit
    switched off in cool mode at 24 °C breaks no rule); a unit without any on sample is
    judged on its mode alone. Cooling: setpoint ≥ summer_min; heating: setpoint ≤
    winter_max."""
    judged, compliant = sweeps.ac_seconds(
        series.values(), start_ms, end_ms, summer_min=summer_min, winter_max=winter_max,
        cooling=cooling, heating=heating, max_hold_ms=max_hold_ms)
    return AcCompliance(units=units, exempt_units=exempt, judged_s=judged,
                        compliant_s=compliant, share=compliant / judged if judged else None,
                        summer_min_setpoint_c=summer_min, winter_max_setpoint_c=winter_max)


def vehicle_lines(institution: InstitutionConfig, profile: CoefficientProfile,
                  fuel: Iterable[FuelEntry], start: float, end: float) -> list[VehicleLine]:
    tz = institution.institution.tz
    per: dict[str, list[FuelEntry]] = defaultdict(list)
    for e in fuel:
        if start <= local_day_bounds(e.day, tz)[0] < end:
            per[e.vehicle].append(e)
    out = []
    for v in institution.vehicles:
        entries = per.get(v.id, [])
        litres = math.fsum(e.litres for e in entries)
        km = math.fsum(e.km for e in entries)
        energy = EnergyType(v.fuel.value)
        out.append(VehicleLine(id=v.id, plate=v.plate, fuel=energy, litres=litres, km=km,
                               l_per_100km=litres / km * 100 if km > 0 else None,
                               kgce=litres * profile.kgce_per_unit(energy, "L"),
                               entries=len(entries)))
    return out


def waste_monthly(clearances: Iterable[Clearance], tz: ZoneInfo) -> list[WasteMonth]:
    """Published clearance volume: per local month and category (STANDARDS.md §6)."""
    table = codes.waste().categories
    acc: dict[tuple[str, str], list[float]] = {}
    for c in clearances:
        month = c.time.astimezone(tz).strftime("%Y-%m")
        row = acc.setdefault((month, c.category), [0.0, 0.0, 0, 0])
        row[0] += c.weight_kg or 0.0
        row[1] += c.volume_l or 0.0
        row[2] += c.bins or 0
        row[3] += 1
    out = []
    for (month, cat), (kg, litres, bins, n) in sorted(acc.items()):
        label = table.get(cat)
        out.append(WasteMonth(month=month, category=cat, label_zh=label.zh if label else cat,
                              label_en=label.en if label else cat, weight_kg=kg,
                              volume_l=litres, bins=int(bins), clearances=int(n)))
    return out


def hazardous_balance(moves: Iterable[HazardousMove]) -> list[HazardousBalance]:
    acc: dict[tuple[str, str], list[float]] = {}
    for m in moves:
        row = acc.setdefault((m.item, m.unit), [0.0, 0.0])
        row[0 if m.direction == "in" else 1] += m.quantity
    return [HazardousBalance(item=i, unit=u, stored_in=a, taken_out=b, balance=a - b)
            for (i, u), (a, b) in sorted(acc.items())]


# -- assembly ----------------------------------------------------------------------


def _days(start: float, end: float, tz: ZoneInfo) -> tuple[date, date]:
    return (datetime.fromtimestamp(start, tz).date(),
            datetime.fromtimestamp(max(start, end - 1e-3), tz).date())


def compliance_for(store: Store, institution: InstitutionConfig,
                   profile: CoefficientProfile, *, now: float, year: int,
                   ledger: Ledger | None = None) -> ComplianceReport:
    """Year-to-date figures: interval sums and ledger entries from local Jan 1 to
    min(now, year end)."""
    tz = institution.institution.tz
    start, end = year_window(tz, year)
    keys = [m.key for m in institution.main_meters()]
    until = min(now, end)
    if until <= start:
        return compute(institution, profile, dict.fromkeys(keys, 0.0), now=now, year=year)
    sums = store.period_sums(int(start * 1000), int(until * 1000), tz, keys)
    first = store.first_start_of(int(start * 1000), int(until * 1000), keys)
    manual: list[ManualQuantity] = []
    if ledger is not None:
        d0, d1 = _days(start, until, tz)
        manual = manual_quantities(ledger.bills(d0, d1), ledger.fuel(d0, d1), institution,
                                   start, until)
    return compute(institution, profile, sums, now=now, year=year,
                   data_since=None if first is None else first / 1000, manual=manual)


@dataclass(frozen=True)
class PeriodEnergy:
    """The energy part of `period_metrics`: what a monthly row of a report needs, read
    without the period's AC, standby and waste samples."""

    sums: dict[MeterKey, float]  # every configured meter's interval sum
    fuel: list[FuelEntry]  # the ledger's vehicle fuel of the period's days
    energy_by_type: list[EnergyLine]
    energy_kgce: float
    energy_kgce_for_area: float
    electricity_kwh: float  # main electricity meters in scope
    water_m3: float
    main_electricity: list[MeterKey]


def period_energy(store: Store, ledger: Ledger | None, institution: InstitutionConfig,
                  profile: CoefficientProfile, *, start: float, end: float,
                  building: str | None = None) -> PeriodEnergy:
    """Energy, kgce and water of [start, end) exactly as `period_metrics` has them (it calls
    this): interval sums from the rollups, bills pro-rated, vehicle fuel."""
    tz = institution.institution.tz
    sums = store.period_sums(int(start * 1000), int(end * 1000), tz,
                             [m.key for m in institution.meters])
    bills: list[Bill] = []
    fuel: list[FuelEntry] = []
    if ledger is not None and end > start:
        d0, d1 = _days(start, end, tz)
        bills, fuel = ledger.bills(d0, d1), ledger.fuel(d0, d1)
    manual = manual_quantities(bills, fuel, institution, start, end, building=building)
    lines, water, _ = energy_lines(institution, profile, sums, manual, building=building)
    kgce = math.fsum(x.kgce for x in lines)
    vehicle = math.fsum(x.kgce for x in lines if x.source == "vehicle")
    main_elec = [m.key for m in institution.main_meters()
                 if m.energy is EnergyType.ELECTRICITY
                 and (building is None or m.building == building)]
    return PeriodEnergy(
        sums=dict(sums), fuel=fuel, energy_by_type=lines, energy_kgce=kgce,
        energy_kgce_for_area=kgce if profile.vehicle_fuel_in_per_m2 else kgce - vehicle,
        electricity_kwh=math.fsum(sums.get(k, 0.0) for k in main_elec), water_m3=water,
        main_electricity=main_elec)


def period_metrics(store: Store, ledger: Ledger | None, institution: InstitutionConfig,
                   profile: CoefficientProfile, *, start: float, end: float,
                   building: str | None = None) -> PeriodMetrics:
    """Every figure of one period [start, end) for the institution or one building."""
    tz = institution.institution.tz
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    energy = period_energy(store, ledger, institution, profile, start=start, end=end,
                           building=building)
    sums, fuel, lines = energy.sums, energy.fuel, energy.energy_by_type
    kgce, for_area = energy.energy_kgce, energy.energy_kgce_for_area
    kwh = energy.electricity_kwh
    water, main_elec = energy.water_m3, energy.main_electricity
    area = mean_floor_area(institution, start, end, building)
    users = mean_energy_users(institution, start, end) if building is None else None

    pol = codes.policy()
    # Each zone's meters against its own working hours (central/workinghours.py).
    zones = {m.key: m.zone for m in institution.main_meters()}
    by_hours: dict[Hours, list[MeterKey]] = {}
    for key in main_elec:
        by_hours.setdefault(hours_for(institution, zones.get(key)), []).append(key)
    calendar = WorkingCalendar(institution.calendar)
    parts = [after_hours_for(store, keys, s_ms, e_ms, tz, calendar, h.minutes, h.label)
             for h, keys in (by_hours or {hours_for(institution): []}).items()]
    ah = parts[0] if len(parts) == 1 else combine_after_hours(parts)

    ac_units: list[AcUnit] = [a for a in institution.ac_units
                              if building is None or a.building == building]
    judged = [a for a in ac_units if not a.exempt]
    series: dict[str, tuple[Samples, Samples, Samples]] = {
        f"{a.edge}/{a.device}": (
            store.sample_series(MeterKey(a.edge, a.device, a.setpoint_point), s_ms, e_ms),
            store.sample_series(MeterKey(a.edge, a.device, a.mode_point), s_ms, e_ms),
            store.sample_series(MeterKey(a.edge, a.device, a.on_point), s_ms, e_ms)
            if a.on_point else [])
        for a in judged
    } if end > start else {}
    rule = institution.ac_rule
    ac = ac_compliance(
        series, s_ms, e_ms,
        summer_min=rule.summer_min_setpoint_c if rule.summer_min_setpoint_c is not None
        else pol.ac.summer_min_setpoint_c,
        winter_max=rule.winter_max_setpoint_c if rule.winter_max_setpoint_c is not None
        else pol.ac.winter_max_setpoint_c,
        cooling=pol.ac.cooling_modes, heating=pol.ac.heating_modes,
        max_hold_ms=pol.ac.max_hold_s * 1000, units=len(ac_units),
        exempt=len(ac_units) - len(judged))

    return PeriodMetrics(
        standby=standby_for(store, institution, start=start, end=end, building=building),
        alarms=alarms_for(store, institution, start=start, end=end, building=building),
        waste=waste_for(store, ledger, institution, start=start, end=end, building=building),
        institution_id=institution.institution.id, building=building,
        start=datetime.fromtimestamp(start, tz), end=datetime.fromtimestamp(end, tz),
        profile_id=profile.profile_id, profile_version=profile.version,
        energy_by_type=lines, energy_kgce=kgce, energy_kgce_for_area=for_area,
        electricity_kwh=kwh, water_m3=water, floor_area_m2=area, energy_users=users,
        kgce_per_m2=for_area / area if area > 0 else None,
        kgce_per_person=kgce / users if users else None,
        water_m3_per_person=water / users if users else None,
        items=item_breakdown(institution, sums, kwh, building),
        data_centre=data_centre(institution, sums, building),
        quotas=quota_check(institution, sums, start, end, building),
        ac=ac, after_hours=ah,
        vehicles=vehicle_lines(institution, profile, fuel, start, end)
        if building is None else [])


def working_hours(institution: InstitutionConfig) -> tuple[tuple[int, int], str]:
    """The institution's working window in minutes after local midnight, and its label
    (`central.workinghours`: one definition for the central's figures and the edge)."""
    hours = hours_for(institution)
    return hours.minutes, hours.label


def combine_after_hours(parts: Sequence[AfterHours]) -> AfterHours:
    """Zones with different working hours together: energies added, labels listed."""
    kwh = math.fsum(p.kwh for p in parts)
    off = math.fsum(p.after_hours_kwh for p in parts)
    return AfterHours(kwh=kwh, after_hours_kwh=off, share=off / kwh if kwh > 0 else None,
                      working_hours=" · ".join(dict.fromkeys(p.working_hours for p in parts)),
                      unknown_calendar_days=max(p.unknown_calendar_days for p in parts))


def _device_buildings(institution: InstitutionConfig) -> dict[tuple[str, str | None], str]:
    out: dict[tuple[str, str | None], str] = {}
    for m in institution.meters:
        out[(m.edge, m.device)] = m.building
    for a in institution.ac_units:
        out[(a.edge, a.device)] = a.building
    for b in institution.bins:
        out[(b.edge, b.device)] = b.building
    for p in institution.plugs:
        out[(p.edge, p.device)] = p.building
    return out


def standby_for(store: Store, institution: InstitutionConfig, *, start: float, end: float,
                building: str | None = None) -> StandbyWaste:
    """Standby energy of the configured plugs over [start, end), and the part outside
    working hours (`central.standby`)."""
    tz = institution.institution.tz
    rule = institution.standby
    hours, label = working_hours(institution)
    working = WorkingTime(tz, WorkingCalendar(institution.calendar), hours)
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    lines = [plug_standby(p, store.sample_series(MeterKey(p.edge, p.device, p.power_point),
                                                 s_ms, e_ms) if e_ms > s_ms else [],
                          s_ms, e_ms, rule, working)
             for p in institution.plugs if building is None or p.building == building]
    return StandbyWaste(plugs=lines, standby_kwh=math.fsum(x.standby_kwh for x in lines),
                        after_hours_standby_kwh=math.fsum(x.after_hours_standby_kwh
                                                          for x in lines),
                        off_w=rule.off_w, standby_max_w=rule.standby_max_w,
                        working_hours=label, unknown_calendar_days=len(working.unknown))


def alarms_for(store: Store, institution: InstitutionConfig, *, start: float, end: float,
               building: str | None = None) -> AlarmView:
    """Alarms open at `end` (open leaks among them) and raised/cleared per kind in
    [start, end); for a building, the alarms of devices configured in it."""
    where = _device_buildings(institution)
    events = [AlarmEvent(edge=e, device=d, ts=ts, name=n, data=json.loads(data))
              for e, d, ts, n, data in store.alarm_events(int(end * 1000))
              if building is None or where.get((e, d)) == building]
    return alarm_view(events, int(start * 1000), int(end * 1000), institution.institution.tz)


def bin_levels(store: Store, institution: InstitutionConfig, *, now: float,
               building: str | None = None) -> list[BinLevel]:
    """The latest fill of every configured bin with its category; stale after
    BIN_STALE_AFTER_S without a reading."""
    bins = [b for b in institution.bins if building is None or b.building == building]
    latest = store.latest_samples({b.point for b in bins})
    out = []
    for b in bins:
        sample = latest.get(MeterKey(b.edge, b.device, b.point))
        out.append(bin_level(b, None if sample is None else (sample.ts, sample.value), now,
                             BIN_STALE_AFTER_S, institution.institution.tz))
    return out


def waste_for(store: Store, ledger: Ledger | None, institution: InstitutionConfig, *,
              start: float, end: float, now: float | None = None,
              building: str | None = None) -> WasteView:
    """Fill levels, the clearance ledger (manual entries merged with clearances derived
    from fill drops, `central.waste`), monthly volumes by category and the hazardous store
    log of [start, end)."""
    tz = institution.institution.tz
    rule = institution.clearance_detection
    bins = [b for b in institution.bins if building is None or b.building == building]
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    sensor: list[Clearance] = []
    for b in bins:
        if e_ms <= s_ms:
            break
        series = store.sample_series(MeterKey(b.edge, b.device, b.point),
                                     s_ms - rule.window_s * 1000, e_ms)
        drops = [d for d in fill_drops(series, rule) if s_ms <= d.low_ms < e_ms]
        sensor.extend(sensor_clearances(b, drops, tz))
    manual = [c for c in (ledger.clearances(start, end) if ledger is not None else [])
              if building is None or c.building == building]
    clearances = merge_clearances(manual, sensor, institution.bins, rule.window_s)
    levels = bin_levels(store, institution, now=end if now is None else now,
                        building=building)
    moves = ledger.hazardous(start, end) if ledger is not None else []
    all_moves = ledger.hazardous(0.0, end) if ledger is not None else []
    return WasteView(
        levels=levels, clearances=clearances,
        sensor_clearances=sum(1 for c in clearances if c.source == "sensor"),
        manual_clearances=sum(1 for c in clearances if c.source == "manual"),
        monthly=waste_monthly(clearances, tz), hazardous_moves=moves,
        hazardous=hazardous_balance(all_moves), detection=rule)


def building_summary(store: Store, ledger: Ledger | None, institution: InstitutionConfig,
                     profile: CoefficientProfile, *, start: float, end: float,
                     building: str) -> BuildingSummary:
    """Energy, water and kgce/m² of one building over [start, end): its main meters and the
    bills entered for it (vehicle fuel is the institution's, never a building's)."""
    tz = institution.institution.tz
    meters = [m for m in institution.meters if m.building == building]
    sums = (store.period_sums(int(start * 1000), int(end * 1000), tz, [m.key for m in meters])
            if end > start else {})
    bills: list[Bill] = []
    if ledger is not None and end > start:
        bills = ledger.bills(*_days(start, end, tz))
    manual = manual_quantities(bills, [], institution, start, end, building=building)
    lines, water, _ = energy_lines(institution, profile, sums, manual, building=building)
    kgce = math.fsum(x.kgce for x in lines)
    vehicle = math.fsum(x.kgce for x in lines if x.source == "vehicle")
    for_area = kgce if profile.vehicle_fuel_in_per_m2 else kgce - vehicle
    kwh = math.fsum(sums.get(m.key, 0.0) for m in institution.main_meters()
                    if m.building == building and m.energy is EnergyType.ELECTRICITY)
    area = mean_floor_area(institution, start, end, building)
    name = next((b.name for b in institution.buildings if b.id == building), building)
    return BuildingSummary(
        building=building, name=name, start=datetime.fromtimestamp(start, tz),
        end=datetime.fromtimestamp(end, tz), electricity_kwh=kwh, water_m3=water,
        energy_kgce=kgce, energy_kgce_for_area=for_area, floor_area_m2=area,
        kgce_per_m2=for_area / area if area > 0 else None)


HOUR_MS = 3_600_000


def after_hours_for(store: Store, keys: Sequence[MeterKey], start_ms: int, end_ms: int,
                    tz: ZoneInfo, calendar: WorkingCalendar, hours: tuple[int, int],
                    label: str) -> AfterHours:
    """`after_hours` over [start_ms, end_ms): whole hours from the hourly rollup when every
    hour with consumption lies wholly inside or wholly outside working time (working hours
    on the hour, the usual case), raw intervals for the partial hours at the edges; the
    interval scan otherwise. Equal to `after_hours` over `interval_rows` within the rollup's
    1e-9 rounding."""
    if end_ms <= start_ms:
        return after_hours([], start_ms, end_ms, tz, calendar, hours, label)
    h0, h1 = -(-start_ms // HOUR_MS), end_ms // HOUR_MS
    totals = store.hour_totals(keys, h0, h1) if h0 < h1 else None
    if totals is None:
        return after_hours(store.interval_rows(start_ms, end_ms, keys), start_ms, end_ms, tz,
                           calendar, hours, label)
    working = WorkingTime(tz, calendar, hours)
    inside: list[float] = []
    outside: list[float] = []
    for hour, q in totals.items():
        off = working.outside_ms(hour * HOUR_MS, (hour + 1) * HOUR_MS)
        if 0 < off < HOUR_MS:  # a working-window edge inside the hour: not splittable
            return after_hours(store.interval_rows(start_ms, end_ms, keys), start_ms, end_ms,
                               tz, calendar, hours, label)
        (outside if off else inside).append(q)
    parts = []
    for a, b in ((start_ms, h0 * HOUR_MS), (h1 * HOUR_MS, end_ms)):
        rows = store.interval_rows(a, b, keys) if b > a else []
        if rows:
            parts.append(after_hours(rows, a, b, tz, calendar, hours, label))
            for edge_ms in (a, b - 1):  # count their days in the same set as the hours'
                working.window(datetime.fromtimestamp(edge_ms / 1000, tz).date())
    kwh = math.fsum([*inside, *outside, *(p.kwh for p in parts)])
    off_kwh = math.fsum([*outside, *(p.after_hours_kwh for p in parts)])
    unknown = len(working.unknown)
    return AfterHours(kwh=kwh, after_hours_kwh=off_kwh,
                      share=off_kwh / kwh if kwh > 0 else None, working_hours=label,
                      unknown_calendar_days=unknown)
