"""Tariffs as data: what a kWh, a m³ of water or of gas costs, and when.

A tariff file (central/codes/tariffs/<id>.yaml, or inline in the institution file's
`tariff:` section) holds versions of each energy's tariff with validity dates, so a price
change in the middle of a month prices every interval by the tariff in force on its local day:

    electricity   time of use (分时电价): 尖峰 sharp / 高峰 peak / 平段 flat / 低谷 valley /
                  深谷 deep valley; a 24 h period table per season (months) and day type
                  (working day, rest day on the Chinese working calendar with 调休);
                  prices per period, per-kWh surcharges (政府性基金及附加), fixed charges
                  per month or per kVA and month (基本电费)
    water, gas    tiered (阶梯) prices by the cumulative quantity of the local month or year,
                  and a fixed charge per month

Why it looks like this:

- Everything is validated before any figure is computed, and every error names the field
  and the value: overlapping or non-contiguous validity, a period table with a gap or an
  overlap (`12:00–13:00 not covered`), a period without a price, months of the year in no
  season or in two, tiers out of order.
- `TariffBook` is the one pricing engine (cost figures, the bill check, the savings
  estimates call it). An interval that crosses a period boundary is split in proportion to
  its overlap, like every other proration in greenguard. An interval on a day no tariff
  version covers is *unpriced*, never priced at 0: `electricity_cost` raises `TariffError`
  for it, `electricity_split` counts it in `unpriced_kwh`.
- Tiers are a function of a whole basis period (month or year) of one account: the cost of
  part of it is the difference of the cost up to its end and up to its start.
"""

from __future__ import annotations

import bisect
import calendar as _calendar
import enum
import functools
import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from central.energy import EnergyType
from central.errors import CentralError, ConfigError
from central.validation import problems_from, read_yaml

HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
Price = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
TariffId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
DAY_MIN = 1440


class TariffError(CentralError):
    """A quantity cannot be priced: no tariff version is in force on its day."""

    def __init__(self, energy: str, day: date, quantity: float) -> None:
        self.energy, self.day, self.quantity = energy, day, quantity
        super().__init__(f"{energy}: no tariff in force on {day.isoformat()} "
                         f"({quantity:g} unpriced)")


class TouPeriod(enum.StrEnum):
    SHARP = "sharp"  # 尖峰
    PEAK = "peak"  # 高峰
    FLAT = "flat"  # 平段
    VALLEY = "valley"  # 低谷
    DEEP_VALLEY = "deep_valley"  # 深谷


