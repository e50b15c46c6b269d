"""同比 (year on year), 环比 (period on period) and progress against the base year. Pure: no
I/O, no clock reads; `central.baseyear` reads the two figure sets from the store and ledger.

A figure set is one period's figures with what they rest on: per energy type (and water),
the local days covered by a main meter's records or by a bill. A comparison is made only
when both sides cover every type the figure needs on at least `min_coverage` of their days
(1.0 by default: every day); otherwise its change is None, shown "—", with the reason
(never a comparison against 0 or against a partial period without saying so):

    change           = (current − previous) ÷ previous
    energy figures   kgce, kgce/m², kgce/person: every energy type that appears on either
                     side (meters configured, bills entered) must be covered on both
    electricity      electricity covered on both sides
    water            water covered on both sides

Weather normalisation (degree-day method, CIBSE TM41 "Degree-days: theory and application",
2006, ch. 6; ISO 50006:2014 §4.5 normalisation of the energy baseline by relevant
variables): the current figure is restated at the reference period's weather,

    E_adj = E × [(1 − h − c) + h × HDD_ref ÷ HDD + c × CDD_ref ÷ CDD]

with h, c the configured heating and cooling shares of consumption; a ratio whose current
degree days are 0 is taken as 1 (no heating or cooling to restate). Without degree days for
both periods the adjusted change is None.

Progress against the 14th Five-Year targets: the current year to date against the same
days of the base year; the reduction required by the current year follows a straight line
from the base year (0 %) to the target year (the full percentage) — greenguard's reading,
the plan itself only fixes the end point.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from pydantic import computed_field

from central.baseline import Baseline, DegreeDays
from central.energy import EnergyType
from central.view import View as _View

FigureKey = Literal["energy_kgce", "kgce_per_m2", "kgce_per_person", "electricity_kwh",
                    "water_m3", "water_m3_per_person", "co2_per_m2"]
# (zh, en, unit) of every figure compared
LABELS: Mapping[str, tuple[str, str, str]] = {
    "energy_kgce": ("综合能耗", "Total energy", "kgce"),
    "kgce_per_m2": ("单位建筑面积能耗", "Energy per floor area", "kgce/m²"),
    "kgce_per_person": ("人均综合能耗", "Energy per person", "kgce/人"),
    "electricity_kwh": ("用电量", "Electricity", "kWh"),
    "water_m3": ("用水量", "Water", "m³"),
    "water_m3_per_person": ("人均用水量", "Water per person", "m³/人"),
    "co2_per_m2": ("单位建筑面积碳排放", "CO₂ per floor area", "kgCO₂/m²"),
}
COMPARED: tuple[FigureKey, ...] = ("energy_kgce", "kgce_per_m2", "kgce_per_person",
                                   "electricity_kwh", "water_m3", "water_m3_per_person")
WEATHER_DEPENDENT = frozenset({"energy_kgce", "kgce_per_m2", "kgce_per_person",
                               "electricity_kwh", "co2_per_m2"})

Status = Literal["ok", "no_data", "incomplete", "zero_base"]


# -- periods ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaySpan:
    """Local days first … end − 1 (end exclusive)."""

    first: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.first:
            raise ValueError(f"span end {self.end} is before its first day {self.first}")

    @property
    def days(self) -> int:
        return (self.end - self.first).days


PeriodKind = Literal["month", "quarter", "year", "days"]


def _shift_years(day: date, years: int) -> date:
    """The same calendar day `years` later (earlier when negative); 29 Feb → 28 Feb."""
    y = day.year + years
    return day.replace(year=y, day=min(day.day, calendar.monthrange(y, day.month)[1]))


def year_earlier(span: DaySpan, years: int = 1) -> DaySpan:
    """同比: the same calendar days `years` earlier (a span ending on 1 Mar keeps its
    February whole in a leap year too)."""
    return DaySpan(_shift_years(span.first, -years), _shift_years(span.end, -years))


def _add_months(day: date, months: int) -> date:
    m = day.year * 12 + day.month - 1 + months
    y, mo = divmod(m, 12)
    return date(y, mo + 1, min(day.day, calendar.monthrange(y, mo + 1)[1]))


def previous_span(span: DaySpan, kind: PeriodKind) -> DaySpan:
    """环比: the period of the same kind before `span` — the previous month or quarter (the
    same number of days from its start when `span` is one so far, clipped to its length),
    the previous year's same calendar days, or the same number of days just before a free
    span."""
    if kind == "days":
        return DaySpan(span.first - timedelta(days=span.days), span.first)
    if kind == "year":  # the previous year: the same calendar days, as 同比
        return year_earlier(span)
    step = {"month": 1, "quarter": 3, "year": 12}[kind]
    first = _add_months(span.first, -step)
    whole_end = span.first
    end = min(first + timedelta(days=span.days), whole_end)
    if _add_months(span.first, step) == span.end:  # a whole period: the whole previous one
        end = whole_end
    return DaySpan(first, end)


# -- figure sets ------------------------------------------------------------------


class TypeCoverage(_View):
    """One energy type (or water) of a period: days covered by a meter's records or a bill,
    and the quantity in its unit."""

    energy: EnergyType
    covered_days: int
    quantity: float


class FigureSet(_View):
    first_day: date
    end_day: date  # exclusive

    @computed_field  # type: ignore[prop-decorator]
    @property
    def last_day(self) -> date:
        """The last day included (the one before `end_day`; `first_day` when empty)."""
        return max(self.first_day, self.end_day - timedelta(days=1))

    days: int
    types: list[TypeCoverage]
    energy_kgce: float
    energy_kgce_for_area: float  # without vehicle fuel where the profile says so
    electricity_kwh: float
    water_m3: float
    floor_area_m2: float  # time-weighted mean
    energy_users: float  # time-weighted mean 用能人数
    hdd: float | None = None
    cdd: float | None = None
    co2_kg: float | None = None  # None: no emission factors (central/carbon.py)
    building: str | None = None  # None: the institution

    def covered(self, energy: EnergyType) -> int:
        return next((t.covered_days for t in self.types if t.energy is energy), 0)

    def value(self, key: str) -> float | None:
        area, users = self.floor_area_m2, self.energy_users
        values: dict[str, float | None] = {
            "energy_kgce": self.energy_kgce,
            "kgce_per_m2": self.energy_kgce_for_area / area if area > 0 else None,
            "kgce_per_person": self.energy_kgce / users if users > 0 else None,
            "electricity_kwh": self.electricity_kwh,
            "water_m3": self.water_m3,
            "water_m3_per_person": self.water_m3 / users if users > 0 else None,
            "co2_per_m2": (self.co2_kg / area if self.co2_kg is not None and area > 0
                           else None),
        }
        return values[key]


def needed_types(key: str, a: FigureSet, b: FigureSet) -> list[EnergyType]:
    """The energy types whose coverage a figure rests on, on either side."""
    if key in ("electricity_kwh",):
        return [EnergyType.ELECTRICITY]
    if key in ("water_m3", "water_m3_per_person"):
        return [EnergyType.WATER]
    seen = dict.fromkeys(t.energy for t in [*a.types, *b.types] if t.energy.is_energy)
    return list(seen)


ENERGY_ZH: Mapping[EnergyType, str] = {
    EnergyType.ELECTRICITY: "电", EnergyType.WATER: "水", EnergyType.NATURAL_GAS: "天然气",
    EnergyType.HEAT: "热力", EnergyType.GASOLINE: "汽油", EnergyType.DIESEL: "柴油",
    EnergyType.RAW_COAL: "原煤", EnergyType.LPG: "液化石油气", EnergyType.STEAM: "蒸汽"}


@dataclass(frozen=True, slots=True)
class Gap:
    side: Literal["current", "previous"]
    energy: EnergyType
    covered: int
    days: int

    @property
    def en(self) -> str:
        return f"{self.side} {self.energy.value} {self.covered}/{self.days}"

    @property
    def zh(self) -> str:
        side = "本期" if self.side == "current" else "对比期"
        energy = ENERGY_ZH.get(self.energy, self.energy.value)
        return f"{side}{energy} {self.covered}/{self.days} 天"


def _gaps(key: str, side: FigureSet, other: FigureSet, min_coverage: float,
          name: Literal["current", "previous"]) -> list[Gap]:
    out = []
    for energy in needed_types(key, side, other):
        got = side.covered(energy)
        if side.days == 0 or got < min_coverage * side.days:
            out.append(Gap(name, energy, got, side.days))
    return out


# -- degree days ------------------------------------------------------------------


def degree_days(values: Mapping[int, Sequence[float]], span: DaySpan) -> float | None:
    """Degree days of `span` from monthly values, each month pro-rated by its days in the
    span; None when a month's year is missing."""
    total: list[float] = []
    day = span.first
    while day < span.end:
        month_end = _add_months(day.replace(day=1), 1)
        upto = min(month_end, span.end)
        year = values.get(day.year)
        if year is None:
            return None
        n = calendar.monthrange(day.year, day.month)[1]
        total.append(year[day.month - 1] * (upto - day).days / n)
        day = upto
    return math.fsum(total)


