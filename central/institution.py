"""The institution's domain model, validated at start-up before any I/O.

The institution file is what the energy office maintains: buildings with floor areas,
headcount (the 用能人数 denominator), annual targets, and which meter measures what. Every
error names the field and the offending value (`ConfigError.problems`), because the people
who edit this file are facilities engineers, not Python programmers. Codes (分项 items,
climate zones, quota classes, waste categories) are checked against central/codes.py.

Only `role: main` meters count toward totals, so 分项 sub-meters behind a main meter are never
counted twice. Validation never touches the network or the database; the only file read is
the time-zone database, to reject a misspelt zone before the service starts.
"""

from __future__ import annotations

import enum
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from central import codes
from central.baseline import Baseline
from central.carbon_config import CarbonConfig
from central.energy import EnergyType
from central.errors import ConfigError, Problem
from central.savingsconfig import SavingsConfig
from central.tariff import TariffConfig
from central.validation import fullwidth_problems, problems_from, read_yaml

# Same shapes as protocols.wire ids and point names, so a meter can match a wire record.
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SITE_RE = re.compile(_ID_PATTERN)
Id = Annotated[str, Field(pattern=_ID_PATTERN)]
PointName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]
ItemCode = Annotated[str, Field(pattern=r"^[0-9]{2}[0-9A-Z]{3}$")]
Year = Annotated[int, Field(ge=2000, le=2100)]
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class InstitutionType(enum.StrEnum):
    SCHOOL = "school"
    AGENCY = "agency"
    UNIVERSITY = "university"
    HOSPITAL = "hospital"
    OTHER = "other"


class MeterRole(enum.StrEnum):
    MAIN = "main"  # counts toward the institution's totals
    SUB = "sub"  # 分项 sub-meter behind a main meter: shown, never added to totals


DEFAULT_POINTS: Mapping[EnergyType, str] = {
    EnergyType.ELECTRICITY: "energy_import_kwh",
    EnergyType.WATER: "water_m3",
}
LIVE_POINTS: Mapping[EnergyType, str] = {
    EnergyType.ELECTRICITY: "power_w",
    EnergyType.WATER: "flow_m3h",
}


class MeterKey(NamedTuple):
    """How interval records and samples are addressed: the edge's id, not its epoch, so a
    re-installed edge keeps accounting for the same meter."""

    edge: str
    device: str
    point: str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class InstitutionInfo(_Model):
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    type: InstitutionType
    timezone: str = "Asia/Shanghai"
    coefficient_profile: Annotated[str, Field(min_length=1)] = "national"
    region_code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None  # 行政区划代码
    district: Annotated[str, Field(min_length=1, max_length=100)] | None = None  # 区/县
    climate_zone: str | None = None  # a key of central/codes/quotas.yaml climate_zones

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown IANA time zone, e.g. Asia/Shanghai") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _increasing(changes: Sequence[Any]) -> None:
    days = [c.since for c in changes]
    for i in range(1, len(days)):
        if days[i] <= days[i - 1]:
            raise ValueError(f"changes must be in strictly increasing order of `since`; "
                             f"{days[i].isoformat()} follows {days[i - 1].isoformat()}")


class FloorAreaChange(_Model):
    """From local midnight of `since`, the building's floor area is `floor_area_m2` (0 while
    it is out of use or rented out: such areas are excluded from 建筑面积)."""

    since: date
    floor_area_m2: NonNegativeFinite


class Building(_Model):
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    floor_area_m2: PositiveFinite  # the area before the first change
    floor_area_changes: list[FloorAreaChange] = Field(default_factory=list)
    quota_class: str | None = None  # GB/T 51161 class, a key of codes/quotas.yaml classes
    building_code: str | None = None  # e.g. 330302G101 on the municipal platform; free form

    @field_validator("floor_area_changes")
    @classmethod
    def _ordered(cls, value: list[FloorAreaChange]) -> list[FloorAreaChange]:
        _increasing(value)
        return value


class HeadcountChange(_Model):
    """From local midnight of `since`, 用能人数 is made of these numbers (a new school term)."""

    since: date
    staff: Annotated[int, Field(ge=0)]
    students_daily_avg: NonNegativeFinite = 0.0
    other: NonNegativeFinite = 0.0

    @property
    def energy_users(self) -> float:
        return self.staff + self.students_daily_avg + self.other


