"""Golden compliance figures, computed by hand in each test, and both sides of every
score threshold (a value equal to its target counts as met)."""

from __future__ import annotations

import copy

import pytest

from central.compliance import ScoreKey, compute
from central.institution import InstitutionConfig, MeterKey, parse_institution
from central.period import Period
from central.profile import CoefficientProfile
from tests.unit.central.central_helpers import INSTITUTION, local_ts

A = MeterKey("edge-1", "meter-a", "energy_import_kwh")
A_AC = MeterKey("edge-1", "meter-a-ac", "energy_import_kwh")  # sub-meter, never counted
WATER = MeterKey("edge-1", "water-a", "water_m3")
B = MeterKey("edge-2", "meter-b", "energy_import_kwh")

# 6,000 + 4,000 kWh on main meters, 2,500 kWh on a sub-meter, 3,240 m³ of water.
SUMS = {A: 6_000.0, B: 4_000.0, A_AC: 2_500.0, WATER: 3_240.0}
# 2025-07-02 12:00 Beijing time: 182.5 of 365 days elapsed, fraction exactly 0.5.
MID_2025 = local_ts(2025, 7, 2, 12, 0)


def with_targets(kgce_per_m2: float, kgce_per_person: float,
                 water: float) -> InstitutionConfig:
    data = copy.deepcopy(INSTITUTION)
    data["targets"] = {2025: {"kgce_per_m2": kgce_per_m2, "kgce_per_person": kgce_per_person,
                              "water_m3_per_person": water}}
    return parse_institution(data)


def test_golden_year_to_date(institution: InstitutionConfig,
                             profile: CoefficientProfile) -> None:
    r = compute(institution, profile, SUMS, now=MID_2025, year=2025)
    # 10,000 kWh × 0.1229 kgce/kWh = 1,229 kgce (the 2,500 kWh sub-meter is inside meter-a)
    assert r.energy_kgce == pytest.approx(1_229.0, rel=1e-12)
    assert r.floor_area_m2 == 12_000.0  # 7,000 + 5,000
    assert r.energy_users == 1_620.0  # 120 staff + 1,500 students
    assert r.kgce_per_m2 == pytest.approx(0.1024166666666, rel=1e-12)  # 1,229 / 12,000
    assert r.kgce_per_person == pytest.approx(0.7586419753086, rel=1e-12)  # 1,229 / 1,620
    assert r.water_m3 == 3_240.0
    assert r.water_m3_per_person == pytest.approx(2.0, rel=1e-12)  # 3,240 / 1,620
    assert r.fraction_elapsed == pytest.approx(0.5, rel=1e-12)  # 182.5 / 365 days
    assert r.provisional is True
    assert r.projected_energy_kgce == pytest.approx(2_458.0, rel=1e-12)  # 1,229 / 0.5
    assert r.projected_water_m3 == pytest.approx(6_480.0, rel=1e-12)
    assert r.profile_id == "national"
    assert r.profile_version == "2020.1"
    [line] = r.energy_by_type
    assert (line.energy.value, line.unit, line.quantity, line.meters) == (
        "electricity", "kWh", 10_000.0, 2)
    items = {i.key: i for i in r.items}
    m2 = items[ScoreKey.KGCE_PER_M2]
    assert m2.projected == pytest.approx(0.2048333333333, rel=1e-12)  # 2,458 / 12,000
    assert m2.prorated_target == pytest.approx(0.125)  # 0.25 × 0.5
    assert m2.met is True
    assert m2.points == 3.5
    person = items[ScoreKey.KGCE_PER_PERSON]
    assert person.projected == pytest.approx(1.5172839506173, rel=1e-12)  # 2,458 / 1,620
    assert person.met is True
    assert person.points == 3.5
    water = items[ScoreKey.WATER_M3_PER_PERSON]
    assert water.projected == pytest.approx(4.0, rel=1e-12)  # 6,480 / 1,620
    assert water.met is True
    assert water.points == 3.0
    assert r.score == 10.0
    assert r.max_score == 10.0


@pytest.mark.parametrize(
    ("key", "targets", "met"),
    [
        # projections: 0.20483333… kgce/m², 1.51728395… kgce/person, 4.0 m³/person
        (ScoreKey.KGCE_PER_M2, (2_458 / 12_000, 9, 9), True),  # equal → met
        (ScoreKey.KGCE_PER_M2, (0.2048, 9, 9), False),  # just below the projection
        (ScoreKey.KGCE_PER_PERSON, (9, 2_458 / 1_620, 9), True),
        (ScoreKey.KGCE_PER_PERSON, (9, 1.5172, 9), False),
        (ScoreKey.WATER_M3_PER_PERSON, (9, 9, 4.0), True),
        (ScoreKey.WATER_M3_PER_PERSON, (9, 9, 3.9999), False),
    ],
)
def test_each_threshold_on_both_sides(profile: CoefficientProfile, key: ScoreKey,
                                      targets: tuple[float, float, float], met: bool) -> None:
    r = compute(with_targets(*targets), profile, SUMS, now=MID_2025, year=2025)
    item = next(i for i in r.items if i.key is key)
    assert item.met is met
    assert item.points == (item.max_points if met else 0.0)
    others = sum(i.points for i in r.items if i.key is not key)
    assert r.score == pytest.approx(others + item.points)
    assert r.score == (10.0 if met else 10.0 - item.max_points)


