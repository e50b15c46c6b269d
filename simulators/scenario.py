"""Scenario files: a whole simulated institution as data.

A scenario describes what the compliance figures need (the institution, its floor areas,
head counts and yearly targets, its school calendar) and what the edge polls (one entry
per meter: register map model, Modbus device id, initial reading, load profile). CI and
`make demo` run the built-in `school` scenario (`scenarios/school.yaml`); an engineer copies
it to describe another site.

Validation happens here, before any I/O, and reports every problem at once with the field
path and the offending value (`meters[2].profile.peak: ... (got -5)`), including the
cross-field rules: unique ids and device ids, meters that point at existing buildings,
register maps that exist and measure the meter's kind.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import re
import zlib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocols.errors import RegisterMapError
from protocols.registermap import RegisterMap, load_register_map
from simulators.errors import ScenarioError
from simulators.meters import SimulatedMeter, TimeSource, UnmappedRegisters
from simulators.profile import (
    SHAPES,
    DateRange,
    FlowProfile,
    Keypoints,
    LoadProfile,
    PowerProfile,
    ProfileParams,
    WorkCalendar,
)

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")


@functools.lru_cache(maxsize=32)
def _register_map(model: str) -> RegisterMap:
    """Maps are immutable data files; validation and `build_meters` share one load each."""
    return load_register_map(model)


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a scenario must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InstitutionType(enum.StrEnum):
    SCHOOL = "school"  # primary/secondary: 用能人数 adds the daily average of students
    UNIVERSITY = "university"
    GOVERNMENT = "government"  # 机关
    HOSPITAL = "hospital"
    OTHER = "other"


class MeterKind(enum.StrEnum):
    ELECTRICITY = "electricity"
    WATER = "water"


class Targets(_Strict):
    """Yearly targets set by the supervising authority (公共机构 statistics units)."""

    kgce_per_m2: float = Field(gt=0)
    kgce_per_person: float = Field(gt=0)
    water_m3_per_person: float = Field(gt=0)


class Institution(_Strict):
    id: Slug
    name: str = Field(min_length=1)
    type: InstitutionType
    region_code: str = Field(pattern=r"^\d{6}$", description="6-digit administrative division")
    staff: int = Field(ge=0)
    students_daily_average: int = Field(default=0, ge=0)
    targets: dict[Annotated[int, Field(ge=2000, le=2100)], Targets] = Field(default_factory=dict)

    @field_validator("region_code", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 330302 as a number; the code is an identifier.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def persons(self) -> int:
        """用能人数: staff plus, for schools, the daily average number of students."""
        return self.staff + self.students_daily_average


class Vacation(_Strict):
    name: str = ""
    first: dt.date
    last: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Vacation:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) is before first ({self.first})")
        return self


class Calendar(_Strict):
    """Institution calendar data on top of the national one (school terms are not national)."""

    vacations: tuple[Vacation, ...] = ()

    def work_calendar(self) -> WorkCalendar:
        return WorkCalendar(tuple(DateRange(v.first, v.last) for v in self.vacations))


class Building(_Strict):
    id: Slug
    name: str = Field(min_length=1)
    floor_area_m2: float = Field(gt=0)


def _hour(value: float | str) -> float:
    if isinstance(value, str):
        match = _HHMM.match(value)
        if match is None:
            raise ValueError(f"time must be HH:MM or a number of hours, got {value!r}")
        return int(match.group(1)) + int(match.group(2)) / 60.0
    return float(value)


class Profile(_Strict):
    """Load profile of one meter. `base` and `peak` are in W (electricity) or m³/h (water)."""

    shape: str | tuple[tuple[float | str, float], ...] = Field(
        description="built-in shape name or [[hour or 'HH:MM', fraction 0–1], ...]"
    )
    base: float = Field(ge=0)
    peak: float = Field(gt=0)
    rest_day_factor: float = Field(default=0.3, ge=0, le=1)
    vacation_factor: float = Field(default=0.15, ge=0, le=1)
    variation: float = Field(default=0.1, ge=0, lt=1)
    seed: int | None = Field(default=None, description="default: derived from the meter id")

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if self.peak < self.base:
            raise ValueError(f"peak ({self.peak}) is below base ({self.base})")
        self.keypoints()  # raises with the offending keypoint
        return self

    def keypoints(self) -> Keypoints:
        if isinstance(self.shape, str):
            if self.shape not in SHAPES:
                raise ValueError(
                    f"shape: unknown shape {self.shape!r}; built-in: {', '.join(sorted(SHAPES))}"
                )
            return SHAPES[self.shape]
        points = tuple((_hour(h), float(f)) for h, f in self.shape)
        ProfileParams(base=0.0, peak=1.0, shape=points)  # validates the keypoints
        return points

    def params(self, meter_id: str) -> ProfileParams:
        seed = self.seed if self.seed is not None else zlib.crc32(meter_id.encode("utf-8"))
        return ProfileParams(
            base=self.base,
            peak=self.peak,
            shape=self.keypoints(),
            rest_day_factor=self.rest_day_factor,
            vacation_factor=self.vacation_factor,
            variation=self.variation,
            seed=seed,
        )


class Meter(_Strict):
    id: Slug
    building: str
    model: str = Field(description="register map: built-in name or path to a YAML map")
    kind: MeterKind
    device_id: int = Field(ge=1, le=247, description="Modbus unit id on the simulated bus")
    initial_reading: float = Field(default=0.0, ge=0, description="kWh or m³ at the start")
    unmapped_registers: UnmappedRegisters = UnmappedRegisters.ZERO
    profile: Profile

    @field_validator("model")
    @classmethod
    def _known_map(cls, value: str) -> str:
        try:
            _register_map(value)
        except RegisterMapError as exc:
            raise ValueError(exc.reason) from None
        return value

    @model_validator(mode="after")
    def _map_matches_kind(self) -> Meter:
        energy_type = _register_map(self.model).energy_type
        if energy_type != self.kind.value:
            raise ValueError(f"model {self.model!r} measures {energy_type}, not {self.kind.value}")
        return self


class AcUnitSpec(_Strict):
    """A room air conditioner behind a Modbus AC controller (register map
    `ac-controller-modbus`), used by simulated people and governed by the edge's rules."""

    id: Slug
    building: str
    device_id: int = Field(ge=1, le=247, description="Modbus unit id on the AC gateway")
    zone: str | None = None