class Headcount(_Model):
    """用能人数 = staff + daily average students (schools) + other (e.g. daily patients)."""

    staff: Annotated[int, Field(ge=0)]
    students_daily_avg: NonNegativeFinite = 0.0
    other: NonNegativeFinite = 0.0
    changes: list[HeadcountChange] = Field(default_factory=list)

    @property
    def energy_users(self) -> float:
        return self.staff + self.students_daily_avg + self.other

    @model_validator(mode="after")
    def _someone(self) -> Headcount:
        if self.energy_users <= 0:
            raise ValueError("用能人数 (staff + students_daily_avg + other) must be > 0")
        _increasing(self.changes)
        return self


class YearTarget(_Model):
    """Annual targets set by the supervising authority (seed 004, item 1)."""

    kgce_per_m2: PositiveFinite
    kgce_per_person: PositiveFinite
    water_m3_per_person: PositiveFinite


class Meter(_Model):
    edge: Id
    device: Id
    point: PointName
    building: Id
    energy: EnergyType
    role: MeterRole
    item: ItemCode | None = None
    unit: str | None = None  # None: the profile's unit for this energy (kWh, m3, kg, MJ)
    live_point: PointName | None = None  # instantaneous point shown live (power_w, flow_m3h)
    zone: str | None = None  # 分区: administrative / business / support, free form
    it_load: bool = False  # the data centre's IT load (PUE = data-centre total ÷ IT load)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            try:
                energy = EnergyType(str(data.get("energy")))
            except ValueError:
                return data  # the field validator reports the bad energy type
            data = dict(data)
            if data.get("point") is None and energy in DEFAULT_POINTS:
                data["point"] = DEFAULT_POINTS[energy]
            if "live_point" not in data and energy in LIVE_POINTS:
                data["live_point"] = LIVE_POINTS[energy]
        return data

    @property
    def key(self) -> MeterKey:
        return MeterKey(self.edge, self.device, self.point)


class FuelType(enum.StrEnum):
    GASOLINE = "gasoline"
    DIESEL = "diesel"


class Vehicle(_Model):
    """An official car: fuel is entered per car in litres with the distance driven."""

    id: Id
    plate: Annotated[str, Field(min_length=1, max_length=16)]
    fuel: FuelType
    name: str | None = None


class AcUnit(_Model):
    """An air conditioner whose `setpoint_c` and `mode` samples the AC rule is checked on."""

    edge: Id
    device: Id
    building: Id
    zone: str | None = None
    exempt: bool = False  # data rooms, clinics, labs, archives: not judged
    setpoint_point: PointName = "setpoint_c"
    mode_point: PointName = "mode"
    on_point: PointName | None = "on"  # judged only while on; None: by mode alone


class WasteBin(_Model):
    """A bin with a fill-level sensor; the central derives clearances from its fill drops."""

    edge: Id
    device: Id
    building: Id
    category: str  # central/codes/waste.yaml
    capacity_l: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    point: PointName = "fill_pct"
    name: str | None = None

    @property
    def id(self) -> str:
        return f"{self.edge}/{self.device}"


class ClearanceDetection(_Model):
    """A fill drop from ≥ full_pct to ≤ empty_pct within window_s is one clearance of
    capacity × drop."""

    full_pct: Annotated[float, Field(gt=0, le=100)] = 60.0
    empty_pct: Annotated[float, Field(ge=0, lt=100)] = 15.0
    window_s: Annotated[int, Field(gt=0, le=86_400)] = 3_600

    @model_validator(mode="after")
    def _order(self) -> ClearanceDetection:
        if self.empty_pct >= self.full_pct:
            raise ValueError(f"empty_pct {self.empty_pct} must be below full_pct "
                             f"{self.full_pct}")
        return self


class Plug(_Model):
    """A smart plug or socket whose `power_w` samples the standby accounting reads."""

    edge: Id
    device: Id
    building: Id
    power_point: PointName = "power_w"
    name: str | None = None


class StandbyRule(_Model):
    """Power above off_w and at most standby_max_w is standby; outside working hours it is
    waste. A sample holds until the next one, at most max_hold_s."""

    off_w: Annotated[float, Field(ge=0)] = 0.5
    standby_max_w: Annotated[float, Field(gt=0)] = 15.0
    max_hold_s: Annotated[int, Field(gt=0, le=86_400)] = 900

    @model_validator(mode="after")
    def _order(self) -> StandbyRule:
        if self.off_w >= self.standby_max_w:
            raise ValueError(f"off_w {self.off_w} must be below standby_max_w "
                             f"{self.standby_max_w}")
        return self


