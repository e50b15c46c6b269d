"""What the energy cost, in yuan: metered quantities priced by the institution's tariffs
(central/tariff.py), bills with their amounts, per building, 分项 item and month, and the
check of metered cost against each utility bill.

    electricity   the main meters' consumption per hour (the hourly rollup; the raw intervals
                  for the partial hours at the edges, or throughout when a period boundary
                  of the tariff is not on the hour or the store keeps no rollup), each hour
                  priced by the time-of-use period it falls in; plus the fixed charges
    water, gas    the main meters' consumption priced by tiers on the institution's total
                  (one utility account): the cost of a window is the cost of its basis
                  period (month or year) up to its end less the cost up to its start; a
                  building's share is its share of the quantity
    bills         a bill counts for the days before metering of its energy began, as its
                  quantity does (docs/compliance.md): its `amount_yuan` pro-rated over its
                  days, else its quantity priced by the tariff (water, gas), else unknown
    bill check    every bill with an amount whose days lie in the window: the metered cost
                  of the same days and meters (fixed charges included) against the amount;
                  flagged beyond the institution's `tariff.bill_tolerance_pct`

A figure that cannot be priced (no tariff for the energy, days outside every tariff version,
a bill without an amount for an energy without a tariff) is None ("—"), never 0, and the
parts that could be priced are shown beside it.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from central import codes, metrics
from central.coverage import Coverage
from central.energy import EnergyType
from central.formulas import bill_share
from central.institution import CalendarOverrides, InstitutionConfig, MeterKey
from central.ledger import Bill, Ledger
from central.period import Period
from central.profile import CoefficientProfile
from central.storeport import StoreReader
from central.tariff import PERIOD_ZH, ElectricitySplit, TariffBook, TouPeriod
from central.view import View
from central.workcalendar import WorkingCalendar

HOUR_MS = 3_600_000
TIERED = (EnergyType.WATER, EnergyType.NATURAL_GAS)
Interval = tuple[float, float, float]  # start, end (POSIX s), quantity
CostSource = Literal["tariff", "bill", "tariff+bill"]


class TouLine(View):
    period: TouPeriod
    label_zh: str
    kwh: float
    yuan: float
    yuan_per_kwh: float | None


class ElectricityCost(View):
    kwh: float  # metered, main meters in scope
    energy_yuan: float | None  # None: no electricity tariff
    fixed_yuan: float  # fixed charges of the window (institution only)
    unpriced_kwh: float  # on days no tariff version covers
    by_period: list[TouLine]
    fixed_not_applied: list[str]  # per-kVA charges without the institution's capacity_kva
    yuan_per_kwh: float | None  # energy_yuan ÷ priced kWh


class TypeCost(View):
    """One energy type (or water): the metered part priced by the tariff, the billed part
    (before metering) by the bills' amounts or the tariff; `yuan` None when a part with a
    quantity could not be priced."""

    energy: EnergyType
    unit: str
    metered_quantity: float
    metered_yuan: float | None
    billed_quantity: float
    billed_yuan: float | None
    yuan: float | None
    source: CostSource | None
    # The bills' amounts over the whole window (metered days included) and the days they
    # cover: the statistics return prefers them when they cover every day.
    bill_amount_yuan: float | None = None
    bill_amount_days: int = 0


class CostLine(View):
    key: str
    label_zh: str
    label_en: str
    quantity: float
    unit: str
    yuan: float | None


class MonthCost(View):
    month: str  # YYYY-MM
    has_data: bool
    electricity_kwh: float | None
    electricity_yuan: float | None
    water_yuan: float | None
    gas_yuan: float | None
    billed_yuan: float | None  # bills of other energies (heat, a gas bill before metering…)
    yuan: float | None


class BillCheck(View):
    ref: str
    energy: EnergyType
    building: str | None
    period_start: date
    period_end: date
    bill_quantity: float
    bill_yuan: float
    metered_quantity: float | None
    metered_yuan: float | None  # None: no metered data, or no tariff for the energy
    difference_yuan: float | None  # metered − bill
    difference_pct: float | None  # of the bill's amount
    tolerance_pct: float
    flagged: bool
    note: str = ""


class PeriodCost(View):
    institution_id: str
    building: str | None
    start: datetime
    end: datetime
    tariff_id: str | None
    currency: str = "CNY"
    configured: bool  # the institution has a tariff section
    total_yuan: float | None
    complete: bool  # every quantity in scope priced
    electricity: ElectricityCost
    by_type: list[TypeCost]
    buildings: list[CostLine]
    items: list[CostLine]
    months: list[MonthCost]
    bill_checks: list[BillCheck]
    coverage: Coverage | None = None


def tariff_book(institution: InstitutionConfig) -> TariffBook | None:
    """The institution's pricing engine, or None without a `tariff:` section. Rest days are
    the official calendar's (with the section's own `workdays` / `holidays`), not the
    institution's `calendar:` days off: the utility does not know a school's vacation."""
    cfg = institution.tariff
    if cfg is None:
        return None
    calendar = WorkingCalendar(CalendarOverrides(workdays=cfg.workdays, holidays=cfg.holidays))
    return TariffBook(cfg.resolved(), tz=institution.institution.tz,
                      is_working_day=calendar.is_working_day, capacity_kva=cfg.capacity_kva)


# -- reading -----------------------------------------------------------------------------


def _clip(rows: Iterable[tuple[MeterKey, int, int, float]], a_ms: int, b_ms: int
          ) -> list[Interval]:
    out: list[Interval] = []
    for _k, st, du, q in rows:
        en = st + du * 1000
        if st >= a_ms and en <= b_ms:  # the usual case: wholly inside
            out.append((st / 1000, en / 1000, q))
            continue
        lo, hi = max(st, a_ms), min(en, b_ms)
        if hi <= lo and du > 0:
            continue
        part = q if du <= 0 or (lo == st and hi == en) else q * (hi - lo) / (du * 1000)
        out.append((lo / 1000, hi / 1000, part))
    return out


def _whole_hour_zone(tz: ZoneInfo, start: float, end: float) -> bool:
    return all((datetime.fromtimestamp(t, tz).utcoffset() or timedelta()).total_seconds()
               % 3600 == 0 for t in (start, max(start, end - 1)))


def series(store: StoreReader, keys: Sequence[MeterKey], start: float, end: float, *,
           hourly: bool) -> list[Interval]:
    """Consumption of `keys` together over [start, end) as (start, end, quantity) in time
    order: whole hours from the hourly rollup when `hourly` and the store keeps one, the
    raw intervals (clipped pro rata) at the edges and otherwise."""
    s_ms, e_ms = int(start * 1000), int(end * 1000)
    if not keys or e_ms <= s_ms:
        return []
    h0, h1 = -(-s_ms // HOUR_MS), e_ms // HOUR_MS
    hours = store.hour_totals(keys, h0, h1) if hourly and h0 < h1 else None
    if hours is None:
        out = _clip(store.interval_rows(s_ms, e_ms, keys), s_ms, e_ms)
        out.sort()
        return out
    head = _clip(store.interval_rows(s_ms, h0 * HOUR_MS, keys), s_ms, h0 * HOUR_MS) \
        if h0 * HOUR_MS > s_ms else []
    tail = _clip(store.interval_rows(h1 * HOUR_MS, e_ms, keys), h1 * HOUR_MS, e_ms) \
        if e_ms > h1 * HOUR_MS else []
    body = [(h * 3600.0, (h + 1) * 3600.0, q) for h, q in sorted(hours.items())]
    return sorted(head) + body + sorted(tail)


def window(items: Sequence[Interval], starts: Sequence[float], a: float, b: float,
           longest: float) -> list[Interval]:
    """The part of start-ordered `items` (their starts in `starts`, none longer than
    `longest` seconds) inside [a, b), pro rata; the items wholly inside are taken as they
    are (one slice), only those across `a` or `b` are split."""
    lo = bisect.bisect_left(starts, a - longest)
    inner0 = bisect.bisect_left(starts, a)
    inner1 = max(inner0, bisect.bisect_left(starts, b - longest))
    hi = bisect.bisect_left(starts, b)
    out: list[Interval] = []

    def part(i: int) -> None:
        s, e, q = items[i]
        x, y = max(s, a), min(e, b)
        if y > x:
            out.append((x, y, q if x == s and y == e else q * (y - x) / (e - s)))
        elif e <= s and a <= s < b:
            out.append((s, e, q))

    for i in range(lo, inner0):
        part(i)
    out.extend(items[inner0:inner1])
    for i in range(inner1, hi):
        part(i)
    return out


class _Series:
    def __init__(self, items: list[Interval]) -> None:
        self.items = items
        self.starts = [x[0] for x in items]
        self.longest = max((e - s for s, e, _ in items), default=0.0)

    def window(self, a: float, b: float) -> list[Interval]:
        if self.items and a <= self.items[0][0] and b >= max(
                self.items[-1][1], self.items[-1][0] + self.longest):
            return self.items
        return window(self.items, self.starts, a, b, self.longest)

    def total(self, a: float, b: float) -> float:
        return math.fsum(q for _, _, q in self.window(a, b))


# -- pricing (pure over the series read) --------------------------------------------------


@dataclass
class _Priced:
    """The priced figures of one window: electricity by period, yuan per building (None:
    no tariff), water and gas per account as (yuan or None, quantity, unpriced)."""

    split: ElectricitySplit = field(default_factory=ElectricitySplit)
    buildings: dict[str, float | None] = field(default_factory=dict)
    tiered: dict[EnergyType, tuple[float | None, float, float]] = field(default_factory=dict)

    @staticmethod
    def combine(parts: Sequence[_Priced]) -> _Priced:
        out = _Priced()
        for p in parts:
            out.split.kwh += p.split.kwh
            out.split.yuan += p.split.yuan
            out.split.unpriced_kwh += p.split.unpriced_kwh
            out.split.unpriced_days |= p.split.unpriced_days
            for period, (kwh, yuan) in p.split.by_period.items():
                cell = out.split.by_period[period]
                cell[0] += kwh
                cell[1] += yuan
            for bid, y in p.buildings.items():
                prev = out.buildings.get(bid, 0.0)
                out.buildings[bid] = None if prev is None or y is None else prev + y
            for e, (y, q, u) in p.tiered.items():
                py, pq, pu = out.tiered.get(e, (0.0, 0.0, 0.0))
                out.tiered[e] = (None if py is None or y is None else py + y, pq + q, pu + u)
        return out


def _tiered_window(book: TariffBook, energy: EnergyType, s: _Series, a: float, b: float
                   ) -> tuple[float | None, float]:
    """Yuan of [a, b) of one account's series with tiers counted from the basis period's
    start (the series must reach back to it), and the unpriced quantity."""
    if not book.prices(energy):
        return None, s.total(a, b)
    base = book.basis_start(energy, a)
    lo = a if base is None else min(a, base)
    upto_b = book.tiered_split(energy, s.window(lo, b), fixed=False)
    upto_a = book.tiered_split(energy, s.window(lo, a), fixed=False) if a > lo else None
    yuan = upto_b.yuan - (upto_a.yuan if upto_a is not None else 0.0)
    unpriced = upto_b.unpriced - (upto_a.unpriced if upto_a is not None else 0.0)
    fixed = book.tiered_split(energy, [(a, b, 0.0)], fixed=True).yuan
    return yuan + fixed, unpriced


def _sum_opt(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return math.fsum(known) if known else None


def _bill_cost(book: TariffBook | None, bill: Bill, tz: ZoneInfo) -> float | None:
    """A whole bill's yuan: its amount, else its quantity by the tariff (water, gas)."""
    if bill.amount_yuan is not None:
        return bill.amount_yuan
    if book is None or bill.energy not in TIERED or not book.prices(bill.energy) \
            or bill.unit not in (None, "m3"):
        return None
    span = Period.days(bill.period_start, bill.period_end, tz)
    split = book.tiered_split(bill.energy, [(span.start, span.end, bill.quantity)])
    return None if split.unpriced > 0 else split.yuan


