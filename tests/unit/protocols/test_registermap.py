"""Register maps: golden (model, point, raw registers, value) tables, byte/word orders,
validation of map documents, and read planning."""

from __future__ import annotations

import copy
import itertools
import math
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import DecodeError, ProtocolError, RegisterMapError
from protocols.registermap import (
    DataType,
    PointSpec,
    ReadRequest,
    RegisterMap,
    Table,
    builtin_models,
    clean_decimal,
    load_register_map,
    parse_register_map,
    plan_reads,
    shortest_float32,
)

SDM120 = load_register_map("eastron-sdm120")
WATER = load_register_map("generic-water-modbus")
MAPS = {"eastron-sdm120": SDM120, "generic-water-modbus": WATER}

# Hand-computed raw registers. For float32 the value is the nearest IEEE-754 single, e.g.
#   struct.pack(">f", 12345.67) == b"\x46\x40\xe6\xae"  -> [0x4640, 0xE6AE] = [17984, 59054]
#   and struct.unpack(">f", ...) == 12345.67.
GOLDEN: list[tuple[str, str, list[int], float]] = [
    # struct.pack(">f", 12345.67) -> 46 40 E6 AE
    ("eastron-sdm120", "energy_import_kwh", [17984, 59054], 12345.67),
    # struct.pack(">f", 230.1) -> 43 66 19 9A
    ("eastron-sdm120", "voltage_v", [17254, 6554], 230.1),
    # struct.pack(">f", 5.25) -> 40 A8 00 00
    ("eastron-sdm120", "current_a", [16552, 0], 5.25),
    # struct.pack(">f", 1500.0) -> 44 BB 80 00
    ("eastron-sdm120", "power_w", [17595, 32768], 1500.0),
    # struct.pack(">f", -0.5) -> BF 00 00 00 (leading power factor)
    ("eastron-sdm120", "power_factor", [48896, 0], -0.5),
    # struct.pack(">f", 0.999) -> 3F 7F BE 77
    ("eastron-sdm120", "power_factor", [16255, 48759], 0.999),
    # struct.pack(">f", 50.0) -> 42 48 00 00
    ("eastron-sdm120", "frequency_hz", [16968, 0], 50.0),
    ("eastron-sdm120", "energy_export_kwh", [0, 0], 0.0),
    # 12345678 L = 0x00BC614E -> [0x00BC, 0x614E]; x 0.001 -> 12345.678 m3
    ("generic-water-modbus", "water_m3", [188, 24910], 12345.678),
    # 0xFFFFFFFF L, the largest count before the register wraps
    ("generic-water-modbus", "water_m3", [65535, 65535], 4294967.295),
    ("generic-water-modbus", "water_m3", [0, 1], 0.001),
    # 1234 x 0.01 m3/h
    ("generic-water-modbus", "flow_m3h", [1234], 12.34),
    ("generic-water-modbus", "flow_m3h", [65535], 655.35),
    ("generic-water-modbus", "flow_m3h", [0], 0.0),
]


@pytest.mark.parametrize(("model", "point", "registers", "expected"), GOLDEN)
def test_decode_golden(model: str, point: str, registers: list[int], expected: float) -> None:
    regmap = MAPS[model]
    assert regmap.decode(regmap.point(point), registers) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(("model", "point", "registers", "expected"), GOLDEN)
def test_encode_golden(model: str, point: str, registers: list[int], expected: float) -> None:
    regmap = MAPS[model]
    assert regmap.encode(regmap.point(point), expected) == registers


def test_builtin_models() -> None:
    assert builtin_models() == [
        "ac-controller-modbus", "acrel-adl400", "chint-ddsu666", "eastron-sdm120",
        "eastron-sdm630", "generic-water-modbus", "pir-modbus", "vrf-gateway-modbus"]