def weather_factor(current: FigureSet, reference: FigureSet, dd: DegreeDays | None
                   ) -> float | None:
    """The factor restating `current` at `reference`'s weather (module docstring); None
    without the degree days it needs."""
    if dd is None or (dd.heating_share == 0 and dd.cooling_share == 0):
        return None
    factor = 1.0 - dd.heating_share - dd.cooling_share
    for share, cur, ref in ((dd.heating_share, current.hdd, reference.hdd),
                            (dd.cooling_share, current.cdd, reference.cdd)):
        if share == 0:
            continue
        if cur is None or ref is None:
            return None
        factor += share * (ref / cur if cur > 0 else 1.0)
    return factor


# -- comparisons ------------------------------------------------------------------


class Change(_View):
    figure: str
    label_zh: str
    label_en: str
    unit: str
    current: float | None
    previous: float | None
    change: float | None  # (current − previous) ÷ previous; None: no comparison
    change_weather_adjusted: float | None = None
    status: Status
    reason: str | None = None  # why there is no comparison (types and covered days)
    reason_zh: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def arrow(self) -> str:
        if self.change is None:
            return "—"
        return "↑" if self.change > 0 else "↓" if self.change < 0 else "→"


def compare(key: str, current: FigureSet, previous: FigureSet, *, min_coverage: float = 1.0,
            degree: DegreeDays | None = None) -> Change:
    zh, en, unit = LABELS[key]
    cur, prev = current.value(key), previous.value(key)
    gaps = (_gaps(key, current, previous, min_coverage, "current")
            + _gaps(key, previous, current, min_coverage, "previous"))
    status: Status = "ok"
    reason: str | None = None
    reason_zh: str | None = None
    en_gaps, zh_gaps = "; ".join(g.en for g in gaps), "；".join(g.zh for g in gaps)
    if not needed_types(key, current, previous) or all(
            current.covered(e) == 0 or previous.covered(e) == 0
            for e in needed_types(key, current, previous)):
        status = "no_data"
        reason = "no data on " + ("either side" if not gaps else en_gaps + " days")
        reason_zh = "无数据" + ("" if not gaps else "：" + zh_gaps)
    elif gaps:
        status = "incomplete"
        reason = f"covered days below {min_coverage:.0%}: {en_gaps}"
        reason_zh = f"数据覆盖不足 {min_coverage:.0%}：{zh_gaps}"
    elif cur is None or prev is None or prev == 0:
        status = "zero_base"
        reason, reason_zh = "the previous figure is 0 or undefined", "对比期数值为 0 或无定义"
    if status != "ok" or cur is None or prev is None:
        return Change(figure=key, label_zh=zh, label_en=en, unit=unit, current=cur,
                      previous=prev, change=None, status=status, reason=reason,
                      reason_zh=reason_zh)
    adjusted = None
    factor = weather_factor(current, previous, degree) if key in WEATHER_DEPENDENT else None
    if factor is not None:
        adjusted = (cur * factor - prev) / prev
    return Change(figure=key, label_zh=zh, label_en=en, unit=unit, current=cur,
                  previous=prev, change=(cur - prev) / prev,
                  change_weather_adjusted=adjusted, status="ok")


