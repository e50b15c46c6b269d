"""Golden tables (map, raw registers, expected value) for every built-in register map, and
the format's extensions: bits, enumerations, writable points with allowlists, unit blocks.

Raw registers are worked out by hand in the comments (IEEE-754 bytes, two's complement),
never produced by the code under test."""

from __future__ import annotations

import re
from typing import Any

import pytest

from protocols.errors import DecodeError, RegisterMapError, WriteRejectedError
from protocols.registermap import (
    DataType,
    PointSpec,
    Table,
    builtin_models,
    load_register_map,
    parse_register_map,
    plan_reads,
)

MAPS = {name: load_register_map(name) for name in builtin_models()}

GOLDEN: list[tuple[str, str, list[int], Any]] = [
    # Eastron SDM630, float32 big-endian ("ABCD")
    ("eastron-sdm630", "voltage_l1_v", [0x4366, 0x199A], 230.1),  # 43 66 19 9A
    ("eastron-sdm630", "voltage_l3_v", [0x4369, 0x0000], 233.0),  # 43 69 00 00
    ("eastron-sdm630", "current_l2_a", [0x40A8, 0x0000], 5.25),  # 40 A8 00 00
    ("eastron-sdm630", "power_w", [0x44BB, 0x8000], 1500.0),  # 0x0034, 44 BB 80 00
    ("eastron-sdm630", "power_factor", [0xBF00, 0x0000], -0.5),
    ("eastron-sdm630", "frequency_hz", [0x4248, 0x0000], 50.0),
    ("eastron-sdm630", "energy_import_kwh", [0x4640, 0xE6AE], 12345.67),
    ("eastron-sdm630", "power_l1_w", [0x44BB, 0x8000], 1500.0),  # 30013 = 0x000C
    ("eastron-sdm630", "energy_total_kwh", [0x4640, 0xE6AE], 12345.67),  # 30343 = 0x0156
    # CHINT DDSU666: holding, float32; power in kW on the wire, W in the point
    ("chint-ddsu666", "voltage_v", [0x4366, 0x199A], 230.1),
    ("chint-ddsu666", "power_w", [0x3FC0, 0x0000], 1500.0),  # 1.5 kW = 3F C0 00 00
    ("chint-ddsu666", "power_w", [0xBF80, 0x0000], -1000.0),  # export: -1 kW
    ("chint-ddsu666", "frequency_hz", [0x4247, 0xD70A], 49.96),
    ("chint-ddsu666", "energy_import_kwh", [0x4640, 0xE6AE], 12345.67),
    # Acrel ADL400 (unverified layout): integers with scales
    ("acrel-adl400", "voltage_l1_v", [2301], 230.1),  # 0x08FD × 0.1
    ("acrel-adl400", "current_l3_a", [525], 5.25),  # × 0.01
    ("acrel-adl400", "power_w", [0xFFFF, 0xFC18], -1000.0),  # int32 two's complement
    ("acrel-adl400", "power_w", [0x0000, 0x1F40], 8000.0),
    ("acrel-adl400", "energy_import_kwh", [0x0001, 0xE240], 12345.6),  # 123456 × 0.1
    # generic AC controller
    ("ac-controller-modbus", "on", [1], True),  # coil
    ("ac-controller-modbus", "on", [0], False),
    ("ac-controller-modbus", "fault", [1], True),  # discrete input
    ("ac-controller-modbus", "mode", [0], "auto"),
    ("ac-controller-modbus", "mode", [1], "cool"),
    ("ac-controller-modbus", "mode", [4], "heat"),
    ("ac-controller-modbus", "setpoint_c", [260], 26.0),
    ("ac-controller-modbus", "setpoint_c", [255], 25.5),
    ("ac-controller-modbus", "fan_speed", [3], "high"),
    ("ac-controller-modbus", "room_temp_c", [0xFF9C], -10.0),  # int16 -100 × 0.1
    ("ac-controller-modbus", "room_temp_c", [287], 28.7),
    # VRF gateway, unit 0 (other units: see test_vrf_unit_addresses)
    ("vrf-gateway-modbus", "on", [1], True),  # a holding register holding 0/1
    ("vrf-gateway-modbus", "mode", [2], "dry"),
    ("vrf-gateway-modbus", "setpoint_c", [0x00FA], 25.0),
    ("vrf-gateway-modbus", "fan_speed", [0], "auto"),
    ("vrf-gateway-modbus", "room_temp_c", [301], 30.1),
    ("vrf-gateway-modbus", "fault_code", [0x00E1], 225.0),
    # PIR
    ("pir-modbus", "occupied", [1], True),
    ("pir-modbus", "illuminance_lx", [420], 420.0),
]