class AcRule(_Model):
    """Overrides of codes/policy.yaml (seed 002: one agency uses winter ≤ 18 °C)."""

    summer_min_setpoint_c: float | None = None
    winter_max_setpoint_c: float | None = None


class HoursSpan(_Model):
    """Local working hours of a working day, e.g. 08:00–17:30."""

    start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-4]):[0-5][0-9]$")]

    @model_validator(mode="after")
    def _ordered(self) -> HoursSpan:
        if self.end <= self.start or (self.end.startswith("24") and self.end != "24:00"):
            raise ValueError(f"working hours {self.start}–{self.end}: the end must be after "
                             "the start (24:00 at the latest)")
        return self


class WorkingHoursConfig(HoursSpan):
    """The institution's one definition of working hours (central/workinghours.py): the
    central's after-hours figures and the edge's rules calendar both read it."""

    zones: dict[str, HoursSpan] = Field(default_factory=dict)  # by meter / AC unit zone


class CalendarOverrides(_Model):
    """The operator's edits to the working calendar: next year's 调休 before the `holidays`
    package knows them, a school's own days off."""

    workdays: list[date] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)


class ProjectionRule(_Model):
    """When a year-end projection and a provisional score may be shown (central.projection):
    after `min_days` whole days of metering, or bills covering `min_days` days."""

    min_days: Annotated[int, Field(ge=1, le=366)] = 30


