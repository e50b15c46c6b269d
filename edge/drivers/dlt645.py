"""DL/T 645-2007 meters on an RS-485 bus or behind a transparent serial server.

One request per data identifier (the standard has no multi-item read that every meter
supports), each under the bus lock with the bus's frame gap; at 2400 baud a read of
energy, voltage, current and power takes about 0.4 s of line time, which is why the
default point list is short and `point_intervals` lets energy be read more often than
voltage. `address: auto` discovers the address with the broadcast read-address command,
allowed only when the meter is alone on its bus (otherwise every meter would answer at
once).

Some RS-485 adapters echo what they send; frames that are not replies are skipped.
"""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from edge.drivers.base import DeviceConfig, Driver, PointInfo, Priority, Reading
from edge.drivers.hubs import Scanner, StreamHub
from edge.errors import DeviceFaultError, GarbledFrameError
from protocols import dlt645
from protocols.clock import Clock
from protocols.errors import DeviceReplyError, FrameError

log = logging.getLogger(__name__)

DEFAULT_POINTS = ("energy_import_kwh", "voltage_l1_v", "current_l1_a", "power_w")
NO_DATA = 0x02  # error reply bit "no requested data"


class Dlt645Config(DeviceConfig):
    """A DL/T 645-2007 meter."""

    driver: Literal["dlt645"]
    address: str = Field(description="12-digit meter address as printed, or `auto`")
    preamble: bool = Field(True, description="send FE FE FE FE before each frame")

    kind_transports = frozenset({"serial_over_tcp", "serial"})

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value == "auto":
            return value
        text = value.strip()
        if len(text) != 12 or not text.isdigit():
            raise ValueError(f"must be the 12-digit meter address or 'auto', got {value!r}")
        return text

    def available_points(self) -> dict[str, PointInfo]:
        return {item.point: PointInfo(item.point, item.unit, item.cumulative)
                for item in dlt645.DATA_ITEMS.values()}

    def selected_points(self) -> tuple[PointInfo, ...]:
        offered = self.available_points()
        names = DEFAULT_POINTS if self.points is None else self.points
        return tuple(offered[n] for n in names if n in offered)

    @property
    def model_name(self) -> str:
        return "dlt645-2007"


def reply_scanner(expect: int) -> Scanner[dlt645.Frame]:
    """Frames until a reply with function `expect` (requests echoed by the adapter are
    skipped)."""
    def scan(buffer: bytes) -> tuple[dlt645.Frame | None, int]:
        frame, used = dlt645.scan_frame(buffer)
        if frame is None:
            return None, used
        if not frame.is_reply or frame.function != expect:
            return None, used  # our own request echoed, or another master's traffic
        return frame, used
    return scan


class Dlt645Driver(Driver[Dlt645Config, StreamHub]):
    kind = "dlt645"
    items: ClassVar[dict[str, dlt645.DataItem]] = dlt645.ITEMS_BY_POINT

    def __init__(self, config: Dlt645Config, hub: StreamHub, clock: Clock) -> None:
        super().__init__(config, hub, clock)
        self.address: str | None = None if config.address == "auto" else config.address

    async def discover(self) -> str:
        """Ask the (only) meter on the bus for its address."""
        async with self.hub.session(Priority.POLL, device=self.id):
            frame = await self.hub.transact(
                dlt645.encode_read_address(preamble=self.config.preamble),
                reply_scanner(dlt645.Control.READ_ADDRESS), device=self.id,
                timeout_s=self.timeout_s, what="read address")
        try:
            address = dlt645.decode_address_reply(frame)
        except DeviceReplyError as exc:
            raise DeviceFaultError(self.id, exc.reason, exc.code) from None
        except FrameError as exc:
            raise GarbledFrameError(self.id, str(exc)) from None
        log.info("%s: discovered DL/T 645 address %s", self.id, address)
        return address

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        if self.address is None:
            self.address = await self.discover()
        reading = Reading()
        for info in self.points:
            if info.name not in points:
                continue
            item = self.items[info.name]
            async with self.hub.session(Priority.POLL, device=self.id):
                frame = await self.hub.transact(
                    dlt645.encode_read(self.address, item.di, preamble=self.config.preamble),
                    reply_scanner(dlt645.Control.READ_DATA), device=self.id,
                    timeout_s=self.timeout_s, what=f"read DI {item.di:08X}")
            try:
                reading.values[info.name] = dlt645.decode_read_reply(
                    frame, address=self.address, di=item.di)
            except DeviceReplyError as exc:
                if exc.code & NO_DATA:  # the meter does not have this item: a point problem
                    reading.bad[info.name] = exc.reason
                    continue
                raise DeviceFaultError(self.id, exc.reason, exc.code) from None
            except FrameError as exc:
                raise GarbledFrameError(self.id, str(exc)) from None
        return reading