PERIOD_ZH: Mapping[TouPeriod, str] = {
    TouPeriod.SHARP: "尖峰", TouPeriod.PEAK: "高峰", TouPeriod.FLAT: "平段",
    TouPeriod.VALLEY: "低谷", TouPeriod.DEEP_VALLEY: "深谷"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


class Span(_Model):
    """[start, end) of local time in one period; an end before the start wraps over
    midnight (22:00–08:00)."""

    start: HHMM
    end: HHMM
    period: TouPeriod

    def ranges(self) -> list[tuple[int, int]]:
        a, b = _minutes(self.start), _minutes(self.end)
        if a == b:
            raise ValueError(f"span {self.start}–{self.end} is empty")
        return [(a, b)] if a < b else [(a, DAY_MIN), (0, b)]


def _tiling_problems(spans: Sequence[Span]) -> list[str]:
    """The 24 h table must cover every minute once: gaps and overlaps as ranges."""
    owner: list[list[int]] = [[] for _ in range(DAY_MIN)]
    problems: list[str] = []
    for i, s in enumerate(spans):
        try:
            ranges = s.ranges()
        except ValueError as exc:
            problems.append(f"[{i}]: {exc}")
            continue
        for a, b in ranges:
            for m in range(a, b):
                owner[m].append(i)

    def runs(pred: Callable[[list[int]], bool]) -> list[tuple[int, int, list[int]]]:
        out: list[tuple[int, int, list[int]]] = []
        m = 0
        while m < DAY_MIN:
            if pred(owner[m]):
                n = m
                while n < DAY_MIN and pred(owner[n]) and owner[n] == owner[m]:
                    n += 1
                out.append((m, n, owner[m]))
                m = n
            else:
                m += 1
        return out

    for a, b, _ in runs(lambda o: not o):
        problems.append(f"{_hhmm(a)}–{_hhmm(b)} not covered by any span")
    for a, b, who in runs(lambda o: len(o) > 1):
        problems.append(f"{_hhmm(a)}–{_hhmm(b)} covered twice (spans "
                        f"{', '.join(str(i) for i in who)})")
    return problems


class Season(_Model):
    """The period tables of some months; `rest_day` None: rest days use `working_day`."""

    name: Annotated[str, Field(min_length=1, max_length=40)]
    months: Annotated[list[Annotated[int, Field(ge=1, le=12)]], Field(min_length=1)]
    working_day: Annotated[list[Span], Field(min_length=1)]
    rest_day: list[Span] | None = None
    prices: dict[TouPeriod, Price] = Field(default_factory=dict)  # overrides of the version's

    @model_validator(mode="after")
    def _tables(self) -> Season:
        problems = [f"working_day{p}" if p.startswith("[") else f"working_day: {p}"
                    for p in _tiling_problems(self.working_day)]
        if self.rest_day is not None:
            problems += [f"rest_day{p}" if p.startswith("[") else f"rest_day: {p}"
                         for p in _tiling_problems(self.rest_day)]
        if problems:
            raise ValueError(f"season {self.name!r}: " + "; ".join(problems))
        return self

    def periods(self) -> set[TouPeriod]:
        return {s.period for s in [*self.working_day, *(self.rest_day or [])]}


class FixedCharge(_Model):
    """A charge per month (`yuan_per_month`) or per kVA of contracted capacity and month
    (`yuan_per_kva_month`, 基本电费 of a two-part tariff; needs the institution's
    `capacity_kva`). Partial months count by their share of days."""

    name: Annotated[str, Field(min_length=1, max_length=60)]
    yuan_per_month: Price | None = None
    yuan_per_kva_month: Price | None = None

    @model_validator(mode="after")
    def _one(self) -> FixedCharge:
        if (self.yuan_per_month is None) == (self.yuan_per_kva_month is None):
            raise ValueError(f"fixed charge {self.name!r}: give exactly one of "
                             "yuan_per_month and yuan_per_kva_month")
        return self


class _Version(_Model):
    valid_from: date
    valid_to: date | None = None  # the last day it is in force (inclusive); None: open

    @model_validator(mode="after")
    def _dates(self) -> _Version:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from "
                             f"{self.valid_from}")
        return self


class ElectricityVersion(_Version):
    """One time-of-use tariff in force from `valid_from` to `valid_to`; prices in yuan/kWh."""

    prices: dict[TouPeriod, Price]
    surcharges_per_kwh: dict[str, Price] = Field(default_factory=dict)  # 政府性基金及附加 …
    seasons: Annotated[list[Season], Field(min_length=1)]
    fixed: list[FixedCharge] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ElectricityVersion:
        seen: dict[int, str] = {}
        problems: list[str] = []
        for s in self.seasons:
            for m in s.months:
                if m in seen:
                    problems.append(f"month {m} is in seasons {seen[m]!r} and {s.name!r}")
                seen[m] = s.name
            unpriced = sorted(p.value for p in s.periods() - set(self.prices) - set(s.prices))
            if unpriced:
                problems.append(f"season {s.name!r} uses period(s) {', '.join(unpriced)} "
                                "without a price")
        missing = [m for m in range(1, 13) if m not in seen]
        if missing:
            problems.append(f"months {missing} are in no season")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def season_of(self, month: int) -> Season:
        return next(s for s in self.seasons if month in s.months)

    def price(self, season: Season, period: TouPeriod) -> float:
        base = season.prices.get(period, self.prices.get(period))
        assert base is not None  # checked by _complete
        return base + math.fsum(self.surcharges_per_kwh.values())


class Tier(_Model):
    upto: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None  # None: no limit
    price: Price


class TieredVersion(_Version):
    """Tiered prices (yuan per unit) by the cumulative quantity of the local month or year."""

    unit: Literal["m3"] = "m3"
    basis: Literal["month", "year"] = "month"
    tiers: Annotated[list[Tier], Field(min_length=1)]
    fixed_yuan_per_month: Price = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> TieredVersion:
        limits = [t.upto for t in self.tiers]
        if limits[-1] is not None:
            raise ValueError(f"the last tier must have no upto (got upto {limits[-1]})")
        bounded = [x for x in limits[:-1] if x is not None]
        if len(bounded) != len(limits) - 1:
            raise ValueError("only the last tier may have no upto")
        for a, b in itertools.pairwise(bounded):
            if b <= a:
                raise ValueError(f"tier limits must increase: upto {b} follows upto {a}")
        return self

    def cost(self, lo: float, hi: float) -> float:
        """Cost of the quantity between cumulative `lo` and `hi` of one basis period."""
        out = 0.0
        floor = 0.0
        for t in self.tiers:
            top = math.inf if t.upto is None else t.upto
            part = max(0.0, min(hi, top) - max(lo, floor))
            out += part * t.price
            floor = top
        return out