def test_points_per_item(profile: CoefficientProfile) -> None:
    r = compute(with_targets(0.1, 0.1, 0.1), profile, SUMS, now=MID_2025, year=2025)
    assert [(i.key.value, i.max_points, i.met) for i in r.items] == [
        ("kgce_per_m2", 3.5, False), ("kgce_per_person", 3.5, False),
        ("water_m3_per_person", 3.0, False)]
    assert r.score == 0.0


def test_other_fuels_use_their_coefficients(profile: CoefficientProfile) -> None:
    data = copy.deepcopy(INSTITUTION)
    data["meters"] += [
        {"edge": "edge-2", "device": "boiler", "point": "gas_m3", "building": "B",
         "energy": "natural_gas", "role": "main"},
        {"edge": "edge-2", "device": "generator", "point": "diesel_l", "building": "B",
         "energy": "diesel", "role": "main", "unit": "L"},
    ]
    cfg = parse_institution(data)
    sums = {**SUMS, MeterKey("edge-2", "boiler", "gas_m3"): 1_000.0,
            MeterKey("edge-2", "generator", "diesel_l"): 100.0}
    r = compute(cfg, profile, sums, now=MID_2025, year=2025)
    # 1,229 + 1,000 m³ × 1.2143 + 100 L × 0.83 kg/L × 1.4571 = 1,229 + 1,214.3 + 120.9393
    assert r.energy_kgce == pytest.approx(2_564.2393, rel=1e-12)
    assert {line.energy.value: line.kgce for line in r.energy_by_type} == pytest.approx(
        {"electricity": 1_229.0, "natural_gas": 1_214.3, "diesel": 120.9393})


def test_year_boundaries_and_fraction(institution: InstitutionConfig,
                                      profile: CoefficientProfile) -> None:
    tz = institution.institution.tz
    year_p = Period.year(2024, tz)
    start, end = year_p.bounds
    assert end - start == 366 * 86_400  # leap year
    assert start == local_ts(2024, 1, 1)  # local midnight, i.e. 2023-12-31 16:00 UTC
    assert year_p.until(local_ts(2024, 1, 1)).fraction_of(year_p) == 0.0
    assert year_p.until(local_ts(2024, 1, 2)).fraction_of(year_p) == pytest.approx(1 / 366)
    # At the very start of the year nothing can be projected, so nothing is scored yet.
    r = compute(institution, profile, {}, now=local_ts(2025, 1, 1), year=2025)
    assert r.fraction_elapsed == 0.0
    assert r.projected_energy_kgce is None
    assert all(i.met is None and i.points == 0.0 for i in r.items)
    # A finished year is final; the projection equals the year's total.
    r = compute(institution, profile, SUMS, now=local_ts(2026, 3, 1), year=2025)
    assert r.provisional is False
    assert r.fraction_elapsed == 1.0
    assert r.projected_energy_kgce == pytest.approx(1_229.0)


def test_no_target_or_no_meter_scores_nothing(institution: InstitutionConfig,
                                              profile: CoefficientProfile) -> None:
    r = compute(institution, profile, SUMS, now=local_ts(2026, 6, 1), year=2026)
    assert r.targets is None
    assert all(i.met is None for i in r.items)
    assert r.score == 0.0
    data = copy.deepcopy(INSTITUTION)
    data["meters"] = [m for m in data["meters"] if m["energy"] != "water"]
    r = compute(parse_institution(data), profile, SUMS, now=MID_2025, year=2025)
    water = next(i for i in r.items if i.key is ScoreKey.WATER_M3_PER_PERSON)
    assert water.met is None
    assert water.points == 0.0
    assert r.score == 7.0


def test_metering_that_began_mid_year_projects_from_the_covered_share(
        institution: InstitutionConfig, profile: CoefficientProfile) -> None:
    # Metering began 2025-04-02 00:00; now is 2025-07-02 12:00: 91.5 of 365 days covered.
    since = local_ts(2025, 4, 2, 0, 0)
    r = compute(institution, profile, SUMS, now=MID_2025, year=2025, data_since=since)
    assert r.fraction_elapsed == pytest.approx(0.5, rel=1e-12)
    assert r.coverage_fraction == pytest.approx(91.5 / 365, rel=1e-12)
    assert r.data_since is not None
    assert r.data_since.isoformat() == "2025-04-02T00:00:00+08:00"
    # 1,229 kgce over 91.5 days → 1,229 × 365 / 91.5 = 4,902.6229… kgce for the year
    assert r.projected_energy_kgce == pytest.approx(1_229 * 365 / 91.5, rel=1e-12)
    m2 = next(i for i in r.items if i.key is ScoreKey.KGCE_PER_M2)
    assert m2.prorated_target == pytest.approx(0.25 * 91.5 / 365, rel=1e-12)
    # Projected 4,902.62 / 12,000 = 0.4086 kgce/m² > 0.25 target: not met.
    assert m2.met is False


def test_data_since_jan_1_changes_nothing(institution: InstitutionConfig,
                                          profile: CoefficientProfile) -> None:
    plain = compute(institution, profile, SUMS, now=MID_2025, year=2025)
    jan1 = compute(institution, profile, SUMS, now=MID_2025, year=2025,
                   data_since=local_ts(2025, 1, 1, 0, 0))
    assert jan1 == plain
    assert plain.coverage_fraction == plain.fraction_elapsed
