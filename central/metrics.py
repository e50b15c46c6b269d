"""Figures for any institution, building and period, assembled from the store and ledger
ports (STANDARDS.md §2–§6). This module reads; the arithmetic is pure and lives apart:

    central.period      Period: local day / month / year windows of one time zone
    central.figures     the view models (PeriodMetrics, AcCompliance, …)
    central.formulas    bills pro-rated, 分项, PUE, quotas, vehicles, waste (pure)
    central.projection  the one year-end projection and its data-sufficiency rule
    central.compliance  kgce lines and the seed-004 item-1 score (pure)

The AC setpoint and after-hours sweeps below are pure too (kept here while they are made
linear in their own module).

    综合能耗 kgce        Σ metered (main meters) + bills pro-rated to the period + vehicle fuel
    kgce/m², kgce/person  ÷ time-weighted mean floor area / 用能人数 over the period
    AC setpoint share     time the units ran compliant ÷ time they ran in a judged mode
    after-hours share     electricity outside working hours on working days, or on days off
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from central import codes, sweeps
from central.alarms import AlarmView, alarm_view, read_alarm_events
from central.carbon import EmissionFactors, carbon_figures
from central.compliance import (
    ComplianceReport,
    EnergyLine,
    ManualQuantity,
    compute,
    energy_lines,
    quantity_lines,
    quantity_of,
)
from central.coverage import Coverage, QuantityLine
from central.energy import EnergyType
from central.figures import (
    AcCompliance,
    AfterHours,
    BuildingSummary,
    PeriodMetrics,
    WasteView,
)
from central.formulas import (
    bill_share,
    data_centre,
    hazardous_balance,
    item_breakdown,
    manual_quantities,
    quota_check,
    vehicle_lines,
    waste_monthly,
)
from central.institution import AcUnit, InstitutionConfig, MeterKey
from central.ledger import Bill, Clearance, FuelEntry, Ledger
from central.period import Period, local_midnight
from central.profile import CoefficientProfile
from central.projection import BillSpan, Projection, TypeInput, project
from central.reader import scoped
from central.registry import mean_energy_users, mean_floor_area
from central.standby import StandbyWaste, WorkingTime, plug_standby
from central.storeport import StoreReader
from central.sumsdays import SumsAndDayTotals
from central.waste import BinLevel, bin_level, fill_drops, merge_clearances, sensor_clearances
from central.workcalendar import WorkingCalendar
from central.workinghours import Hours, hours_for

BIN_STALE_AFTER_S = 6 * 3600.0  # bin sensors report every few hours on battery


# -- pure sweeps (AC setpoint, after hours) -----------------------------------------


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


# -- assembly ----------------------------------------------------------------------


def _ledger_days(start: float, end: float, tz: ZoneInfo) -> tuple[date, date]:
    """The local days a ledger query needs for [start, end)."""
    p = Period(start, max(start, end), tz)
    return p.first_day, p.last_day


def first_record(store: StoreReader, keys: Sequence[MeterKey], start_ms: int, end_ms: int
                 ) -> float | None:
    """When any of `keys` first recorded in [start_ms, end_ms), in POSIX seconds: the start
    of the first hour with data from the hourly rollup (one indexed range per meter, so a
    meter that never reports costs nothing), else the store's interval index."""
    if not keys or end_ms <= start_ms:
        return None
    hours = store.hour_totals(keys, start_ms // HOUR_MS, -(-end_ms // HOUR_MS))
    if hours is None:
        first = store.first_start_of(start_ms, end_ms, keys)
        return None if first is None else first / 1000
    return max(start_ms, min(hours) * HOUR_MS) / 1000 if hours else None


def bill_cuts(store: StoreReader, institution: InstitutionConfig,
              bills: Iterable[Bill]) -> dict[str, float]:
    """When metering of each bill's energy type (and building) began within its period:
    the bill counts only before it (`manual_quantities`). Bills without a main meter of
    their type have no cut."""
    tz = institution.institution.tz
    mains = institution.main_meters()
    out: dict[str, float] = {}
    for bill in bills:
        keys = [m.key for m in mains if m.energy is bill.energy
                and (bill.building is None or m.building == bill.building)]
        if not keys:
            continue
        span = Period.days(bill.period_start, bill.period_end, tz)
        first = first_record(store, keys, span.start_ms, span.end_ms)
        if first is not None:
            out[bill.ref] = first
    return out


def _day_finder(period: Period) -> Callable[[float], date]:
    """The local day of a moment inside `period`, by bisection over the days' midnights
    (no time-zone conversion per call)."""
    days = list(period.local_days())
    starts = [Period.day(d, period.tz).start for d in days]

    def day_of(moment: float) -> date:
        return days[max(0, bisect.bisect_right(starts, moment) - 1)]

    return day_of


def _main_groups(institution: InstitutionConfig, profile: CoefficientProfile
                 ) -> dict[tuple[EnergyType, float], list[MeterKey]]:
    """The main meters' keys per (energy type, kgce factor; 1 for water)."""
    groups: dict[tuple[EnergyType, float], list[MeterKey]] = defaultdict(list)
    for m in institution.main_meters():
        factor = profile.kgce_per(m) if m.energy.is_energy else 1.0
        groups[(m.energy, factor)].append(m.key)
    return groups


def _days_by_type(store: StoreReader, institution: InstitutionConfig,
                  profile: CoefficientProfile, period: Period,
                  read: Mapping[tuple[EnergyType, float], dict[date, float]] | None = None
                  ) -> dict[EnergyType, dict[date, float]]:
    """Metered consumption of the main meters per energy type and local day of `period`
    (kgce; m³ for water): from the hourly rollup (one read per type and unit), else one
    scan of the raw intervals, each given to the day of its midpoint. Days without any
    record are absent. Used for the projection's daily rates only. `read`: the
    `day_totals` of each of `_main_groups` over the period, when read already."""
    tz = period.tz
    groups = _main_groups(institution, profile) if read is None else {g: [] for g in read}
    out: dict[EnergyType, dict[date, float]] = defaultdict(lambda: defaultdict(float))
    if period.empty:
        return {}
    h0, h1 = -(-period.start_ms // HOUR_MS), period.end_ms // HOUR_MS
    day_of = _day_finder(period)
    for (energy, factor), keys in groups.items():
        days = out[energy]
        per_day = (read[(energy, factor)] if read is not None else
                   store.day_totals(keys, h0, h1, tz) if h0 < h1 else None)
        if per_day is not None:  # the daily rollup where it serves (pgrollup work)
            for day, q in per_day.items():
                days[day] += q * factor
            continue
        hours = store.hour_totals(keys, h0, h1) if h0 < h1 else None
        if hours is not None:
            for hour, q in hours.items():
                days[day_of(hour * 3600)] += q * factor
            continue
        for _key, st, du, q in store.interval_rows(period.start_ms, period.end_ms, keys):
            mid = (st + du * 500) / 1000
            if period.start <= mid < period.end:
                days[datetime.fromtimestamp(mid, tz).date()] += q * factor
    return {e: dict(d) for e, d in out.items()}


def data_days(store: StoreReader, keys: Sequence[MeterKey], period: Period) -> set[date]:
    """Local days of `period` on which any of `keys` recorded (whole hours: the hourly
    rollup, else one scan of the raw intervals)."""
    if period.empty or not keys:
        return set()
    tz = period.tz
    h0, h1 = period.start_ms // HOUR_MS, -(-period.end_ms // HOUR_MS)
    if period.start_ms % HOUR_MS == 0:
        # A day has a rollup row exactly when one of its hours has (a write's day part is
        # the sum of its same-signed hour parts): whole days from the daily rollup.
        per_day = store.day_totals(keys, h0, h1, tz)
        if per_day is not None:
            return set(per_day)
    hours = store.hour_totals(keys, h0, h1)
    if hours is not None:
        day_of = _day_finder(period)
        return {day_of(max(h * 3600, period.start)) for h in hours}
    return {datetime.fromtimestamp(max(st / 1000, period.start), tz).date()
            for _k, st, _du, _q in store.interval_rows(period.start_ms, period.end_ms, keys)}


def coverage_for(store: StoreReader, institution: InstitutionConfig, *, start: float, end: float,
                 sums: Mapping[MeterKey, float], bills: Sequence[Bill],
                 cuts: Mapping[str, float], lines: Sequence[EnergyLine],
                 building: str | None = None, days: set[date] | None = None) -> Coverage:
    """What the figures of [start, end) rest on (`central.coverage`); `days`: the local
    days with data when the caller has read them already."""
    tz = institution.institution.tz
    period = Period(start, max(start, end), tz)
    mains = [m for m in institution.main_meters() if building is None or m.building == building]
    keys = [m.key for m in mains]
    billed: set[date] = set()
    for bill in bills:
        if building is not None and bill.building != building:
            continue
        span = Period.days(bill.period_start, bill.period_end, tz)
        lo = max(span.start, period.start)
        hi = min(span.end, period.end, cuts.get(bill.ref, span.end))
        if hi > lo:
            billed.update(Period(lo, hi, tz).local_days())
    return Coverage(
        days=period.day_count,
        days_with_data=len(days if days is not None else data_days(store, keys, period)),
        meters=len(mains), meters_reporting=sum(1 for k in keys if sums.get(k, 0.0) != 0.0),
        billed_days=len(billed),
        metered_kgce=math.fsum(x.kgce for x in lines if x.source == "metered"),
        billed_kgce=math.fsum(x.kgce for x in lines if x.source == "bill"),
        vehicle_kgce=math.fsum(x.kgce for x in lines if x.source == "vehicle"))


def projection_for(store: StoreReader, institution: InstitutionConfig,
                   profile: CoefficientProfile, *, year: int, until: float,
                   sums: Mapping[MeterKey, float], bills: Sequence[Bill],
                   cuts: Mapping[str, float], vehicle_kgce: float,
                   read: Mapping[tuple[EnergyType, float], dict[date, float]] | None = None
                   ) -> tuple[Projection, set[date]]:
    """`central.projection.project` over the store's daily figures, the year's bills (over
    their own periods, before metering of their type began) and the previous year; and the
    local days with metered data (for the coverage)."""
    tz = institution.institution.tz
    year_p = Period.year(year, tz)
    until = min(max(until, year_p.start), year_p.end)
    mains = institution.main_meters()
    types: dict[EnergyType, TypeInput] = {}
    for m in mains:
        t = types.setdefault(m.energy, TypeInput(m.energy, configured=True))
        q = float(sums.get(m.key, 0.0))
        t.metered += q * profile.kgce_per(m) if m.energy.is_energy else q
    current = _days_by_type(store, institution, profile, year_p.until(until), read)
    for energy, t in types.items():
        keys = [m.key for m in mains if m.energy is energy]
        seen = current.get(energy)
        if seen:  # the first record, looked up within the first day with data
            day = Period.day(min(seen), tz)
            t.since = first_record(store, keys, max(day.start_ms, year_p.start_ms),
                                   min(day.end_ms, int(until * 1000)))
        else:  # no whole hour yet: the partial hours at the edges
            t.since = first_record(store, keys, year_p.start_ms, int(until * 1000))
    for bill in bills:
        span = Period.days(bill.period_start, bill.period_end, tz)
        lo = max(span.start, year_p.start)
        hi = min(span.end, year_p.end, cuts.get(bill.ref, span.end))
        if hi <= lo:
            continue
        share = bill_share(bill, lo, hi, tz)
        factor = (profile.kgce_per_unit(bill.energy, bill.unit) if bill.energy.is_energy
                  else 1.0)
        t = types.setdefault(bill.energy, TypeInput(bill.energy))
        t.bills.append(BillSpan(bill.energy, Period(lo, hi, tz),
                                bill.quantity * share * factor))
    prev_p = Period.year(year - 1, tz)
    keys = [m.key for m in mains]
    has_previous = first_record(store, keys, prev_p.start_ms,
                                prev_p.start_ms + 31 * 86_400_000) is not None
    previous = _days_by_type(store, institution, profile, prev_p) if has_previous else {}
    for energy, t in types.items():
        if t.since is not None:
            seen = current.get(energy, {})
            t.daily = {d: seen.get(d, 0.0) for d in year_p.until(until).local_days()}
            t.previous = previous.get(energy)
    calendar = WorkingCalendar(institution.calendar)
    projection = project(list(types.values()), year=year_p, until=until,
                         min_days=institution.projection.min_days, vehicle_kgce=vehicle_kgce,
                         vehicle_in_area=profile.vehicle_fuel_in_per_m2,
                         is_working_day=calendar.is_working_day)
    return projection, set().union(*(d.keys() for d in current.values()))


def _sums_and_days(store: StoreReader, institution: InstitutionConfig,
                   profile: CoefficientProfile, start: float, until: float,
                   keys: list[MeterKey]
                   ) -> tuple[Mapping[MeterKey, float],
                              dict[tuple[EnergyType, float], dict[date, float]] | None]:
    """`period_sums` of [start, until) and, where the store reads both at once
    (central/sumsdays.py: PostgreSQL), the `_main_groups`' `day_totals` of the same span."""
    tz = institution.institution.tz
    a, b = int(start * 1000), int(until * 1000)
    if isinstance(store, SumsAndDayTotals):
        groups = _main_groups(institution, profile)
        index = {k: g for g, members in enumerate(groups.values()) for k in members}
        if len(index) == len(keys) == sum(len(members) for members in groups.values()):
            both = store.sums_and_day_totals(a, b, tz, keys, [index[k] for k in keys])
            if both is not None:
                return both[0], dict(zip(groups, both[1], strict=True))
    return store.period_sums(a, b, tz, keys), None


def compliance_for(store: StoreReader, institution: InstitutionConfig,
                   profile: CoefficientProfile, *, now: float, year: int,
                   ledger: Ledger | None = None) -> ComplianceReport:
    """Year-to-date figures from local Jan 1 to min(now, year end), scored on the one
    projection (`projection_for`). Every page, report and the demo call this."""
    tz = institution.institution.tz
    start, end = Period.year(year, tz).bounds
    keys = [m.key for m in institution.main_meters()]
    until = min(now, end)
    min_days = institution.projection.min_days
    if until <= start:
        return compute(institution, profile, dict.fromkeys(keys, 0.0), now=now, year=year,
                       min_days=min_days)
    sums, read = _sums_and_days(store, institution, profile, start, until, keys)
    first = store.first_start_of(int(start * 1000), int(until * 1000), keys)
    manual: list[ManualQuantity] = []
    bills: list[Bill] = []
    cuts: dict[str, float] = {}
    if ledger is not None:
        year_p = Period.year(year, tz)
        bills = ledger.bills(year_p.first_day, year_p.last_day)
        cuts = bill_cuts(store, institution, bills)
        d0, d1 = _ledger_days(start, until, tz)
        manual = manual_quantities([b for b in bills if local_midnight(b.period_start, tz)
                                    < until], ledger.fuel(d0, d1), institution, start, until,
                                   metered_from=cuts)
    vehicle = math.fsum(q.quantity * profile.kgce_per_unit(q.energy, q.unit)
                        for q in manual if q.source == "vehicle")
    projection, days = projection_for(store, institution, profile, year=year, until=until,
                                      sums=sums, bills=bills, cuts=cuts,
                                      vehicle_kgce=vehicle, read=read)
    lines, _, _ = energy_lines(institution, profile, sums, manual)
    coverage = coverage_for(store, institution, start=start, end=until, sums=sums,
                            bills=bills, cuts=cuts, lines=lines, days=days)
    return compute(institution, profile, sums, now=now, year=year,
                   data_since=None if first is None else first / 1000, manual=manual,
                   projection=projection, min_days=min_days, coverage=coverage)


@dataclass(frozen=True)
class PeriodEnergy:
    """The energy part of `period_metrics`: what a monthly row of a report needs, read
    without the period's AC, standby and waste samples."""

    sums: dict[MeterKey, float]  # every configured meter's interval sum
    fuel: list[FuelEntry]  # the ledger's vehicle fuel of the period's days
    bills: list[Bill]  # the ledger's bills overlapping the period's days
    cuts: dict[str, float]  # bill ref → when metering took over from it (bill_cuts)
    energy_by_type: list[EnergyLine]
    quantities: list[QuantityLine]
    energy_kgce: float
    energy_kgce_for_area: float
    electricity_kwh: float  # main electricity meters in scope (metered)
    water_m3: float
    main_electricity: list[MeterKey]


def period_energy(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
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
        d0, d1 = _ledger_days(start, end, tz)
        bills, fuel = ledger.bills(d0, d1), ledger.fuel(d0, d1)
    cuts = bill_cuts(store, institution, bills)
    manual = manual_quantities(bills, fuel, institution, start, end, building=building,
                               metered_from=cuts)
    lines, water, _ = energy_lines(institution, profile, sums, manual, building=building)
    quantities = quantity_lines(institution, profile, sums, manual, building=building)
    kgce = math.fsum(x.kgce for x in lines)
    vehicle = math.fsum(x.kgce for x in lines if x.source == "vehicle")
    main_elec = [m.key for m in institution.main_meters()
                 if m.energy is EnergyType.ELECTRICITY
                 and (building is None or m.building == building)]
    return PeriodEnergy(
        sums=dict(sums), fuel=fuel, bills=bills, cuts=cuts, energy_by_type=lines,
        quantities=quantities, energy_kgce=kgce,
        energy_kgce_for_area=kgce if profile.vehicle_fuel_in_per_m2 else kgce - vehicle,
        electricity_kwh=math.fsum(sums.get(k, 0.0) for k in main_elec), water_m3=water,
        main_electricity=main_elec)


def period_metrics(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
                   profile: CoefficientProfile, *, start: float, end: float,
                   building: str | None = None) -> PeriodMetrics:
    """Every figure of one period [start, end) for the institution or one building."""
    tz = institution.institution.tz
    energy = period_energy(store, ledger, institution, profile, start=start, end=end,
                           building=building)
    sums, fuel, lines = energy.sums, energy.fuel, energy.energy_by_type
    quantities, water = energy.quantities, energy.water_m3
    kgce, for_area = energy.energy_kgce, energy.energy_kgce_for_area
    kwh, main_elec = energy.electricity_kwh, energy.main_electricity
    coverage = coverage_for(store, institution, start=start, end=end, sums=sums,
                            bills=energy.bills, cuts=energy.cuts, lines=lines,
                            building=building)
    area = mean_floor_area(institution, start, end, building)
    users = mean_energy_users(institution, start, end) if building is None else None

    return PeriodMetrics(
        standby=standby_for(store, institution, start=start, end=end, building=building),
        alarms=alarms_for(store, institution, start=start, end=end, building=building),
        waste=waste_for(store, ledger, institution, start=start, end=end, building=building),
        institution_id=institution.institution.id, building=building,
        start=datetime.fromtimestamp(start, tz), end=datetime.fromtimestamp(end, tz),
        profile_id=profile.profile_id, profile_version=profile.version,
        energy_by_type=lines, energy_kgce=kgce, energy_kgce_for_area=for_area,
        electricity_kwh=quantity_of(quantities, EnergyType.ELECTRICITY),
        electricity_kwh_metered=kwh, quantities=quantities, coverage=coverage,
        water_m3=water, floor_area_m2=area, energy_users=users,
        kgce_per_m2=for_area / area if area > 0 else None,
        kgce_per_person=kgce / users if users else None,
        water_m3_per_person=water / users if users else None,
        items=item_breakdown(institution, sums, kwh, building),
        data_centre=data_centre(institution, sums, building),
        quotas=quota_check(institution, sums, start, end, building),
        ac=ac_for(store, institution, start=start, end=end, building=building),
        after_hours=main_after_hours(store, institution, main_elec, start=start, end=end),
        vehicles=vehicle_lines(institution, profile, fuel, start, end)
        if building is None else [],
        carbon=carbon_figures(  # CO₂ from the same lines, cut where a factor changes
            EmissionFactors.for_institution(institution), profile, start=start, end=end,
            lines=lines, floor_area_m2=area, energy_users=users, coverage=coverage,
            segment_lines=lambda s, e: period_energy(store, ledger, institution, profile,
                                                     start=s, end=e, building=building
                                                     ).energy_by_type))


def main_after_hours(store: StoreReader, institution: InstitutionConfig,
                     main_elec: Sequence[MeterKey], *, start: float, end: float) -> AfterHours:
    """After-hours share of the main electricity meters `main_elec` over [start, end)."""
    tz = institution.institution.tz
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    # Each zone's meters against its own working hours (central/workinghours.py).
    zones = {m.key: m.zone for m in institution.main_meters()}
    by_hours: dict[Hours, list[MeterKey]] = {}
    for key in main_elec:
        by_hours.setdefault(hours_for(institution, zones.get(key)), []).append(key)
    calendar = WorkingCalendar(institution.calendar)
    parts = [after_hours_for(store, keys, s_ms, e_ms, tz, calendar, h.minutes, h.label)
             for h, keys in (by_hours or {hours_for(institution): []}).items()]
    return parts[0] if len(parts) == 1 else combine_after_hours(parts)


def ac_for(store: StoreReader, institution: InstitutionConfig, *, start: float, end: float,
           building: str | None = None) -> AcCompliance:
    """AC setpoint compliance of the judged units over [start, end)."""
    tz = institution.institution.tz
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    pol = codes.policy()
    ac_units: list[AcUnit] = [a for a in institution.ac_units
                              if building is None or a.building == building]
    judged = [a for a in ac_units if not a.exempt]
    rule = institution.ac_rule
    sweep = sweeps.AcRule(
        summer_min=rule.summer_min_setpoint_c if rule.summer_min_setpoint_c is not None
        else pol.ac.summer_min_setpoint_c,
        winter_max=rule.winter_max_setpoint_c if rule.winter_max_setpoint_c is not None
        else pol.ac.winter_max_setpoint_c,
        cooling=tuple(pol.ac.cooling_modes), heating=tuple(pol.ac.heating_modes),
        max_hold_ms=pol.ac.max_hold_s * 1000)
    # The store's sweep: on SQLite, closed days from the per-day cache (central/accache.py).
    judged_ms, compliant_ms = store.ac_seconds(
        [sweeps.AcPoints(a.edge, a.device, a.setpoint_point, a.mode_point, a.on_point)
         for a in judged], s_ms, e_ms, sweep, tz) if end > start else (0, 0)
    return AcCompliance(
        units=len(ac_units), exempt_units=len(ac_units) - len(judged),
        judged_s=judged_ms / 1000, compliant_s=compliant_ms / 1000,
        share=compliant_ms / judged_ms if judged_ms else None,
        summer_min_setpoint_c=sweep.summer_min, winter_max_setpoint_c=sweep.winter_max)


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


def standby_for(store: StoreReader, institution: InstitutionConfig, *, start: float, end: float,
                building: str | None = None) -> StandbyWaste:
    """Standby energy of the configured plugs over [start, end), and the part outside
    working hours (`central.standby`)."""
    tz = institution.institution.tz
    rule = institution.standby
    hours = hours_for(institution)
    working = WorkingTime(tz, WorkingCalendar(institution.calendar), hours.minutes)
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    lines = [plug_standby(p, store.sample_series(MeterKey(p.edge, p.device, p.power_point),
                                                 s_ms, e_ms) if e_ms > s_ms else [],
                          s_ms, e_ms, rule, working)
             for p in institution.plugs if building is None or p.building == building]
    return StandbyWaste(plugs=lines, standby_kwh=math.fsum(x.standby_kwh for x in lines),
                        after_hours_standby_kwh=math.fsum(x.after_hours_standby_kwh
                                                          for x in lines),
                        off_w=rule.off_w, standby_max_w=rule.standby_max_w,
                        working_hours=hours.label, unknown_calendar_days=len(working.unknown))


def alarms_for(store: StoreReader, institution: InstitutionConfig, *, start: float, end: float,
               building: str | None = None) -> AlarmView:
    """Alarms open at `end` (open leaks among them) and raised/cleared per kind in
    [start, end); for a building, the alarms of devices configured in it."""
    where = _device_buildings(institution)
    events = [e for e in read_alarm_events(scoped(store, institution), int(end * 1000))
              if building is None or where.get((e.edge, e.device)) == building]
    return alarm_view(events, int(start * 1000), int(end * 1000), institution.institution.tz)


def bin_levels(store: StoreReader, institution: InstitutionConfig, *, now: float,
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


def waste_for(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig, *,
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


def building_summary(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
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
        bills = ledger.bills(*_ledger_days(start, end, tz))
    cuts = bill_cuts(store, institution, bills)
    manual = manual_quantities(bills, [], institution, start, end, building=building,
                               metered_from=cuts)
    lines, water, _ = energy_lines(institution, profile, sums, manual, building=building)
    quantities = quantity_lines(institution, profile, sums, manual, building=building)
    kgce = math.fsum(x.kgce for x in lines)
    vehicle = math.fsum(x.kgce for x in lines if x.source == "vehicle")
    for_area = kgce if profile.vehicle_fuel_in_per_m2 else kgce - vehicle
    kwh = quantity_of(quantities, EnergyType.ELECTRICITY)
    area = mean_floor_area(institution, start, end, building)
    name = next((b.name for b in institution.buildings if b.id == building), building)
    return BuildingSummary(
        building=building, name=name, start=datetime.fromtimestamp(start, tz),
        end=datetime.fromtimestamp(end, tz), electricity_kwh=kwh, water_m3=water,
        energy_kgce=kgce, energy_kgce_for_area=for_area, floor_area_m2=area,
        kgce_per_m2=for_area / area if area > 0 else None, quantities=quantities,
        coverage=coverage_for(store, institution, start=start, end=end, sums=sums,
                              bills=bills, cuts=cuts, lines=lines, building=building))


HOUR_MS = 3_600_000


def after_hours_for(store: StoreReader, keys: Sequence[MeterKey], start_ms: int, end_ms: int,
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
