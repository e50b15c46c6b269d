"""The one year-end projection behind every provisional score (pure: no store, no clock).

The dashboard, the API's /compliance and /metrics, every report and the demo summary reach
it through `central.metrics.compliance_for` → `central.compliance.compute` → `project`, so
the same data gives the same projection everywhere.

Method, per energy type (water is one more type, in m³; energy types in kgce):

1. **Known days.** What metering recorded from its first record this year until now, and
   what bills cover: each bill over its own local days (a bill's days before metering of
   the same type began, see docs/compliance.md), pro-rated to the year.
2. **Enough data?** A type with a main meter (of `configured`) or a bill needs either
   `min_days` whole days of metering, or bills covering `min_days` days. Otherwise the type
   — and every score item it feeds — is *insufficient*: no projection, no provisional
   score, only the year-to-date figures ("数据不足，暂不预测").
3. **The rest of the year** (days neither metered nor billed, including the rest of today)
   is filled at a daily rate:
   - *previous_year*: with metering ≥ `min_days` and a previous year metered on at least
     90 % of its days, each unknown day gets the previous year's consumption on the same
     calendar day, scaled by this year ÷ last year over the days both have. This carries
     the season and the school calendar (vacations) of the institution itself.
   - *calendar*: with metering ≥ `min_days` but no usable previous year, the mean of this
     year's whole metered working days for working days, and of its days off (weekends,
     public holidays, the institution's own days off such as school vacations from the
     calendar overrides) for days off. A day type never observed takes the other's mean.
     The season is not modelled without a previous year (said in `method`).
   - *bills*: metering too short but bills ≥ `min_days`: the bills' mean per day.
   - *linear*: the caller gave no daily figures (pure unit use): the metered rate per
     second, i.e. year to date ÷ covered share of the year.
4. **Vehicle fuel** is projected linearly over the time elapsed in the year.

Status: *insufficient* as above; *final* when the year is over and no day was filled in;
*provisional* (预计) otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from central.energy import EnergyType
from central.period import Period

Status = Literal["insufficient", "provisional", "final"]
Method = Literal["none", "previous_year", "calendar", "bills", "linear", "actual"]
DEFAULT_MIN_DAYS = 30
PREVIOUS_YEAR_MIN_SHARE = 0.9
INSUFFICIENT_ZH = "数据不足，暂不预测"
INSUFFICIENT_EN = "Not enough data to project yet"


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class TypeProjection(_Result):
    energy: EnergyType
    status: Status
    method: Method
    metered_days: float  # whole days of metering this year
    billed_days: int  # local days of the year covered by bills
    known: float  # metered + billed so far (kgce, or m³ for water)
    projected: float | None  # year total


class Projection(_Result):
    status: Status  # of the whole: insufficient if any scored family is
    energy_status: Status
    water_status: Status
    min_days: int
    types: list[TypeProjection]
    vehicle_kgce: float | None
    energy_kgce: float | None
    energy_kgce_for_area: float | None
    water_m3: float | None
    note_zh: str
    note_en: str


@dataclass(frozen=True)
class BillSpan:
    """A bill's part in the year (after the metering cut): its days and its quantity in
    kgce (energy) or m³ (water)."""

    energy: EnergyType
    period: Period
    quantity: float


@dataclass
class TypeInput:
    energy: EnergyType
    metered: float = 0.0  # year to date, kgce or m³
    since: float | None = None  # first metered record this year
    configured: bool = False  # a main meter of this type exists
    daily: Mapping[date, float] | None = None  # whole metered days (None: linear)
    previous: Mapping[date, float] | None = None  # the previous year's metered days
    bills: list[BillSpan] = field(default_factory=list)


def _bill_days(bills: Sequence[BillSpan], year: Period) -> set[date]:
    days: set[date] = set()
    for b in bills:
        clipped = Period(max(b.period.start, year.start),
                         max(max(b.period.start, year.start), min(b.period.end, year.end)),
                         year.tz)
        days.update(clipped.local_days())
    return days


def _same_day_last_year(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def project_type(t: TypeInput, year: Period, until: float, min_days: int,
                 is_working_day: Callable[[date], bool],
                 days: Mapping[date, Period] | None = None) -> TypeProjection:
    """One type's projection; `days` are the year's local days (computed once by
    `project` for every type)."""
    until = min(max(until, year.start), year.end)
    if days is None:
        days = {d: Period.day(d, year.tz) for d in year.local_days()}
    billed = _bill_days(t.bills, year)
    bill_total = math.fsum(b.quantity for b in t.bills)
    known = t.metered + bill_total
    span = Period(min(t.since, until), until, year.tz) if t.since is not None else None
    whole = ({d: v for d, v in t.daily.items()
              if span is not None and d in days and days[d].start >= span.start
              and days[d].end <= span.end}
             if t.daily is not None else None)
    metered_days = (len(whole) if whole is not None
                    else (span.seconds / 86400 if span is not None else 0.0))

    def result(status: Status, method: Method, projected: float | None) -> TypeProjection:
        return TypeProjection(energy=t.energy, status=status, method=method,
                              metered_days=metered_days, billed_days=len(billed),
                              known=known, projected=projected)

    if span is None and not billed:
        return result("insufficient", "none", None) if t.configured else \
            result("final", "none", 0.0)
    rate: Callable[[date], float]
    method: Method
    if metered_days >= min_days and span is not None:
        if whole is None:
            per_s = t.metered / span.seconds if span.seconds > 0 else 0.0

            def rate(d: date) -> float:
                return per_s * days[d].seconds

            method = "linear"
        elif t.previous is not None and len(t.previous) >= PREVIOUS_YEAR_MIN_SHARE * 365:
            prev = t.previous
            this_sum = math.fsum(whole.values())
            last_sum = math.fsum(prev.get(_same_day_last_year(d), 0.0) for d in whole)
            mean_prev = math.fsum(prev.values()) / len(prev)
            scale = this_sum / last_sum if last_sum > 0 else 0.0

            def rate(d: date) -> float:
                return prev.get(_same_day_last_year(d), mean_prev) * scale

            method = "previous_year" if last_sum > 0 else "calendar"
            if last_sum <= 0:
                rate = _calendar_rate(whole, is_working_day)
        else:
            rate = _calendar_rate(whole, is_working_day)
            method = "calendar"
    elif len(billed) >= min_days:
        per_day = bill_total / len(billed)

        def rate(d: date) -> float:
            del d
            return per_day

        method = "bills"
    else:
        return result("insufficient", "none", None)

    filled: list[float] = []
    for d, day in days.items():
        if d in billed:
            continue
        unknown = 1.0 - (span.fraction_of(day) if span is not None else 0.0)
        if unknown > 1e-12:
            filled.append(rate(d) * unknown)
    status: Status = "final" if until >= year.end and not filled else "provisional"
    return result(status, method if filled else "actual", known + math.fsum(filled))


def _calendar_rate(whole: Mapping[date, float], is_working_day: Callable[[date], bool]
                   ) -> Callable[[date], float]:
    work = [v for d, v in whole.items() if is_working_day(d)]
    off = [v for d, v in whole.items() if not is_working_day(d)]
    work_mean = math.fsum(work) / len(work) if work else None
    off_mean = math.fsum(off) / len(off) if off else None
    w = work_mean if work_mean is not None else (off_mean or 0.0)
    o = off_mean if off_mean is not None else w

    def rate(d: date) -> float:
        return w if is_working_day(d) else o

    return rate


def _weekday(d: date) -> bool:
    return d.weekday() < 5


def project(types: Sequence[TypeInput], *, year: Period, until: float, min_days: int,
            vehicle_kgce: float = 0.0, vehicle_in_area: bool = True,
            is_working_day: Callable[[date], bool] = _weekday) -> Projection:
    """The year-end projection of every energy type, water and vehicle fuel."""
    days = {d: Period.day(d, year.tz) for d in year.local_days()}
    working = {d: is_working_day(d) for d in days}  # one calendar look-up per day

    def cached(d: date) -> bool:
        found = working.get(d)
        return is_working_day(d) if found is None else found

    per = [project_type(t, year, until, min_days, cached, days) for t in types]
    energy = [p for p in per if p.energy.is_energy]
    water = [p for p in per if not p.energy.is_energy]

    def family(ps: list[TypeProjection]) -> Status:
        if not ps or any(p.status == "insufficient" for p in ps) or all(
                p.method == "none" for p in ps):
            return "insufficient"
        return "final" if all(p.status == "final" for p in ps) else "provisional"

    e_status, w_status = family(energy), family(water)
    judged = [e_status, w_status] if water else [e_status]  # no water data: not judged
    elapsed = year.until(until).seconds
    vehicle = (vehicle_kgce * year.seconds / elapsed if elapsed > 0 else None) \
        if vehicle_kgce else 0.0
    if vehicle_kgce and until < year.end and e_status == "final":
        e_status = "provisional"
    e_total = (math.fsum(p.projected or 0.0 for p in energy) + (vehicle or 0.0)
               if e_status != "insufficient" else None)
    for_area = (e_total - (0.0 if vehicle_in_area else (vehicle or 0.0))
                if e_total is not None else None)
    status: Status = ("insufficient" if "insufficient" in judged else
                      "final" if all(x == "final" for x in judged) else "provisional")
    if status == "insufficient":
        note_zh = f"{INSUFFICIENT_ZH}（需至少 {min_days} 天计量数据或覆盖 {min_days} 天的账单）"
        note_en = (f"{INSUFFICIENT_EN} (needs {min_days} days of metering or bills "
                   f"covering {min_days} days)")
    elif status == "provisional":
        note_zh, note_en = "预计（年度未结束或数据未覆盖全年）", "Provisional (projected)"
    else:
        note_zh, note_en = "全年实际", "Whole year, actual"
    return Projection(status=status, energy_status=e_status, water_status=w_status,
                      min_days=min_days, types=per, vehicle_kgce=vehicle,
                      energy_kgce=e_total, energy_kgce_for_area=for_area,
                      water_m3=(math.fsum(p.projected or 0.0 for p in water)
                                if w_status != "insufficient" else None),
                      note_zh=note_zh, note_en=note_en)