class Scenario(_Strict):
    version: int = Field(default=1, ge=1, le=1)
    institution: Institution
    calendar: Calendar = Calendar()
    buildings: tuple[Building, ...] = Field(min_length=1)
    meters: tuple[Meter, ...] = Field(min_length=1)
    ac_units: tuple[AcUnitSpec, ...] = ()

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        problems: list[str] = []
        for field, ids in (
            ("buildings", [b.id for b in self.buildings]),
            ("meters", [m.id for m in self.meters]),
            ("ac_units", [a.id for a in self.ac_units]),
        ):
            seen: set[str] = set()
            for i, item_id in enumerate(ids):
                if item_id in seen:
                    problems.append(f"{field}[{i}].id: duplicate id {item_id!r}")
                seen.add(item_id)
        buildings = {b.id for b in self.buildings}
        device_ids: dict[int, str] = {}
        for i, meter in enumerate(self.meters):
            if meter.building not in buildings:
                problems.append(
                    f"meters[{i}].building: unknown building {meter.building!r}; "
                    f"defined: {', '.join(sorted(buildings))}"
                )
            if meter.device_id in device_ids:
                problems.append(
                    f"meters[{i}].device_id: {meter.device_id} is already used by meter "
                    f"{device_ids[meter.device_id]!r} (one simulated bus)"
                )
            device_ids.setdefault(meter.device_id, meter.id)
        meter_ids = {m.id for m in self.meters}
        ac_device_ids: dict[int, str] = {}
        for i, ac in enumerate(self.ac_units):
            if ac.building not in buildings:
                problems.append(
                    f"ac_units[{i}].building: unknown building {ac.building!r}; "
                    f"defined: {', '.join(sorted(buildings))}"
                )
            if ac.id in meter_ids:
                problems.append(f"ac_units[{i}].id: {ac.id!r} is already a meter id")
            if ac.device_id in ac_device_ids:
                problems.append(
                    f"ac_units[{i}].device_id: {ac.device_id} is already used by AC unit "
                    f"{ac_device_ids[ac.device_id]!r} (one simulated AC gateway)"
                )
            ac_device_ids.setdefault(ac.device_id, ac.id)
        if problems:
            raise ValueError("\n".join(problems))  # one line per problem, see _problems
        return self

    @property
    def floor_area_m2(self) -> float:
        return sum(b.floor_area_m2 for b in self.buildings)

    def building(self, building_id: str) -> Building:
        for b in self.buildings:
            if b.id == building_id:
                return b
        raise KeyError(building_id)

    def work_calendar(self) -> WorkCalendar:
        return self.calendar.work_calendar()


