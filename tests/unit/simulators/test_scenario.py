"""Scenario files: the built-in school, validation messages, building meters."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from central.institution import InstitutionConfig
from edge.config import parse_edge_config
from protocols.clock import VirtualClock
from protocols.registermap import Table
from simulators.configs import edge_config, institution_config
from simulators.errors import ScenarioError
from simulators.meters import UnmappedRegisters
from simulators.profile import DayKind, FlowProfile, PowerProfile, local_day_start
from simulators.scenario import (
    InstitutionType,
    MeterKind,
    build_meters,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)

KGCE_PER_KWH = 0.1229  # equivalent value used by public-institution statistics
SCHOOL_YAML = Path(__file__).parents[3] / "simulators" / "scenarios" / "school.yaml"


@pytest.fixture
def school_data() -> dict[str, Any]:
    data = yaml.safe_load(SCHOOL_YAML.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def problems_of(data: Any) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, source="test.yaml")
    return str(info.value)


def test_builtin_school_scenario() -> None:
    assert "school" in builtin_scenarios()
    scenario = load_scenario("school")
    inst = scenario.institution
    assert (inst.id, inst.name, inst.type) == ("demo-school", "示范中学", InstitutionType.SCHOOL)
    assert inst.region_code == "330302"
    assert inst.persons == inst.staff + inst.students_daily_average == 1650
    assert set(inst.targets) == {2025, 2026}
    assert {b.name for b in scenario.buildings} >= {"教学楼", "宿舍楼"}
    assert scenario.floor_area_m2 == 15_000
    for building in scenario.buildings:
        kinds = sorted(m.kind for m in scenario.meters if m.building == building.id)
        assert kinds == [MeterKind.ELECTRICITY, MeterKind.WATER]
    assert len({m.device_id for m in scenario.meters}) == len(scenario.meters)


def test_load_by_path_equals_builtin() -> None:
    assert load_scenario(SCHOOL_YAML) == load_scenario("school")


def test_school_year_is_realistic() -> None:
    """2025 lands near the benchmark for schools: ~3.3 kgce/m², ~40 m³/person."""
    scenario = load_scenario("school")
    t0 = local_day_start(dt.date(2025, 1, 1))
    t1 = local_day_start(dt.date(2026, 1, 1))
    meters = build_meters(scenario, VirtualClock(t0), t0)
    kwh = sum(m.consumed(t0, t1) for m in meters if m.profile.total_unit == "kWh")
    m3 = sum(m.consumed(t0, t1) for m in meters if m.profile.total_unit == "m3")
    assert 25.0 <= kwh / scenario.floor_area_m2 <= 30.0
    kgce_per_m2 = kwh * KGCE_PER_KWH / scenario.floor_area_m2
    assert 3.0 <= kgce_per_m2 <= 4.0
    assert 35.0 <= m3 / scenario.institution.persons <= 45.0
    # The 2025 targets are met by the simulated school (the demo starts "compliant").
    targets = scenario.institution.targets[2025]
    assert kgce_per_m2 <= targets.kgce_per_m2
    assert kwh * KGCE_PER_KWH / scenario.institution.persons <= targets.kgce_per_person
    assert m3 / scenario.institution.persons <= targets.water_m3_per_person


def test_build_meters() -> None:
    scenario = load_scenario("school")
    start = local_day_start(dt.date(2026, 3, 2))
    clock = VirtualClock(start)
    meters = build_meters(scenario, clock, start)
    assert [m.meter_id for m in meters] == [m.id for m in scenario.meters]
    for meter, spec in zip(meters, scenario.meters, strict=True):
        assert meter.device_id == spec.device_id
        assert meter.clock is clock
        assert meter.cumulative_at(start) == spec.initial_reading
        expected = PowerProfile if spec.kind is MeterKind.ELECTRICITY else FlowProfile
        assert type(meter.profile) is expected
        assert meter.register_map.model == spec.model
        assert meter.unmapped_registers is UnmappedRegisters.ZERO
    teaching = meters[0]
    # The institution's vacations reach the profiles.
    summer = local_day_start(dt.date(2026, 7, 15)) + 10 * 3600
    assert teaching.profile.day_kind(summer) is DayKind.VACATION
    assert teaching.registers(Table.INPUT, 0x48, 2, start)


def test_seed_defaults_to_a_stable_value_from_the_meter_id(school_data: dict[str, Any]) -> None:
    for meter in school_data["meters"]:
        meter["profile"].pop("seed")
    a = parse_scenario(school_data)
    b = parse_scenario(copy.deepcopy(school_data))
    seeds = [m.profile.params(m.id).seed for m in a.meters]
    assert seeds == [m.profile.params(m.id).seed for m in b.meters]
    assert len(set(seeds)) == len(seeds)


def test_explicit_keypoints_with_clock_times(school_data: dict[str, Any]) -> None:
    school_data["meters"][0]["profile"]["shape"] = [["00:00", 0], ["08:30", 1], [17.5, 1], [24, 0]]
    params = parse_scenario(school_data).meters[0].profile.params("x")
    assert params.shape == ((0.0, 0.0), (8.5, 1.0), (17.5, 1.0), (24.0, 0.0))


def test_unquoted_region_code_is_accepted(school_data: dict[str, Any]) -> None:
    school_data["institution"]["region_code"] = 330302
    assert parse_scenario(school_data).institution.region_code == "330302"


# -- validation messages name the field and the value -----------------------------------


def test_duplicate_device_id(school_data: dict[str, Any]) -> None:
    school_data["meters"][3]["device_id"] = 1
    message = problems_of(school_data)
    assert "test.yaml" in message
    assert "meters[3].device_id: 1 is already used by meter 'teaching-elec'" in message


def test_duplicate_ids_and_unknown_building_are_all_reported(school_data: dict[str, Any]) -> None:
    school_data["buildings"][1]["id"] = "teaching"
    school_data["meters"][1]["id"] = "teaching-elec"
    message = problems_of(school_data)
    assert "buildings[1].id: duplicate id 'teaching'" in message
    assert "meters[1].id: duplicate id 'teaching-elec'" in message
    assert "meters[2].building: unknown building 'dormitory'" in message


def test_ac_units_are_checked_against_buildings_meters_and_each_other(
        school_data: dict[str, Any]) -> None:
    school_data["ac_units"] = [
        {"id": "ac-1", "building": "gym", "device_id": 11},
        {"id": "teaching-elec", "building": "teaching", "device_id": 11},
        {"id": "ac-1", "building": "admin", "device_id": 12},
    ]
    message = problems_of(school_data)
    assert "ac_units[0].building: unknown building 'gym'" in message
    assert "ac_units[1].id: 'teaching-elec' is already a meter id" in message
    assert "ac_units[1].device_id: 11 is already used by AC unit 'ac-1'" in message
    assert "ac_units[2].id: duplicate id 'ac-1'" in message


def test_school_configs_carry_the_ac_units_and_their_rules() -> None:
    scenario = load_scenario("school")
    assert len(scenario.ac_units) == 3
    edge = parse_edge_config(edge_config(
        scenario, modbus_host="127.0.0.1", modbus_port=1502, mqtt_host="127.0.0.1",
        mqtt_port=1883, ac_port=1503), source="edge.yaml")
    acs = {d.id: d for d in edge.devices if d.id.startswith("ac-")}
    assert set(acs) == {a.id for a in scenario.ac_units}
    assert edge.rules is not None
    assert {r.type for r in edge.rules.rules} == {"setpoint_limits", "after_hours_off"}
    assert dt.date(2026, 7, 4) in edge.calendar.holidays  # the summer vacation is off
    institution = InstitutionConfig.model_validate(institution_config(scenario))
    assert {a.device for a in institution.ac_units} == set(acs)
    meters_only = edge_config(scenario, modbus_host="127.0.0.1", modbus_port=1502,
                              mqtt_host="127.0.0.1", mqtt_port=1883)  # `greenguard sim`
    assert len(meters_only["devices"]) == 6
    assert "rules" not in meters_only


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("meters", 0, "profile", "peak"), -5, "meters[0].profile.peak: Input should be greater"),
        (("meters", 0, "profile", "base"), 1e9, "peak (66000.0) is below base"),
        (("meters", 0, "profile", "shape"), "canteen", "unknown shape 'canteen'"),
        (("meters", 0, "profile", "shape"), [[0, 0], [30, 1]], "shape[1]: hour"),
        (("meters", 0, "profile", "shape"), [["7h", 0], [9, 1]], "HH:MM"),
        (("meters", 0, "model"), "generic-water-modbus", "measures water, not electricity"),
        (("meters", 0, "model"), "nonexistent-meter", "unknown register map"),
        (("meters", 0, "device_id"), 0, "meters[0].device_id: Input should be greater"),
        (("meters", 0, "kind"), "gas", "meters[0].kind: Input should be 'electricity' or 'water'"),
        (("meters", 0, "unmapped_registers"), "ignore", "meters[0].unmapped_registers"),
        (("institution", "region_code"), "33030", "institution.region_code: String should match"),
        (("institution", "type"), "company", "institution.type"),
        (("institution", "staff"), -1, "institution.staff"),
        (
            ("institution", "targets", 2025, "kgce_per_m2"),
            0,
            "institution.targets[2025].kgce_per_m2",
        ),
        (("calendar", "vacations", 0, "last"), "2024-01-01", "last (2024-01-01) is before first"),
        (("buildings", 0, "floor_area_m2"), 0, "buildings[0].floor_area_m2"),
        (("buildings", 0, "id"), "教学楼", "buildings[0].id: String should match"),
        (("version",), 2, "version"),
    ],
)
def test_field_errors(
    school_data: dict[str, Any], path: tuple[str | int, ...], value: Any, expected: str
) -> None:
    node: Any = school_data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    message = problems_of(school_data)
    assert expected in message
    if "Input should" in expected:
        assert f"(got {value!r})" in message


def test_typos_are_rejected(school_data: dict[str, Any]) -> None:
    school_data["meters"][0]["inital_reading"] = 5
    assert "meters[0].inital_reading: Extra inputs are not permitted" in problems_of(school_data)


def test_missing_field(school_data: dict[str, Any]) -> None:
    del school_data["institution"]["name"]
    assert "institution.name: Field required" in problems_of(school_data)


def test_not_a_mapping() -> None:
    assert "must be a mapping" in problems_of(["a", "list"])


def test_unknown_builtin_name() -> None:
    with pytest.raises(ScenarioError, match=r"built-in: .*school"):
        load_scenario("hospital")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("institution: [unclosed\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(broken)
