"""Coefficient profiles: standard-coal conversion factors as versioned data, never literals.

Provinces differ (natural gas 1.2143 or 1.3300 kgce/m³) and some values are unconfirmed (⚪),
so the factors live in YAML files under central/profiles/ and every compliance result names
the profile it was computed with; raw quantities are stored, so a report can be recomputed
under another profile.
"""

from __future__ import annotations

import enum
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from central.energy import EnergyType
from central.errors import ConfigError, Problem, ProfileError
from central.institution import InstitutionConfig, Meter
from central.validation import problems_from, read_yaml

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Confidence(enum.StrEnum):
    """The marks of shared/domain/STANDARDS.md."""

    VERIFIED = "✅"
    AGREED = "🟡"
    FROM_MEMORY = "⚪"


class Coefficient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: Annotated[str, Field(min_length=1, max_length=16)]
    kgce_per_unit: PositiveFinite
    confidence: Confidence
    density_kg_per_l: PositiveFinite | None = None  # liquid fuels bought by the litre
    note: str | None = None


class UnitAlias(BaseModel):
    """A unit a bill may come in, converted to the coefficient's unit (GJ → 1000 MJ)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: Annotated[str, Field(min_length=1, max_length=16)]
    factor: PositiveFinite


class CoefficientProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    profile_id: Annotated[str, Field(pattern=_NAME_RE.pattern)]
    version: Annotated[str, Field(min_length=1, max_length=32)]
    description: str = ""
    # A provincial profile names its base and lists only the coefficients it changes; the
    # merged profile records both, so every result says which values were overridden.
    extends: str | None = None
    base_version: str | None = None
    overridden: list[EnergyType] = Field(default_factory=list)
    coefficients: dict[EnergyType, Coefficient]
    unit_aliases: dict[str, UnitAlias] = Field(default_factory=dict)
    # Some provinces exclude official-vehicle fuel from energy per floor area (⚪).
    vehicle_fuel_in_per_m2: bool = True

    @field_validator("coefficients")
    @classmethod
    def _water_is_not_energy(
        cls, value: dict[EnergyType, Coefficient]
    ) -> dict[EnergyType, Coefficient]:
        if EnergyType.WATER in value:
            raise ValueError("water is not part of 综合能耗 and must not have a coefficient")
        return value

    def kgce_per(self, meter: Meter) -> float:
        """kgce per unit of what `meter` reports; raises `ProfileError` if it cannot convert."""
        return self.kgce_per_unit(meter.energy, meter.unit)

    def kgce_per_unit(self, energy: EnergyType, unit: str | None) -> float:
        """kgce per `unit` of `energy` (None: the coefficient's own unit)."""
        coef = self.coefficients.get(energy)
        if coef is None:
            raise ProfileError(self.profile_id, [
                ("energy", energy.value, "the profile has no coefficient for it")])
        unit = unit or coef.unit
        factor = 1.0
        alias = self.unit_aliases.get(unit)
        if alias is not None and unit != coef.unit:
            unit, factor = alias.to, alias.factor
        if unit == coef.unit:
            return coef.kgce_per_unit * factor
        if unit == "L" and coef.density_kg_per_l is not None and coef.unit == "kg":
            return coef.kgce_per_unit * coef.density_kg_per_l * factor
        raise ProfileError(self.profile_id, [
            ("unit", unit, f"cannot convert to {coef.unit} for {energy.value}")])

    def density(self, energy: EnergyType) -> float | None:
        coef = self.coefficients.get(energy)
        return coef.density_kg_per_l if coef else None

    def unit_of(self, meter: Meter) -> str:
        if meter.unit:
            return meter.unit
        coef = self.coefficients.get(meter.energy)
        return coef.unit if coef else "m3"  # water is reported in m³


def parse_profile(data: Any, source: str) -> CoefficientProfile:
    if not isinstance(data, dict):
        raise ProfileError(source, [("<root>", data, "must be a mapping")])
    try:
        return CoefficientProfile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(source, problems_from(exc)) from None


def _read(path: Path, source: str, depth: int = 0) -> CoefficientProfile:
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise ProfileError(source, exc.problems) from None
    if isinstance(data, dict) and data.get("extends") is not None:
        if depth > 3:
            raise ProfileError(source, [("extends", data["extends"], "extends chain too long")])
        base_name = data["extends"]
        base = (load_profile(base_name) if isinstance(base_name, str) and _NAME_RE.match(
            base_name) else _read(path.parent / str(base_name), str(base_name), depth + 1))
        own = data.get("coefficients") or {}
        if not isinstance(own, dict):
            raise ProfileError(source, [("coefficients", own, "must be a mapping")])
        merged = {k.value: v.model_dump(exclude_none=True) for k, v in base.coefficients.items()}
        merged.update(own)
        data = {**data, "coefficients": merged, "base_version": base.version,
                "overridden": sorted(own),
                "unit_aliases": {**{k: v.model_dump() for k, v in base.unit_aliases.items()},
                                 **(data.get("unit_aliases") or {})}}
        data.setdefault("vehicle_fuel_in_per_m2", base.vehicle_fuel_in_per_m2)
    return parse_profile(data, source)


def load_profile(name_or_path: str | Path) -> CoefficientProfile:
    """A built-in profile by name (`national`) or a YAML file by path."""
    if isinstance(name_or_path, str) and _NAME_RE.match(name_or_path):
        resource = resources.files("central").joinpath("profiles", f"{name_or_path}.yaml")
        if not resource.is_file():
            raise ProfileError("coefficient_profile", [
                ("coefficient_profile", name_or_path, "no built-in profile of that name")])
        with resources.as_file(resource) as path:
            return _read(path, f"profile {name_or_path}")
    return _read(Path(name_or_path), str(name_or_path))


def check_profile(institution: InstitutionConfig, profile: CoefficientProfile) -> None:
    """Start-up check that every energy meter can be converted with `profile`."""
    problems: list[Problem] = []
    for i, meter in enumerate(institution.meters):
        if not meter.energy.is_energy:
            if meter.unit not in (None, "m3"):
                problems.append((f"meters[{i}].unit", meter.unit, "water is counted in m3"))
            continue
        try:
            profile.kgce_per(meter)
        except ProfileError as exc:
            problems.extend((f"meters[{i}].{f}", v, r) for f, v, r in exc.problems)
    if problems:
        raise ProfileError(f"profile {profile.profile_id}", problems)
