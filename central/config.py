"""Institution configuration and central settings, validated at start-up before any I/O.

The institution file is what the energy office maintains: buildings with floor areas,
headcount (the 用能人数 denominator), annual targets, and which meter measures what. Every
error names the field and the offending value (`ConfigError.problems`), because the people
who edit this file are facilities engineers, not Python programmers.

Only `role: main` meters count toward totals, so 分项 sub-meters behind a main meter are never
counted twice. Validation never touches the network or the database; the only file read is
the time-zone database, to reject a misspelt zone before the service starts.
"""

from __future__ import annotations

import enum
import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from central.errors import ConfigError, Problem

# Same shapes as protocols.wire ids and point names, so a meter can match a wire record.
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_SITE_RE = re.compile(_ID_PATTERN)
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


class EnergyType(enum.StrEnum):
    """What a meter measures. Water is metered like energy but is not part of 综合能耗."""

    ELECTRICITY = "electricity"
    WATER = "water"
    NATURAL_GAS = "natural_gas"
    HEAT = "heat"
    GASOLINE = "gasoline"
    DIESEL = "diesel"
    RAW_COAL = "raw_coal"
    LPG = "lpg"
    STEAM = "steam"

    @property
    def is_energy(self) -> bool:
        return self is not EnergyType.WATER


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


class Building(_Model):
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    floor_area_m2: PositiveFinite


class Headcount(_Model):
    """用能人数 = staff + daily average students (schools) + other (e.g. daily patients)."""

    staff: Annotated[int, Field(ge=0)]
    students_daily_avg: NonNegativeFinite = 0.0
    other: NonNegativeFinite = 0.0

    @property
    def energy_users(self) -> float:
        return self.staff + self.students_daily_avg + self.other

    @model_validator(mode="after")
    def _someone(self) -> Headcount:
        if self.energy_users <= 0:
            raise ValueError("用能人数 (staff + students_daily_avg + other) must be > 0")
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


class InstitutionConfig(_Model):
    institution: InstitutionInfo
    buildings: Annotated[list[Building], Field(min_length=1)]
    headcount: Headcount
    targets: dict[Year, YearTarget] = Field(default_factory=dict)
    meters: list[Meter] = Field(default_factory=list)

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
        if problems:
            summary = "; ".join(f"{f}: {r} (got {v!r})" for f, v, r in problems)
            raise PydanticCustomError("cross_field", "{summary}",
                                      {"summary": summary, "problems": problems})
        return self

    @property
    def floor_area_m2(self) -> float:
        return math.fsum(b.floor_area_m2 for b in self.buildings)

    @property
    def energy_users(self) -> float:
        return self.headcount.energy_users

    def main_meters(self) -> list[Meter]:
        return [m for m in self.meters if m.role is MeterRole.MAIN]


# -- settings ---------------------------------------------------------------------


class CentralSettings(BaseSettings):
    """Process settings, from GREENGUARD_* environment variables or CLI flags."""

    model_config = SettingsConfigDict(env_prefix="GREENGUARD_", extra="forbid", frozen=True)

    institution_config: Path
    database: Path = Path("central.sqlite")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: Annotated[int, Field(ge=1, le=65535)] = 1883
    mqtt_site: str = "+"  # "+" subscribes to every site on the broker
    mqtt_client_id: Id = "greenguard-central"
    mqtt_keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8080

    @field_validator("mqtt_site")
    @classmethod
    def _site(cls, value: str) -> str:
        if value != "+" and not _SITE_RE.match(value):
            raise ValueError("must be '+' (all sites) or a site id")
        return value


def problems_from(exc: ValidationError) -> list[Problem]:
    """Flatten pydantic errors into (field path, value, reason) with `a[2].b` paths."""
    problems: list[Problem] = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        if err["type"] == "cross_field" and "problems" in ctx:
            problems.extend(ctx["problems"])
            continue
        path = ""
        for part in err["loc"]:
            if part == "[key]":  # pydantic's marker for a dict key; the key is already there
                continue
            path += f"[{part}]" if isinstance(part, int) and path else (
                f".{part}" if path else str(part))
        reason = err["msg"].removeprefix("Value error, ")
        problems.append((path or "<root>", err.get("input"), reason))
    return problems


def load_settings(**overrides: Any) -> CentralSettings:
    """Environment plus explicit overrides (CLI flags); None overrides are ignored."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return CentralSettings(**given)
    except ValidationError as exc:
        raise ConfigError("settings", problems_from(exc)) from None


# -- YAML loading -----------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", mark)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors become a `ConfigError` with line and column."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [("<file>", source, f"cannot read: {exc}")]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [("<yaml>", where, f"YAML syntax error: {problem}")]) from None


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
    return parse_institution(read_yaml(path), str(path))
