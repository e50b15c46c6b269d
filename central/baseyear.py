"""同比, 环比 and the 14th Five-Year progress of an institution, read from the store and the
ledger (the arithmetic is `central.comparison`, pure).

A figure set is the period's energy exactly as `central.metrics.period_energy` has it
(meters through the rollups, bills pro-rated, vehicle fuel), the time-weighted mean floor
area and 用能人数 (`central.registry`), per energy type the local days it covers, and the
degree days of `baseline.degree_days`. A day is covered for a metered type when **every**
main meter of the type recorded on it or a bill for its building (or the whole
institution) counts that day — a bill counts only before metering of its type began, as in
every figure — so one silent meter makes the day partial; a type without meters is covered
on the days any of its bills counts.

CO₂: `Co2Factor` weighs quantities by the institution's emission factors (central/carbon.py,
`co2_factor_for`); where a side has no valid factor (the shipped grid factors begin in 2021,
so a 2020 base year needs its own under `carbon.factors`) the CO₂ target line says
"awaiting_emission_factors" and nothing is estimated.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Literal

from central.comparison import (
    DaySpan,
    FigureSet,
    PeriodComparison,
    PeriodKind,
    TargetProgress,
    TypeCoverage,
    compare_all,
    degree_days,
    previous_span,
    target_progress,
    year_earlier,
)
from central.energy import EnergyType
from central.errors import ProfileError
from central.institution import InstitutionConfig, MeterKey
from central.ledger import Ledger
from central.metrics import HOUR_MS, data_days, period_energy
from central.period import Period, local_midnight
from central.profile import CoefficientProfile
from central.registry import mean_energy_users, mean_floor_area
from central.storeport import StoreReader
from central.view import View as _View

# energy, quantity (the profile's unit), start_ts, end_ts → kg CO₂, None when no factor
Co2Factor = Callable[[EnergyType, float, float, float], float | None]


def co2_factor_for(institution: InstitutionConfig) -> Co2Factor | None:
    """The institution's emission factors (central/carbon.py, docs/carbon.md) as a
    `Co2Factor`: kg CO₂ of a quantity in the coefficient profile's unit of its energy type
    (the unit of the period's quantity lines), converted to the factor's unit as the CO₂
    figures do; None for a span without a valid factor (the figure is then "—", never a
    CO₂ of 0). The API, the dashboard and the reports all call this one function."""
    from central.carbon import EmissionFactors, MissingFactorError
    from central.profile import load_profile

    factors = EmissionFactors.for_institution(institution)
    profile = load_profile(institution.institution.coefficient_profile)

    def co2(energy: EnergyType, quantity: float, start: float, end: float) -> float | None:
        unit = factors.unit_of(energy.value)
        if unit is None:
            return None
        try:
            q = quantity * profile.kgce_per_unit(energy, None) / profile.kgce_per_unit(
                energy, unit)
            return factors.co2_kg(energy.value, q, start, end)
        except (MissingFactorError, ProfileError):
            return None

    return co2


def figure_set(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
               profile: CoefficientProfile, span: DaySpan, *,
               co2: Co2Factor | None = None, building: str | None = None) -> FigureSet:
    """The figures of `span` for the institution, or one `building` (its main meters and
    the bills entered for it; no per-person figures: 用能人数 is the institution's)."""
    tz = institution.institution.tz
    start, end = local_midnight(span.first, tz), local_midnight(span.end, tz)
    period = Period(start, end, tz)
    energy = period_energy(store, ledger, institution, profile, start=start, end=end,
                           building=building)
    mains = [m for m in institution.main_meters() if building is None or m.building == building]
    bills = [b for b in energy.bills if building is None or b.building == building]
    types = list(dict.fromkeys([*(m.energy for m in mains), *(b.energy for b in bills)]))
    billed: dict[tuple[EnergyType, str | None], set[date]] = {}
    for bill in bills:  # the days each bill counts (before metering took over)
        bs = Period.days(bill.period_start, bill.period_end, tz)
        lo, hi = max(bs.start, start), min(bs.end, end, energy.cuts.get(bill.ref, bs.end))
        if hi > lo:
            billed.setdefault((bill.energy, bill.building), set()).update(
                Period(lo, hi, tz).local_days())
    meter_days = _days_with_data(store, period)
    covered: list[TypeCoverage] = []
    for t in types:
        meters = [m for m in mains if m.energy is t]
        days: set[date] | None = None
        if not meters:  # billed only: any bill of the type
            days = set().union(*(d for (e, _b), d in billed.items() if e is t))
        for m in meters:  # every main meter of the type, each day: its records or a bill
            seen = meter_days(m.key) | billed.get((t, None), set()) \
                | billed.get((t, m.building), set())
            days = seen if days is None else days & seen
        quantity = math.fsum(q.total for q in energy.quantities if q.energy is t)
        covered.append(TypeCoverage(energy=t, covered_days=len(days or ()),
                                    quantity=quantity))
    dd = institution.baseline.degree_days
    co2_kg: float | None = None
    if co2 is not None:
        parts = [co2(q.energy, q.total, start, end) for q in energy.quantities
                 if q.energy.is_energy and q.total]
        co2_kg = None if any(p is None for p in parts) else math.fsum(
            p for p in parts if p is not None)
    water = next((q.total for q in energy.quantities if q.energy is EnergyType.WATER),
                 energy.water_m3)
    return FigureSet(
        first_day=span.first, end_day=span.end, days=span.days, types=covered,
        energy_kgce=energy.energy_kgce, energy_kgce_for_area=energy.energy_kgce_for_area,
        electricity_kwh=math.fsum(q.total for q in energy.quantities
                                  if q.energy is EnergyType.ELECTRICITY),
        water_m3=water, floor_area_m2=mean_floor_area(institution, start, end, building),
        energy_users=mean_energy_users(institution, start, end) if building is None else 0.0,
        building=building,
        hdd=degree_days(dd.hdd, span) if dd is not None and dd.hdd else None,
        cdd=degree_days(dd.cdd, span) if dd is not None and dd.cdd else None,
        co2_kg=co2_kg)


def _days_with_data(store: StoreReader, period: Period) -> Callable[[MeterKey], set[date]]:
    """`metrics.data_days` of one meter at a time, sharing one day finder for the period
    (the hourly rollup, else the raw intervals)."""
    if period.empty:
        return lambda _key: set()
    h0, h1 = period.start_ms // HOUR_MS, -(-period.end_ms // HOUR_MS)
    local = list(period.local_days())
    starts = [local_midnight(d, period.tz) for d in local]

    def day_of(moment: float) -> date:
        return local[max(0, bisect.bisect_right(starts, moment) - 1)]

    def days(key: MeterKey) -> set[date]:
        if period.start_ms % HOUR_MS == 0:  # whole days from the daily rollup (data_days)
            per_day = store.day_totals([key], h0, h1, period.tz)
            if per_day is not None:
                return set(per_day)
        hours = store.hour_totals([key], h0, h1)
        if hours is None:
            return data_days(store, [key], period)
        return {day_of(max(h * 3600, period.start)) for h in hours}

    return days


class Comparisons(_View):
    """What the API, the dashboard and the reports show: the period's figures, 同比, 环比 and
    the 14th FYP progress of its year to date."""

    institution_id: str
    building: str | None = None
    kind: PeriodKind
    current: FigureSet
    year_on_year: PeriodComparison
    period_on_period: PeriodComparison
    targets: TargetProgress | None  # None: the period's year is not after the base year


def span_for(kind: Literal["month", "quarter", "year"], year: int, number: int | None,
             today: date) -> DaySpan:
    """The whole month / quarter / year, or the part of it before `today` (whole days only:
    a day counts when it is over)."""
    if kind == "year":
        first, end = date(year, 1, 1), date(year + 1, 1, 1)
    elif kind == "quarter":
        q = number or 1
        first = date(year, 3 * q - 2, 1)
        end = date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)
    else:
        m = number or 1
        first = date(year, m, 1)
        end = date(year + 1, 1, 1) if m == 12 else date(year, m + 1, 1)
    return DaySpan(first, max(first, min(end, today)))


def comparisons_for(store: StoreReader, ledger: Ledger | None,
                    institution: InstitutionConfig, profile: CoefficientProfile,
                    span: DaySpan, kind: PeriodKind, *, today: date,
                    co2: Co2Factor | None = None, building: str | None = None
                    ) -> Comparisons:
    """同比 and 环比 of `span`, and the 14th FYP progress of its year up to the span's end
    (`today` bounds the year to date)."""
    baseline = institution.baseline

    def read(s: DaySpan) -> FigureSet:
        return figure_set(store, ledger, institution, profile, s, co2=co2,
                          building=building)

    current = read(span)
    yoy = compare_all("year_on_year", current, read(year_earlier(span)), baseline)
    pop = compare_all("period_on_period", current, read(previous_span(span, kind)),
                      baseline)
    year = span.first.year
    targets = None
    if year > baseline.base_year:
        ytd = DaySpan(date(year, 1, 1), max(date(year, 1, 1),
                                            min(date(year + 1, 1, 1), today, span.end)))
        ytd_set = current if ytd == span else read(ytd)
        base = read(year_earlier(ytd, year - baseline.base_year))
        targets = target_progress(year, ytd_set, base, baseline)
    return Comparisons(institution_id=institution.institution.id, building=building, kind=kind,
                       current=current, year_on_year=yoy, period_on_period=pop,
                       targets=targets)


def today_local(now: float, institution: InstitutionConfig) -> date:
    return datetime.fromtimestamp(now, institution.institution.tz).date()


def last_complete(kind: Literal["month", "quarter", "year"], today: date
                  ) -> tuple[int, int | None]:
    """(year, number) of the last month, quarter or year that is over by `today` (a
    comparison of a period so far would compare days that are not over)."""
    if kind == "year":
        return today.year - 1, None
    if kind == "quarter":
        q = (today.month - 1) // 3  # the current quarter's predecessor, 0 for Q4 of last year
        return (today.year, q) if q else (today.year - 1, 4)
    last = today.replace(day=1) - timedelta(days=1)
    return last.year, last.month