@pytest.mark.parametrize(("model", "point", "registers", "expected"), GOLDEN)
def test_decode_golden(model: str, point: str, registers: list[int], expected: Any) -> None:
    rmap = MAPS[model]
    value = rmap.decode_value(rmap.point(point), registers)
    assert value == (pytest.approx(expected, rel=1e-12) if isinstance(expected, float)
                     else expected)
    assert type(value) is type(expected)


@pytest.mark.parametrize(("model", "point", "registers", "expected"), GOLDEN)
def test_encode_golden(model: str, point: str, registers: list[int], expected: Any) -> None:
    rmap = MAPS[model]
    assert rmap.encode_value(rmap.point(point), expected) == registers


def test_every_map_has_golden_rows() -> None:
    covered = {model for model, *_ in GOLDEN} | {"eastron-sdm120", "generic-water-modbus"}
    assert covered == set(builtin_models())  # the older two: test_registermap.py


BAD: list[tuple[str, str, list[int], str]] = [
    ("ac-controller-modbus", "mode", [9], "9 is not one of [0, 1, 2, 3, 4]"),
    ("ac-controller-modbus", "on", [2], "not an on/off value"),
    ("ac-controller-modbus", "room_temp_c", [1024], "102.4 above maximum 85"),
    ("vrf-gateway-modbus", "on", [0xFFFF], "not an on/off value"),
    ("eastron-sdm630", "power_factor", [0x3FC0, 0x0000], "1.5 above maximum 1"),
    ("chint-ddsu666", "voltage_v", [0xC000, 0x0000], "below minimum 0"),
    ("pir-modbus", "illuminance_lx", [65000], "above maximum 60000"),
]


@pytest.mark.parametrize(("model", "point", "registers", "text"), BAD)
def test_implausible_raw_values_raise(model: str, point: str, registers: list[int],
                                      text: str) -> None:
    rmap = MAPS[model]
    with pytest.raises(DecodeError, match=re.escape(text)) as info:
        rmap.decode_value(rmap.point(point), registers)
    assert info.value.field == point


def test_decode_refuses_non_numeric_points() -> None:
    rmap = MAPS["ac-controller-modbus"]
    with pytest.raises(DecodeError, match="not a numeric point"):
        rmap.decode(rmap.point("mode"), [1])


WRITES: list[tuple[str, str, Any, Any]] = [
    # (model, point, value, checked value or the WriteRejectedError text)
    ("ac-controller-modbus", "setpoint_c", 26, 26.0),
    ("ac-controller-modbus", "setpoint_c", 16.0, 16.0),
    ("ac-controller-modbus", "setpoint_c", 30.0, 30.0),
    ("ac-controller-modbus", "setpoint_c", 15.9, "below the allowed minimum 16"),
    ("ac-controller-modbus", "setpoint_c", 40, "above the allowed maximum 30"),
    ("ac-controller-modbus", "setpoint_c", float("nan"), "must be finite"),
    ("ac-controller-modbus", "setpoint_c", float("inf"), "must be finite"),
    ("ac-controller-modbus", "setpoint_c", "26", "must be a number"),
    ("ac-controller-modbus", "setpoint_c", True, "must be a number"),
    ("ac-controller-modbus", "setpoint_c", None, "must be a number"),
    ("ac-controller-modbus", "on", True, True),
    ("ac-controller-modbus", "on", 1, "must be true or false"),
    ("ac-controller-modbus", "on", "on", "must be true or false"),
    ("ac-controller-modbus", "mode", "heat", "heat"),
    ("ac-controller-modbus", "mode", "turbo", "must be one of"),
    ("ac-controller-modbus", "mode", 1, "must be one of"),
    ("ac-controller-modbus", "room_temp_c", 20.0, "is not writable"),
    ("ac-controller-modbus", "fault", False, "is not writable"),
    ("eastron-sdm630", "power_w", 0.0, "is not writable"),
]


