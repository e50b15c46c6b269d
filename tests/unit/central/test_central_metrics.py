"""Golden figures computed by hand from STANDARDS.md: a floor area that changes mid-year, a
school whose 用能人数 includes students (and changes with the new term), a gas bill, vehicle
fuel bought in litres, a provincial profile, and each score threshold on both sides."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from central.compliance import ManualQuantity, ScoreKey, compute
from central.energy import EnergyType
from central.formulas import (
    bill_share,
    data_centre,
    item_breakdown,
    manual_quantities,
    quota_check,
    vehicle_lines,
)
from central.institution import InstitutionConfig, MeterKey, parse_institution
from central.ledger import Bill, FuelEntry
from central.metrics import ac_compliance, after_hours
from central.profile import CoefficientProfile, load_profile
from central.workcalendar import WorkingCalendar
from tests.unit.central.central_helpers import SHANGHAI, local_ms, local_ts
from tests.unit.central.registry_helpers import SCHOOL, YEAR_AREA, YEAR_USERS

A = MeterKey("edge-1", "meter-a", "energy_import_kwh")
A_AC = MeterKey("edge-1", "meter-a-ac", "energy_import_kwh")
WATER = MeterKey("edge-1", "water-a", "water_m3")
B = MeterKey("edge-2", "meter-b", "energy_import_kwh")
DC = MeterKey("edge-2", "dc-total", "energy_import_kwh")
DC_IT = MeterKey("edge-2", "dc-it", "energy_import_kwh")
SUMS = {A: 6_000.0, B: 4_000.0, A_AC: 2_500.0, WATER: 3_240.0, DC: 1_500.0, DC_IT: 1_000.0}

GAS = ManualQuantity(energy=EnergyType.NATURAL_GAS, unit=None, quantity=1_000.0,
                     source="bill")
PETROL = ManualQuantity(energy=EnergyType.GASOLINE, unit="L", quantity=200.0,
                        source="vehicle")
AFTER_2025 = local_ts(2026, 1, 15)  # the year is over: figures are final

# 10,000 kWh × 0.1229 = 1,229 kgce; 1,000 m³ gas × 1.2143 = 1,214.3 kgce;
# 200 L petrol × 0.725 kg/L × 1.4714 kgce/kg = 213.353 kgce → 2,656.653 kgce
TOTAL_KGCE = 2_656.653


@pytest.fixture
def school() -> InstitutionConfig:
    return parse_institution(SCHOOL)


def test_golden_year_with_area_change_students_gas_and_fuel(
        school: InstitutionConfig, profile: CoefficientProfile) -> None:
    r = compute(school, profile, SUMS, now=AFTER_2025, year=2025, manual=[GAS, PETROL])
    assert r.provisional is False
    assert r.energy_kgce == pytest.approx(TOTAL_KGCE, rel=1e-12)
    lines = {(x.energy.value, x.source): x for x in r.energy_by_type}
    assert lines[("natural_gas", "bill")].kgce == pytest.approx(1_214.3, rel=1e-12)
    petrol = lines[("gasoline", "vehicle")]
    assert (petrol.unit, petrol.quantity) == ("L", 200.0)
    assert petrol.kgce_per_unit == pytest.approx(1.066765, rel=1e-12)  # 0.725 × 1.4714
    assert petrol.kgce == pytest.approx(213.353, rel=1e-12)
    assert r.vehicle_kgce == pytest.approx(213.353, rel=1e-12)
    assert r.floor_area_m2 == YEAR_AREA  # day-weighted: (181×7,000 + 184×14,300)/365 + 5,000
    assert r.energy_users == YEAR_USERS  # (243×1,620 + 122×1,985)/365, students included
    assert r.kgce_per_m2 == pytest.approx(2_656.653 / 15_680, rel=1e-12)  # 0.169429…
    assert r.kgce_per_person == pytest.approx(2_656.653 / 1_742, rel=1e-12)  # 1.525059…
    assert r.water_m3_per_person == pytest.approx(3_240 / 1_742, rel=1e-12)  # 1.859931…
    assert r.score == 10.0  # 0.1694 ≤ 0.25, 1.525 ≤ 2.0, 1.86 ≤ 5.0
    assert r.profile_id == "national"
    assert r.profile_overridden == []


def test_provincial_profile_is_recorded_and_excludes_vehicle_fuel_per_m2(
        school: InstitutionConfig) -> None:
    province = load_profile("provincial-example")
    r = compute(school, province, SUMS, now=AFTER_2025, year=2025, manual=[GAS, PETROL])
    # gas at 1.3300: 1,229 + 1,330 + 213.353 = 2,772.353 kgce; per m² without the car
    assert r.energy_kgce == pytest.approx(2_772.353, rel=1e-12)
    assert r.energy_kgce_for_area == pytest.approx(2_559.0, rel=1e-12)
    assert r.kgce_per_m2 == pytest.approx(2_559.0 / 15_680, rel=1e-12)
    assert r.kgce_per_person == pytest.approx(2_772.353 / 1_742, rel=1e-12)
    assert (r.profile_id, r.profile_extends, r.profile_overridden) == (
        "provincial-example", "national", [EnergyType.NATURAL_GAS])


def test_year_to_date_uses_the_denominators_valid_so_far(
        school: InstitutionConfig, profile: CoefficientProfile) -> None:
    # 1 April: 90 of 365 days; area still 12,000 m², 1,620 people.
    now = local_ts(2025, 4, 1)
    r = compute(school, profile, SUMS, now=now, year=2025, manual=[GAS, PETROL])
    assert r.fraction_elapsed == pytest.approx(90 / 365, rel=1e-12)
    assert r.floor_area_m2 == 12_000.0
    assert r.energy_users == 1_620.0
    assert r.kgce_per_m2 == pytest.approx(TOTAL_KGCE / 12_000, rel=1e-12)
    assert (r.floor_area_year_m2, r.energy_users_year) == (YEAR_AREA, YEAR_USERS)
    m2 = next(i for i in r.items if i.key is ScoreKey.KGCE_PER_M2)
    # projected year: 2,656.653 × 365 / 90 kgce over the year's mean area
    assert m2.projected == pytest.approx(TOTAL_KGCE * 365 / 90 / 15_680, rel=1e-12)
    assert m2.prorated_target == pytest.approx(0.25 * 90 / 365, rel=1e-12)


EXACT = {ScoreKey.KGCE_PER_M2: TOTAL_KGCE / YEAR_AREA,
         ScoreKey.KGCE_PER_PERSON: TOTAL_KGCE / YEAR_USERS,
         ScoreKey.WATER_M3_PER_PERSON: 3_240 / YEAR_USERS}


@pytest.mark.parametrize("key", list(ScoreKey))
@pytest.mark.parametrize(("delta", "met"), [(0.0, True), (1e-4, True), (-1e-4, False)])
def test_final_thresholds_on_both_sides_with_changing_denominators(
        profile: CoefficientProfile, key: ScoreKey, delta: float, met: bool) -> None:
    data = copy.deepcopy(SCHOOL)
    targets = {k.value: 99.0 for k in ScoreKey}
    targets[key.value] = EXACT[key] + delta
    data["targets"] = {2025: targets}
    r = compute(parse_institution(data), profile, SUMS, now=AFTER_2025, year=2025,
                manual=[GAS, PETROL])
    item = next(i for i in r.items if i.key is key)
    assert item.met is met
    assert r.score == pytest.approx(10.0 if met else 10.0 - item.max_points)


def test_bill_is_spread_over_its_days(school: InstitutionConfig) -> None:
    # 610 m³ for 1 March – 30 April (61 days): March gets 31/61 of it = 310 m³.
    bill = Bill(ref="gas-2025-03", energy=EnergyType.NATURAL_GAS,
                period_start="2025-03-01", period_end="2025-04-30", quantity=610.0)  # type: ignore[arg-type]
    march = (local_ts(2025, 3, 1), local_ts(2025, 4, 1))
    assert bill_share(bill, *march, SHANGHAI) == pytest.approx(31 / 61, rel=1e-12)
    [q] = manual_quantities([bill], [], school, *march)
    assert q.quantity == pytest.approx(310.0, rel=1e-12)
    assert manual_quantities([bill], [], school, local_ts(2025, 5, 1), local_ts(2025, 6, 1)) == []
    # A bill for building A is not part of building B's figures.
    billed_a = bill.model_copy(update={"building": "A"})
    assert manual_quantities([billed_a], [], school, *march, building="B") == []


def test_vehicles_per_car_litres_per_100_km(school: InstitutionConfig,
                                            profile: CoefficientProfile) -> None:
    fuel = [FuelEntry(ref="r1", vehicle="car-1", day="2025-03-02", litres=120.0, km=1_500.0),  # type: ignore[arg-type]
            FuelEntry(ref="r2", vehicle="car-1", day="2025-03-20", litres=80.0, km=1_000.0),  # type: ignore[arg-type]
            FuelEntry(ref="r3", vehicle="van-1", day="2025-03-05", litres=50.0, km=400.0)]  # type: ignore[arg-type]
    car, van = vehicle_lines(school, profile, fuel, local_ts(2025, 3, 1), local_ts(2025, 4, 1))
    assert (car.litres, car.km, car.entries) == (200.0, 2_500.0, 2)
    assert car.l_per_100km == pytest.approx(8.0, rel=1e-12)  # 200 L / 2,500 km × 100
    assert car.kgce == pytest.approx(213.353, rel=1e-12)
    assert van.l_per_100km == pytest.approx(12.5, rel=1e-12)  # 50 / 400 × 100
    assert van.kgce == pytest.approx(50 * 0.83 * 1.4571, rel=1e-12)  # 60.46965
    [april_car, _] = vehicle_lines(school, profile, fuel, local_ts(2025, 4, 1),
                                   local_ts(2025, 5, 1))
    assert (april_car.litres, april_car.l_per_100km) == (0.0, None)


def test_items_data_centre_and_pue(school: InstitutionConfig) -> None:
    items = item_breakdown(school, SUMS, main_kwh=10_000.0)
    assert [(i.code, i.kwh, i.share) for i in items] == [
        ("01B00", 2_500.0, 0.25), ("01D00", 1_500.0, 0.15)]  # 01D10 rolls up to 01D00
    dc = data_centre(school, SUMS)
    assert (dc.metered, dc.kwh, dc.it_kwh) == (True, 1_500.0, 1_000.0)
    assert dc.pue == pytest.approx(1.5, rel=1e-12)
    assert data_centre(school, SUMS, building="A").metered is False


@pytest.mark.parametrize(("kwh", "verdict"), [
    (650_000.0, "within_guide"),  # 65 kWh/(m²·a) = guide (夏热冬冷, A 党政机关)
    (650_100.0, "within_constraint"),
    (850_000.0, "within_constraint"),  # 85 = constraint
    (850_100.0, "over_constraint"),
])
def test_quota_check_in_kwh_per_m2_year(profile: CoefficientProfile, kwh: float,
                                        verdict: str) -> None:
    data = copy.deepcopy(SCHOOL)
    data["buildings"][0] = {"id": "A", "name": "A", "floor_area_m2": 10_000,
                            "quota_class": "A-government"}
    cfg = parse_institution(data)
    [q] = quota_check(cfg, {A: kwh}, local_ts(2025, 1, 1), local_ts(2026, 1, 1))
    assert q.kwh_per_m2_a == pytest.approx(kwh / 10_000, rel=1e-12)
    assert (q.constraint, q.guide, q.verdict, q.annualised) == (85.0, 65.0, verdict, False)
    # A quarter is annualised: 90 days of 162,500 kWh → × 365/90.
    [q1] = quota_check(cfg, {A: 162_500.0}, local_ts(2025, 1, 1), local_ts(2025, 4, 1))
    assert q1.annualised is True
    assert q1.kwh_per_m2_a == pytest.approx(16.25 * 365 / 90, rel=1e-12)


def _hourly(day: tuple[int, int, int]) -> Iterator[tuple[MeterKey, int, int, float]]:
    for h in range(24):
        yield A, local_ms(*day, h, 0), 3600, 1.0


def test_after_hours_share_follows_the_chinese_calendar() -> None:
    cal = WorkingCalendar()
    # 2025-01-26 is a Sunday make-up workday (调休): 08:00–18:00 is working time → 14 of 24.
    # 2025-10-01 is National Day: all 24 kWh are after hours.
    rows = [*_hourly((2025, 1, 26)), *_hourly((2025, 10, 1))]
    r = after_hours(rows, local_ms(2025, 1, 1), local_ms(2026, 1, 1), SHANGHAI, cal,
                    (8 * 60, 18 * 60), "08:00–18:00")
    assert (r.kwh, r.after_hours_kwh) == (48.0, 38.0)
    assert r.share == pytest.approx(38 / 48, rel=1e-12)
    assert r.unknown_calendar_days == 0
    # A 15-minute interval straddling 18:00 on a workday splits in proportion (10/15 after).
    straddle = [(A, local_ms(2025, 1, 27, 17, 55), 900, 3.0)]
    r = after_hours(straddle, local_ms(2025, 1, 1), local_ms(2026, 1, 1), SHANGHAI, cal,
                    (8 * 60, 18 * 60), "")
    assert r.after_hours_kwh == pytest.approx(2.0, rel=1e-12)
    # 2027 has no 调休 data yet: Monday–Friday is assumed and the result says so.
    r = after_hours(_hourly((2027, 3, 1)), local_ms(2027, 1, 1), local_ms(2028, 1, 1),
                    SHANGHAI, cal, (8 * 60, 18 * 60), "")
    assert (r.after_hours_kwh, r.unknown_calendar_days) == (14.0, 1)


def test_ac_setpoint_share_is_time_weighted() -> None:
    t0 = local_ms(2025, 7, 1, 8, 0)
    half = 1_800_000
    # cool at 24 °C for 1 h (not compliant), then 26 °C for 2 h, off for 1 h, heat at 22 °C
    # for 1 h (winter rule broken); samples every 30 min.
    setpoints = [(t0 + i * half, 24.0 if i < 2 else 26.0 if i < 6 else 22.0)
                 for i in range(10)]
    modes = [(t0 + i * half, "cool" if i < 6 else "off" if i < 8 else "heat")
             for i in range(10)]
    r = ac_compliance({"ac-101": (setpoints, modes)}, t0, t0 + 10 * half,
                      summer_min=26.0, winter_max=20.0, cooling=["cool"], heating=["heat"],
                      max_hold_ms=half, units=2, exempt=1)
    assert r.judged_s == 4 * 3600
    assert r.compliant_s == 2 * 3600
    assert r.share == pytest.approx(0.5, rel=1e-12)
    # A controller that goes silent is not judged after max_hold: one sample only.
    r = ac_compliance({"ac-101": ([(t0, 26.0)], [(t0, "cool")])}, t0, t0 + 10 * half,
                      summer_min=26.0, winter_max=20.0, cooling=["cool"], heating=["heat"],
                      max_hold_ms=half, units=1, exempt=0)
    assert (r.judged_s, r.share) == (1800.0, 1.0)