def period_cost(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
                profile: CoefficientProfile, *, start: float, end: float,
                building: str | None = None, months: bool = True,
                energy: metrics.PeriodEnergy | None = None) -> PeriodCost:
    """Cost of [start, end) for the institution or one building (`central.cost` docstring);
    with `months`, one row per local month of the window as well. `energy`: the window's
    `metrics.period_energy` when the caller has read it already."""
    tz = institution.institution.tz
    book = tariff_book(institution)
    end = max(start, end)
    if energy is None:
        energy = metrics.period_energy(store, ledger, institution, profile, start=start,
                                       end=end, building=building)
    coverage = metrics.coverage_for(store, institution, start=start, end=end, sums=energy.sums,
                                    bills=energy.bills, cuts=energy.cuts,
                                    lines=energy.energy_by_type, building=building)
    hourly = (book is None or book.hour_aligned()) and _whole_hour_zone(tz, start, end)
    mains = [m for m in institution.main_meters()
             if building is None or m.building == building]
    # Electricity per building (main meters) and per 分项 item (meters with an item).
    elec: dict[str, _Series] = {}
    for b in institution.buildings:
        keys = [m.key for m in mains if m.building == b.id
                and m.energy is EnergyType.ELECTRICITY]
        if keys:
            elec[b.id] = _Series(series(store, keys, start, end, hourly=hourly))
    table = codes.items()
    item_keys: dict[str, list[MeterKey]] = defaultdict(list)
    for m in institution.meters:
        if (m.energy is EnergyType.ELECTRICITY and m.item is not None and not m.it_load
                and (building is None or m.building == building)):
            item_keys[table.top_item(m.item)].append(m.key)
    items = {code: _Series(series(store, keys, start, end, hourly=hourly))
             for code, keys in sorted(item_keys.items())}
    # Water and gas: the whole account (every building), from the basis period's start.
    account: dict[EnergyType, _Series] = {}
    by_building_q: dict[EnergyType, dict[str, float]] = {}
    for e in TIERED:
        keys = [m.key for m in institution.main_meters() if m.energy is e
                and (e is EnergyType.WATER or profile.unit_of(m) == "m3")]
        if not keys:
            continue
        lo = start
        if book is not None and book.prices(e):
            base = book.basis_start(e, start)
            lo = start if base is None else min(start, base)
        account[e] = _Series(series(store, keys, lo, end, hourly=hourly))
        shares: dict[str, float] = defaultdict(float)
        for m in institution.main_meters():
            if m.key in keys:
                shares[m.building] += energy.sums.get(m.key, 0.0)
        by_building_q[e] = dict(shares)

    def price_window(a: float, b: float) -> _Priced:
        """Every priced figure of [a, b) from the series read above."""
        out = _Priced()
        for bid, s in elec.items():
            if book is None:
                out.buildings[bid] = None
                out.split.kwh += s.total(a, b)
                continue
            before = out.split.yuan
            book.electricity_split(s.window(a, b), into=out.split)
            out.buildings[bid] = out.split.yuan - before
        for e, s in account.items():
            q_all = s.total(a, b)
            yuan, unpriced = (_tiered_window(book, e, s, a, b) if book is not None
                              else (None, q_all))
            out.tiered[e] = (yuan if unpriced <= 0 else None, q_all, unpriced)
        return out

    # Each month once (the whole window is their sum: energy, yuan and tier costs add up).
    period = Period(start, end, tz)
    windows = [(mp.start, mp.end) for mp in period.month_periods()] if months else []
    parts = [price_window(a, b) for a, b in windows]
    whole = _Priced.combine(parts) if parts else price_window(start, end)
    split = whole.split
    has_elec_tariff = book is not None and book.prices(EnergyType.ELECTRICITY)
    fixed_yuan, not_applied = (book.fixed_cost(start, end) if book is not None
                               and building is None else (0.0, []))
    energy_yuan = split.yuan if has_elec_tariff else None
    priced_kwh = split.kwh - split.unpriced_kwh
    electricity = ElectricityCost(
        kwh=split.kwh, energy_yuan=energy_yuan if split.unpriced_kwh <= 0 else None,
        fixed_yuan=fixed_yuan, unpriced_kwh=split.unpriced_kwh,
        by_period=[TouLine(period=p, label_zh=PERIOD_ZH[p], kwh=v[0], yuan=v[1],
                           yuan_per_kwh=v[1] / v[0] if v[0] > 0 else None)
                   for p in TouPeriod if (v := split.by_period.get(p)) is not None],
        fixed_not_applied=not_applied,
        yuan_per_kwh=split.yuan / priced_kwh if has_elec_tariff and priced_kwh > 0 else None)

    # Bills: the part before metering (as the quantities count it), and all their amounts.
    bills = [b for b in energy.bills if building is None or b.building == building]
    billed_q: dict[EnergyType, float] = defaultdict(float)
    billed_y: dict[EnergyType, list[float | None]] = defaultdict(list)
    amount_y: dict[EnergyType, float] = defaultdict(float)
    amount_days: dict[EnergyType, set[date]] = defaultdict(set)
    for bill in bills:
        share = bill_share(bill, start, min(end, energy.cuts.get(bill.ref, end)), tz)
        if share > 0:
            billed_q[bill.energy] += bill.quantity * share
            whole_yuan = _bill_cost(book, bill, tz)
            billed_y[bill.energy].append(None if whole_yuan is None else whole_yuan * share)
        if bill.amount_yuan is not None:
            amount_y[bill.energy] += bill.amount_yuan * bill_share(bill, start, end, tz)
            span = Period.days(bill.period_start, bill.period_end, tz)
            lo, hi = max(span.start, start), min(span.end, end)
            if hi > lo:
                amount_days[bill.energy].update(Period(lo, hi, tz).local_days())

    by_type: list[TypeCost] = []
    metered_types = {m.energy for m in mains}
    tiered = whole.tiered
    for e in [EnergyType.ELECTRICITY, EnergyType.WATER, EnergyType.NATURAL_GAS,
              *sorted({*metered_types, *billed_q} - {EnergyType.ELECTRICITY, EnergyType.WATER,
                                                      EnergyType.NATURAL_GAS})]:
        if e not in metered_types and e not in billed_q:
            continue
        unit = "kWh" if e is EnergyType.ELECTRICITY else "m3" if e is EnergyType.WATER else (
            next((profile.unit_of(m) for m in mains if m.energy is e), None)
            or next((b.unit or "" for b in bills if b.energy is e), ""))
        if e is EnergyType.ELECTRICITY:
            mq = split.kwh
            my: float | None = (None if electricity.energy_yuan is None
                                else electricity.energy_yuan + fixed_yuan)
        elif e in tiered:
            yuan_all, q_all, _unpriced = tiered[e]
            mq = math.fsum(energy.sums.get(m.key, 0.0) for m in mains if m.energy is e)
            my = None if yuan_all is None else (yuan_all * mq / q_all if q_all > 0 else 0.0)
        else:
            mq = math.fsum(energy.sums.get(m.key, 0.0) for m in mains if m.energy is e)
            my = None
        bq = billed_q.get(e, 0.0)
        by = billed_y.get(e, [])
        b_yuan = None if not by or any(v is None for v in by) else math.fsum(
            v for v in by if v is not None)
        metered_ok = my is not None or mq == 0
        billed_ok = b_yuan is not None or bq == 0
        yuan = (None if not (metered_ok and billed_ok) or (mq == 0 and bq == 0)
                else (my or 0.0) + (b_yuan or 0.0))
        source: CostSource | None = (None if yuan is None else "tariff+bill" if mq and bq
                                     else "bill" if bq else "tariff")
        by_type.append(TypeCost(
            energy=e, unit=unit, metered_quantity=mq, metered_yuan=my, billed_quantity=bq,
            billed_yuan=b_yuan, yuan=yuan, source=source,
            bill_amount_yuan=amount_y.get(e) if e in amount_y else None,
            bill_amount_days=len(amount_days.get(e, set()))))

    names = {b.id: b.name for b in institution.buildings}
    per_building = whole.buildings
    building_lines = []
    for bid, s in elec.items():
        lines_yuan: list[float | None] = [per_building.get(bid)]
        for e, (yuan_all, q_all, _u) in tiered.items():
            q = by_building_q.get(e, {}).get(bid, 0.0)
            if q:
                lines_yuan.append(None if yuan_all is None else yuan_all * q / q_all
                                  if q_all > 0 else 0.0)
        building_lines.append(CostLine(
            key=bid, label_zh=names.get(bid, bid), label_en=names.get(bid, bid),
            quantity=s.total(start, end), unit="kWh",
            yuan=None if any(v is None for v in lines_yuan) else math.fsum(
                v for v in lines_yuan if v is not None)))
    item_lines = []
    for code, s in items.items():
        label = table.electricity_items.get(code)
        item_split = book.electricity_split(s.items) if book is not None else None
        item_lines.append(CostLine(
            key=code, label_zh=label.zh if label else code, label_en=label.en if label else code,
            quantity=s.total(start, end), unit="kWh",
            yuan=None if item_split is None or not has_elec_tariff
            or item_split.unpriced_kwh > 0 else item_split.yuan))

    month_rows: list[MonthCost] = []
    for mp, priced in zip(period.month_periods() if months else [], parts, strict=True):
        month_rows.append(_month(book, priced, mp, bills, energy.cuts, tz, has_elec_tariff,
                                 building))
    known = [t.yuan for t in by_type]
    total = _sum_opt(known)
    checks = bill_checks(store, institution, book, [b for b in bills if b.amount_yuan
                                                    is not None], until=end)
    return PeriodCost(
        institution_id=institution.institution.id, building=building,
        start=datetime.fromtimestamp(start, tz), end=datetime.fromtimestamp(end, tz),
        tariff_id=None if book is None else (institution.tariff.use if institution.tariff
                                             else None) or book.tariffs.id or "inline",
        configured=book is not None,
        total_yuan=total if coverage.has_data else None,
        complete=all(t.yuan is not None for t in by_type),
        electricity=electricity, by_type=by_type, buildings=building_lines, items=item_lines,
        months=month_rows, bill_checks=checks, coverage=coverage)


