"""Modbus register maps as data files, and decoding of raw registers into point values.

A register map is one YAML file per device model (see `registermaps/`). Keeping maps as
data (VOLTTRON's idea) lets an engineer add a meter model without touching code, and lets
the simulators serve exactly the registers the agent reads.

Beyond meters, a map can describe actuators and sensors:

- four tables: holding and input registers, coils and discrete inputs (`bool` points);
- enumerations (`values: {0: auto, 1: cool}`), decoded to the semantic string;
- writable points (`write: {min, max, allowed, default}`): the allowlist every write is
  checked against before anything goes on the wire, and the `default` that `revert`
  hands the device back to;
- repeated unit blocks (`units: {count, stride}`) for gateways that expose many indoor
  units of a VRF system behind one Modbus address, unit *i* at `address + i × stride`;
- `verified: false` on fields that still need checking against the vendor's manual.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import itertools
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import yaml

from protocols.errors import DecodeError, RegisterMapError, WriteRejectedError


class Table(enum.StrEnum):
    """Modbus data table; the value is the name used in map files."""

    HOLDING = "holding"  # FC 03 read, FC 06/16 write
    INPUT = "input"  # FC 04
    COIL = "coil"  # FC 01 read, FC 05 write
    DISCRETE = "discrete"  # FC 02 (discrete inputs)

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE)

    @property
    def writable(self) -> bool:
        return self in (Table.HOLDING, Table.COIL)

    @property
    def max_read(self) -> int:
        """The Modbus limit of one read: 125 registers (FC 03/04) or 2000 bits (FC 01/02)."""
        return 2000 if self.is_bits else 125


class DataType(enum.StrEnum):
    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    FLOAT32 = "float32"
    BOOL = "bool"  # one coil / discrete input, or one register holding 0 or 1


_WIDTH = {
    DataType.UINT16: 1,
    DataType.INT16: 1,
    DataType.UINT32: 2,
    DataType.INT32: 2,
    DataType.FLOAT32: 2,
    DataType.BOOL: 1,
}
_STRUCT = {
    DataType.UINT16: ">H",
    DataType.INT16: ">h",
    DataType.UINT32: ">I",
    DataType.INT32: ">i",
    DataType.FLOAT32: ">f",
    DataType.BOOL: ">H",
}
_INTEGER_TYPES = frozenset({DataType.UINT16, DataType.INT16, DataType.UINT32, DataType.INT32})

PointValue = float | bool | str
"""A decoded point: a number, an on/off state, or an enumeration's semantic name."""


_PACK_F32 = struct.Struct(">f").pack
_FLT_MIN = 1.1754943508222875e-38  # the smallest normal float32


def shortest_float32(number: float) -> str:
    """The shortest decimal that reads back as the same float32 (what the meter's display
    shows): 0x402E9375 is 2.7278, not 2.72779989242553710938."""
    packed = _PACK_F32(number)
    # From 6 digits: a float32 is within 2^-24 of its shortest decimal, much less than
    # half a unit of the 6th digit, so 6-digit rounding already yields any shorter one
    # (`g` drops the trailing zeros). 9 digits always round-trip.
    for digits in (6, 7, 8) if abs(number) >= _FLT_MIN else range(1, 9):  # subnormals
        text = f"{number:.{digits}g}"
        if _PACK_F32(float(text)) == packed:
            return text
    return f"{number:.9g}"


@functools.cache
def _power_of_ten(scale: float) -> int | None:
    """k when `scale` as written is exactly 10^k (0.1 → -1, 1000.0 → 3), else None."""
    sign, digits, exponent = Decimal(repr(scale)).normalize().as_tuple()
    if sign == 0 and digits == (1,) and isinstance(exponent, int):
        return exponent
    return None


def clean_decimal(number: float, dtype: DataType, scale: float, offset: float) -> float:
    """`number × scale + offset` without binary noise: kW → W of 2.7278 is 2727.8, not
    2727.7999999999997. The register's resolution is the decimal scale (0.1 → one
    decimal) for integers and the float32's shortest decimal for floats; the arithmetic
    is done in decimal, so the result is the nearest double to the exact value."""
    text = shortest_float32(number) if dtype is DataType.FLOAT32 else str(int(number))
    if offset == 0.0:
        if scale == 1.0:
            return float(text)
        exponent = _power_of_ten(scale)
        if exponent is not None:  # 0.1, 0.01, 1000: the exact decimal is text × 10^k
            mantissa, _, shift = text.partition("e")  # 1.4e-15 is a shortest float32
            return float(f"{mantissa}e{int(shift or 0) + exponent}")
    exact = Decimal(text) * Decimal(repr(scale)) + Decimal(repr(offset))
    return float(exact)


