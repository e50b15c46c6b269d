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
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from central.errors import ConfigError, Problem

# Same shapes as protocols.wire ids and point names, so a meter can match a wire record.
_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_SITE_RE = re.compile(_ID_PATTERN)
# key=value `password=...` or a URI's `user:password@`
_DSN_PASSWORD = re.compile(r"(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@|[?&]password=", re.I)
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
    region_code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = None  # 行政区划代码
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
        from central import codes  # codes imports this module

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


# -- settings ---------------------------------------------------------------------


class TelemetrySettings(_Model):
    """InfluxDB 2 telemetry store, written in addition to the SQL store (docs/influxdb.md).
    The token is never a setting: it is read at start-up from the environment variable
    named by `token_env`."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]
    org: Annotated[str, Field(min_length=1)]
    bucket: Annotated[str, Field(min_length=1)]
    token_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = (
        "GREENGUARD_INFLUX_TOKEN")
    batch_lines: Annotated[int, Field(ge=1, le=100_000)] = 5000
    attempts: Annotated[int, Field(ge=1, le=10)] = 3
    retry_initial_s: Annotated[float, Field(ge=0, le=10)] = 0.2
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    cooldown_s: Annotated[float, Field(ge=0, le=600)] = 5.0


class CentralSettings(BaseSettings):
    """Process settings, from GREENGUARD_* environment variables or CLI flags. Nested
    settings use `__`: GREENGUARD_TELEMETRY__URL, GREENGUARD_TELEMETRY__BUCKET, ..."""

    model_config = SettingsConfigDict(env_prefix="GREENGUARD_", extra="forbid", frozen=True,
                                      env_nested_delimiter="__")

    institution_config: Path
    database: Path = Path("central.sqlite")
    ledger_database: Path | None = None  # bills, fuel, waste; default: <database>.ledger.sqlite
    mqtt_host: str = "127.0.0.1"
    mqtt_port: Annotated[int, Field(ge=1, le=65535)] = 1883
    mqtt_site: str = "+"  # "+" subscribes to every site on the broker
    mqtt_client_id: Id = "greenguard-central"
    mqtt_keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    # TLS to the production broker (deploy/mosquitto): the CA, and the central's client
    # certificate and key from `greenguard certs` (its CN is the ACL's greenguard-central).
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    # Store backend: embedded SQLite (default) or a shared PostgreSQL (docs/scale-out.md).
    # The DSN never holds the password: it comes from GREENGUARD_POSTGRES_PASSWORD, from
    # postgres_password_file, or from libpq's own PGPASSWORD / ~/.pgpass.
    store: Literal["sqlite", "postgres"] = "sqlite"
    postgres_dsn: str | None = None
    postgres_password_file: Path | None = None
    postgres_password: pydantic.SecretStr | None = None  # environment only; no CLI flag
    # MQTT 5 shared subscription group: N workers with the same group share the uplink.
    mqtt_share_group: Id | None = None

    def backend_problems(self) -> list[Problem]:
        """Store settings that cannot work. Checked here rather than by pydantic, whose
        errors would quote every input, the DSN and password included."""
        problems: list[Problem] = []
        if self.store == "postgres" and not self.postgres_dsn:
            problems.append(("postgres_dsn", None, "store 'postgres' needs a DSN "
                                                   "(GREENGUARD_POSTGRES_DSN)"))
        if self.postgres_dsn and _DSN_PASSWORD.search(self.postgres_dsn):
            problems.append(("postgres_dsn", "<redacted>", "must not contain a password; use "
                             "GREENGUARD_POSTGRES_PASSWORD or postgres_password_file"))
        if self.postgres_password is not None and self.postgres_password_file is not None:
            problems.append(("postgres_password_file", str(self.postgres_password_file),
                             "give GREENGUARD_POSTGRES_PASSWORD or postgres_password_file, "
                             "not both"))
        return problems

    def postgres_secret(self) -> str | None:
        """The PostgreSQL password, read at start; None lets libpq find one itself."""
        if problems := self.backend_problems():
            raise ConfigError("settings", problems)
        if self.postgres_password is not None:
            return self.postgres_password.get_secret_value()
        if self.postgres_password_file is None:
            return None
        try:
            return self.postgres_password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError("settings", [("postgres_password_file",
                                            str(self.postgres_password_file),
                                            f"cannot read: {exc.strerror}")]) from None
    telemetry: TelemetrySettings | None = None  # InfluxDB; None: the SQL store only
    # API tokens: the HS256 signing secret (or a file holding it) and the token table.
    auth_secret: SecretStr | None = None
    auth_secret_file: Path | None = None
    auth_database: Path | None = None  # default: <database>.auth.sqlite

    @property
    def ledger_path(self) -> Path:
        if self.ledger_database is not None:
            return self.ledger_database
        return self.database.with_name(self.database.stem + ".ledger.sqlite")

    def ledger_path_for(self, institution: str, *, only: bool) -> Path:
        """The ledger of one institution: `ledger_path` when the central serves only one
        (unchanged from single-institution installs), else one file per institution."""
        if only:
            return self.ledger_path
        base = self.ledger_database or self.database
        return base.with_name(f"{base.stem}.{institution}.ledger.sqlite")

    @property
    def auth_path(self) -> Path:
        if self.auth_database is not None:
            return self.auth_database
        return self.database.with_name(self.database.stem + ".auth.sqlite")

    def auth_secret_value(self) -> str | None:
        """The signing secret from `auth_secret_file` or `auth_secret` (unchecked)."""
        if self.auth_secret_file is not None:
            try:
                return self.auth_secret_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError("settings", [("auth_secret_file", str(self.auth_secret_file),
                                                f"cannot read: {exc}")]) from None
        return None if self.auth_secret is None else self.auth_secret.get_secret_value()

    @field_validator("mqtt_site")
    @classmethod
    def _site(cls, value: str) -> str:
        if value != "+" and not _SITE_RE.match(value):
            raise ValueError("must be '+' (all sites) or a site id")
        return value

    @field_validator("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("no such file")
        return value

    @model_validator(mode="after")
    def _tls_complete(self) -> CentralSettings:
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ValueError("mqtt_cert_file and mqtt_key_file go together")
        if self.mqtt_cert_file is not None and self.mqtt_ca_file is None:
            raise ValueError("mqtt_cert_file needs mqtt_ca_file (the CA of the broker)")
        return self


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
        settings = CentralSettings(**given)
    except ValidationError as exc:
        raise ConfigError("settings", problems_from(exc)) from None
    if problems := settings.backend_problems():
        raise ConfigError("settings", problems)
    return settings


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
