"""What each rule saved: an **estimate** of the energy avoided by every audited rule write
that switched a unit off or clamped an AC setpoint (docs/savings.md has the method).

    switch-off   load before the write × hours held
    clamp        load before the write × min(1, share per °C × |Δ°C|) × hours held

The load is the unit's power sample (or its circuit meter's, `savings.loads`) at or before
the write, no older than `load_window_s`; without one, the configured `rated_w`; without
that, no figure (a write "without load", counted, never a 0). The hold starts at the write
and ends at the first of:

- a switch-off: the next working start on the institution's calendar (调休 make-up workdays
  count) for a write outside working time, the end of the working period for one inside it;
  the zone next seen occupied (someone back would switch it on again);
- a clamp: the unit seen off;
- the point's recorded value changing: in `Mode.EFFECT` (audit writes of a real run, whose
  samples show the write's effect) a value other than the written one (someone switched it
  back on, set 22 °C again); in `Mode.COUNTERFACTUAL` (a replay over samples recorded
  without the write) a value other than the one before the write (someone switched it off
  anyway, and the write would have saved nothing from then on);
- the next write of the same unit (of the same point for a switch-off, of any point for a
  clamp), so two writes never claim the same hour;
- `max_hold_h` after the write (the cap).

Dry-run writes (`dry_run: true`) changed nothing: they are estimated like the others but
rolled up apart, never in the totals. Writes from overrides or of other points are not
savings. The hold may run past the period's end; it counts in the month of its write.

Pure core (`estimate`, `roll_up`) and one assembly through the tenant reader
(`savings_for`): the API, the dashboard, the monthly report and `greenguard rules replay`
(simulators/rules_replay.py, in `Mode.COUNTERFACTUAL`) all use them.
"""

from __future__ import annotations

import bisect
import enum
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from central.energy import EnergyType
from central.errors import CentralError
from central.institution import InstitutionConfig, MeterKey
from central.savingsconfig import SavingsConfig
from central.workinghours import hours_for
from protocols.workcalendar import WorkingCalendar

if TYPE_CHECKING:
    from central.period import Period
    from central.profile import CoefficientProfile
    from central.storeport import StoredEvent, StoreReader

Value = float | int | bool | str
ESTIMATE_NOTE = "估算 estimate: load before the write held until it would have run anyway " \
                "(docs/savings.md)"
EVENT_LIMIT = 2_000_000  # audit writes read for one period (a year of a large institution)


class TariffBook(Protocol):
    """Electricity cost of metered intervals (central/tariff.py provides the real one)."""

    def electricity_cost(self, intervals: Iterable[tuple[float, float, float]]) -> float: ...


class EmissionFactors(Protocol):
    """CO₂ of a quantity of energy over a time span (central/carbon.py)."""

    def co2_kg(self, energy: str, quantity: float, start_ts: float, end_ts: float
               ) -> float: ...


class Kind(enum.StrEnum):
    SWITCH_OFF = "switch_off"
    SETPOINT = "setpoint"


class Mode(enum.StrEnum):
    EFFECT = "effect"  # the samples show the write's effect (a real run's audit writes)
    COUNTERFACTUAL = "counterfactual"  # the samples were recorded without the write (replay)


@dataclass(frozen=True, slots=True)
class AuditWrite:
    """One `audit.write` event (edge/rules/runtime.py)."""

    edge: str
    device: str
    ts: float  # seconds
    rule: str
    source: str
    reason: str
    point: str
    before: Value | None
    after: Value | None
    dry_run: bool = False

    @classmethod
    def from_event(cls, event: StoredEvent) -> AuditWrite | None:
        """None for a malformed payload (counted by the caller, never a crash)."""
        if event.device is None:
            return None
        try:
            data = json.loads(event.data)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("point"), str):
            return None
        before, after = data.get("before"), data.get("after")
        if not (_is_value(before) and _is_value(after)):
            return None
        return cls(event.edge, event.device, event.ts / 1000, str(data.get("rule", "")),
                   str(data.get("source", "")), str(data.get("reason", "")), data["point"],
                   before, after, data.get("dry_run") is True)

    @property
    def kind(self) -> Kind | None:
        """What the write saves, or None (an override, a switch-on, another point)."""
        if self.source != "rule":
            return None
        if self.point == "on" and self.after is False and self.before is not False:
            return Kind.SWITCH_OFF
        if self.point == "setpoint_c" and _number(self.before) is not None \
                and _number(self.after) is not None and self.before != self.after:
            return Kind.SETPOINT
        return None


