"""Bin-fill and occupancy sensors: payload codecs and the geometry behind fill level.

**Bin fill.** An ultrasonic sensor under the lid measures the distance to the top of the
waste. With the distance to the empty bin's bottom (`empty_mm`) and the distance at which
the bin counts as full (`full_mm`, at least the sensor's blind zone)::

    fill % = (empty_mm − distance) / (empty_mm − full_mm) × 100, clamped to 0…100

A reading further than `empty_mm + tolerance_mm` or nearer than 0 is not physically a
level (an echo off the bin wall, a sensor knocked off its mount): it is refused, never
clamped into a plausible-looking number. Sensors are typically LoRaWAN (Milesight
EM310-UDL and similar) and reach the edge as the network server's JSON on MQTT, e.g.
ChirpStack v4 `application/<app>/device/<devEUI>/event/up` with the decoded payload in
`object`: `{"distance": 1250, "battery": 92, "position": "normal"}` (mm, %). 🟡 field
names follow the vendor decoders and are configurable.

**Waste categories** (GB/T 19095-2019 ✅, colours 🟡): 可回收物 recyclable (blue), 有害垃圾
hazardous (red), 厨余垃圾 kitchen (green), 其他垃圾 other (grey); the Shanghai-style 湿垃圾 /
干垃圾 (wet/dry) names map onto kitchen/other.

**Occupancy.** A PIR sensor either sits on a Modbus bus (a discrete input: see the
`pir-modbus` register map) or publishes zigbee2mqtt-style JSON on `zigbee2mqtt/<name>`:
`{"occupancy": true, "battery": 100, "illuminance_lux": 35, "linkquality": 120}`.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Any

from protocols.errors import FrameError

BIN = "bin-sensor"
ZIGBEE = "zigbee2mqtt"


class WasteCategory(enum.StrEnum):
    RECYCLABLE = "recyclable"
    HAZARDOUS = "hazardous"
    KITCHEN = "kitchen"
    OTHER = "other"

    @property
    def label_zh(self) -> str:
        return _LABELS[self][0]

    @property
    def colour(self) -> str:
        return _LABELS[self][1]


_LABELS = {
    WasteCategory.RECYCLABLE: ("可回收物", "blue"),
    WasteCategory.HAZARDOUS: ("有害垃圾", "red"),
    WasteCategory.KITCHEN: ("厨余垃圾", "green"),
    WasteCategory.OTHER: ("其他垃圾", "grey"),
}
_ALIASES = {
    "可回收物": WasteCategory.RECYCLABLE, "有害垃圾": WasteCategory.HAZARDOUS,
    "厨余垃圾": WasteCategory.KITCHEN, "其他垃圾": WasteCategory.OTHER,
    "湿垃圾": WasteCategory.KITCHEN, "干垃圾": WasteCategory.OTHER,
    "wet": WasteCategory.KITCHEN, "dry": WasteCategory.OTHER,
    "food": WasteCategory.KITCHEN, "residual": WasteCategory.OTHER,
}


def parse_category(text: str) -> WasteCategory:
    """English name, Chinese name, or a city variant (湿垃圾 → kitchen, 干垃圾 → other)."""
    key = text.strip()
    try:
        return WasteCategory(key.lower())
    except ValueError:
        pass
    if key.lower() in _ALIASES:
        return _ALIASES[key.lower()]
    if key in _ALIASES:
        return _ALIASES[key]
    known = sorted({c.value for c in WasteCategory} | set(_ALIASES))
    raise ValueError(f"unknown waste category {text!r}; known: {', '.join(known)}")


@dataclass(frozen=True, slots=True)
class BinGeometry:
    """Distances from the sensor, in mm."""

    empty_mm: float  # reading when the bin is empty (sensor to bottom)
    full_mm: float  # reading at which the bin counts as 100 % full
    tolerance_mm: float = 50.0

    def __post_init__(self) -> None:
        for name in ("empty_mm", "full_mm", "tolerance_mm"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite distance >= 0, got {value!r}")
        if self.full_mm >= self.empty_mm:
            raise ValueError(f"full_mm ({self.full_mm}) must be less than empty_mm "
                             f"({self.empty_mm})")

    def fill_pct(self, distance_mm: float) -> float:
        if not math.isfinite(distance_mm) or distance_mm <= 0:
            raise FrameError(BIN, f"distance {distance_mm!r} mm is not a level reading")
        if distance_mm > self.empty_mm + self.tolerance_mm:
            raise FrameError(BIN, f"distance {distance_mm:g} mm is beyond the empty bin's "
                             f"{self.empty_mm:g} mm (+{self.tolerance_mm:g} tolerance)")
        pct = (self.empty_mm - distance_mm) / (self.empty_mm - self.full_mm) * 100.0
        return min(100.0, max(0.0, pct))

    def distance_for(self, fill_pct: float) -> float:
        """Inverse of `fill_pct` (simulators)."""
        return self.empty_mm - fill_pct / 100.0 * (self.empty_mm - self.full_mm)


@dataclass(frozen=True, slots=True)
class BinReading:
    distance_mm: float
    battery_pct: float | None
    tilted: bool | None


def _json_object(protocol: str, payload: bytes | str) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        shown = payload if isinstance(payload, str) else payload[:60].decode("utf-8", "replace")
        raise FrameError(protocol, f"not JSON: {exc}", shown) from None
    if not isinstance(obj, dict):
        raise FrameError(protocol, "payload must be a JSON object")
    return obj


def _number(protocol: str, obj: dict[str, Any], key: str, *, required: bool) -> float | None:
    if key not in obj:
        if required:
            raise FrameError(protocol, f"{key!r} missing")
        return None
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FrameError(protocol, f"{key} must be a finite number, got {value!r}")
    return float(value)


def parse_bin_uplink(payload: bytes | str, *, distance_field: str = "distance",
                     battery_field: str = "battery") -> BinReading:
    """A network server's uplink (decoded fields under `object`) or the flat object."""
    obj = _json_object(BIN, payload)
    fields = obj.get("object", obj)
    if not isinstance(fields, dict):
        raise FrameError(BIN, "object must be a JSON object")
    distance = _number(BIN, fields, distance_field, required=True)
    assert distance is not None
    battery = _number(BIN, fields, battery_field, required=False)
    if battery is not None and not 0 <= battery <= 100:
        raise FrameError(BIN, f"{battery_field} must be 0–100 %, got {battery:g}")
    position = fields.get("position")
    tilted = None if position is None else position != "normal"
    return BinReading(distance, battery, tilted)