def test_builtin_sdm120_layout() -> None:
    assert SDM120.model == "eastron-sdm120"
    assert (SDM120.byte_order, SDM120.word_order, SDM120.energy_type) == (
        "big", "big", "electricity")
    assert [(p.name, p.unit, p.table, p.address, p.type, p.cumulative)
            for p in SDM120.points] == [
        ("voltage_v", "V", Table.INPUT, 0x00, DataType.FLOAT32, False),
        ("current_a", "A", Table.INPUT, 0x06, DataType.FLOAT32, False),
        ("power_w", "W", Table.INPUT, 0x0C, DataType.FLOAT32, False),
        ("power_factor", "1", Table.INPUT, 0x1E, DataType.FLOAT32, False),
        ("frequency_hz", "Hz", Table.INPUT, 0x46, DataType.FLOAT32, False),
        ("energy_import_kwh", "kWh", Table.INPUT, 0x48, DataType.FLOAT32, True),
        ("energy_export_kwh", "kWh", Table.INPUT, 0x4A, DataType.FLOAT32, True),
    ]


def test_builtin_water_layout() -> None:
    assert WATER.energy_type == "water"
    assert [(p.name, p.unit, p.table, p.address, p.type, p.scale, p.cumulative)
            for p in WATER.points] == [
        ("water_m3", "m3", Table.HOLDING, 0, DataType.UINT32, 0.001, True),
        ("flow_m3h", "m3/h", Table.HOLDING, 2, DataType.UINT16, 0.01, False),
    ]


def test_unknown_point_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        SDM120.point("water_m3")


# -- byte and word order ---------------------------------------------------------------


def _one_point_map(dtype: str, *, byte_order: str = "big", word_order: str = "big",
                   **extra: Any) -> tuple[RegisterMap, PointSpec]:
    regmap = parse_register_map({
        "model": f"inline-{dtype}-{byte_order}-{word_order}",
        "byte_order": byte_order,
        "word_order": word_order,
        "points": [{"name": "x", "unit": "1", "table": "holding", "address": 100,
                    "type": dtype, **extra}],
    })
    return regmap, regmap.points[0]


# (type, byte_order, word_order, registers, value). The bytes of the value in big-endian
# order are written out; "little" byte order swaps the two bytes inside each register,
# "little" word order swaps the two registers.
ORDERS: list[tuple[str, str, str, list[int], float]] = [
    # 0x12345678 = 305419896
    ("uint32", "big", "big", [0x1234, 0x5678], 305419896),
    ("uint32", "big", "little", [0x5678, 0x1234], 305419896),
    ("uint32", "little", "big", [0x3412, 0x7856], 305419896),
    ("uint32", "little", "little", [0x7856, 0x3412], 305419896),
    # 12345.67 as float32 = 46 40 E6 AE
    ("float32", "big", "big", [0x4640, 0xE6AE], 12345.67),
    ("float32", "big", "little", [0xE6AE, 0x4640], 12345.67),
    ("float32", "little", "big", [0x4046, 0xAEE6], 12345.67),
    ("float32", "little", "little", [0xAEE6, 0x4046], 12345.67),
    # -2 as int32 = FF FF FF FE
    ("int32", "big", "big", [0xFFFF, 0xFFFE], -2),
    ("int32", "big", "little", [0xFFFE, 0xFFFF], -2),
    ("int32", "little", "big", [0xFFFF, 0xFEFF], -2),
    # -300 as int16 = FE D4; word order does not apply to one register
    ("int16", "big", "big", [0xFED4], -300),
    ("int16", "big", "little", [0xFED4], -300),
    ("int16", "little", "big", [0xD4FE], -300),
    ("uint16", "big", "big", [0xFED4], 65236),
    ("uint16", "little", "little", [0xD4FE], 65236),
]


@pytest.mark.parametrize(("dtype", "byte_order", "word_order", "registers", "value"), ORDERS)
def test_byte_and_word_order(dtype: str, byte_order: str, word_order: str,
                             registers: list[int], value: float) -> None:
    regmap, spec = _one_point_map(dtype, byte_order=byte_order, word_order=word_order)
    assert regmap.decode(spec, registers) == value
    assert regmap.encode(spec, value) == registers