class InstitutionConfig(_Model):
    institution: InstitutionInfo
    buildings: Annotated[list[Building], Field(min_length=1)]
    headcount: Headcount
    targets: dict[Year, YearTarget] = Field(default_factory=dict)
    meters: list[Meter] = Field(default_factory=list)
    vehicles: list[Vehicle] = Field(default_factory=list)
    ac_units: list[AcUnit] = Field(default_factory=list)
    ac_rule: AcRule = AcRule()
    working_hours: WorkingHoursConfig | None = None
    calendar: CalendarOverrides = CalendarOverrides()
    bins: list[WasteBin] = Field(default_factory=list)
    clearance_detection: ClearanceDetection = ClearanceDetection()
    plugs: list[Plug] = Field(default_factory=list)
    standby: StandbyRule = StandbyRule()
    projection: ProjectionRule = ProjectionRule()
    tariff: TariffConfig | None = None  # prices and charges (central/tariff.py)
    carbon: CarbonConfig = CarbonConfig()  # emission factors: central/carbon.py
    savings: SavingsConfig = SavingsConfig()  # central/savings.py, docs/savings.md
    baseline: Baseline = Baseline()  # base year, 14th FYP targets (central/baseline.py)
    # Edges allowed to publish that no meter, AC unit, bin or plug names (central/admission.py)
    edges: list[Id] = Field(default_factory=list)
    # Edge id → its uplink signing public key: that edge's messages are accepted only signed
    edge_keys: dict[Id, Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{43}$")]] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _cross_check(self) -> InstitutionConfig:
        problems: list[Problem] = []
        ids = Counter(b.id for b in self.buildings)
        for i, b in enumerate(self.buildings):
            if ids[b.id] > 1:
                problems.append((f"buildings[{i}].id", b.id, "duplicate building id"))
        keys = Counter(m.key for m in self.meters)
        for i, m in enumerate(self.meters):
            if m.building not in ids:
                known = ", ".join(sorted(ids))
                problems.append((f"meters[{i}].building", m.building,
                                 f"unknown building (known: {known})"))
            if keys[m.key] > 1:
                problems.append((f"meters[{i}]", "/".join(m.key),
                                 "the same edge/device/point is configured twice"))
        problems.extend(self._check_codes(ids))
        if problems:
            summary = "; ".join(f"{f}: {r} (got {v!r})" for f, v, r in problems)
            raise PydanticCustomError("cross_field", "{summary}",
                                      {"summary": summary, "problems": problems})
        return self

    def _check_codes(self, buildings: Counter[str]) -> list[Problem]:
        problems: list[Problem] = []
        tree = codes.items().electricity_items
        quota = codes.quotas()
        zone = self.institution.climate_zone
        if zone is not None and zone not in quota.climate_zones:
            problems.append(("institution.climate_zone", zone,
                             f"unknown climate zone (known: {', '.join(quota.climate_zones)})"))
        for i, b in enumerate(self.buildings):
            if b.quota_class is not None and b.quota_class not in quota.classes:
                problems.append((f"buildings[{i}].quota_class", b.quota_class,
                                 f"unknown GB/T 51161 class (known: {', '.join(quota.classes)})"))
        for i, m in enumerate(self.meters):
            if m.item is not None and m.energy is EnergyType.ELECTRICITY and m.item not in tree:
                problems.append((f"meters[{i}].item", m.item, "not in the 分项 item tree "
                                 "(central/codes/items.yaml)"))
            if m.it_load and m.energy is not EnergyType.ELECTRICITY:
                problems.append((f"meters[{i}].it_load", m.energy.value,
                                 "only an electricity meter can be an IT load"))
        vids = Counter(v.id for v in self.vehicles)
        for i, v in enumerate(self.vehicles):
            if vids[v.id] > 1:
                problems.append((f"vehicles[{i}].id", v.id, "duplicate vehicle id"))
        for i, ac in enumerate(self.ac_units):
            if ac.building not in buildings:
                problems.append((f"ac_units[{i}].building", ac.building, "unknown building"))
        categories = codes.waste().categories
        bin_ids = Counter(b.id for b in self.bins)
        for i, wb in enumerate(self.bins):
            if wb.building not in buildings:
                problems.append((f"bins[{i}].building", wb.building, "unknown building"))
            if wb.category not in categories:
                problems.append((f"bins[{i}].category", wb.category, "unknown waste category "
                                 f"(known: {', '.join(categories)})"))
            if bin_ids[wb.id] > 1:
                problems.append((f"bins[{i}]", wb.id, "the same edge/device is configured twice"))
        plug_ids = Counter((p.edge, p.device) for p in self.plugs)
        for i, plug in enumerate(self.plugs):
            if plug.building not in buildings:
                problems.append((f"plugs[{i}].building", plug.building, "unknown building"))
            if plug_ids[(plug.edge, plug.device)] > 1:
                problems.append((f"plugs[{i}]", f"{plug.edge}/{plug.device}",
                                 "the same edge/device is configured twice"))
        return problems

    @property
    def floor_area_m2(self) -> float:
        """Floor area before any change; period figures use `registry.mean_floor_area`."""
        return math.fsum(b.floor_area_m2 for b in self.buildings)

    @property
    def energy_users(self) -> float:
        return self.headcount.energy_users

    def main_meters(self) -> list[Meter]:
        return [m for m in self.meters if m.role is MeterRole.MAIN]

    def placed_devices(self) -> list[tuple[str, str, str, str | None]]:
        """(edge, device, building, room) of every configured device: meters and AC
        units (room: their zone), plugs and bins (room: their name)."""
        return ([(m.edge, m.device, m.building, m.zone) for m in self.meters]
                + [(a.edge, a.device, a.building, a.zone) for a in self.ac_units]
                + [(p.edge, p.device, p.building, p.name) for p in self.plugs]
                + [(b.edge, b.device, b.building, b.name) for b in self.bins])


def parse_institution(data: Any, source: str = "<institution>") -> InstitutionConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, [("<root>", data, "must be a mapping with institution, "
                                    "buildings, headcount, targets and meters")])
    try:
        return InstitutionConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None


def load_institution(path: str | Path) -> InstitutionConfig:
    """Read and validate an institution YAML file; raises `ConfigError`."""
    path = Path(path)
    data = read_yaml(path)
    try:
        return parse_institution(data, str(path))
    except ConfigError as exc:
        hints = fullwidth_problems(path.read_text(encoding="utf-8"))
        if not hints:
            raise
        raise ConfigError(exc.source, [*hints, *exc.problems]) from None


def load_institutions(path: str | Path) -> list[InstitutionConfig]:
    """One institution file, or a directory whose `*.yaml` / `*.yml` files are one
    institution each (in name order). Institution ids must be unique."""
    path = Path(path)
    if not path.is_dir():
        return [load_institution(path)]
    files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise ConfigError(str(path), [("<directory>", str(path),
                                       "no institution *.yaml file in this directory")])
    configs = [load_institution(f) for f in files]
    seen: dict[str, Path] = {}
    for f, c in zip(files, configs, strict=True):
        iid = c.institution.id
        if iid in seen:
            raise ConfigError(str(f), [("institution.id", iid,
                                        f"duplicate institution id (also in {seen[iid].name})")])
        seen[iid] = f
    return configs