class PeriodComparison(_View):
    kind: Literal["year_on_year", "period_on_period"]
    previous: FigureSet
    lines: list[Change]

    def line(self, key: str) -> Change:
        return next(x for x in self.lines if x.figure == key)


PER_PERSON = frozenset({"kgce_per_person", "water_m3_per_person"})


def _figures(keys: Sequence[str], current: FigureSet) -> list[str]:
    """A building has no per-person figures (用能人数 is the institution's)."""
    return [k for k in keys if current.building is None or k not in PER_PERSON]


def compare_all(kind: Literal["year_on_year", "period_on_period"], current: FigureSet,
                previous: FigureSet, baseline: Baseline) -> PeriodComparison:
    return PeriodComparison(kind=kind, previous=previous, lines=[
        compare(k, current, previous, min_coverage=baseline.min_coverage,
                degree=baseline.degree_days) for k in _figures(COMPARED, current)])


# -- 14th Five-Year targets -------------------------------------------------------

TargetStatus = Literal["on_track", "behind", "no_data", "incomplete", "zero_base",
                       "awaiting_emission_factors"]


class TargetLine(_View):
    figure: str
    label_zh: str
    label_en: str
    unit: str
    target_pct: float  # reduction by the target year, per cent of the base
    base_value: float | None  # the base year's same days
    current_value: float | None
    change: float | None
    change_weather_adjusted: float | None
    required_change: float  # the straight line's reduction for this year, e.g. −0.03
    target_value: float | None  # base_value × (1 + required_change)
    status: TargetStatus
    reason: str | None = None
    reason_zh: str | None = None