def test_default_orders_are_big() -> None:
    regmap = parse_register_map({"model": "m", "points": [
        {"name": "x", "unit": "1", "table": "input", "address": 0, "type": "uint32"}]})
    assert (regmap.byte_order, regmap.word_order) == ("big", "big")
    assert regmap.energy_type == "electricity"
    spec = regmap.points[0]
    assert (spec.scale, spec.offset, spec.cumulative, spec.minimum, spec.maximum) == (
        1.0, 0.0, False, None, None)


def test_scale_and_offset() -> None:
    # A room temperature sensor reporting (°C + 40) x 10 as uint16: raw 650 -> 25.0 °C.
    regmap, spec = _one_point_map("uint16", scale=0.1, offset=-40)
    assert regmap.decode(spec, [650]) == pytest.approx(25.0)
    assert regmap.decode(spec, [0]) == pytest.approx(-40.0)
    assert regmap.encode(spec, 25.0) == [650]


# -- decode errors ---------------------------------------------------------------------

NOT_A_NUMBER = [
    ("nan", [0x7FC0, 0x0000]),
    ("nan-payload", [0x7F80, 0x0001]),
    ("negative-nan", [0xFFC0, 0x0000]),
    ("inf", [0x7F80, 0x0000]),
    ("-inf", [0xFF80, 0x0000]),
]


@pytest.mark.parametrize("registers", [r for _, r in NOT_A_NUMBER],
                         ids=[n for n, _ in NOT_A_NUMBER])
def test_nan_and_inf_raise_decode_error(registers: list[int]) -> None:
    spec = SDM120.point("energy_import_kwh")
    with pytest.raises(DecodeError) as info:
        SDM120.decode(spec, registers)
    assert info.value.model == "eastron-sdm120"
    assert info.value.field == "energy_import_kwh"
    assert "not a number" in str(info.value)


BAD_REGISTERS: list[tuple[str, str, list[Any], str]] = [
    ("too-few", "energy_import_kwh", [17984], "expected 2 registers, got 1"),
    ("too-many", "energy_import_kwh", [17984, 59054, 0], "expected 2 registers, got 3"),
    ("none", "energy_import_kwh", [], "expected 2 registers, got 0"),
    # fixed: used to escape as OverflowError / AttributeError instead of DecodeError
    ("above-16-bit", "energy_import_kwh", [70000, 0], "70000"),
    ("negative", "energy_import_kwh", [0, -1], "-1"),
    ("float", "voltage_v", [1.5, 0], "1.5"),
    ("bool", "voltage_v", [True, 0], "True"),
    ("string", "voltage_v", ["0", "0"], "'0'"),
]


@pytest.mark.parametrize(("point", "registers", "text"), [c[1:] for c in BAD_REGISTERS],
                         ids=[c[0] for c in BAD_REGISTERS])
def test_bad_registers_raise_decode_error(point: str, registers: list[Any], text: str) -> None:
    with pytest.raises(DecodeError) as info:
        SDM120.decode(SDM120.point(point), registers)
    assert info.value.field == point
    assert text in str(info.value)


def test_minimum_and_maximum_are_inclusive_bounds() -> None:
    regmap, spec = _one_point_map("int16", scale=0.5, minimum=-10, maximum=100)
    assert regmap.decode(spec, [200]) == 100.0
    assert regmap.decode(spec, regmap.encode(spec, -10.0)) == -10.0
    with pytest.raises(DecodeError, match=r"101\.0 above maximum 100\.0"):
        regmap.decode(spec, [202])
    with pytest.raises(DecodeError, match=r"-10\.5 below minimum -10\.0") as info:
        regmap.decode(spec, regmap.encode(spec, -10.5))
    assert info.value.field == "x"


def test_decode_error_is_a_register_map_error() -> None:
    assert issubclass(DecodeError, RegisterMapError)
    assert issubclass(RegisterMapError, ProtocolError)


# -- round trips -----------------------------------------------------------------------

orders = st.sampled_from(["big", "little"])


@given(st.sampled_from(["uint16", "int16", "uint32", "int32"]), orders, orders,
       st.sampled_from([1.0, 0.1, 0.01, 0.001, 10.0, -1.0]),
       st.sampled_from([0.0, -40.0, 273.15]), st.data())
