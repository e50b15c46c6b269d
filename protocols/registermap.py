"""Modbus register maps as data files, and decoding of raw registers into point values.

A register map is one YAML file per device model (see `registermaps/`). Keeping maps as
data (VOLTTRON's idea) lets an engineer add a meter model without touching code, and lets
the simulators serve exactly the registers the agent reads.
"""

from __future__ import annotations

import enum
import itertools
import math
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from protocols.errors import DecodeError, RegisterMapError


class Table(enum.StrEnum):
    """Modbus data table; the value is the read function code's name."""

    HOLDING = "holding"  # FC 03
    INPUT = "input"  # FC 04


class DataType(enum.StrEnum):
    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    FLOAT32 = "float32"


_WIDTH = {
    DataType.UINT16: 1,
    DataType.INT16: 1,
    DataType.UINT32: 2,
    DataType.INT32: 2,
    DataType.FLOAT32: 2,
}
_STRUCT = {
    DataType.UINT16: ">H",
    DataType.INT16: ">h",
    DataType.UINT32: ">I",
    DataType.INT32: ">i",
    DataType.FLOAT32: ">f",
}


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

    @property
    def count(self) -> int:
        return _WIDTH[self.type]


@dataclass(frozen=True, slots=True)
class RegisterMap:
    model: str
    manufacturer: str
    description: str
    energy_type: str
    byte_order: str
    word_order: str
    points: tuple[PointSpec, ...]

    def point(self, name: str) -> PointSpec:
        for spec in self.points:
            if spec.name == name:
                return spec
        raise KeyError(name)

    # -- decoding -----------------------------------------------------------------

    def decode(self, spec: PointSpec, registers: list[int]) -> float:
        """Turn the raw 16-bit registers of `spec` into a scaled engineering value."""
        if len(registers) != spec.count:
            raise DecodeError(
                self.model, spec.name, f"expected {spec.count} registers, got {len(registers)}"
            )
        for r in registers:
            if type(r) is not int or not 0 <= r <= 0xFFFF:
                raise DecodeError(self.model, spec.name, f"not a 16-bit register value: {r!r}")
        regs = list(registers)
        if spec.count == 2 and self.word_order == "little":
            regs.reverse()
        raw = b"".join(r.to_bytes(2, "big") for r in regs)
        if self.byte_order == "little":
            raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
        (value,) = struct.unpack(_STRUCT[spec.type], raw)
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise DecodeError(self.model, spec.name, f"not a number: {number!r}")
        result = number * spec.scale + spec.offset
        if spec.minimum is not None and result < spec.minimum:
            raise DecodeError(self.model, spec.name, f"{result!r} below minimum {spec.minimum}")
        if spec.maximum is not None and result > spec.maximum:
            raise DecodeError(self.model, spec.name, f"{result!r} above maximum {spec.maximum}")
        return result

    def encode(self, spec: PointSpec, value: float) -> list[int]:
        """Inverse of `decode` (used by simulators and golden tests)."""
        raw_value: float | int = (value - spec.offset) / spec.scale
        if spec.type is not DataType.FLOAT32:
            raw_value = round(raw_value)
        raw = struct.pack(_STRUCT[spec.type], raw_value)
        if self.byte_order == "little":
            raw = b"".join(raw[i : i + 2][::-1] for i in range(0, len(raw), 2))
        regs = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
        if spec.count == 2 and self.word_order == "little":
            regs.reverse()
        return regs


# -- loading ----------------------------------------------------------------------


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


def parse_register_map(data: Any, *, source: str = "<data>") -> RegisterMap:
    """Validate a register map document (already parsed from YAML)."""
    if not isinstance(data, dict):
        raise RegisterMapError(source, "<root>", "must be a mapping")
    model = str(_require(source, data, "model", ""))
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
        where = f"points[{i}]"
        if not isinstance(raw, dict):
            raise RegisterMapError(model, where, "must be a mapping")
        name = str(_require(model, raw, "name", where))
        if name in seen:
            raise RegisterMapError(model, f"{where}.name", f"duplicate point {name!r}")
        seen.add(name)
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
        cumulative = raw.get("cumulative", False)
        if not isinstance(cumulative, bool):
            raise RegisterMapError(
                model, f"{where}.cumulative", f"must be true or false, got {cumulative!r}"
            )
        points.append(
            PointSpec(
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
            )
        )
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


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One Modbus read covering several points of the same table."""

    table: Table
    address: int
    count: int
    points: tuple[PointSpec, ...]


def plan_reads(points: list[PointSpec] | tuple[PointSpec, ...], *, max_count: int = 125,
               max_gap: int = 16) -> list[ReadRequest]:
    """Group points into as few reads as allowed (Telegraf's request.go idea).

    Points of one table are merged while the request stays within `max_count` registers
    (125 is the Modbus limit for FC03/04) and the hole between two points is at most
    `max_gap` registers; `max_gap=-1` gives one request per point (a per-device workaround
    for meters that refuse reads spanning unmapped registers).
    """
    requests: list[ReadRequest] = []
    for table in Table:
        specs = sorted((p for p in points if p.table is table), key=lambda p: p.address)
        group: list[PointSpec] = []
        start = end = 0
        for spec in specs:
            spec_end = spec.address + spec.count
            if group and (max_gap < 0 or spec.address - end > max_gap
                          or max(end, spec_end) - start > max_count):
                requests.append(ReadRequest(table, start, end - start, tuple(group)))
                group = []
            if not group:
                start, end = spec.address, spec_end
            group.append(spec)
            end = max(end, spec_end)
        if group:
            requests.append(ReadRequest(table, start, end - start, tuple(group)))
    return requests
