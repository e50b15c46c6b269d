"""CJ/T 188 water meters (M-Bus or RS-485, usually behind a transparent serial server).

Reads DI 901F: the cumulative volume becomes `water_m3` (a cumulative point: interval
records like any meter), the status bits `valve_open` and `battery_low`. Each request
carries a sequence number SER that the answer must echo, so a late answer to an earlier
request is recognised and refused instead of being stored as a fresh reading.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from edge.drivers.base import DeviceConfig, Driver, PointInfo, Priority, Reading
from edge.drivers.hubs import Scanner, StreamHub
from edge.errors import DeviceFaultError, GarbledFrameError
from protocols import cjt188
from protocols.clock import Clock
from protocols.errors import DeviceReplyError, FrameError

POINTS = {
    "water_m3": PointInfo("water_m3", "m3", cumulative=True),
    "valve_open": PointInfo("valve_open", ""),
    "battery_low": PointInfo("battery_low", ""),
}
METER_TYPES = {"cold_water": cjt188.MeterType.COLD_WATER, "hot_water": cjt188.MeterType.HOT_WATER}


class Cjt188Config(DeviceConfig):
    """A CJ/T 188 water meter."""

    driver: Literal["cjt188"]
    address: str = Field(description="14-digit meter address as printed")
    meter_type: Literal["cold_water", "hot_water"] = "cold_water"
    di_swapped: bool = Field(False, description="workaround: send DI as 1F 90")
    preamble: bool = True

    kind_transports = frozenset({"serial_over_tcp", "serial"})

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        text = value.strip()
        if len(text) != 14 or not text.isdigit():
            raise ValueError(f"must be the 14-digit meter address, got {value!r}")
        return text

    def available_points(self) -> dict[str, PointInfo]:
        return dict(POINTS)

    @property
    def model_name(self) -> str:
        return "cjt188-2004"


def reply_scanner() -> Scanner[cjt188.Frame]:
    def scan(buffer: bytes) -> tuple[cjt188.Frame | None, int]:
        frame, used = cjt188.scan_frame(buffer)
        if frame is None or not frame.is_reply:
            return None, used
        return frame, used
    return scan


class Cjt188Driver(Driver[Cjt188Config, StreamHub]):
    kind = "cjt188"

    def __init__(self, config: Cjt188Config, hub: StreamHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self._ser = 0

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        self._ser = (self._ser + 1) & 0xFF
        request = cjt188.encode_read(self.config.address,
                                     meter_type=METER_TYPES[self.config.meter_type],
                                     ser=self._ser, di_swapped=self.config.di_swapped,
                                     preamble=self.config.preamble)
        async with self.hub.session(Priority.POLL, device=self.id):
            frame = await self.hub.transact(request, reply_scanner(), device=self.id,
                                            timeout_s=self.timeout_s, what="read 901F")
        try:
            data = cjt188.decode_read_reply(frame, address=self.config.address, ser=self._ser)
        except DeviceReplyError as exc:
            raise DeviceFaultError(self.id, exc.reason, exc.code) from None
        except FrameError as exc:
            raise GarbledFrameError(self.id, str(exc)) from None
        reading = Reading()
        if data.unit != "m3":
            reading.bad["water_m3"] = f"meter reports {data.unit}, not m3"
        elif "water_m3" in points:
            reading.values["water_m3"] = data.cumulative
        if "valve_open" in points:
            reading.values["valve_open"] = data.status.valve_open
        if "battery_low" in points:
            reading.values["battery_low"] = data.status.battery_low
        return reading