@pytest.mark.parametrize(("model", "point", "value", "expected"), WRITES)
def test_write_allowlist(model: str, point: str, value: Any, expected: Any) -> None:
    rmap = MAPS[model]
    spec = rmap.point(point)
    if isinstance(expected, str) and expected.startswith(("must", "is not", "below",
                                                          "above")):
        with pytest.raises(WriteRejectedError, match=expected):
            rmap.check_write(spec, value)
    else:
        assert rmap.check_write(spec, value) == expected


def test_write_registers_and_defaults() -> None:
    ac = MAPS["ac-controller-modbus"]
    assert ac.encode_value(ac.point("setpoint_c"), 24.5) == [245]
    assert ac.encode_value(ac.point("mode"), "heat") == [4]
    assert ac.encode_value(ac.point("on"), False) == [0]
    defaults = {p.name: p.write.default for p in ac.writable_points if p.write}
    assert defaults == {"on": False, "mode": "auto", "setpoint_c": 26.0, "fan_speed": "auto"}


def test_vrf_unit_addresses() -> None:
    vrf = MAPS["vrf-gateway-modbus"]
    assert vrf.units is not None
    assert (vrf.units.count, vrf.units.stride) == (64, 8)
    unit = vrf.for_unit(3)
    assert (unit.unit, [(p.name, p.address) for p in unit.points]) == (3, [
        ("on", 24), ("mode", 25), ("setpoint_c", 26), ("fan_speed", 27), ("room_temp_c", 28),
        ("fault_code", 29)])
    assert vrf.for_unit(63).point("fault_code").address == 63 * 8 + 5
    for bad in (64, -1, True, "1"):
        with pytest.raises(RegisterMapError, match="unit"):
            vrf.for_unit(bad)  # type: ignore[arg-type]
    with pytest.raises(RegisterMapError, match="no repeated unit blocks"):
        MAPS["ac-controller-modbus"].for_unit(0)


def test_unverified_fields_are_marked() -> None:
    assert all(not p.verified for p in MAPS["acrel-adl400"].points)
    assert [p.name for p in MAPS["chint-ddsu666"].points if not p.verified] == ["power_factor"]
    assert all(p.verified for p in MAPS["eastron-sdm630"].points)
    assert MAPS["acrel-adl400"].all_unverified
    assert not any(m.all_unverified for name, m in MAPS.items() if name != "acrel-adl400")


def test_every_map_states_its_source() -> None:
    for name, regmap in MAPS.items():
        assert regmap.source, name
        assert regmap.source_version, name


def test_sdm630_phase_powers_and_total_energy() -> None:
    sdm630 = MAPS["eastron-sdm630"]
    # Eastron's 3xxxx register numbers are 1-based: 30013 is input register 0x000C.
    assert {n: sdm630.point(n).address for n in ("power_l1_w", "power_l2_w", "power_l3_w",
                                                 "energy_total_kwh")} == {
        "power_l1_w": 30013 - 30001, "power_l2_w": 30015 - 30001,
        "power_l3_w": 30017 - 30001, "energy_total_kwh": 30343 - 30001}


def test_planning_the_new_maps() -> None:
    def shape(model: str, **kw: Any) -> list[tuple[str, int, int]]:
        return [(r.table.value, r.address, r.count)
                for r in plan_reads(MAPS[model].points, **kw)]

    # 0x34…0x40 and 0x46…0x4C are 6 registers apart: one request
    assert shape("eastron-sdm630") == [("input", 0x00, 18), ("input", 0x34, 24),
                                       ("input", 0x156, 2)]
    assert shape("chint-ddsu666") == [("holding", 0x2000, 16), ("holding", 0x4000, 2)]
    assert shape("ac-controller-modbus") == [("holding", 0, 3), ("input", 0, 1),
                                             ("coil", 0, 1), ("discrete", 0, 1)]
    assert len(shape("ac-controller-modbus", max_gap=-1)) == 6
    all_units = [p for i in range(64) for p in MAPS["vrf-gateway-modbus"].for_unit(i).points]
    # Requests end at the last point that fits 125 registers: unit 15's room_temp_c ends at
    # 125, unit 31's mode at 250 (from 125), unit 46's fault_code at 374 (from 250), …
    assert [r.count for r in plan_reads(all_units)] == [125, 125, 124, 125, 9]
    assert len(plan_reads(all_units, max_gap=-1)) == 384


