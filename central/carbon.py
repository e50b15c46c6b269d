"""CO₂ of any period: stored quantities × the emission factors valid in it (docs/carbon.md).

    EmissionFactors   the factors one institution uses: its own `carbon.factors` first, then
                      the shipped table's factors of its grid region, then the national ones;
                      `co2_kg(energy, quantity, start_ts, end_ts)` spreads a quantity evenly
                      over [start_ts, end_ts) and multiplies each part by the factor valid in
                      it (a quantity spanning a factor change is split pro rata by time)
    carbon_figures    tCO₂, kgCO₂/m² and kgCO₂/person of a period from its energy lines (the
                      same lines as its kgce), split at every factor change inside it

Nothing here stores a CO₂ figure. Figures are computed when they are read, from the stored
quantities and the factors of that moment, so a corrected or newly published factor changes
every period it touches at the next read (the shipped table is cached on its file's content
hash, `central.carbon_factors.load_table`). A period without any data has no CO₂ ("—"), and
a quantity without a valid factor is listed as missing, never counted as 0 kg.

    MissingFactorError (CentralError)   `co2_kg` was asked for a time without a factor
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import Field

from central.carbon_factors import (
    NATIONAL,
    EmissionFactor,
    FactorTable,
    shipped_table,
)
from central.compliance import EnergyLine
from central.coverage import Coverage
from central.energy import EnergyType
from central.errors import CentralError, ProfileError
from central.institution import InstitutionConfig
from central.period import local_midnight
from central.profile import CoefficientProfile
from central.view import View


class MissingFactorError(CentralError):
    """No emission factor of `energy` is valid at `when` (POSIX seconds)."""

    def __init__(self, energy: str, when: float, tz: ZoneInfo) -> None:
        self.energy = energy
        self.when = when
        day = datetime.fromtimestamp(when, tz).date().isoformat()
        super().__init__(f"energy: no emission factor of {energy!r} is valid on {day}")


@dataclass(frozen=True, slots=True)
class Window:
    """A factor's validity as POSIX seconds [start, end) in the institution's zone."""

    start: float
    end: float
    factor: EmissionFactor


def _windows(factors: Sequence[EmissionFactor], tz: ZoneInfo) -> list[Window]:
    out = [Window(local_midnight(f.valid_from, tz),
                  math.inf if f.valid_to is None
                  else local_midnight(f.valid_to + timedelta(days=1), tz), f)
           for f in factors]
    return sorted(out, key=lambda w: w.start)


class EmissionFactors:
    """The emission factors of one institution, resolved by time.

    Layers, first match wins at any moment: the institution's own factors, the table's
    factors of `region`, the table's national factors. Within a layer the table's
    validation guarantees one factor per energy at a time."""

    def __init__(self, table: FactorTable, *, tz: ZoneInfo, region: str = NATIONAL,
                 overrides: Sequence[EmissionFactor] = ()) -> None:
        self.table = table
        self.tz = tz
        self.region = region
        self.overrides = tuple(overrides)
        layers: list[list[EmissionFactor]] = [list(self.overrides)]
        if region != NATIONAL:
            layers.append([f for f in table.factors if f.region == region])
        layers.append([f for f in table.factors if f.region == NATIONAL])
        self._layers: dict[str, list[list[Window]]] = {}
        for layer in layers:
            per: dict[str, list[EmissionFactor]] = {}
            for f in layer:
                per.setdefault(f.energy, []).append(f)
            for energy in {f.energy for fs in layers for f in fs}:
                self._layers.setdefault(energy, []).append(_windows(per.get(energy, []), tz))
        self._units = {f.energy: f.unit for fs in layers for f in fs}

    @classmethod
    def for_institution(cls, institution: InstitutionConfig,
                        table: FactorTable | None = None) -> EmissionFactors:
        cfg = institution.carbon
        return cls(table or shipped_table(), tz=institution.institution.tz,
                   region=cfg.grid_region, overrides=cfg.factors)

    @property
    def version(self) -> str:
        return self.table.version

    @property
    def content_hash(self) -> str:
        return self.table.content_hash

    def unit_of(self, energy: str) -> str | None:
        """The unit `co2_kg` expects a quantity of `energy` in (kWh, m3, kg, GJ)."""
        return self._units.get(energy)

    def factor_at(self, energy: str, moment: float) -> EmissionFactor | None:
        for windows in self._layers.get(energy, []):
            i = bisect.bisect_right([w.start for w in windows], moment) - 1
            if i >= 0 and moment < windows[i].end:
                return windows[i].factor
        return None

    def change_points(self, start: float, end: float,
                      energies: Sequence[str] | None = None) -> list[float]:
        """Moments strictly inside (start, end) where a factor of `energies` (all when
        None) may change: every window edge of every layer."""
        points: set[float] = set()
        for energy, layers in self._layers.items():
            if energies is not None and energy not in energies:
                continue
            for windows in layers:
                for w in windows:
                    points.update(t for t in (w.start, w.end) if start < t < end)
        return sorted(points)

    def split(self, energy: str, start: float, end: float
              ) -> list[tuple[float, float, EmissionFactor | None]]:
        """[start, end) cut where the factor of `energy` changes, each part with its factor
        (None where no factor is valid)."""
        if end <= start:
            return [(start, end, self.factor_at(energy, start))]
        edges = [start, *self.change_points(start, end, [energy]), end]
        out: list[tuple[float, float, EmissionFactor | None]] = []
        for lo, hi in itertools.pairwise(edges):
            f = self.factor_at(energy, lo)
            if out and out[-1][2] is f:
                out[-1] = (out[-1][0], hi, f)
            else:
                out.append((lo, hi, f))
        return out

    def co2_kg(self, energy: str, quantity: float, start_ts: float, end_ts: float) -> float:
        """kg CO₂ of `quantity` (in `unit_of(energy)`) consumed evenly over [start_ts,
        end_ts): each part × the factor valid in it. An instant (start_ts == end_ts) takes
        the factor of that instant. Raises `MissingFactorError` where no factor is valid."""
        if energy not in {e.value for e in EnergyType}:
            raise ValueError(f"energy: unknown energy type (got {energy!r})")
        span = end_ts - start_ts
        parts: list[float] = []
        for lo, hi, f in self.split(energy, start_ts, end_ts):
            if f is None:
                raise MissingFactorError(energy, lo, self.tz)
            share = (hi - lo) / span if span > 0 else 1.0
            parts.append(quantity * share * f.kg_co2_per_unit)
        return math.fsum(parts)


# -- figures ----------------------------------------------------------------------------


class FactorUse(View):
    """A factor a figure used, and the local days it was used for."""

    energy: EnergyType
    region: str
    region_zh: str
    region_en: str
    unit: str
    kg_co2_per_unit: float
    valid_from: date
    valid_to: date | None
    source: str
    confidence: str
    used_from: date
    used_to: date  # inclusive
    own: bool  # the institution's own factor (carbon.factors), not the shipped table's


class CarbonLine(View):
    """CO₂ of one energy type in a period (quantity in the factor's unit)."""

    energy: EnergyType
    unit: str
    quantity: float
    kg_co2: float
    vehicle_kg_co2: float = 0.0


class MissingCarbon(View):
    """Consumption whose CO₂ is unknown: no factor valid for it, or a unit the profile
    cannot convert. It is left out of `t_co2`, never counted as 0 kg."""

    energy: EnergyType
    unit: str
    quantity: float
    first_day: date
    last_day: date
    reason: str


class CarbonFigures(View):
    t_co2: float | None  # None ("—"): no data in the period
    t_co2_for_area: float | None  # less vehicle fuel where the profile excludes it per m²
    kg_co2_per_m2: float | None
    kg_co2_per_person: float | None  # None for a building (用能人数 is the institution's)
    by_energy: list[CarbonLine]
    factors: list[FactorUse]
    missing: list[MissingCarbon] = Field(default_factory=list)
    complete: bool  # every energy quantity of the period had a factor
    grid_region: str
    table_version: str
    table_hash: str  # sha256 of the factor file the figures were computed with
    coverage: Coverage | None = None


LinesOf = Callable[[float, float], Sequence[EnergyLine]]


def _in_factor_unit(profile: CoefficientProfile, line: EnergyLine, unit: str) -> float:
    """`line.quantity` converted to `unit` through the profile's units (L → kg by density,
    GJ → MJ…), so CO₂ and kgce read one quantity the same way."""
    if line.unit == unit:
        return line.quantity
    return (line.quantity * profile.kgce_per_unit(line.energy, line.unit)
            / profile.kgce_per_unit(line.energy, unit))


def carbon_figures(factors: EmissionFactors, profile: CoefficientProfile, *, start: float,
                   end: float, lines: Sequence[EnergyLine], segment_lines: LinesOf,
                   floor_area_m2: float, energy_users: float | None,
                   coverage: Coverage | None) -> CarbonFigures:
    """CO₂ of [start, end) from its energy lines (`lines`, those of the kgce).

    Where a factor of a consumed energy changes inside the period, the period is cut there
    and `segment_lines(lo, hi)` reads each part's lines (metered intervals exactly, bills
    pro-rated by day as for kgce); otherwise `lines` are used as they are."""
    tz = factors.tz
    energies = sorted({ln.energy.value for ln in lines if ln.quantity})
    cuts = factors.change_points(start, end, energies)
    edges = [start, *cuts, end]
    segments = ([(start, end, lines)] if not cuts else
                [(lo, hi, segment_lines(lo, hi)) for lo, hi in itertools.pairwise(edges)])
    kg: dict[EnergyType, list[float]] = {}
    vehicle: dict[EnergyType, list[float]] = {}
    qty: dict[EnergyType, list[float]] = {}
    used: dict[tuple[int, str], tuple[EmissionFactor, float, float]] = {}
    missing: dict[tuple[EnergyType, str, str], list[float]] = {}
    own = {id(f) for f in factors.overrides}
    for lo, hi, seg in segments:
        for line in seg:
            if not line.quantity:
                continue
            e = line.energy
            unit = factors.unit_of(e.value)
            f = factors.factor_at(e.value, lo)
            reason = None
            if unit is None or f is None:
                reason = "no emission factor valid for these days"
            else:
                try:
                    q = _in_factor_unit(profile, line, unit)
                except ProfileError:
                    reason = f"cannot convert {line.unit} to {unit}"
            if reason is not None or f is None or unit is None:
                m = missing.setdefault((e, line.unit, reason or ""), [0.0, lo, hi])
                m[0] += line.quantity
                m[1], m[2] = min(m[1], lo), max(m[2], hi)
                continue
            co2 = factors.co2_kg(e.value, q, lo, hi)
            kg.setdefault(e, []).append(co2)
            qty.setdefault(e, []).append(q)
            if line.source == "vehicle":
                vehicle.setdefault(e, []).append(co2)
            key = (id(f), e.value)
            prev = used.get(key)
            used[key] = (f, min(lo, prev[1]) if prev else lo, max(hi, prev[2]) if prev else hi)

    def day(t: float) -> date:
        return datetime.fromtimestamp(t, tz).date()

    by_energy = [CarbonLine(energy=e, unit=factors.unit_of(e.value) or "", quantity=math.fsum(
        qty[e]), kg_co2=math.fsum(kg[e]), vehicle_kg_co2=math.fsum(vehicle.get(e, [])))
        for e in sorted(kg, key=lambda x: list(EnergyType).index(x))]
    regions = factors.table.regions
    uses = [FactorUse(energy=EnergyType(f.energy), region=f.region, unit=f.unit,
                      region_zh=regions[f.region].zh if f.region in regions else f.region,
                      region_en=regions[f.region].en if f.region in regions else f.region,
                      kg_co2_per_unit=f.kg_co2_per_unit, valid_from=f.valid_from,
                      valid_to=f.valid_to, source=f.source, confidence=f.confidence,
                      used_from=day(lo), used_to=day(max(lo, hi - 1e-3)), own=id(f) in own)
            for f, lo, hi in sorted(used.values(), key=lambda u: (u[0].energy, u[1]))]
    gaps = [MissingCarbon(energy=e, unit=u, quantity=q, first_day=day(lo),
                          last_day=day(max(lo, hi - 1e-3)), reason=r)
            for (e, u, r), (q, lo, hi) in sorted(missing.items())]
    has_data = coverage.has_data if coverage is not None else bool(lines)
    total = math.fsum(c.kg_co2 for c in by_energy)
    for_area = (total if profile.vehicle_fuel_in_per_m2
                else total - math.fsum(c.vehicle_kg_co2 for c in by_energy))
    t_co2 = total / 1000 if has_data else None
    return CarbonFigures(
        t_co2=t_co2, t_co2_for_area=for_area / 1000 if has_data else None,
        kg_co2_per_m2=for_area / floor_area_m2 if has_data and floor_area_m2 > 0 else None,
        kg_co2_per_person=total / energy_users if has_data and energy_users else None,
        by_energy=by_energy, factors=uses, missing=gaps, complete=not gaps,
        grid_region=factors.region, table_version=factors.version,
        table_hash=factors.content_hash, coverage=coverage)


def _entries(f: EmissionFactors) -> set[tuple[str, str, str, float, date, date | None, bool]]:
    own = {(x.energy, x.region, x.unit, x.kg_co2_per_unit, x.valid_from, x.valid_to, True)
           for x in f.overrides}
    return own | {(x.energy, x.region, x.unit, x.kg_co2_per_unit, x.valid_from, x.valid_to,
                   False) for x in f.table.factors if x.region in (f.region, NATIONAL)}


def changed_since(old: EmissionFactors, new: EmissionFactors) -> date | None:
    """The first local day whose CO₂ may differ between two factor sets (a factor added,
    removed or edited, or another grid region): the earliest validity start among the
    entries that differ. None when they are the same."""
    if old.region != new.region:
        return min((x.valid_from for x in (*old.table.factors, *new.table.factors,
                                           *old.overrides, *new.overrides)), default=None)
    diff = _entries(old) ^ _entries(new)
    return min((e[4] for e in diff), default=None)