class TargetProgress(_View):
    base_year: int
    target_year: int
    year: int
    current: FigureSet
    base: FigureSet
    lines: list[TargetLine]


def required_change(pct: float, year: int, base_year: int, target_year: int) -> float:
    """The reduction the straight line from base_year (0) to target_year (−pct) asks of
    `year` (the full −pct after the target year, 0 up to the base year)."""
    share = min(1.0, max(0.0, (year - base_year) / (target_year - base_year)))
    return -pct / 100 * share


def target_progress(year: int, current: FigureSet, base: FigureSet,
                    baseline: Baseline) -> TargetProgress:
    """The 14th FYP figures of `current` (the year to date) against `base` (the same days of
    the base year)."""
    pcts = baseline.targets_pct
    lines = []
    wanted = {"kgce_per_m2": pcts.kgce_per_m2, "kgce_per_person": pcts.kgce_per_person,
              "water_m3_per_person": pcts.water_m3_per_person, "co2_per_m2": pcts.co2_per_m2}
    for key in _figures(list(wanted), current):
        pct = wanted[key]
        c = compare(key, current, base, min_coverage=baseline.min_coverage,
                    degree=baseline.degree_days)
        need = required_change(pct, year, baseline.base_year, baseline.target_year)
        status: TargetStatus
        reason, reason_zh = c.reason, c.reason_zh
        if key == "co2_per_m2" and (current.co2_kg is None or base.co2_kg is None):
            status = "awaiting_emission_factors"
            side = "the base year" if base.co2_kg is None else "this year"
            side_zh = "基准年" if base.co2_kg is None else "本年"
            reason = (f"no emission factor valid for {side}: add one under carbon.factors "
                      "(docs/carbon.md)")
            reason_zh = f"{side_zh}无有效排放因子，请在 carbon.factors 中配置"
        elif c.change is None:
            status = ("incomplete" if c.status == "incomplete"
                      else "zero_base" if c.status == "zero_base" else "no_data")
        else:
            judged = (c.change_weather_adjusted if c.change_weather_adjusted is not None
                      else c.change)
            status = "on_track" if judged <= need + 1e-12 else "behind"
        lines.append(TargetLine(
            figure=key, label_zh=c.label_zh, label_en=c.label_en, unit=c.unit,
            target_pct=pct, base_value=c.previous, current_value=c.current,
            change=c.change, change_weather_adjusted=c.change_weather_adjusted,
            required_change=need,
            target_value=None if c.previous is None else c.previous * (1 + need),
            status=status, reason=reason, reason_zh=reason_zh))
    return TargetProgress(base_year=baseline.base_year, target_year=baseline.target_year,
                          year=year, current=current, base=base, lines=lines)