def _is_value(v: object) -> bool:
    return v is None or isinstance(v, bool | int | float | str)


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return float(v)


@dataclass(frozen=True, slots=True)
class Series:
    """Recorded samples of one point, oldest first. Times are kept in ms as the store gives
    them (a year of a unit's samples is read without a conversion per row); the methods take
    and return seconds."""

    ms: Sequence[float]
    values: Sequence[Value]

    @classmethod
    def of(cls, rows: Iterable[tuple[float, Value]]) -> Series:
        """From (seconds, value) rows in any order."""
        pairs = sorted(rows, key=lambda r: r[0])
        return cls([t * 1000 for t, _ in pairs], [v for _, v in pairs])

    @classmethod
    def from_ms(cls, rows: Sequence[tuple[int, Value]]) -> Series:
        """From a store's (ms, value) rows, which come in time order (sorted if not)."""
        if not rows:
            return cls((), ())
        ms, values = zip(*rows, strict=True)
        if list(ms) != sorted(ms):
            return cls.of((t / 1000, v) for t, v in rows)
        return cls(ms, values)

    @property
    def ts(self) -> list[float]:
        """The sample times in seconds."""
        return [t / 1000 for t in self.ms]

    def __bool__(self) -> bool:
        return bool(self.ms)

    def at(self, t: float, window: float) -> Value | None:
        """The last value at or before `t`, no older than `window`."""
        i = bisect.bisect_right(self.ms, _to_ms(t)) - 1
        if i < 0 or self.ms[i] < _to_ms(t - window):
            return None
        return self.values[i]

    def first_after(self, t: float, until: float, differs_from: Value) -> float | None:
        """The first sample in (t, until) whose value differs from `differs_from`."""
        ms = self.ms
        i = bisect.bisect_right(ms, _to_ms(t))
        limit = _to_ms(until)
        while i < len(ms) and ms[i] < limit:
            if not _same(self.values[i], differs_from):
                return ms[i] / 1000
            i += 1
        return None


def _to_ms(t: float) -> float:
    """Seconds to ms, exact for times that came from whole ms (a write at 12:00:05.123 and a
    sample of the same ms compare equal)."""
    return round(t * 1000, 3)


def _same(a: Value | None, b: Value | None) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, abs_tol=0.05)


@dataclass(frozen=True, slots=True)
class Unit:
    """What the estimator knows of one switched unit."""

    building: str | None = None
    zone: str | None = None
    load: Series | None = None  # W
    rated_w: float | None = None
    points: Mapping[str, Series] = field(default_factory=dict)  # on, setpoint_c


