"""CO₂ emission factors as validated data with validity periods (central/codes/
emission_factors.yaml; format and method in docs/carbon.md).

A factor says how many kg of CO₂ one unit of an energy type emits (grid electricity per kWh
by year and grid region, natural gas per m³, gasoline and diesel per kg, heat per GJ), from
which local day to which local day (both inclusive; an open end means "until a newer factor
is entered"), and where the figure comes from. Factors are data, never literals: a newly
published grid factor is a line added to the file or to the institution's `carbon.factors`.

    FactorError (ConfigError)   the table or an override is invalid: every problem names
                                its field and value (overlapping validity of one energy and
                                region, an unknown energy type or region, a negative factor,
                                valid_to before valid_from, two units for one energy)

The shipped table is read through `shipped_table()`, cached on the file's content hash: an
edited file is read again at the next call, so no figure is computed with a stale factor.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Sequence
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central.energy import EnergyType
from central.errors import ConfigError, Problem
from central.validation import problems_from, read_yaml

NATIONAL = "national"
Confidence = Literal["✅", "🟡", "⚪"]


class FactorError(ConfigError):
    """An emission-factor table or an institution's factor override is invalid."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmissionFactor(_Model):
    """One factor: `kg_co2_per_unit` kg CO₂ per `unit` of `energy`, valid on the local days
    `valid_from`…`valid_to` (inclusive; None: open)."""

    energy: str  # checked against EnergyType by `check_factors` for a clear message
    region: Annotated[str, Field(min_length=1, max_length=32)] = NATIONAL
    unit: Annotated[str, Field(min_length=1, max_length=16)]
    kg_co2_per_unit: Annotated[float, Field(allow_inf_nan=False)]
    valid_from: date
    valid_to: date | None = None
    source: Annotated[str, Field(min_length=1, max_length=400)]
    confidence: Confidence = "⚪"

    @property
    def energy_type(self) -> EnergyType:
        return EnergyType(self.energy)


class RegionLabel(_Model):
    zh: str
    en: str


class FactorTable(_Model):
    table: Literal["emission_factors"]
    version: Annotated[str, Field(min_length=1, max_length=32)]
    regions: dict[str, RegionLabel]
    factors: list[EmissionFactor]
    content_hash: str = ""  # sha256 of the file the table was read from (set by the loader)


def _span(f: EmissionFactor) -> str:
    return f"{f.valid_from.isoformat()}–{f.valid_to.isoformat() if f.valid_to else 'open'}"


def check_factors(factors: Sequence[EmissionFactor], regions: Sequence[str], *,
                  prefix: str = "factors", units: dict[str, str] | None = None
                  ) -> list[Problem]:
    """Every problem of a list of factors as (field, value, reason). `units` maps an energy
    to the unit its factors already use elsewhere (the shipped table, for overrides)."""
    problems: list[Problem] = []
    known = {e.value for e in EnergyType if e.is_energy}
    seen_units: dict[str, str] = dict(units or {})
    by_key: dict[tuple[str, str], list[tuple[int, EmissionFactor]]] = {}
    for i, f in enumerate(factors):
        where = f"{prefix}[{i}]"
        if f.energy == EnergyType.WATER.value:
            problems.append((f"{where}.energy", f.energy,
                             "water is not energy and has no emission factor"))
            continue
        if f.energy not in known:
            problems.append((f"{where}.energy", f.energy,
                             f"unknown energy type (known: {', '.join(sorted(known))})"))
            continue
        if f.region not in regions:
            problems.append((f"{where}.region", f.region,
                             f"unknown region (known: {', '.join(regions)})"))
        if f.kg_co2_per_unit < 0:
            problems.append((f"{where}.kg_co2_per_unit", f.kg_co2_per_unit,
                             "an emission factor cannot be negative"))
        if f.valid_to is not None and f.valid_to < f.valid_from:
            problems.append((f"{where}.valid_to", f.valid_to.isoformat(),
                             f"before valid_from {f.valid_from.isoformat()}"))
        unit = seen_units.setdefault(f.energy, f.unit)
        if unit != f.unit:
            problems.append((f"{where}.unit", f.unit,
                             f"{f.energy} factors are in {unit} elsewhere; use one unit"))
        by_key.setdefault((f.energy, f.region), []).append((i, f))
    for entries in by_key.values():
        entries.sort(key=lambda e: e[1].valid_from)
        for (i, a), (j, b) in itertools.pairwise(entries):
            if a.valid_to is None or b.valid_from <= a.valid_to:
                problems.append((f"{prefix}[{j}].valid_from", b.valid_from.isoformat(),
                                 f"overlaps {prefix}[{i}] ({a.energy}, {a.region}, "
                                 f"{_span(a)})"))
    return problems


def parse_table(data: Any, source: str, content_hash: str = "") -> FactorTable:
    """A validated factor table; raises `FactorError` naming every bad field and value."""
    if not isinstance(data, dict):
        raise FactorError(source, [("<root>", data, "must be a mapping with table, version, "
                                    "regions and factors")])
    try:
        table = FactorTable.model_validate({**data, "content_hash": content_hash})
    except ValidationError as exc:
        raise FactorError(source, problems_from(exc)) from None
    problems = check_factors(table.factors, list(table.regions))
    if NATIONAL not in table.regions:
        problems.append(("regions", sorted(table.regions), f"must include {NATIONAL!r}"))
    if problems:
        raise FactorError(source, problems)
    return table


_cache: dict[str, FactorTable] = {}  # content hash → parsed table (bounded: see load_table)
_cache_lock = threading.Lock()
_CACHE_MAX = 8


def load_table(path: Path, source: str | None = None) -> FactorTable:
    """Read and validate a factor table; parsed once per distinct file content (the key
    is the sha256 of the bytes, so an edited file is never served from the cache)."""
    source = source or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FactorError(source, [("<file>", source, f"cannot read: {exc}")]) from None
    digest = hashlib.sha256(raw).hexdigest()
    with _cache_lock:
        hit = _cache.get(digest)
    if hit is not None:
        return hit
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        raise FactorError(source, exc.problems) from None
    table = parse_table(data, source, digest)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[digest] = table
    return table


SHIPPED = "central/codes/emission_factors.yaml"


def shipped_table() -> FactorTable:
    """The factor table shipped with the central (central/codes/emission_factors.yaml)."""
    resource = resources.files("central").joinpath("codes", "emission_factors.yaml")
    with resources.as_file(resource) as path:
        return load_table(path, SHIPPED)