def _contiguity(name: str, versions: Sequence[_Version]) -> list[tuple[str, Any, str]]:
    problems: list[tuple[str, Any, str]] = []
    for i in range(1, len(versions)):
        prev, cur = versions[i - 1], versions[i]
        where = f"{name}[{i}].valid_from"
        if prev.valid_to is None:
            problems.append((where, cur.valid_from.isoformat(),
                             f"{name}[{i - 1}] has no valid_to, so it is in force for ever; "
                             f"it must end the day before {cur.valid_from}"))
        elif cur.valid_from <= prev.valid_to:
            problems.append((where, cur.valid_from.isoformat(),
                             f"overlaps {name}[{i - 1}] (in force to {prev.valid_to}); "
                             "versions must be in order and must not overlap"))
        elif cur.valid_from != prev.valid_to + timedelta(days=1):
            problems.append((where, cur.valid_from.isoformat(),
                             f"leaves a gap after {name}[{i - 1}] (in force to "
                             f"{prev.valid_to}): days without any tariff"))
    return problems


class TariffSet(_Model):
    """What one file (or the institution's inline section) says, every energy optional."""

    id: TariffId | None = None
    name: Annotated[str, Field(max_length=200)] = ""
    region: Annotated[str, Field(max_length=100)] = ""
    source: Annotated[str, Field(max_length=500)] = ""  # the price notice it follows
    currency: Literal["CNY"] = "CNY"
    electricity: list[ElectricityVersion] = Field(default_factory=list)
    water: list[TieredVersion] = Field(default_factory=list)
    natural_gas: list[TieredVersion] = Field(default_factory=list)

    @model_validator(mode="after")
    def _versions(self) -> TariffSet:
        from pydantic_core import PydanticCustomError

        problems = [*_contiguity("electricity", self.electricity),
                    *_contiguity("water", self.water),
                    *_contiguity("natural_gas", self.natural_gas)]
        if problems:
            summary = "; ".join(f"{f}: {r} (got {v!r})" for f, v, r in problems)
            raise PydanticCustomError("cross_field", "{summary}",
                                      {"summary": summary, "problems": problems})
        return self

    def tiered(self, energy: EnergyType) -> list[TieredVersion]:
        if energy is EnergyType.WATER:
            return self.water
        if energy is EnergyType.NATURAL_GAS:
            return self.natural_gas
        return []


# -- shipped tariffs -------------------------------------------------------------------


def _tariff_dir() -> Any:
    return resources.files("central").joinpath("codes", "tariffs")


@functools.cache
def shipped_ids() -> tuple[str, ...]:
    return tuple(sorted(p.name.removesuffix(".yaml") for p in _tariff_dir().iterdir()
                        if p.name.endswith(".yaml")))


@functools.cache
def shipped(tariff_id: str) -> TariffSet:
    """A tariff file shipped in central/codes/tariffs, validated; `ConfigError` names the
    known ids when `tariff_id` is not one."""
    if tariff_id not in shipped_ids():
        raise ConfigError("central/codes/tariffs", [
            ("tariff.use", tariff_id, f"unknown tariff (known: {', '.join(shipped_ids())})")])
    return parse_tariffs(_read(tariff_id), f"central/codes/tariffs/{tariff_id}.yaml")


def _read(tariff_id: str) -> Any:
    with resources.as_file(_tariff_dir().joinpath(f"{tariff_id}.yaml")) as path:
        return read_yaml(path)


def parse_tariffs(data: Any, source: str) -> TariffSet:
    try:
        return TariffSet.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None