class WorkingTime:
    """Working periods from the Chinese working calendar (调休 make-up workdays count) and
    the institution's working hours per zone (central/workinghours.py)."""

    def __init__(self, days: WorkingCalendar, tz: ZoneInfo,
                 hours: Mapping[str | None, tuple[int, int]], default: tuple[int, int]) -> None:
        self.days = days
        self.tz = tz
        self.hours = dict(hours)
        self.default = default
        self._working: dict[date, bool] = {}

    @classmethod
    def of(cls, institution: InstitutionConfig) -> WorkingTime:
        zones: dict[str | None, tuple[int, int]] = {}
        if institution.working_hours is not None:
            zones = {z: hours_for(institution, z).minutes
                     for z in institution.working_hours.zones}
        days = WorkingCalendar(workdays=institution.calendar.workdays,
                               holidays=institution.calendar.holidays)
        return cls(days, institution.institution.tz, zones, hours_for(institution).minutes)

    def _is_working(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            known = self._working[day] = self.days.is_working_day(day)
        return known

    def _at(self, day: date, minutes: int) -> float:
        return (datetime(day.year, day.month, day.day, tzinfo=self.tz)
                + timedelta(minutes=minutes)).timestamp()

    def span(self, t: float, zone: str | None) -> tuple[float, float] | None:
        """The working period holding `t`, or None outside working time."""
        day = datetime.fromtimestamp(t, self.tz).date()
        if not self._is_working(day):
            return None
        h0, h1 = self.hours.get(zone, self.default)
        start, end = self._at(day, h0), self._at(day, h1)
        return (start, end) if start <= t < end else None

    def next_start(self, t: float, zone: str | None) -> float:
        """The start of the first working period after `t` (at most a year ahead)."""
        day = datetime.fromtimestamp(t, self.tz).date()
        h0 = self.hours.get(zone, self.default)[0]
        for ahead in range(366):
            d = day + timedelta(days=ahead)
            if self._is_working(d):
                start = self._at(d, h0)
                if start > t:
                    return start
        return t + 366 * 86_400.0


@dataclass(frozen=True, slots=True)
class Avoided:
    """The estimate for one write."""

    write: AuditWrite
    kind: Kind
    building: str | None
    start: float
    end: float
    ended_by: str  # working_start, working_end, occupied, changed, unit_off, next_write, cap
    load_w: float | None
    load_from: str | None  # measured | rated | None
    share: float  # of the load avoided: 1 for a switch-off, per °C for a clamp
    kwh: float | None

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600


def hold_end(w: AuditWrite, kind: Kind, unit: Unit, occupied: Series | None,
             hours: WorkingTime, settings: SavingsConfig, mode: Mode,
             next_write: float | None) -> tuple[float, str]:
    """When the write stops saving, and why (see the module docstring)."""
    best = (w.ts + settings.max_hold_h * 3600, "cap")

    def consider(t: float | None, why: str) -> None:
        nonlocal best
        if t is not None and t < best[0]:
            best = (max(t, w.ts), why)

    consider(next_write, "next_write")
    reference = w.after if mode is Mode.EFFECT else w.before
    series = unit.points.get(w.point)
    if series is not None and reference is not None:
        consider(series.first_after(w.ts, best[0], reference), "changed")
    if kind is Kind.SWITCH_OFF:
        span = hours.span(w.ts, unit.zone)
        if span is None:
            consider(hours.next_start(w.ts, unit.zone), "working_start")
        else:
            consider(span[1], "working_end")
        if occupied is not None:
            consider(occupied.first_after(w.ts, best[0], False), "occupied")
    else:
        on = unit.points.get("on")
        if on is not None:
            consider(on.first_after(w.ts, best[0], True), "unit_off")
    return best


def estimate(writes: Sequence[AuditWrite], units: Mapping[tuple[str, str], Unit],
             occupancy: Mapping[tuple[str, str], Series], hours: WorkingTime,
             settings: SavingsConfig, mode: Mode = Mode.EFFECT) -> list[Avoided]:
    """One `Avoided` per write that switched a unit off or clamped a setpoint, in write
    order. `occupancy` is keyed by (edge, zone)."""
    ordered = sorted((w for w in writes if w.kind is not None), key=lambda w: w.ts)
    # The next write of the same unit (and point, for a switch-off), of the same run.
    nexts: dict[int, float] = {}
    last_point: dict[tuple[str, str, str, bool], int] = {}
    last_unit: dict[tuple[str, str, bool], int] = {}
    for i in range(len(ordered) - 1, -1, -1):
        w = ordered[i]
        same_point = last_point.get((w.edge, w.device, w.point, w.dry_run))
        same_unit = last_unit.get((w.edge, w.device, w.dry_run))
        j = same_point if w.kind is Kind.SWITCH_OFF else same_unit
        if j is not None:
            nexts[i] = ordered[j].ts
        last_point[(w.edge, w.device, w.point, w.dry_run)] = i
        last_unit[(w.edge, w.device, w.dry_run)] = i
    empty = Unit()
    out: list[Avoided] = []
    for i, w in enumerate(ordered):
        kind = w.kind
        assert kind is not None
        unit = units.get((w.edge, w.device), empty)
        occupied = occupancy.get((w.edge, unit.zone)) if unit.zone is not None else None
        end, why = hold_end(w, kind, unit, occupied, hours, settings, mode, nexts.get(i))
        load_w: float | None = None
        load_from: str | None = None
        if unit.load is not None:
            load_w = _number(unit.load.at(w.ts, settings.load_window_s))
            load_from = "measured" if load_w is not None else None
        if load_w is None and unit.rated_w is not None:
            load_w, load_from = unit.rated_w, "rated"
        if kind is Kind.SWITCH_OFF:
            share = 1.0
        else:
            delta = abs((_number(w.after) or 0.0) - (_number(w.before) or 0.0))
            share = min(1.0, settings.setpoint_share_per_c * delta)
        kwh = None if load_w is None else max(0.0, load_w) * share * (end - w.ts) / 3.6e6
        out.append(Avoided(w, kind, unit.building, w.ts, end, why, load_w, load_from,
                           share, kwh))
    return out


# -- roll-up ---------------------------------------------------------------------------


@dataclass(slots=True)
class Totals:
    writes: int = 0
    without_load: int = 0  # writes with no load to estimate from (no figure, never 0)
    kwh: float = 0.0
    kgce: float = 0.0
    cost: float | None = None  # None: no tariff
    co2_kg: float | None = None  # None: no emission factors
    hours: float = 0.0

    def add(self, item: Avoided, kgce_per_kwh: float, cost: float | None,
            co2: float | None) -> None:
        self.writes += 1
        self.hours += item.hours
        if item.kwh is None:
            self.without_load += 1
            return
        self.kwh += item.kwh
        self.kgce += item.kwh * kgce_per_kwh
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
        if co2 is not None:
            self.co2_kg = (self.co2_kg or 0.0) + co2

    @property
    def estimated(self) -> int:
        return self.writes - self.without_load

    def as_dict(self) -> dict[str, Any]:
        some = self.estimated > 0
        return {"writes": self.writes, "estimated": self.estimated,
                "without_load": self.without_load, "hours": round(self.hours, 2),
                "kwh": round(self.kwh, 3) if some else None,
                "kgce": round(self.kgce, 3) if some else None,
                "cost": None if self.cost is None else round(self.cost, 2),
                "co2_kg": None if self.co2_kg is None else round(self.co2_kg, 3)}


@dataclass(slots=True)
class SavingsReport:
    """Estimated savings of one period: totals, per rule, per building, per month (local
    `YYYY-MM`), and the dry-run writes apart. `malformed` counts audit events that could not
    be read."""

    total: Totals = field(default_factory=Totals)
    per_rule: dict[str, Totals] = field(default_factory=dict)
    per_building: dict[str, Totals] = field(default_factory=dict)
    per_month: dict[str, Totals] = field(default_factory=dict)
    dry_run: Totals = field(default_factory=Totals)
    items: list[Avoided] = field(default_factory=list)
    malformed: int = 0
    tariff: bool = False
    carbon: bool = False

    def as_dict(self, *, items: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "estimate": True, "note": ESTIMATE_NOTE, "unit": "kWh",
            "total": self.total.as_dict(),
            "per_rule": {k: v.as_dict() for k, v in sorted(self.per_rule.items())},
            "per_building": {k: v.as_dict() for k, v in sorted(self.per_building.items())},
            "per_month": {k: v.as_dict() for k, v in sorted(self.per_month.items())},
            "dry_run": self.dry_run.as_dict(), "malformed_events": self.malformed,
            "cost_available": self.tariff, "co2_available": self.carbon}
        if items:
            out["items"] = [item_dict(i) for i in self.items]
        return out


def item_dict(a: Avoided) -> dict[str, Any]:
    w = a.write
    return {"edge": w.edge, "device": w.device, "ts": w.ts, "rule": w.rule,
            "point": w.point, "before": w.before, "after": w.after, "dry_run": w.dry_run,
            "kind": a.kind.value, "building": a.building, "until": a.end,
            "ended_by": a.ended_by, "hours": round(a.hours, 3),
            "load_w": None if a.load_w is None else round(a.load_w, 1),
            "load_from": a.load_from, "share": round(a.share, 4),
            "kwh": None if a.kwh is None else round(a.kwh, 4)}


def hourly(a: Avoided) -> list[tuple[float, float, float]]:
    """The avoided kWh spread evenly over the hold, split at whole hours (for time-of-use
    tariffs): (start_ts, end_ts, kWh)."""
    if a.kwh is None or a.end <= a.start:
        return []
    out = []
    t = a.start
    while t < a.end:
        nxt = min(a.end, (math.floor(t / 3600) + 1) * 3600)
        out.append((t, nxt, a.kwh * (nxt - t) / (a.end - a.start)))
        t = nxt
    return out


def roll_up(items: Sequence[Avoided], *, kgce_per_kwh: float, tz: ZoneInfo,
            tariff: TariffBook | None = None, carbon: EmissionFactors | None = None,
            malformed: int = 0) -> SavingsReport:
    report = SavingsReport(items=list(items), malformed=malformed,
                           tariff=tariff is not None, carbon=carbon is not None)
    for a in items:
        cost = co2 = None
        if a.kwh is not None and tariff is not None:
            try:
                cost = tariff.electricity_cost(hourly(a))
            except CentralError:  # no tariff version in force on that day: no figure
                cost = None
        if a.kwh is not None and carbon is not None:
            try:
                co2 = carbon.co2_kg(EnergyType.ELECTRICITY.value, a.kwh, a.start, a.end)
            except CentralError:  # no emission factor valid then: no figure, never 0
                co2 = None
        if a.write.dry_run:
            report.dry_run.add(a, kgce_per_kwh, cost, co2)
            continue
        month = datetime.fromtimestamp(a.start, tz).strftime("%Y-%m")
        for bucket in (report.total,
                       report.per_rule.setdefault(a.write.rule, Totals()),
                       report.per_building.setdefault(a.building or "—", Totals()),
                       report.per_month.setdefault(month, Totals())):
            bucket.add(a, kgce_per_kwh, cost, co2)
    return report


# -- assembly through the tenant reader ------------------------------------------------


def units_of(institution: InstitutionConfig) -> dict[tuple[str, str], tuple[str | None,
                                                                          str | None]]:
    """(edge, device) → (building, zone) for every unit the institution config places."""
    out: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for m in institution.meters:
        out.setdefault((m.edge, m.device), (m.building, m.zone))
    for p in institution.plugs:
        out[(p.edge, p.device)] = (p.building, None)
    for a in institution.ac_units:
        out[(a.edge, a.device)] = (a.building, a.zone)
    return out


def read_units(reader: StoreReader, institution: InstitutionConfig,
               wanted: Iterable[tuple[str, str]], start: float, end: float,
               settings: SavingsConfig, clamped: Iterable[tuple[str, str]] = ()
               ) -> dict[tuple[str, str], Unit]:
    """Each wanted unit's building, zone, load series and `on` series over
    [start − load window, end), and the `setpoint_c` series of the `clamped` ones."""
    clamped = set(clamped)
    placed = units_of(institution)
    plugs = {(p.edge, p.device): p.power_point for p in institution.plugs}
    s_ms, e_ms = round((start - settings.load_window_s) * 1000), round(end * 1000)
    out: dict[tuple[str, str], Unit] = {}
    for edge, device in sorted(set(wanted)):
        source = settings.load_of(edge, device)
        building, zone = placed.get((edge, device), (None, None))
        point = plugs.get((edge, device), source.point) if source.meter is None else source.point
        load_key = MeterKey(edge, source.meter or device, point)
        load = Series.from_ms(reader.sample_series(load_key, s_ms, e_ms))
        points = {p: Series.from_ms(reader.sample_series(MeterKey(edge, device, p), s_ms,
                                                         e_ms))
                  for p in ("on", "setpoint_c") if p == "on" or (edge, device) in clamped}
        out[(edge, device)] = Unit(building, zone or source.zone, load if load else None,
                                   source.rated_w,
                                   {p: s for p, s in points.items() if s})
    return out


def windows(times: Iterable[float], before: float, after: float) -> list[tuple[float, float]]:
    """[t − before, t + after] around each time, overlapping ones merged, in order."""
    out: list[tuple[float, float]] = []
    for t in sorted(times):
        lo, hi = t - before, t + after
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _read_windows(reader: StoreReader, key: MeterKey, spans: Sequence[tuple[float, float]]
                  ) -> Series:
    rows: list[tuple[int, Value]] = []
    for lo, hi in spans:
        for row in reader.sample_series(key, round(lo * 1000), round(hi * 1000) + 1):
            if not rows or row[0] > rows[-1][0]:  # each window repeats the sample before it
                rows.append(row)
    return Series.from_ms(rows)


def read_unit(reader: StoreReader, institution: InstitutionConfig, edge: str, device: str,
              writes: Sequence[AuditWrite], settings: SavingsConfig) -> Unit:
    """One unit's building, zone and the samples its writes need, read only around them:
    its load in the `load_window_s` before each write, its `on` (and, for clamps,
    `setpoint_c`) from then until the cap after it."""
    placed = units_of(institution).get((edge, device), (None, None))
    plugs = {(p.edge, p.device): p.power_point for p in institution.plugs}
    source = settings.load_of(edge, device)
    point = plugs.get((edge, device), source.point) if source.meter is None else source.point
    times = [w.ts for w in writes]
    load = _read_windows(reader, MeterKey(edge, source.meter or device, point),
                         windows(times, settings.load_window_s, 0.0))
    around = windows(times, settings.load_window_s, settings.max_hold_h * 3600)
    points = {p: _read_windows(reader, MeterKey(edge, device, p), around)
              for p in ("on", "setpoint_c")
              if p == "on" or any(w.kind is Kind.SETPOINT for w in writes)}
    return Unit(placed[0], placed[1] or source.zone, load if load else None, source.rated_w,
                {p: s for p, s in points.items() if s})


def read_occupancy(reader: StoreReader, settings: SavingsConfig, start: float, end: float
                   ) -> dict[tuple[str, str], Series]:
    """(edge, zone) → the zone's occupancy: occupied while any of its sensors says so."""
    by_zone: dict[tuple[str, str], list[tuple[float, Value]]] = {}
    for sensor in settings.occupancy:
        rows = reader.sample_series(MeterKey(sensor.edge, sensor.device, sensor.point),
                                    round(start * 1000), round(end * 1000))
        by_zone.setdefault((sensor.edge, sensor.zone), []).extend(
            (t / 1000, v is True) for t, v in rows)
    return {k: Series.of(v) for k, v in by_zone.items()}


def audit_writes(reader: StoreReader, start: float, end: float
                 ) -> tuple[list[AuditWrite], int]:
    """The audit writes of [start, end) of the reader's edges, and how many were malformed."""
    events = reader.events(None, names=["audit.write"], start_ms=round(start * 1000),
                           end_ms=round(end * 1000), limit=EVENT_LIMIT, newest_first=False)
    writes: list[AuditWrite] = []
    bad = 0
    for e in events:
        w = AuditWrite.from_event(e)
        if w is None:
            bad += 1
        else:
            writes.append(w)
    return writes, bad


def pricing(institution: InstitutionConfig
            ) -> tuple[TariffBook | None, EmissionFactors | None]:
    """The institution's tariff (None without a `tariff:` section, docs/cost.md) and its
    emission factors (docs/carbon.md), to price and weigh the avoided kWh."""
    from central.carbon import EmissionFactors as Factors
    from central.cost import tariff_book

    return tariff_book(institution), Factors.for_institution(institution)


def savings_for(reader: StoreReader, institution: InstitutionConfig,
                profile: CoefficientProfile, period: Period, *,
                tariff: TariffBook | None = None, carbon: EmissionFactors | None = None,
                priced: bool = True) -> SavingsReport:
    """The estimated savings of the audit writes in `period` (read through the institution's
    tenant reader). `priced`: cost and CO₂ by the institution's own tariff and emission
    factors where `tariff` / `carbon` are not given."""
    if priced and (tariff is None or carbon is None):
        own_tariff, own_carbon = pricing(institution)
        tariff = tariff or own_tariff
        carbon = carbon or own_carbon
    settings = institution.savings
    writes, bad = audit_writes(reader, period.start, period.end)
    by_unit: dict[tuple[str, str], list[AuditWrite]] = {}
    for w in writes:
        if w.kind is not None:
            by_unit.setdefault((w.edge, w.device), []).append(w)
    horizon = period.end + settings.max_hold_h * 3600
    occupancy = read_occupancy(reader, settings, period.start, horizon) if by_unit else {}
    hours = WorkingTime.of(institution)
    items: list[Avoided] = []
    # One unit at a time: its series are read, used and dropped (a year of a large
    # institution never holds every series at once).
    for key, unit_writes in sorted(by_unit.items()):
        unit = read_unit(reader, institution, *key, unit_writes, settings)
        items += estimate(unit_writes, {key: unit}, occupancy, hours, settings)
    items.sort(key=lambda a: a.start)
    kgce = profile.kgce_per_unit(EnergyType.ELECTRICITY, "kWh")
    return roll_up(items, kgce_per_kwh=kgce, tz=institution.institution.tz, tariff=tariff,
                   carbon=carbon, malformed=bad)
