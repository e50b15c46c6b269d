"""Institution config, settings and coefficient profile: every error names field and value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from central.config import load_settings
from central.energy import EnergyType
from central.errors import ConfigError, ProfileError
from central.institution import InstitutionConfig, MeterRole, load_institution, parse_institution
from central.profile import Confidence, check_profile, load_profile
from tests.unit.central.central_helpers import INSTITUTION

EXAMPLE_YAML = """\
institution:
  id: demo-school
  name: 示范中学 Demo Middle School
  type: school
  timezone: Asia/Shanghai
  coefficient_profile: national
buildings:
  - {id: A, name: 教学楼, floor_area_m2: 7000}
  - {id: B, name: 行政楼, floor_area_m2: 5000}
headcount: {staff: 120, students_daily_avg: 1500, other: 0}
targets:
  2025: {kgce_per_m2: 0.25, kgce_per_person: 2.0, water_m3_per_person: 5.0}
meters:
  - {edge: edge-1, device: meter-a, building: A, energy: electricity, role: main}
  - {edge: edge-1, device: meter-a-ac, building: A, energy: electricity, role: sub, item: 01B00}
  - {edge: edge-1, device: water-a, building: A, energy: water, role: main}
  - {edge: edge-2, device: boiler, point: gas_m3, building: B, energy: natural_gas, role: main}