class TariffConfig(_Model):
    """The institution file's `tariff:` section: a shipped tariff by id (`use`) and/or
    inline versions per energy (an inline list replaces the shipped one of that energy)."""

    use: str | None = None
    capacity_kva: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    bill_tolerance_pct: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] = 3.0
    # Day types follow the official calendar (holidays with 调休), not the institution's own
    # days off (a school vacation is a working day to the utility); these add official days
    # the `holidays` package does not know yet (next year's 调休 before its release).
    workdays: list[date] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)
    electricity: list[ElectricityVersion] | None = None
    water: list[TieredVersion] | None = None
    natural_gas: list[TieredVersion] | None = None

    @model_validator(mode="after")
    def _resolves(self) -> TariffConfig:
        from pydantic_core import PydanticCustomError

        if self.use is not None and self.use not in shipped_ids():
            raise ValueError(f"use: unknown tariff {self.use!r} (known: "
                             f"{', '.join(shipped_ids())})")
        if self.use is None and self.electricity is None and self.water is None \
                and self.natural_gas is None:
            raise ValueError("give `use: <tariff id>` or inline electricity / water / "
                             "natural_gas versions")
        problems = [(f"tariff.{f}", v, r) for name in ("electricity", "water", "natural_gas")
                    if getattr(self, name) is not None
                    for f, v, r in _contiguity(name, getattr(self, name))]
        if problems:
            summary = "; ".join(f"{f}: {r} (got {v!r})" for f, v, r in problems)
            raise PydanticCustomError("cross_field", "{summary}",
                                      {"summary": summary, "problems": problems})
        return self

    def resolved(self) -> TariffSet:
        """The shipped tariff with the inline lists in place of its own."""
        base = shipped(self.use) if self.use is not None else TariffSet()
        update = {k: v for k, v in (("electricity", self.electricity), ("water", self.water),
                                    ("natural_gas", self.natural_gas)) if v is not None}
        return base.model_copy(update=update) if update else base


# -- pricing ---------------------------------------------------------------------------


@dataclass
class ElectricitySplit:
    """Energy and cost per period; `unpriced_kwh` fell on days without a tariff."""

    kwh: float = 0.0
    yuan: float = 0.0
    unpriced_kwh: float = 0.0
    by_period: dict[TouPeriod, list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))  # period → [kWh, yuan]
    unpriced_days: set[date] = field(default_factory=set)


@dataclass
class TieredSplit:
    quantity: float = 0.0
    yuan: float = 0.0
    unpriced: float = 0.0
    unpriced_days: set[date] = field(default_factory=set)


Segment = tuple[float, float, float, TouPeriod]  # start, end (POSIX s), yuan/kWh, period