def month_cost(store: StoreReader, ledger: Ledger | None, institution: InstitutionConfig,
               profile: CoefficientProfile, *, start: float, end: float,
               energy: metrics.PeriodEnergy) -> PeriodCost | None:
    """The dashboard's card: the month so far, None without a tariff section."""
    if institution.tariff is None:
        return None
    return period_cost(store, ledger, institution, profile, start=start, end=end,
                       months=False, energy=energy)


def _month(book: TariffBook | None, priced: _Priced, mp: Period,
           bills: Sequence[Bill], cuts: Mapping[str, float], tz: ZoneInfo,
           has_elec_tariff: bool, building: str | None) -> MonthCost:
    split, tiered = priced.split, priced.tiered
    fixed = book.fixed_cost(mp.start, mp.end)[0] if book is not None and building is None \
        else 0.0
    e_yuan = (split.yuan + fixed if has_elec_tariff and split.unpriced_kwh <= 0
              and split.kwh > 0 else None)
    water = tiered.get(EnergyType.WATER)
    gas = tiered.get(EnergyType.NATURAL_GAS)
    w_yuan = water[0] if water is not None and water[1] > 0 else None
    g_yuan = gas[0] if gas is not None and gas[1] > 0 else None
    billed: list[float | None] = []
    for bill in bills:
        share = bill_share(bill, mp.start, min(mp.end, cuts.get(bill.ref, mp.end)), tz)
        if share > 0:
            whole = _bill_cost(book, bill, tz)
            billed.append(None if whole is None else whole * share)
    b_yuan = None if not billed or any(v is None for v in billed) else math.fsum(
        v for v in billed if v is not None)
    has = split.kwh > 0 or bool(billed) or any(v[1] > 0 for v in tiered.values())
    return MonthCost(month=f"{mp.first_day:%Y-%m}", has_data=has,
                     electricity_kwh=split.kwh if has else None, electricity_yuan=e_yuan,
                     water_yuan=w_yuan, gas_yuan=g_yuan, billed_yuan=b_yuan,
                     yuan=_sum_opt([e_yuan, w_yuan, g_yuan, b_yuan]) if has else None)