def test_integer_registers_round_trip(dtype: str, byte_order: str, word_order: str,
                                      scale: float, offset: float,
                                      data: st.DataObject) -> None:
    regmap, spec = _one_point_map(dtype, byte_order=byte_order, word_order=word_order,
                                  scale=scale, offset=offset)
    registers = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=spec.count,
                                   max_size=spec.count))
    assert regmap.encode(spec, regmap.decode(spec, registers)) == registers


@given(orders, orders, st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2))
def test_float_registers_round_trip(byte_order: str, word_order: str,
                                    registers: list[int]) -> None:
    regmap, spec = _one_point_map("float32", byte_order=byte_order, word_order=word_order)
    try:
        value = regmap.decode(spec, registers)
    except DecodeError:
        return  # NaN or infinity
    # -0.0 decodes as 0.0 (0.0 offset added), so compare values, not registers.
    assert regmap.decode(spec, regmap.encode(spec, value)) == value


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_shortest_float32_is_the_shortest_round_trip(bits: int) -> None:
    (value,) = struct.unpack(">f", struct.pack(">I", bits))
    if not math.isfinite(value):
        return
    exhaustive = next(f"{value:.{d}g}" for d in range(1, 10)
                      if struct.pack(">f", float(f"{value:.{d}g}")) == struct.pack(">f", value))
    assert float(shortest_float32(value)) == float(exhaustive)


def test_kw_to_w_gives_clean_decimals() -> None:
    """Regression (issue 14): a kW float32 × 1000 stored 2727.7999999999997."""
    ddsu = load_register_map("chint-ddsu666")
    spec = ddsu.point("power_w")
    assert ddsu.decode(spec, list(struct.unpack(">HH", struct.pack(">f", 2.7278)))) == 2727.8
    regmap, scaled = _one_point_map("uint32", scale=0.1)
    assert regmap.decode(scaled, [0x0001, 0xE241]) == 12345.7  # not 12345.699999999999


@given(st.integers(min_value=0, max_value=2**32 - 1),
       st.sampled_from([0.0001, 0.001, 0.01, 0.1, 10.0, 1000.0, 0.5, 2.5]))
def test_clean_decimal_power_of_ten_shortcut_matches_decimal_arithmetic(
        bits: int, scale: float) -> None:
    """The exponent shift used for 10^k scales gives the same double as the exact decimal
    product (float32 decimals in exponent notation included)."""
    (value,) = struct.unpack(">f", struct.pack(">I", bits))
    if not math.isfinite(value):
        return
    exact = float(Decimal(shortest_float32(value)) * Decimal(repr(scale)))
    assert clean_decimal(value, DataType.FLOAT32, scale, 0.0) == exact
    integer = float(bits - 2**31)
    assert clean_decimal(integer, DataType.INT32, scale, 0.0) == float(
        Decimal(int(integer)) * Decimal(repr(scale)))