class TariffBook:
    """Prices quantities by the tariffs of one institution: its time zone, its working
    calendar (rest-day tables apply on days it says are not working days) and its
    contracted capacity (per-kVA charges)."""

    def __init__(self, tariffs: TariffSet, *, tz: ZoneInfo,
                 is_working_day: Callable[[date], bool],
                 capacity_kva: float | None = None) -> None:
        self.tariffs = tariffs
        self.tz = tz
        self.is_working_day = is_working_day
        self.capacity_kva = capacity_kva
        self._elec_from = [v.valid_from.toordinal() for v in tariffs.electricity]
        self._days: dict[int, tuple[list[float], list[Segment]] | None] = {}
        self._slot_day: dict[int, int] = {}
        self._midnights: dict[int, float] = {}

    # -- days --------------------------------------------------------------------------

    def _local_day(self, ts: float) -> int:
        slot = int(ts // 900)
        day = self._slot_day.get(slot)
        if day is None:
            if len(self._slot_day) > 200_000:
                self._slot_day.clear()
            day = datetime.fromtimestamp(slot * 900, self.tz).date().toordinal()
            self._slot_day[slot] = day
        return day

    def _midnight(self, ordinal: int) -> float:
        ts = self._midnights.get(ordinal)
        if ts is None:
            d = date.fromordinal(ordinal)
            ts = datetime(d.year, d.month, d.day, tzinfo=self.tz).timestamp()
            if len(self._midnights) > 20_000:
                self._midnights.clear()
            self._midnights[ordinal] = ts
        return ts

    @staticmethod
    def _version(versions: Sequence[_Version], starts: Sequence[int], ordinal: int
                 ) -> Any | None:
        i = bisect.bisect_right(starts, ordinal) - 1
        if i < 0:
            return None
        v = versions[i]
        if v.valid_to is not None and ordinal > v.valid_to.toordinal():
            return None
        return v

    def electricity_version(self, day: date) -> ElectricityVersion | None:
        found: ElectricityVersion | None = self._version(
            self.tariffs.electricity, self._elec_from, day.toordinal())
        return found

    def _schedule(self, ordinal: int) -> tuple[list[float], list[Segment]] | None:
        """The day's periods as (starts, segments) in POSIX seconds; None: no tariff."""
        if ordinal in self._days:
            return self._days[ordinal]
        day = date.fromordinal(ordinal)
        version = self.electricity_version(day)
        out: tuple[list[float], list[Segment]] | None = None
        if version is not None:
            season = version.season_of(day.month)
            table = season.working_day
            if season.rest_day is not None and not self.is_working_day(day):
                table = season.rest_day
            base = datetime(day.year, day.month, day.day, tzinfo=self.tz)
            parts = sorted((a, b, s.period) for s in table for a, b in s.ranges())
            segs: list[Segment] = []
            for a, b, period in parts:
                segs.append(((base + timedelta(minutes=a)).timestamp(),
                             (base + timedelta(minutes=b)).timestamp(),
                             version.price(season, period), period))
            out = ([s[0] for s in segs], segs)
        if len(self._days) > 5000:
            self._days.clear()
        self._days[ordinal] = out
        return out

    def hour_aligned(self) -> bool:
        """Every period boundary of every version on a whole hour (then hourly totals price
        exactly, in a zone whose offset is whole hours)."""
        return all(_minutes(t) % 60 == 0 for v in self.tariffs.electricity
                   for s in v.seasons for sp in [*s.working_day, *(s.rest_day or [])]
                   for t in (sp.start, sp.end))

    # -- electricity ---------------------------------------------------------------------

    def electricity_split(self, intervals: Iterable[tuple[float, float, float]],
                          into: ElectricitySplit | None = None) -> ElectricitySplit:
        """kWh and yuan per period of (start, end, kWh) intervals in POSIX seconds; an
        interval crossing a period (or day) boundary is split in proportion to its overlap;
        a zero-length interval belongs to the period of its instant."""
        acc = into if into is not None else ElectricitySplit()
        by_period = acc.by_period
        kwh = yuan = unpriced = 0.0
        for s, e, q in intervals:
            if not q:
                continue
            kwh += q
            span = e - s
            t = s
            while True:
                ordinal = self._local_day(t)
                sched = self._schedule(ordinal)
                if sched is None:
                    nxt = self._midnight(ordinal + 1)
                    part = q if span <= 0 else q * (min(nxt, e) - t) / span
                    unpriced += part
                    acc.unpriced_days.add(date.fromordinal(ordinal))
                    if nxt >= e or span <= 0:
                        break
                    t = nxt
                    continue
                starts, segs = sched
                i = max(0, bisect.bisect_right(starts, t) - 1)
                seg = segs[i]
                while seg[1] <= t and i + 1 < len(segs):  # a DST day's odd edge
                    i += 1
                    seg = segs[i]
                upto = min(seg[1], e)
                part = q if span <= 0 else q * (upto - t) / span
                cell = by_period[seg[3]]
                cell[0] += part
                cell[1] += part * seg[2]
                yuan += part * seg[2]
                if upto >= e or span <= 0 or upto <= t:
                    break
                t = upto
        acc.kwh += kwh
        acc.yuan += yuan
        acc.unpriced_kwh += unpriced
        return acc

    def electricity_cost(self, intervals: Iterable[tuple[float, float, float]]) -> float:
        """Yuan of the energy of (start_ts, end_ts, kWh) intervals, Unix seconds, by the
        time-of-use tariff in force (fixed charges not included: `fixed_cost`). Raises
        `TariffError` when part of it falls on a day no tariff version covers."""
        split = self.electricity_split(intervals)
        if split.unpriced_kwh > 0:
            raise TariffError("electricity", min(split.unpriced_days), split.unpriced_kwh)
        return split.yuan

    def fixed_cost(self, start: float, end: float) -> tuple[float, list[str]]:
        """Fixed charges of [start, end): each month's charge times the share of its days
        in the window; and the charges not applied (per kVA without `capacity_kva`)."""
        yuan = 0.0
        skipped: set[str] = set()
        if end <= start:
            return 0.0, []
        first = self._local_day(start)
        last = self._local_day(end - 1e-6)
        for ordinal in range(first, last + 1):
            d = date.fromordinal(ordinal)
            version = self.electricity_version(d)
            if version is None or not version.fixed:
                continue
            lo, hi = self._midnight(ordinal), self._midnight(ordinal + 1)
            share = (min(hi, end) - max(lo, start)) / (hi - lo)
            month_days = _calendar.monthrange(d.year, d.month)[1]
            for charge in version.fixed:
                if charge.yuan_per_month is not None:
                    yuan += charge.yuan_per_month * share / month_days
                elif self.capacity_kva is not None and charge.yuan_per_kva_month is not None:
                    yuan += charge.yuan_per_kva_month * self.capacity_kva * share / month_days
                else:
                    skipped.add(charge.name)
        return yuan, sorted(skipped)

    # -- water and gas -------------------------------------------------------------------

    def _basis_key(self, version: TieredVersion, d: date) -> tuple[int, int]:
        return (d.year, d.month if version.basis == "month" else 0)

    def basis_start(self, energy: EnergyType, ts: float) -> float | None:
        """Start of the basis period (local month or year) holding `ts`, by the version in
        force then; None without one."""
        versions = self.tariffs.tiered(energy)
        d = date.fromordinal(self._local_day(ts))
        v: TieredVersion | None = self._version(
            versions, [x.valid_from.toordinal() for x in versions], d.toordinal())
        if v is None:
            return None
        first = date(d.year, d.month if v.basis == "month" else 1, 1)
        return self._midnight(first.toordinal())

    def tiered_split(self, energy: EnergyType, intervals: Iterable[tuple[float, float, float]],
                     *, fixed: bool = True) -> TieredSplit:
        """Yuan of water or gas (start, end, quantity) intervals, each spread evenly over its
        time and split by local day; tiers apply to the cumulative quantity of each basis
        period (month or year) from the first interval given, in time order; a version
        change inside a basis period keeps counting its quantity. With `fixed`, the
        monthly fixed charge of the days the intervals span is added."""
        versions = self.tariffs.tiered(energy)
        starts = [v.valid_from.toordinal() for v in versions]
        # Quantity per local day: within a day one version applies and tier costs add up
        # (cost(a, b) + cost(b, c) = cost(a, c)), so the order inside a day is irrelevant.
        per_day: dict[int, float] = defaultdict(float)
        out = TieredSplit()
        lo_ts, hi_ts = math.inf, -math.inf
        for s, e, q in intervals:
            if s < lo_ts:
                lo_ts = s
            if e > hi_ts:
                hi_ts = e
            if not q:
                continue
            out.quantity += q
            ordinal = self._local_day(s)
            nxt = self._midnight(ordinal + 1)
            if e <= nxt or e <= s:  # the usual case: inside one local day
                per_day[ordinal] += q
                continue
            span, t = e - s, s
            while True:
                upto = min(nxt, e)
                per_day[ordinal] += q * (upto - t) / span
                if upto >= e:
                    break
                t, ordinal = upto, ordinal + 1
                nxt = self._midnight(ordinal + 1)
        cum: dict[tuple[int, int], float] = defaultdict(float)
        for ordinal in sorted(per_day):
            part = per_day[ordinal]
            d = date.fromordinal(ordinal)
            v: TieredVersion | None = self._version(versions, starts, ordinal)
            if v is None:
                out.unpriced += part
                out.unpriced_days.add(d)
                continue
            key = self._basis_key(v, d)
            before = cum[key]
            cum[key] = before + part
            out.yuan += v.cost(before, before + part)
        if fixed and hi_ts > lo_ts:
            for ordinal in range(self._local_day(lo_ts), self._local_day(hi_ts - 1e-6) + 1):
                fv: TieredVersion | None = self._version(versions, starts, ordinal)
                if fv is None or not fv.fixed_yuan_per_month:
                    continue
                d = date.fromordinal(ordinal)
                a, b = self._midnight(ordinal), self._midnight(ordinal + 1)
                share = (min(b, hi_ts) - max(a, lo_ts)) / (b - a)
                out.yuan += fv.fixed_yuan_per_month * share / _calendar.monthrange(
                    d.year, d.month)[1]
        return out

    def tiered_cost(self, energy: EnergyType, intervals: Iterable[tuple[float, float, float]]
                    ) -> float:
        """Yuan of water or gas intervals (`tiered_split`); raises `TariffError` for a part
        on a day without a tariff."""
        split = self.tiered_split(energy, intervals)
        if split.unpriced > 0:
            raise TariffError(energy.value, min(split.unpriced_days), split.unpriced)
        return split.yuan

    def water_cost(self, intervals: Iterable[tuple[float, float, float]]) -> float:
        return self.tiered_cost(EnergyType.WATER, intervals)

    def gas_cost(self, intervals: Iterable[tuple[float, float, float]]) -> float:
        return self.tiered_cost(EnergyType.NATURAL_GAS, intervals)

    def prices(self, energy: EnergyType) -> bool:
        """Whether any tariff version exists for `energy`."""
        if energy is EnergyType.ELECTRICITY:
            return bool(self.tariffs.electricity)
        return bool(self.tariffs.tiered(energy))