def bill_checks(store: StoreReader, institution: InstitutionConfig, book: TariffBook | None,
                bills: Iterable[Bill], *, until: float) -> list[BillCheck]:
    """Each bill with an amount whose days ended by `until`, against the metered cost of its
    days: the main meters of its energy (and building), priced with fixed charges."""
    tz = institution.institution.tz
    tolerance = institution.tariff.bill_tolerance_pct if institution.tariff else 3.0
    out: list[BillCheck] = []
    for bill in bills:
        if bill.amount_yuan is None:
            continue
        span = Period.days(bill.period_start, bill.period_end, tz)
        if span.end > until + 1:
            continue
        keys = [m.key for m in institution.main_meters() if m.energy is bill.energy
                and (bill.building is None or m.building == bill.building)]
        note = ""
        metered_q: float | None = None
        metered_y: float | None = None
        if not keys:
            note = "no main meter of this energy"
        elif book is None or not book.prices(bill.energy):
            note = "no tariff for this energy"
        else:
            first = metrics.first_record(store, keys, span.start_ms, span.end_ms)
            if first is None:
                note = "no metered data in the bill's period"
            else:
                hourly = book.hour_aligned() and _whole_hour_zone(tz, span.start, span.end)
                if bill.energy is EnergyType.ELECTRICITY:
                    items = series(store, keys, span.start, span.end, hourly=hourly)
                    split = book.electricity_split(items)
                    metered_q = split.kwh
                    fixed = book.fixed_cost(span.start, span.end)[0] \
                        if bill.building is None else 0.0
                    metered_y = None if split.unpriced_kwh > 0 else split.yuan + fixed
                elif bill.energy in TIERED:
                    base = book.basis_start(bill.energy, span.start)
                    lo = span.start if base is None else min(base, span.start)
                    s = _Series(series(store, keys, lo, span.end, hourly=hourly))
                    metered_q = s.total(span.start, span.end)
                    yuan, unpriced = _tiered_window(book, bill.energy, s, span.start, span.end)
                    metered_y = None if unpriced > 0 else yuan
                if first > span.start + 86_400:
                    note = "metering began within the bill's period: the metered figure is " \
                           "partial"
        diff = None if metered_y is None else metered_y - bill.amount_yuan
        pct = (diff / bill.amount_yuan * 100 if diff is not None and bill.amount_yuan > 0
               else None)
        out.append(BillCheck(
            ref=bill.ref, energy=bill.energy, building=bill.building,
            period_start=bill.period_start, period_end=bill.period_end,
            bill_quantity=bill.quantity, bill_yuan=bill.amount_yuan,
            metered_quantity=metered_q, metered_yuan=metered_y, difference_yuan=diff,
            difference_pct=pct, tolerance_pct=tolerance,
            flagged=pct is not None and abs(pct) > tolerance and not note, note=note))
    return out


def return_cost(cost: PeriodCost | None, energy: EnergyType) -> tuple[float | None, str]:
    """The 费用 of the statistics return for one energy type: the bills' amounts when they
    cover every day of the window, else the cost figure; and its source in words."""
    if cost is None:
        return None, ""
    line = next((t for t in cost.by_type if t.energy is energy), None)
    if line is None:
        return None, ""
    days = cost.coverage.days if cost.coverage is not None else 0
    if line.bill_amount_yuan is not None and days and line.bill_amount_days >= days:
        return line.bill_amount_yuan, "账单金额"
    if line.yuan is None:
        return None, ""
    return line.yuan, {"tariff": "计量×价目", "bill": "账单",
                       "tariff+bill": "计量×价目 + 账单"}[line.source or "tariff"]