@dataclass(frozen=True, slots=True)
class WriteSpec:
    """What an actuator may write to a point; anything else is refused before the wire."""

    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str | bool, ...] | None = None
    default: PointValue | None = None  # what `revert` writes; None: revert leaves it alone


@dataclass(frozen=True, slots=True)
class PointSpec:
    """One semantic point of a device model and where its registers are."""

    name: str
    unit: str
    table: Table
    address: int
    type: DataType
    scale: float = 1.0
    offset: float = 0.0
    cumulative: bool = False
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[tuple[int, str], ...] | None = None  # enumeration: raw → semantic name
    write: WriteSpec | None = None
    verified: bool = True  # False: taken from a secondary source, check the manual
    note: str = ""

    @property
    def count(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the point occupies."""
        return _WIDTH[self.type]

    @property
    def writable(self) -> bool:
        return self.write is not None

    def value_names(self) -> dict[int, str]:
        return dict(self.values or ())


@dataclass(frozen=True, slots=True)
class UnitLayout:
    """`count` identical unit blocks, unit i at `address + i × stride` in every table."""

    count: int
    stride: int


@dataclass(frozen=True, slots=True)
class RegisterMap:
    model: str
    manufacturer: str
    description: str
    energy_type: str
    byte_order: str
    word_order: str
    points: tuple[PointSpec, ...]
    units: UnitLayout | None = None
    unit: int | None = None  # set on the view returned by `for_unit`
    source: str = ""  # the vendor document the addresses come from
    source_version: str = ""  # its edition or version

    @property
    def all_unverified(self) -> bool:
        """Every point still `verified: false`: the map is a guess until checked on site."""
        return all(not p.verified for p in self.points)

    def point(self, name: str) -> PointSpec:
        for spec in self.points:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def writable_points(self) -> tuple[PointSpec, ...]:
        return tuple(p for p in self.points if p.write is not None)

    def for_unit(self, unit: int) -> RegisterMap:
        """The map of one indoor unit of a repeated-unit gateway: addresses shifted."""
        if self.units is None:
            raise RegisterMapError(self.model, "units", "this map has no repeated unit blocks")
        if type(unit) is not int or not 0 <= unit < self.units.count:
            raise RegisterMapError(
                self.model, "unit", f"must be 0…{self.units.count - 1}, got {unit!r}")
        shift = unit * self.units.stride
        points = tuple(dataclasses.replace(p, address=p.address + shift) for p in self.points)
        return dataclasses.replace(self, points=points, unit=unit)

    # -- decoding -----------------------------------------------------------------

    def decode_value(self, spec: PointSpec, registers: list[int]) -> PointValue:
        """Turn the raw registers (or bits as 0/1) of `spec` into its engineering value."""
        if len(registers) != spec.count:
            unit = "bit" if spec.table.is_bits else "register"
            raise DecodeError(
                self.model, spec.name, f"expected {spec.count} {unit}s, got {len(registers)}"
            )
        for r in registers:
            if type(r) is not int or not 0 <= r <= 0xFFFF:
                raise DecodeError(self.model, spec.name, f"not a 16-bit register value: {r!r}")
        if spec.type is DataType.BOOL:
            raw_bit = registers[0]
            if self.byte_order == "little" and not spec.table.is_bits:
                raw_bit = ((raw_bit & 0xFF) << 8) | (raw_bit >> 8)
            if raw_bit not in (0, 1):
                raise DecodeError(self.model, spec.name, f"not an on/off value: {raw_bit!r}")
            return raw_bit == 1
        if spec.count == 2 and self.word_order == "little":
            registers = registers[::-1]
        # Each register as two bytes, swapped inside the register for little byte order.
        raw = struct.pack(("<" if self.byte_order == "little" else ">") + "H" * spec.count,
                          *registers)
        (value,) = struct.unpack(_STRUCT[spec.type], raw)
        if spec.values is not None:
            names = spec.value_names()
            if value not in names:
                raise DecodeError(self.model, spec.name,
                                  f"{value!r} is not one of {sorted(names)}")
            return names[value]
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise DecodeError(self.model, spec.name, f"not a number: {number!r}")
        result = clean_decimal(number, spec.type, spec.scale, spec.offset)
        if spec.minimum is not None and result < spec.minimum:
            raise DecodeError(self.model, spec.name, f"{result!r} below minimum {spec.minimum}")
        if spec.maximum is not None and result > spec.maximum:
            raise DecodeError(self.model, spec.name, f"{result!r} above maximum {spec.maximum}")
        return result

    def decode(self, spec: PointSpec, registers: list[int]) -> float:
        """`decode_value` for numeric points (meters); refuses on/off and enumerations."""
        value = self.decode_value(spec, registers)
        if isinstance(value, bool | str):
            raise DecodeError(self.model, spec.name, f"not a numeric point (decodes to {value!r})")
        return value

    def encode_value(self, spec: PointSpec, value: PointValue) -> list[int]:
        """Inverse of `decode_value` (used by writes, simulators and golden tests)."""
        if spec.type is DataType.BOOL:
            if not isinstance(value, bool):
                raise WriteRejectedError(self.model, spec.name,
                                         f"must be true or false, got {value!r}")
            raw_bit = int(value)
            if self.byte_order == "little" and not spec.table.is_bits:
                raw_bit <<= 8
            return [raw_bit]
        if spec.values is not None:
            codes = {name: code for code, name in spec.values}
            if not isinstance(value, str) or value not in codes:
                raise WriteRejectedError(self.model, spec.name,
                                    f"must be one of {sorted(codes)}, got {value!r}")
            return self._pack(spec, codes[value])
        if isinstance(value, bool | str):
            raise WriteRejectedError(self.model, spec.name, f"must be a number, got {value!r}")
        return self.encode(spec, value)

    def encode(self, spec: PointSpec, value: float) -> list[int]:
        """Inverse of `decode` (used by simulators and golden tests)."""
        raw_value: float | int = (value - spec.offset) / spec.scale
        if spec.type is not DataType.FLOAT32:
            raw_value = round(raw_value)
        return self._pack(spec, raw_value)

    def _pack(self, spec: PointSpec, raw_value: float) -> list[int]:
        raw = struct.pack(_STRUCT[spec.type], raw_value)
        if self.byte_order == "little":
            raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
        regs = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
        if spec.count == 2 and self.word_order == "little":
            regs.reverse()
        return regs

    # -- writing ------------------------------------------------------------------

    def check_write(self, spec: PointSpec, value: object) -> PointValue:
        """The value to write if the point's allowlist permits it, else `WriteRejectedError`.

        Checked before any I/O (RELIABILITY #15): a setpoint of 5 °C, NaN or a string never
        reaches a Modbus device.
        """
        if spec.write is None:
            raise WriteRejectedError(self.model, spec.name, "is not writable")
        rule = spec.write
        checked: PointValue
        if spec.type is DataType.BOOL:
            if not isinstance(value, bool):
                raise WriteRejectedError(self.model, spec.name,
                                         f"must be true or false, got {value!r}")
            checked = value
        elif spec.values is not None:
            names = {name for _, name in spec.values}
            if not isinstance(value, str) or value not in names:
                raise WriteRejectedError(self.model, spec.name,
                                    f"must be one of {sorted(names)}, got {value!r}")
            checked = value
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise WriteRejectedError(self.model, spec.name, f"must be a number, got {value!r}")
            number = float(value)
            if not math.isfinite(number):
                raise WriteRejectedError(self.model, spec.name, f"must be finite, got {value!r}")
            if rule.minimum is not None and number < rule.minimum:
                raise WriteRejectedError(self.model, spec.name,
                                    f"{number:g} is below the allowed minimum {rule.minimum:g}")
            if rule.maximum is not None and number > rule.maximum:
                raise WriteRejectedError(self.model, spec.name,
                                    f"{number:g} is above the allowed maximum {rule.maximum:g}")
            checked = number
        if rule.allowed is not None and checked not in rule.allowed:
            raise WriteRejectedError(self.model, spec.name,
                                f"{checked!r} is not in the allowlist {list(rule.allowed)}")
        return checked


# -- loading ----------------------------------------------------------------------

_TOP_KEYS = frozenset({"model", "manufacturer", "description", "energy_type", "byte_order",
                       "word_order", "points", "units", "source", "source_version"})
_POINT_KEYS = frozenset({"name", "unit", "table", "address", "type", "scale", "offset",
                         "cumulative", "minimum", "maximum", "values", "write", "verified",
                         "note"})
_WRITE_KEYS = frozenset({"min", "max", "allowed", "default"})


def _require(model: str, data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise RegisterMapError(model, f"{where}.{key}" if where else key, "missing")
    return data[key]


def _number(model: str, raw: dict[str, Any], key: str, where: str,
            default: float | None) -> float | None:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RegisterMapError(model, f"{where}.{key}", f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise RegisterMapError(model, f"{where}.{key}", f"must be finite, got {value!r}")
    return number


def _flag(model: str, raw: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise RegisterMapError(model, f"{where}.{key}", f"must be true or false, got {value!r}")
    return value


def _unknown_keys(model: str, raw: Mapping[str, Any], allowed: frozenset[str],
                  where: str) -> None:
    extra = sorted(str(k) for k in raw if k not in allowed)
    if extra:
        raise RegisterMapError(model, f"{where}.{extra[0]}" if where else extra[0],
                               f"unknown key; allowed: {', '.join(sorted(allowed))}")


def _enum_values(model: str, raw: Any, where: str,
                 dtype: DataType) -> tuple[tuple[int, str], ...] | None:
    if raw is None:
        return None
    if dtype not in _INTEGER_TYPES:
        raise RegisterMapError(model, f"{where}.values",
                               f"enumerations need an integer type, not {dtype.value}")
    if not isinstance(raw, dict) or not raw:
        raise RegisterMapError(model, f"{where}.values",
                               f"must be a non-empty mapping of integers to names, got {raw!r}")
    pairs: list[tuple[int, str]] = []
    for code, name in raw.items():
        if type(code) is not int or not isinstance(name, str) or not name:
            raise RegisterMapError(model, f"{where}.values",
                                   f"entries must be integer: name, got {code!r}: {name!r}")
        pairs.append((code, name))
    names = [n for _, n in pairs]
    if len(set(names)) != len(names):
        raise RegisterMapError(model, f"{where}.values", f"duplicate names in {names}")
    return tuple(sorted(pairs))


def _write_spec(model: str, raw: Any, where: str, table: Table, dtype: DataType,
                values: tuple[tuple[int, str], ...] | None) -> WriteSpec | None:
    if raw is None:
        return None
    where = f"{where}.write"
    if not table.writable:
        raise RegisterMapError(model, where, f"{table.value} points are read-only on the wire")
    if raw is True:
        raw = {}
    if not isinstance(raw, dict):
        raise RegisterMapError(model, where, f"must be a mapping or true, got {raw!r}")
    _unknown_keys(model, raw, _WRITE_KEYS, where)
    numeric = dtype is not DataType.BOOL and values is None
    if not numeric and ("min" in raw or "max" in raw):
        raise RegisterMapError(model, where, "min/max apply to numeric points only")
    minimum = _number(model, raw, "min", where, None)
    maximum = _number(model, raw, "max", where, None)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise RegisterMapError(model, f"{where}.min", f"{minimum} is greater than max {maximum}")
    names = None if values is None else {n for _, n in values}
    allowed: tuple[str | bool, ...] | None = None
    if "allowed" in raw:
        items = raw["allowed"]
        if not isinstance(items, list) or not items:
            raise RegisterMapError(model, f"{where}.allowed", f"must be a non-empty list, "
                                   f"got {items!r}")
        for item in items:
            ok = (isinstance(item, bool) if dtype is DataType.BOOL
                  else names is not None and item in names)
            if not ok:
                raise RegisterMapError(model, f"{where}.allowed",
                                       f"{item!r} is not a value of this point")
        allowed = tuple(items)
    default = raw.get("default")
    if default is not None:
        if dtype is DataType.BOOL:
            ok = isinstance(default, bool)
        elif names is not None:
            ok = default in names
        else:
            ok = (not isinstance(default, bool) and isinstance(default, int | float)
                  and math.isfinite(default)
                  and (minimum is None or default >= minimum)
                  and (maximum is None or default <= maximum))
        if not ok or (allowed is not None and default not in allowed):
            raise RegisterMapError(model, f"{where}.default",
                                   f"{default!r} is not a value this point may be written")
        if isinstance(default, int) and not isinstance(default, bool):
            default = float(default)
    return WriteSpec(minimum, maximum, allowed, default)


def _units(model: str, raw: Any, points: list[PointSpec]) -> UnitLayout | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise RegisterMapError(model, "units", f"must be a mapping, got {raw!r}")
    _unknown_keys(model, raw, frozenset({"count", "stride"}), "units")
    layout: dict[str, int] = {}
    for key in ("count", "stride"):
        value = _require(model, raw, key, "units")
        if type(value) is not int or value < 1:
            raise RegisterMapError(model, f"units.{key}", f"must be a positive integer, "
                                   f"got {value!r}")
        layout[key] = value
    count, stride = layout["count"], layout["stride"]
    for table in Table:
        specs = [p for p in points if p.table is table]
        if not specs:
            continue
        first = min(p.address for p in specs)
        end = max(p.address + p.count for p in specs)
        if end - first > stride:
            raise RegisterMapError(model, "units.stride",
                                   f"{stride} is shorter than one unit's {table.value} block "
                                   f"({end - first})")
        if end + (count - 1) * stride > 0x10000:
            raise RegisterMapError(model, "units.count",
                                   f"unit {count - 1} would end past register 0xFFFF")
    return UnitLayout(count, stride)


def parse_register_map(data: Any, *, source: str = "<data>") -> RegisterMap:
    """Validate a register map document (already parsed from YAML)."""
    if not isinstance(data, dict):
        raise RegisterMapError(source, "<root>", "must be a mapping")
    model = str(_require(source, data, "model", ""))
    _unknown_keys(model, data, _TOP_KEYS, "")
    byte_order = data.get("byte_order", "big")
    word_order = data.get("word_order", "big")
    for key, val in (("byte_order", byte_order), ("word_order", word_order)):
        if val not in ("big", "little"):
            raise RegisterMapError(model, key, f"must be 'big' or 'little', got {val!r}")
    raw_points = _require(model, data, "points", "")
    if not isinstance(raw_points, list) or not raw_points:
        raise RegisterMapError(model, "points", "must be a non-empty list")
    points: list[PointSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_points):
        points.append(_point(model, raw, f"points[{i}]", seen))
    # Overlapping registers inside one table are a mapping mistake.
    spans = sorted((p.table.value, p.address, p.address + p.count, p.name) for p in points)
    for a, b in itertools.pairwise(spans):
        if a[0] == b[0] and b[1] < a[2]:
            raise RegisterMapError(model, "points", f"{a[3]!r} and {b[3]!r} overlap")
    return RegisterMap(
        model=model,
        manufacturer=str(data.get("manufacturer", "")),
        description=str(data.get("description", "")),
        energy_type=str(data.get("energy_type", "electricity")),
        byte_order=byte_order,
        word_order=word_order,
        points=tuple(points),
        units=_units(model, data.get("units"), points),
        source=str(data.get("source", "")),
        source_version=str(data.get("source_version", "")),
    )


def _point(model: str, raw: Any, where: str, seen: set[str]) -> PointSpec:
    if not isinstance(raw, dict):
        raise RegisterMapError(model, where, "must be a mapping")
    name = _require(model, raw, "name", where)
    if not isinstance(name, str) or not name:
        # YAML 1.1 reads an unquoted on/off/yes/no as a boolean: quote such names.
        raise RegisterMapError(model, f"{where}.name",
                               f"must be a non-empty string, got {name!r} (quote YAML words "
                               "such as \"on\")")
    if name in seen:
        raise RegisterMapError(model, f"{where}.name", f"duplicate point {name!r}")
    seen.add(name)
    _unknown_keys(model, raw, _POINT_KEYS, where)
    try:
        table = Table(_require(model, raw, "table", where))
    except ValueError:
        raise RegisterMapError(
            model, f"{where}.table", f"unknown table {raw['table']!r}"
        ) from None
    try:
        dtype = DataType(_require(model, raw, "type", where))
    except ValueError:
        raise RegisterMapError(
            model, f"{where}.type", f"unknown type {raw['type']!r}"
        ) from None
    if table.is_bits and dtype is not DataType.BOOL:
        raise RegisterMapError(model, f"{where}.type",
                               f"{table.value} points are single bits: type must be bool, "
                               f"got {dtype.value!r}")
    address = _require(model, raw, "address", where)
    if (type(address) is not int
            or not 0 <= address <= 0x10000 - _WIDTH[dtype]):  # the last register too
        raise RegisterMapError(
            model, f"{where}.address", f"not a register address: {address!r}"
        )
    scale = _number(model, raw, "scale", where, 1.0)
    if scale == 0:
        raise RegisterMapError(model, f"{where}.scale", "must not be 0")
    offset = _number(model, raw, "offset", where, 0.0)
    minimum = _number(model, raw, "minimum", where, None)
    maximum = _number(model, raw, "maximum", where, None)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise RegisterMapError(
            model, f"{where}.minimum", f"{minimum} is greater than maximum {maximum}"
        )
    cumulative = _flag(model, raw, "cumulative", where, False)
    values = _enum_values(model, raw.get("values"), where, dtype)
    if cumulative and (values is not None or dtype is DataType.BOOL):
        raise RegisterMapError(model, f"{where}.cumulative",
                               "only numeric points can be cumulative counters")
    return PointSpec(
        name=name,
        unit=str(_require(model, raw, "unit", where)),
        table=table,
        address=address,
        type=dtype,
        scale=1.0 if scale is None else scale,
        offset=0.0 if offset is None else offset,
        cumulative=cumulative,
        minimum=minimum,
        maximum=maximum,
        values=values,
        write=_write_spec(model, raw.get("write"), where, table, dtype, values),
        verified=_flag(model, raw, "verified", where, True),
        note=str(raw.get("note", "")),
    )


def builtin_models() -> list[str]:
    folder = resources.files("protocols") / "registermaps"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_register_map(model_or_path: str | Path) -> RegisterMap:
    """Load a built-in model by name (`eastron-sdm120`) or a map file by path."""
    path = Path(model_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text(encoding="utf-8")
        source = str(path)
    else:
        name = str(model_or_path)
        if name not in builtin_models():
            raise RegisterMapError(
                name, "model", f"unknown register map; built-in: {', '.join(builtin_models())}"
            )
        text = (resources.files("protocols") / "registermaps" / f"{name}.yaml").read_text(
            encoding="utf-8"
        )
        source = name
    return parse_register_map(yaml.safe_load(text), source=source)


# -- request planning ---------------------------------------------------------------


class Addressed(Protocol):
    """Anything placed in a Modbus table: a `PointSpec`, or the edge's point of one device."""

    @property
    def table(self) -> Table: ...

    @property
    def address(self) -> int: ...

    @property
    def count(self) -> int: ...


P = TypeVar("P", bound=Addressed)


@dataclass(frozen=True, slots=True)
class ReadRequest(Generic[P]):
    """One Modbus read covering several points of the same table."""

    table: Table
    address: int
    count: int
    points: tuple[P, ...]


def plan_reads(points: Iterable[P], *, max_count: int | None = None,
               max_gap: int = 16) -> list[ReadRequest[P]]:
    """Group points into as few reads as allowed (Telegraf's request.go idea).

    Points of one table are merged while the request spans at most `max_count` registers
    (or bits; by default the Modbus limit of the table: 125 registers for FC 03/04, 2000
    bits for FC 01/02) and the hole between two points is at most `max_gap` registers;
    `max_gap=-1` gives one request per point (a per-device workaround for meters that
    refuse reads spanning unmapped registers). Pure: the same points always give the same
    requests, in table order, then by address.
    """
    items = list(points)
    requests: list[ReadRequest[P]] = []
    for table in Table:
        limit = table.max_read if max_count is None else min(max_count, table.max_read)
        specs = sorted((p for p in items if p.table is table), key=lambda p: p.address)
        group: list[P] = []
        start = end = 0
        for spec in specs:
            spec_end = spec.address + spec.count
            if group and (max_gap < 0 or spec.address - end > max_gap
                          or max(end, spec_end) - start > limit):
                requests.append(ReadRequest(table, start, end - start, tuple(group)))
                group = []
            if not group:
                start, end = spec.address, spec_end
            group.append(spec)
            end = max(end, spec_end)
        if group:
            requests.append(ReadRequest(table, start, end - start, tuple(group)))
    return requests