def test_bit_tables_plan_up_to_2000_bits() -> None:
    coils = [PointSpec(f"c{i}", "", Table.COIL, i * 10, DataType.BOOL) for i in range(300)]
    requests = plan_reads(coils, max_gap=16)
    assert [(r.address, r.count) for r in requests] == [(0, 1991), (1991 + 9, 991)]


MAP_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    ({"name": "x", "unit": "", "table": "coil", "address": 0, "type": "uint16"},
     "points[0].type", "single bits: type must be bool"),
    ({"name": "x", "unit": "", "table": "input", "address": 0, "type": "uint16",
      "write": {"max": 3}}, "points[0].write", "read-only on the wire"),
    ({"name": "x", "unit": "", "table": "holding", "address": 0, "type": "uint16",
      "write": {"min": 5, "max": 3}}, "points[0].write.min", "greater than max"),
    ({"name": "x", "unit": "", "table": "holding", "address": 0, "type": "uint16",
      "write": {"default": 9, "max": 3}}, "points[0].write.default", "not a value"),
    ({"name": "x", "unit": "", "table": "holding", "address": 0, "type": "float32",
      "values": {0: "a"}}, "points[0].values", "need an integer type"),
    ({"name": "x", "unit": "", "table": "holding", "address": 0, "type": "uint16",
      "values": {0: "a", 1: "a"}}, "points[0].values", "duplicate names"),
    ({"name": "x", "unit": "", "table": "holding", "address": 0, "type": "uint16",
      "values": {0: "a"}, "write": {"allowed": ["b"]}}, "points[0].write.allowed",
     "'b' is not a value"),
    ({"name": "x", "unit": "", "table": "holding", "address": 0, "type": "bool",
      "cumulative": True}, "points[0].cumulative", "only numeric points"),
    ({"name": True, "unit": "", "table": "coil", "address": 0, "type": "bool"},
     "points[0].name", "quote YAML words"),  # an unquoted `on` in YAML
    ({"name": "x", "unit": "", "table": "holding", "address": 0, "type": "uint16",
      "writeable": True}, "points[0].writeable", "unknown key"),
]


@pytest.mark.parametrize(("point", "field", "text"), MAP_ERRORS)
def test_invalid_extensions(point: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(RegisterMapError) as info:
        parse_register_map({"model": "m", "points": [point]})
    assert info.value.field == field
    assert text in str(info.value)


@pytest.mark.parametrize(("units", "field", "text"), [
    ({"count": 4, "stride": 2}, "units.stride", "shorter than one unit"),
    ({"count": 0, "stride": 8}, "units.count", "positive integer"),
    ({"count": 9000, "stride": 8}, "units.count", "past register 0xFFFF"),
    ({"count": 4}, "units.stride", "missing"),
])
def test_invalid_unit_layout(units: dict[str, Any], field: str, text: str) -> None:
    doc = {"model": "m", "units": units, "points": [
        {"name": "a", "unit": "", "table": "holding", "address": 0, "type": "uint16"},
        {"name": "b", "unit": "", "table": "holding", "address": 2, "type": "uint16"}]}
    with pytest.raises(RegisterMapError) as info:
        parse_register_map(doc)
    assert info.value.field == field
    assert text in str(info.value)


def test_little_endian_bool_register() -> None:
    rmap = parse_register_map({"model": "m", "byte_order": "little", "points": [
        {"name": "on", "unit": "", "table": "holding", "address": 0, "type": "bool",
         "write": True}]})
    spec = rmap.point("on")
    assert rmap.decode_value(spec, [0x0100]) is True
    assert rmap.encode_value(spec, True) == [0x0100]
