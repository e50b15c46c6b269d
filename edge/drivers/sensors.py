"""Push sensors over MQTT: ultrasonic bin-fill sensors and PIR occupancy sensors.

These devices talk when they want to (a LoRaWAN bin sensor every 10–60 minutes, a PIR on
every change); the driver keeps the latest message and its arrival time, and the bus
scheduler samples it in the device's poll slots. A sensor that has not been heard from
for `stale_after_s` is offline — one event when it goes, one when it comes back. A
malformed message is counted and dropped; the previous good one stays valid until stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator

from edge.drivers.base import (
    DeviceConfig,
    Driver,
    MessageHandler,
    PointInfo,
    Reading,
    Seconds,
)
from edge.drivers.mqtt import MqttHub
from edge.errors import DeviceError
from protocols.clock import Clock
from protocols.errors import FrameError
from protocols.sensors import (
    BinGeometry,
    BinReading,
    OccupancyReading,
    WasteCategory,
    parse_bin_uplink,
    parse_category,
    parse_occupancy,
)

BIN_POINTS = {
    "fill_pct": PointInfo("fill_pct", "%"),
    "distance_mm": PointInfo("distance_mm", "mm"),
    "battery_pct": PointInfo("battery_pct", "%"),
    "category": PointInfo("category", ""),
}
OCCUPANCY_POINTS = {
    "occupied": PointInfo("occupied", ""),
    "battery_pct": PointInfo("battery_pct", "%"),
    "illuminance_lx": PointInfo("illuminance_lx", "lx"),
}


def _topic(value: str) -> str:
    if not value or "+" in value or "#" in value:
        raise ValueError(f"must be a topic without wildcards, got {value!r}")
    return value


class BinFillConfig(DeviceConfig):
    """An ultrasonic bin-fill sensor; its uplinks arrive as JSON on `topic`."""

    driver: Literal["bin_fill"]
    topic: str = Field(description="e.g. application/<app>/device/<devEUI>/event/up")
    category: WasteCategory = Field(description="GB/T 19095: recyclable, hazardous, kitchen, "
                                                "other (Chinese names and 湿/干垃圾 accepted)")
    empty_mm: float = Field(gt=0, description="distance reading of the empty bin")
    full_mm: float = Field(ge=0, description="distance reading at which the bin is full")
    tolerance_mm: float = Field(50.0, ge=0)
    distance_field: str = "distance"
    battery_field: str = "battery"
    stale_after_s: Seconds | None = Field(None, description="default: 3 × poll_interval_s")

    kind_transports = frozenset({"mqtt"})

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, value: str) -> str:
        return _topic(value)

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: object) -> object:
        return parse_category(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _geometry(self) -> BinFillConfig:
        self.geometry()
        return self

    def geometry(self) -> BinGeometry:
        return BinGeometry(self.empty_mm, self.full_mm, self.tolerance_mm)

    def available_points(self) -> dict[str, PointInfo]:
        return dict(BIN_POINTS)

    @property
    def model_name(self) -> str:
        return "bin-fill-ultrasonic"


class OccupancyConfig(DeviceConfig):
    """A PIR sensor publishing zigbee2mqtt-style JSON on `topic`."""

    driver: Literal["occupancy"]
    topic: str = Field(description="e.g. zigbee2mqtt/room-301-pir")
    stale_after_s: Seconds = Field(3600, description="silence after which it is offline")

    kind_transports = frozenset({"mqtt"})

    @field_validator("topic")
    @classmethod
    def _no_wildcards(cls, value: str) -> str:
        return _topic(value)

    def available_points(self) -> dict[str, PointInfo]:
        return dict(OCCUPANCY_POINTS)

    @property
    def model_name(self) -> str:
        return "pir-zigbee2mqtt"


class _PushDriver(Driver[DeviceConfig, MqttHub]):
    def __init__(self, config: DeviceConfig, hub: MqttHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self.received_at: float | None = None
        self.bad_messages = 0
        self.last_error: str | None = None

    def _fresh(self, stale_after_s: float) -> None:
        if self.received_at is None:
            why = f" (last message refused: {self.last_error})" if self.last_error else ""
            raise DeviceError(self.id, f"nothing received yet{why}")
        age = self.clock.now() - self.received_at
        if age > stale_after_s:
            raise DeviceError(self.id, f"silent for {age:.0f} s (stale after "
                                       f"{stale_after_s:g} s)")


class BinFillDriver(_PushDriver):
    kind = "bin_fill"
    config: BinFillConfig

    def __init__(self, config: BinFillConfig, hub: MqttHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self.geometry = config.geometry()
        self.latest: BinReading | None = None

    def subscriptions(self) -> Mapping[str, MessageHandler]:
        return {self.config.topic: self._on_uplink}

    def _on_uplink(self, topic: str, payload: bytes) -> None:
        try:
            self.latest = parse_bin_uplink(payload, distance_field=self.config.distance_field,
                                           battery_field=self.config.battery_field)
        except FrameError as exc:
            self.bad_messages += 1
            self.last_error = exc.reason
            return
        self.received_at = self.clock.now()

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        cfg = self.config
        self._fresh(cfg.stale_after_s or 3 * cfg.poll_interval_s)
        assert self.latest is not None
        reading = Reading()
        try:
            fill = self.geometry.fill_pct(self.latest.distance_mm)
        except FrameError as exc:
            for name in ("fill_pct", "distance_mm"):
                reading.bad[name] = exc.reason
        else:
            reading.values["fill_pct"] = fill
            reading.values["distance_mm"] = self.latest.distance_mm
        if self.latest.battery_pct is not None:
            reading.values["battery_pct"] = self.latest.battery_pct
        reading.values["category"] = cfg.category.value
        reading.values = {k: v for k, v in reading.values.items() if k in points}
        reading.bad = {k: v for k, v in reading.bad.items() if k in points}
        return reading


class OccupancyDriver(_PushDriver):
    kind = "occupancy"
    config: OccupancyConfig

    def __init__(self, config: OccupancyConfig, hub: MqttHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self.latest: OccupancyReading | None = None

    def subscriptions(self) -> Mapping[str, MessageHandler]:
        return {self.config.topic: self._on_message}

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            self.latest = parse_occupancy(payload)
        except FrameError as exc:
            self.bad_messages += 1
            self.last_error = exc.reason
            return
        self.received_at = self.clock.now()

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        self._fresh(self.config.stale_after_s)
        assert self.latest is not None
        values: dict[str, float | bool | str] = {"occupied": self.latest.occupied}
        if self.latest.battery_pct is not None:
            values["battery_pct"] = self.latest.battery_pct
        if self.latest.illuminance_lx is not None:
            values["illuminance_lx"] = self.latest.illuminance_lx
        return Reading(values={k: v for k, v in values.items() if k in points})
