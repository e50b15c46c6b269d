"""Compliance figures the institution is scored on. Pure: no I/O, no clock reads.

Inputs are the institution config, a coefficient profile, per-meter consumption for the
year so far (interval sums from the store) and `now`; the output is what the energy office
reports (公共机构能源资源消费统计, STANDARDS.md §2) plus the seed-004 item-1 score:

    综合能耗 kgce      = Σ main energy meters: quantity × kgce per unit (water excluded)
    kgce/m²            = 综合能耗 ÷ 建筑面积          target met → 3.5 points
    kgce/person        = 综合能耗 ÷ 用能人数          target met → 3.5 points
    m³ water/person    = 用水量 ÷ 用能人数            target met → 3 points

"Met" compares the projection to year end (`central.projection`, the one projection every
page and report shows) with the annual target. Before enough data exists (30 days by
default) there is no projection and no score ("数据不足，暂不预测"); before the year is over
the score is provisional (预计). Only `main` meters count, so 分项 sub-meters are never added
twice.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from central.coverage import Coverage, QuantityLine, QuantitySource
from central.energy import EnergyType
from central.institution import InstitutionConfig, MeterKey, YearTarget
from central.period import Period
from central.profile import CoefficientProfile
from central.projection import DEFAULT_MIN_DAYS, Projection, Status, TypeInput, project
from central.registry import mean_energy_users, mean_floor_area

MAX_SCORE = 10.0


class ScoreKey(enum.StrEnum):
    KGCE_PER_M2 = "kgce_per_m2"
    KGCE_PER_PERSON = "kgce_per_person"
    WATER_M3_PER_PERSON = "water_m3_per_person"


# Seed 004 (节约型机关创建工作任务明细表), item 1: 10 points for meeting the annual targets.
POINTS: Mapping[ScoreKey, float] = {
    ScoreKey.KGCE_PER_M2: 3.5,
    ScoreKey.KGCE_PER_PERSON: 3.5,
    ScoreKey.WATER_M3_PER_PERSON: 3.0,
}
LABELS: Mapping[ScoreKey, tuple[str, str, str]] = {
    ScoreKey.KGCE_PER_M2: ("单位建筑面积能耗", "Energy per floor area", "kgce/m²"),
    ScoreKey.KGCE_PER_PERSON: ("人均综合能耗", "Energy per person", "kgce/person"),
    ScoreKey.WATER_M3_PER_PERSON: ("人均用水量", "Water per person", "m³/person"),
}


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


Source = Literal["metered", "bill", "vehicle"]


class ManualQuantity(_Result):
    """Non-metered consumption in a period (from the ledger), in the unit it was entered."""

    energy: EnergyType
    unit: str | None
    quantity: float
    source: Literal["bill", "vehicle"]
    entries: int = 1


class EnergyLine(_Result):
    energy: EnergyType
    unit: str
    quantity: float
    kgce_per_unit: float
    kgce: float
    meters: int
    source: Source = "metered"
    entries: int = 0


class ScoreItem(_Result):
    key: ScoreKey
    label_zh: str
    label_en: str
    unit: str
    ytd: float
    target: float | None
    prorated_target: float | None
    projected: float | None
    met: bool | None  # None: no target for the year, or not enough data to project
    points: float
    max_points: float
    status: Status = "provisional"  # insufficient: no projection; provisional: 预计


class ComplianceReport(_Result):
    institution_id: str
    year: int
    timezone: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    fraction_elapsed: float
    data_since: datetime | None
    coverage_fraction: float
    provisional: bool
    profile_id: str
    profile_version: str
    profile_extends: str | None
    profile_overridden: list[EnergyType]
    energy_kgce: float
    energy_by_type: list[EnergyLine]
    vehicle_kgce: float
    energy_kgce_for_area: float  # 综合能耗 less vehicle fuel where the profile excludes it
    water_m3: float
    floor_area_m2: float  # time-weighted mean over the period covered so far
    energy_users: float  # same
    floor_area_year_m2: float  # time-weighted mean over the whole year (projection)
    energy_users_year: float
    kgce_per_m2: float
    kgce_per_person: float
    water_m3_per_person: float
    projected_energy_kgce: float | None
    projected_water_m3: float | None
    targets: YearTarget | None
    items: list[ScoreItem]
    score: float | None  # None: not enough data to score (see `projection`)
    max_score: float
    projection: Projection
    electricity_kwh: float = 0.0  # metered + billed (quantities)
    quantities: list[QuantityLine] = []
    coverage: Coverage | None = None  # the year so far (`central.metrics.coverage_for`)


def at_most(value: float, target: float) -> bool:
    """value ≤ target, with equality robust to float rounding (equal counts as met)."""
    return value <= target or math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-12)


def compute(
    institution: InstitutionConfig,
    profile: CoefficientProfile,
    sums: Mapping[MeterKey, float],
    *,
    now: float,
    year: int,
    data_since: float | None = None,
    manual: Sequence[ManualQuantity] = (),
    projection: Projection | None = None,
    min_days: int = DEFAULT_MIN_DAYS,
    coverage: Coverage | None = None,
) -> ComplianceReport:
    """Figures for `year` from per-meter consumption between local Jan 1 and min(now, year
    end). Raises `ProfileError` if a meter cannot be converted (see `check_profile`).

    `data_since` is when metering began within the year (an institution that starts
    mid-year, or the demo): projections and pro-rated targets then use the share of the year
    that is covered by data, not the share elapsed, so a young installation is not scored on
    consumption it never measured. The report says so (`data_since`, `coverage_fraction`).

    `manual` adds non-metered consumption of the same window (bills pro-rated to it, vehicle
    fuel dated in it). Floor area and 用能人数 are time-weighted means (`central.registry`):
    over the covered window for the year-to-date ratios, over the whole year for the
    projection that is compared with the target.

    `projection` is `central.projection.project` over the year's daily figures (what
    `central.metrics.compliance_for` passes); without it the metered rate over the covered
    window is extrapolated (method "linear"), under the same `min_days` rule.
    """
    tz = institution.institution.tz
    year_p = Period.year(year, tz)
    start, end = year_p.bounds
    elapsed = year_p.until(now).fraction_of(year_p)
    covered_from = start if data_since is None else min(max(start, data_since), end)
    fraction = min(1.0, max(0.0, (min(now, end) - covered_from) / (end - start)))

    energy_by_type, water_m3, water_metered = energy_lines(institution, profile, sums, manual)
    quantities = quantity_lines(institution, profile, sums, manual)
    energy_kgce = math.fsum(line.kgce for line in energy_by_type)
    vehicle_kgce = math.fsum(line.kgce for line in energy_by_type if line.source == "vehicle")
    for_area = energy_kgce if profile.vehicle_fuel_in_per_m2 else energy_kgce - vehicle_kgce
    until = min(max(now, covered_from), end)
    area = mean_floor_area(institution, covered_from, until)
    users = mean_energy_users(institution, covered_from, until)
    area_year = mean_floor_area(institution, start, end)
    users_year = mean_energy_users(institution, start, end)

    if projection is None:  # no daily figures: the metered rate over the covered window
        per_type: dict[EnergyType, TypeInput] = {}
        for line in energy_by_type:
            t = per_type.setdefault(line.energy, TypeInput(line.energy, since=covered_from,
                                                           configured=True))
            t.metered += line.kgce
        if water_metered:
            per_type[EnergyType.WATER] = TypeInput(EnergyType.WATER, metered=water_m3,
                                                   since=covered_from, configured=True)
        projection = project(list(per_type.values()), year=year_p,
                             until=min(now, end), min_days=min_days,
                             vehicle_in_area=profile.vehicle_fuel_in_per_m2)
    proj_energy, proj_water = projection.energy_kgce, projection.water_m3
    proj_area_energy = projection.energy_kgce_for_area
    targets = institution.targets.get(year)
    e_status, w_status = projection.energy_status, projection.water_status
    values = {
        ScoreKey.KGCE_PER_M2: (for_area / area, proj_area_energy, area_year, e_status),
        ScoreKey.KGCE_PER_PERSON: (energy_kgce / users, proj_energy, users_year, e_status),
        ScoreKey.WATER_M3_PER_PERSON: (water_m3 / users, proj_water, users_year, w_status),
    }
    items: list[ScoreItem] = []
    for key, (ytd, proj_total, denominator, status) in values.items():
        target = getattr(targets, key.value) if targets is not None else None
        proj = (proj_total / denominator if proj_total is not None and status !=
                "insufficient" else None)
        met = at_most(proj, target) if target is not None and proj is not None else None
        label_zh, label_en, unit = LABELS[key]
        items.append(ScoreItem(
            key=key, label_zh=label_zh, label_en=label_en, unit=unit, ytd=ytd, target=target,
            prorated_target=target * fraction if target is not None else None,
            projected=proj, met=met, points=POINTS[key] if met else 0.0,
            max_points=POINTS[key], status=status))

    return ComplianceReport(
        institution_id=institution.institution.id, year=year, timezone=tz.key,
        period_start=datetime.fromtimestamp(start, tz),
        period_end=datetime.fromtimestamp(end, tz),
        as_of=datetime.fromtimestamp(now, tz),
        fraction_elapsed=elapsed,
        data_since=datetime.fromtimestamp(covered_from, tz) if covered_from > start else None,
        coverage_fraction=fraction, provisional=now < end,
        profile_id=profile.profile_id, profile_version=profile.version,
        profile_extends=profile.extends, profile_overridden=list(profile.overridden),
        energy_kgce=energy_kgce, energy_by_type=energy_by_type, vehicle_kgce=vehicle_kgce,
        energy_kgce_for_area=for_area, water_m3=water_m3,
        floor_area_m2=area, energy_users=users, floor_area_year_m2=area_year,
        energy_users_year=users_year,
        kgce_per_m2=for_area / area, kgce_per_person=energy_kgce / users,
        water_m3_per_person=water_m3 / users,
        projected_energy_kgce=proj_energy, projected_water_m3=proj_water,
        targets=targets, items=items,
        score=(None if projection.status == "insufficient"
               else math.fsum(i.points for i in items)),
        max_score=MAX_SCORE, projection=projection, electricity_kwh=quantity_of(
            quantities, EnergyType.ELECTRICITY), quantities=quantities, coverage=coverage)


def energy_lines(
    institution: InstitutionConfig,
    profile: CoefficientProfile,
    sums: Mapping[MeterKey, float],
    manual: Sequence[ManualQuantity] = (),
    *,
    building: str | None = None,
) -> tuple[list[EnergyLine], float, bool]:
    """Energy lines per (energy, unit, source) of the main meters (of one building, or all)
    and the manual quantities; plus water in m³ and whether any water was accounted."""
    lines: dict[tuple[EnergyType, str, str], list[float]] = {}
    water_parts: list[float] = []
    water_seen = False
    for meter in institution.main_meters():
        if building is not None and meter.building != building:
            continue
        quantity = float(sums.get(meter.key, 0.0))
        if not meter.energy.is_energy:
            water_parts.append(quantity)
            water_seen = True
            continue
        factor = profile.kgce_per(meter)
        line = lines.setdefault((meter.energy, profile.unit_of(meter), "metered"),
                                [0.0, factor, 0.0, 0, 0])
        line[0] += quantity
        line[2] += quantity * factor
        line[3] += 1
    for q in manual:
        if not q.energy.is_energy:
            water_parts.append(q.quantity)
            water_seen = True
            continue
        factor = profile.kgce_per_unit(q.energy, q.unit)
        unit = q.unit or profile.coefficients[q.energy].unit
        line = lines.setdefault((q.energy, unit, q.source), [0.0, factor, 0.0, 0, 0])
        line[0] += q.quantity
        line[2] += q.quantity * factor
        line[4] += q.entries
    out = [
        EnergyLine(energy=energy, unit=unit, quantity=qty, kgce_per_unit=f, kgce=kgce,
                   meters=int(n), source=source, entries=int(k))
        for (energy, unit, source), (qty, f, kgce, n, k) in sorted(lines.items())
    ]
    return out, math.fsum(water_parts), water_seen


def quantity_lines(
    institution: InstitutionConfig,
    profile: CoefficientProfile,
    sums: Mapping[MeterKey, float],
    manual: Sequence[ManualQuantity] = (),
    *,
    building: str | None = None,
) -> list[QuantityLine]:
    """Physical quantities per energy type (water included), metered / billed / from the
    fuel log. A type whose entries all share one unit is shown in it (vehicle fuel in L);
    mixed units are converted to the profile's unit of the type through the coefficients.
    Types with neither a main meter in scope nor an entry are absent."""
    parts: dict[EnergyType, list[tuple[str, str, float]]] = {}  # (source, unit, quantity)
    for meter in institution.main_meters():
        if building is not None and meter.building != building:
            continue
        u = "m3" if not meter.energy.is_energy else (
            meter.unit or profile.coefficients[meter.energy].unit)
        parts.setdefault(meter.energy, []).append(
            ("metered", u, float(sums.get(meter.key, 0.0))))
    for q in manual:
        u = "m3" if not q.energy.is_energy else (
            q.unit or profile.coefficients[q.energy].unit)
        parts.setdefault(q.energy, []).append((q.source, u, q.quantity))
    out = []
    for energy in sorted(parts, key=lambda e: list(EnergyType).index(e)):
        units = {u for _, u, _ in parts[energy]}
        base = units.pop() if len(units) == 1 else profile.coefficients[energy].unit
        row: dict[str, float] = {}
        for source, u, quantity in parts[energy]:
            if u != base:
                quantity *= (profile.kgce_per_unit(energy, u)
                             / profile.kgce_per_unit(energy, base))
            row[source] = row.get(source, 0.0) + quantity
        order: list[QuantitySource] = ["metered", "bill", "vehicle"]
        out.append(QuantityLine(
            energy=energy, unit=base.replace("m3", "m³"), metered=row.get("metered", 0.0),
            billed=row.get("bill", 0.0), vehicle=row.get("vehicle", 0.0),
            total=math.fsum(row.values()), sources=[s for s in order if s in row]))
    return out


def quantity_of(lines: Sequence[QuantityLine], energy: EnergyType) -> float:
    return math.fsum(x.total for x in lines if x.energy is energy)