def bin_uplink_payload(*, distance_mm: float, battery_pct: float, dev_eui: str,
                       position: str = "normal") -> bytes:
    """A ChirpStack-v4-style uplink as a simulator publishes it."""
    return json.dumps({
        "deviceInfo": {"devEui": dev_eui, "deviceProfileName": "EM310-UDL"},
        "object": {"distance": round(distance_mm), "battery": round(battery_pct),
                   "position": position},
    }, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class OccupancyReading:
    occupied: bool
    battery_pct: float | None = None
    illuminance_lx: float | None = None


def parse_occupancy(payload: bytes | str) -> OccupancyReading:
    """A zigbee2mqtt device message with `occupancy`."""
    obj = _json_object(ZIGBEE, payload)
    occupied = obj.get("occupancy")
    if not isinstance(occupied, bool):
        raise FrameError(ZIGBEE, f"occupancy must be true or false, got {occupied!r}")
    battery = _number(ZIGBEE, obj, "battery", required=False)
    lux = _number(ZIGBEE, obj, "illuminance_lux", required=False)
    if lux is None:
        lux = _number(ZIGBEE, obj, "illuminance", required=False)
    return OccupancyReading(occupied, battery, lux)


def occupancy_payload(reading: OccupancyReading, *, linkquality: int = 120) -> bytes:
    body: dict[str, Any] = {"occupancy": reading.occupied, "linkquality": linkquality}
    if reading.battery_pct is not None:
        body["battery"] = reading.battery_pct
    if reading.illuminance_lx is not None:
        body["illuminance_lux"] = reading.illuminance_lx
    return json.dumps(body, separators=(",", ":")).encode()