"""


def variant(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(INSTITUTION)
    for dotted, value in changes.items():
        target: Any = data
        *path, last = dotted.split("__")
        for part in path:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return data


_DELETE = object()


def problems(data: Any) -> list[tuple[str, Any, str]]:
    with pytest.raises(ConfigError) as info:
        parse_institution(data)
    return list(info.value.problems)


def test_example_yaml_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "institution.yaml"
    path.write_text(EXAMPLE_YAML, encoding="utf-8")
    cfg = load_institution(path)
    assert cfg.floor_area_m2 == 12_000
    assert cfg.energy_users == 1_620  # 120 staff + 1,500 students (schools add students)
    a, ac, water, gas = cfg.meters
    assert a.point == "energy_import_kwh"
    assert a.live_point == "power_w"
    assert water.point == "water_m3"
    assert water.live_point == "flow_m3h"
    assert gas.point == "gas_m3"
    assert gas.live_point is None
    assert ac.role is MeterRole.SUB
    assert ac.item == "01B00"
    assert [m.device for m in cfg.main_meters()] == ["meter-a", "water-a", "boiler"]
    assert cfg.targets[2025].kgce_per_person == 2.0
    assert cfg.institution.tz.key == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"buildings__0__floor_area_m2": 0}, "buildings[0].floor_area_m2", 0),
        ({"buildings__1__floor_area_m2": float("nan")}, "buildings[1].floor_area_m2", None),
        ({"institution__type": "factory"}, "institution.type", "factory"),
        ({"institution__timezone": "Asia/Beijing"}, "institution.timezone", "Asia/Beijing"),
        ({"meters__1__building": "Z"}, "meters[1].building", "Z"),
        ({"meters__0__role": _DELETE}, "meters[0].role", None),
        ({"meters__0__role": "primary"}, "meters[0].role", "primary"),
        ({"meters__0__energy": "nuclear"}, "meters[0].energy", "nuclear"),
        ({"meters__0__energy": "natural_gas"}, "meters[0].point", None),
        ({"meters__1__item": "AC"}, "meters[1].item", "AC"),
        ({"meters__0__edge": "bad edge"}, "meters[0].edge", "bad edge"),
        ({"meters__0__colour": "red"}, "meters[0].colour", "red"),
        ({"headcount__staff": -1}, "headcount.staff", -1),
        ({"headcount__staff": 0, "headcount__students_daily_avg": 0}, "headcount", None),
        ({"targets": {1999: {"kgce_per_m2": 1, "kgce_per_person": 1,
                             "water_m3_per_person": 1}}}, "targets[1999]", 1999),
        ({"targets__2025__kgce_per_m2": -0.1}, "targets[2025].kgce_per_m2", -0.1),
        ({"buildings": []}, "buildings", []),
    ],
)
def test_invalid_field_is_named_with_its_value(changes: dict[str, Any], field: str,
                                               value: Any) -> None:
    found = problems(variant(**changes))
    fields = [f for f, _, _ in found]
    assert field in fields, found
    if value is not None:
        assert {f: v for f, v, _ in found}[field] == value
    message = str(ConfigError("x", found))
    assert field in message


def test_duplicates_are_reported_each_by_position() -> None:
    data = variant(buildings__1__id="A")
    data["meters"].append(dict(data["meters"][0]))
    found = problems(data)
    assert ("buildings[1].id", "A", "duplicate building id") in found
    assert any(f == "meters[4]" and "twice" in r for f, _, r in found)


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("institution:\n  id: x\n  name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_institution(path)
    field, where, reason = info.value.problems[0]
    assert field == "<yaml>"
    assert where.startswith("line ")
    assert "YAML syntax error" in reason
    assert str(path) in str(info.value)


def test_yaml_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(EXAMPLE_YAML + "targets:\n  2026: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'targets'"):
        load_institution(path)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_institution(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_institution(tmp_path / "list.yaml")


def test_settings_from_env_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENGUARD_INSTITUTION_CONFIG", "/etc/gg/institution.yaml")
    monkeypatch.setenv("GREENGUARD_MQTT_PORT", "1884")
    s = load_settings(http_port=9000, mqtt_host=None)
    assert s.mqtt_port == 1884
    assert s.http_port == 9000
    assert s.http_host == "127.0.0.1"
    assert s.mqtt_host == "127.0.0.1"
    assert s.mqtt_site == "+"
    assert str(s.institution_config) == "/etc/gg/institution.yaml"
    monkeypatch.setenv("GREENGUARD_MQTT_PORT", "99999")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert ("mqtt_port", "99999") in [(f, v) for f, v, _ in info.value.problems]
    with pytest.raises(ConfigError, match="mqtt_site"):
        load_settings(mqtt_port=1883, mqtt_site="a/b")


def test_national_profile_pins_the_standard_values() -> None:
    p = load_profile("national")
    coef = {e: (c.unit, c.kgce_per_unit) for e, c in p.coefficients.items()}
    assert coef == {
        EnergyType.ELECTRICITY: ("kWh", 0.1229),
        EnergyType.NATURAL_GAS: ("m3", 1.2143),
        EnergyType.GASOLINE: ("kg", 1.4714),
        EnergyType.DIESEL: ("kg", 1.4571),
        EnergyType.HEAT: ("MJ", 0.03412),
        EnergyType.RAW_COAL: ("kg", 0.7143),
        EnergyType.LPG: ("kg", 1.7143),
        EnergyType.STEAM: ("kg", 0.1286),
    }
    assert p.coefficients[EnergyType.LPG].confidence is Confidence.FROM_MEMORY
    assert p.coefficients[EnergyType.GASOLINE].density_kg_per_l == 0.725
    assert p.coefficients[EnergyType.DIESEL].density_kg_per_l == 0.83
    assert EnergyType.WATER not in p.coefficients
    assert p.profile_id == "national"
    assert p.version


def test_profile_refuses_water_and_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("profile_id: p\nversion: '1'\ncoefficients:\n"
                    "  water: {unit: m3, kgce_per_unit: 0.1, confidence: '⚪'}\n",
                    encoding="utf-8")
    with pytest.raises(ProfileError, match="water is not part of"):
        load_profile(path)
    with pytest.raises(ProfileError, match="no built-in profile"):
        load_profile("guangdong")


def test_check_profile_converts_litres_and_refuses_unknown_units(
        institution: InstitutionConfig) -> None:
    p = load_profile("national")
    data = variant()
    data["meters"].append({"edge": "edge-2", "device": "tank", "point": "diesel_l",
                           "building": "B", "energy": "diesel", "role": "main", "unit": "L"})
    cfg = parse_institution(data)
    check_profile(cfg, p)
    assert p.kgce_per(cfg.meters[-1]) == pytest.approx(1.4571 * 0.83)
    data["meters"][-1]["unit"] = "t"
    with pytest.raises(ProfileError) as info:
        check_profile(parse_institution(data), p)
    assert info.value.problems[0][:2] == ("meters[4].unit", "t")