# -- loading ----------------------------------------------------------------------


def builtin_scenarios() -> list[str]:
    folder = resources.files("simulators") / "scenarios"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _problems(error: ValidationError) -> list[str]:
    out: list[str] = []
    for item in error.errors(include_url=False):
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        if path and not isinstance(value, dict | list | tuple):
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            out.append(f"{path}: {message} (got {shown})")
        elif path:
            out.append(f"{path}: {message}")
        else:
            out.extend(message.splitlines())  # cross-field problems already name their field
    return out


def parse_scenario(data: Any, *, source: str = "<data>") -> Scenario:
    """Validate a scenario document already parsed from YAML."""
    if not isinstance(data, dict):
        raise ScenarioError(source, [f"<root>: must be a mapping, got {type(data).__name__}"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, _problems(exc)) from None


def load_scenario(path_or_name: str | Path) -> Scenario:
    """Load a built-in scenario by name (`school`) or a scenario file by path."""
    path = Path(path_or_name)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
        source = str(path)
    else:
        name = str(path_or_name)
        if name not in builtin_scenarios():
            known = ", ".join(builtin_scenarios())
            raise ScenarioError(name, [f"no such file or built-in scenario; built-in: {known}"])
        text = (resources.files("simulators") / "scenarios" / f"{name}.yaml").read_text(
            encoding="utf-8"
        )
        source = f"{name} (built-in)"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [f"not valid YAML: {exc}"]) from None
    return parse_scenario(data, source=source)


def build_meters(scenario: Scenario, clock: TimeSource, start: float) -> list[SimulatedMeter]:
    """The scenario's meters, reading `initial_reading` at POSIX time `start`."""
    calendar = scenario.work_calendar()
    meters: list[SimulatedMeter] = []
    for spec in scenario.meters:
        register_map = _register_map(spec.model)
        profile_class: type[LoadProfile] = (
            PowerProfile if spec.kind is MeterKind.ELECTRICITY else FlowProfile
        )
        meters.append(
            SimulatedMeter(
                meter_id=spec.id,
                register_map=register_map,
                profile=profile_class(spec.profile.params(spec.id), calendar=calendar),
                clock=clock,
                start=start,
                initial=spec.initial_reading,
                device_id=spec.device_id,
                unmapped_registers=spec.unmapped_registers,
            )
        )
    return meters


__all__ = [
    "AcUnitSpec",
    "Building",
    "Calendar",
    "Institution",
    "InstitutionType",
    "Meter",
    "MeterKind",
    "Profile",
    "Scenario",
    "Targets",
    "Vacation",
    "build_meters",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
]