@given(orders, orders, st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float_values_round_trip(byte_order: str, word_order: str, value: float) -> None:
    regmap, spec = _one_point_map("float32", byte_order=byte_order, word_order=word_order)
    registers = regmap.encode(spec, value)
    decoded = regmap.decode(spec, registers)
    # The shortest decimal of the float32: the same registers again, the same bits.
    assert regmap.encode(spec, decoded) == registers
    assert struct.pack(">f", decoded) == struct.pack(">f", value)


@given(st.floats(min_value=-1e6, max_value=1e6))
def test_float32_precision(value: float) -> None:
    spec = SDM120.point("power_w")
    decoded = SDM120.decode(spec, SDM120.encode(spec, value))
    assert struct.pack(">f", decoded) == struct.pack(">f", value)
    assert decoded == float(f"{decoded:.9g}")  # at most 9 significant digits: no noise
    assert math.isclose(decoded, value, rel_tol=2**-23, abs_tol=1e-38)


# -- invalid map documents -------------------------------------------------------------

VALID: dict[str, Any] = {
    "model": "m-test",
    "points": [
        {"name": "a", "unit": "V", "table": "input", "address": 0, "type": "float32"},
        {"name": "b", "unit": "kWh", "table": "input", "address": 2, "type": "uint16",
         "scale": 0.1, "cumulative": True},
    ],
}

Edit = tuple[str, Any]  # ("points/0/scale", value); value DELETE removes the key
DELETE = object()


def _doc(*edits: Edit) -> Any:
    doc: Any = copy.deepcopy(VALID)
    for path, value in edits:
        if path == "":
            doc = value
            continue
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return doc


# (id, document, expected field, text in the message)
INVALID: list[tuple[str, Any, str, str]] = [
    ("root-not-mapping", _doc(("", [1])), "<root>", "must be a mapping"),
    ("missing-model", _doc(("model", DELETE)), "model", "missing"),
    ("missing-points", _doc(("points", DELETE)), "points", "missing"),
    ("empty-points", _doc(("points", [])), "points", "non-empty list"),
    ("points-not-list", _doc(("points", {"a": 1})), "points", "non-empty list"),
    ("point-not-mapping", _doc(("points/0", "a")), "points[0]", "must be a mapping"),
    ("missing-name", _doc(("points/1/name", DELETE)), "points[1].name", "missing"),
    ("duplicate-point", _doc(("points/1/name", "a")), "points[1].name", "duplicate point 'a'"),
    ("missing-table", _doc(("points/0/table", DELETE)), "points[0].table", "missing"),
    ("unknown-table", _doc(("points/0/table", "coils")), "points[0].table",
     "unknown table 'coils'"),
    ("table-wrong-case", _doc(("points/0/table", "Input")), "points[0].table", "'Input'"),
    ("missing-type", _doc(("points/0/type", DELETE)), "points[0].type", "missing"),
    ("unknown-type", _doc(("points/0/type", "float64")), "points[0].type",
     "unknown type 'float64'"),
    ("missing-unit", _doc(("points/1/unit", DELETE)), "points[1].unit", "missing"),
    ("missing-address", _doc(("points/0/address", DELETE)), "points[0].address", "missing"),
    ("overlapping-registers", _doc(("points/1/address", 1)), "points",
     "'a' and 'b' overlap"),
    ("same-address", _doc(("points/1/address", 0)), "points", "overlap"),
    ("address-above-range", _doc(("points/1/address", 0x10000)), "points[1].address",
     "65536"),
    ("address-negative", _doc(("points/0/address", -1)), "points[0].address", "-1"),
    ("address-as-string", _doc(("points/0/address", "0x10")), "points[0].address",
     "'0x10'"),
    ("address-as-float", _doc(("points/0/address", 2.0)), "points[0].address", "2.0"),
    # fixed: a bool passed as address 1
    ("address-as-bool", _doc(("points/0/address", True)), "points[0].address", "True"),
    # fixed: a two-register point at 0xFFFF would need register 0x10000
    ("wide-point-past-last-register", _doc(("points/0/address", 0xFFFF)),
     "points[0].address", "65535"),
    ("scale-zero", _doc(("points/1/scale", 0)), "points[1].scale", "must not be 0"),
    # fixed: these escaped as ValueError/TypeError or were accepted as NaN
    ("scale-not-a-number", _doc(("points/1/scale", "abc")), "points[1].scale", "'abc'"),
    ("scale-nan", _doc(("points/1/scale", float("nan"))), "points[1].scale", "nan"),
    ("scale-inf", _doc(("points/1/scale", float("inf"))), "points[1].scale", "inf"),
    ("scale-bool", _doc(("points/1/scale", True)), "points[1].scale", "True"),
    ("offset-not-a-number", _doc(("points/1/offset", [1])), "points[1].offset", "[1]"),
    ("minimum-not-a-number", _doc(("points/1/minimum", "low")), "points[1].minimum",
     "'low'"),
    ("maximum-nan", _doc(("points/1/maximum", float("nan"))), "points[1].maximum", "nan"),
    ("minimum-above-maximum", _doc(("points/1/minimum", 10), ("points/1/maximum", 5)),
     "points[1].minimum", "greater than maximum"),
    ("cumulative-as-string", _doc(("points/1/cumulative", "false")), "points[1].cumulative",
     "'false'"),
    ("bad-byte-order", _doc(("byte_order", "middle")), "byte_order", "'middle'"),
    ("bad-word-order", _doc(("word_order", "LITTLE")), "word_order", "'LITTLE'"),
]


@pytest.mark.parametrize(("doc", "field", "text"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_invalid_map_document(doc: Any, field: str, text: str) -> None:
    with pytest.raises(RegisterMapError) as info:
        parse_register_map(doc, source="test.yaml")
    err = info.value
    assert not isinstance(err, DecodeError)
    assert err.field == field
    assert f", {field}: " in str(err)
    assert text in str(err)
    # The model named in the error is the document's own, or the source when it has none.
    assert err.model == ("m-test" if isinstance(doc, dict) and "model" in doc else "test.yaml")


def test_valid_document_parses() -> None:
    regmap = parse_register_map(VALID)
    assert [p.name for p in regmap.points] == ["a", "b"]
    assert regmap.points[1].cumulative is True


def test_same_addresses_in_different_tables_do_not_overlap() -> None:
    regmap = parse_register_map(_doc(("points/1/address", 0), ("points/1/table", "holding")))
    assert [(p.table, p.address) for p in regmap.points] == [
        (Table.INPUT, 0), (Table.HOLDING, 0)]


def test_last_register_is_addressable() -> None:
    regmap = parse_register_map(_doc(("points/0/address", 0xFFFE),
                                     ("points/1/address", 0xFFFD)))
    assert regmap.points[0].address + regmap.points[0].count - 1 == 0xFFFF


def test_load_unknown_model() -> None:
    with pytest.raises(RegisterMapError) as info:
        load_register_map("eastron-sdm999")
    assert info.value.field == "model"
    assert "eastron-sdm120" in str(info.value)


def test_load_from_path(tmp_path: Path) -> None:
    path = tmp_path / "acme-heat.yaml"
    path.write_text(
        "model: acme-heat\n"
        "energy_type: heat\n"
        "byte_order: little\n"
        "word_order: little\n"
        "points:\n"
        "  - {name: heat_kwh, unit: kWh, table: holding, address: 0x0010, type: uint32,"
        " cumulative: true}\n"
        "  - {name: supply_temp_c, unit: °C, table: input, address: 0x0010, type: int16,"
        " scale: 0.01, minimum: -40, maximum: 150}\n",
        encoding="utf-8",
    )
    regmap = load_register_map(path)
    assert regmap.model == "acme-heat"
    heat = regmap.point("heat_kwh")
    assert (heat.address, heat.cumulative) == (16, True)
    assert regmap.decode(heat, [0x7856, 0x3412]) == 0x12345678
    temp = regmap.point("supply_temp_c")
    assert (temp.unit, temp.minimum, temp.maximum) == ("°C", -40.0, 150.0)


def test_load_from_path_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("points: []\n", encoding="utf-8")
    with pytest.raises(RegisterMapError) as info:
        load_register_map(path)
    assert info.value.model == str(path)
    assert info.value.field == "model"


# -- read planning ---------------------------------------------------------------------


def _names(requests: list[ReadRequest]) -> list[tuple[str, int, int, list[str]]]:
    return [(r.table.value, r.address, r.count, [p.name for p in r.points]) for r in requests]


def test_plan_sdm120_two_requests() -> None:
    # The hole between power_factor (0x1E..0x1F) and frequency (0x46) is 38 > 16 registers;
    # the holes before it are 4, 4 and 16 (exactly max_gap), so they merge.
    assert _names(plan_reads(SDM120.points)) == [
        ("input", 0x00, 32, ["voltage_v", "current_a", "power_w", "power_factor"]),
        ("input", 0x46, 6, ["frequency_hz", "energy_import_kwh", "energy_export_kwh"]),
    ]


def test_plan_water_one_request() -> None:
    assert _names(plan_reads(WATER.points)) == [("holding", 0, 3, ["water_m3", "flow_m3h"])]


def test_plan_max_gap_minus_one_reads_each_point_alone() -> None:
    requests = plan_reads(SDM120.points, max_gap=-1)
    assert len(requests) == len(SDM120.points) == 7
    assert [(r.address, r.count, r.points) for r in requests] == [
        (p.address, 2, (p,)) for p in SDM120.points]


def test_plan_max_gap_zero_merges_only_adjacent() -> None:
    assert [(r.address, r.count) for r in plan_reads(SDM120.points, max_gap=0)] == [
        (0x00, 2), (0x06, 2), (0x0C, 2), (0x1E, 2), (0x46, 6)]


def test_plan_max_gap_four() -> None:
    assert [(r.address, r.count) for r in plan_reads(SDM120.points, max_gap=4)] == [
        (0x00, 14), (0x1E, 2), (0x46, 6)]


def test_plan_max_count_splits() -> None:
    requests = plan_reads(SDM120.points, max_count=4)
    assert [(r.address, r.count) for r in requests] == [
        (0x00, 2), (0x06, 2), (0x0C, 2), (0x1E, 2), (0x46, 4), (0x4A, 2)]


def test_plan_respects_modbus_limit_of_125() -> None:
    points = [PointSpec(f"p{i}", "1", Table.HOLDING, i * 10, DataType.UINT16)
              for i in range(40)]
    requests = plan_reads(points)
    assert all(r.count <= 125 for r in requests)
    assert [(r.address, r.count) for r in requests] == [(0, 121), (130, 121), (260, 121),
                                                       (390, 1)]


def test_plan_never_mixes_tables() -> None:
    requests = plan_reads([*WATER.points, *SDM120.points])
    assert [r.table for r in requests] == [Table.HOLDING, Table.INPUT, Table.INPUT]
    for r in requests:
        assert {p.table for p in r.points} == {r.table}


def test_plan_same_address_in_both_tables() -> None:
    points = [PointSpec("h", "1", Table.HOLDING, 0, DataType.UINT16),
              PointSpec("i", "1", Table.INPUT, 1, DataType.UINT16)]
    assert _names(plan_reads(points)) == [("holding", 0, 1, ["h"]), ("input", 1, 1, ["i"])]


def test_plan_empty() -> None:
    assert plan_reads([]) == []


@st.composite
def point_sets(draw: st.DrawFn) -> list[PointSpec]:
    """Non-overlapping points in both tables, in shuffled order."""
    points: list[PointSpec] = []
    for table in Table:
        address = draw(st.integers(0, 300))
        for i in range(draw(st.integers(0, 15))):
            dtype = draw(st.sampled_from(DataType))
            spec = PointSpec(f"{table.value}{i}", "1", table, address, dtype)
            if spec.address + spec.count > 0x10000:
                break
            points.append(spec)
            address += spec.count + draw(st.integers(0, 40))
    return draw(st.permutations(points))


@settings(deadline=None)
@given(point_sets(), st.integers(-1, 30), st.integers(2, 125))
def test_plan_covers_every_point_exactly_once(points: list[PointSpec], max_gap: int,
                                              max_count: int) -> None:
    requests = plan_reads(points, max_gap=max_gap, max_count=max_count)
    planned = [p for r in requests for p in r.points]
    assert sorted(planned, key=lambda p: p.name) == sorted(points, key=lambda p: p.name)
    assert len(planned) == len(points)
    for r in requests:
        assert 1 <= r.count <= max_count
        assert {p.table for p in r.points} == {r.table}
        assert r.points[0].address == r.address
        assert max(p.address + p.count for p in r.points) == r.address + r.count
        ends = [p.address + p.count for p in r.points]
        for prev_end, p in zip(ends, r.points[1:], strict=False):
            assert p.address - prev_end <= max_gap
        if max_gap < 0:
            assert len(r.points) == 1
    # Requests are ordered by table, then address, and do not overlap.
    keys = [(list(Table).index(r.table), r.address) for r in requests]
    assert keys == sorted(keys)
    for a, b in itertools.pairwise(requests):
        if a.table is b.table:
            assert a.address + a.count <= b.address
