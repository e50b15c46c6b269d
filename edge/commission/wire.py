"""What the commissioning commands share: a hub for one bus (as the agent builds it), raw
frame capture, and the way raw data is printed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from edge.config import ModbusTcpBus, SerialBus, SerialOverTcpBus
from edge.drivers.base import Priority
from edge.drivers.hubs import ModbusHub, ModbusTcpHub, Scanner, StreamHub
from edge.drivers.links import SerialLink, TcpLink
from edge.errors import DeviceError
from protocols.registermap import Table

T = TypeVar("T")

WiredBus = ModbusTcpBus | SerialOverTcpBus | SerialBus


def open_hub(bus: WiredBus, *, timeout_s: float) -> ModbusHub:
    """The hub of a wired bus, the agent's (`edge.agent.build_hub`) and the commissioning
    commands' alike. Nothing connects until the first request."""
    if isinstance(bus, ModbusTcpBus):
        return ModbusTcpHub(bus.id, bus.host, bus.port, timeout_s=timeout_s,
                            frame_gap_s=bus.gap_s, max_pending_writes=bus.max_pending_writes)
    if isinstance(bus, SerialOverTcpBus):
        return StreamHub(bus.id, TcpLink(bus.host, bus.port), transport=bus.transport,
                         frame_gap_s=bus.gap_s, max_pending_writes=bus.max_pending_writes,
                         connect_timeout_s=max(timeout_s, 1.0))
    link = SerialLink(bus.device, baudrate=bus.baudrate, parity=bus.parity,
                      stopbits=bus.stopbits)
    return StreamHub(bus.id, link, transport=bus.transport, frame_gap_s=bus.gap_s,
                     max_pending_writes=bus.max_pending_writes)


def describe(bus: WiredBus) -> str:
    if isinstance(bus, SerialBus):
        return f"{bus.device} {bus.baudrate} 8{bus.parity}{bus.stopbits} (serial)"
    return f"{bus.host}:{bus.port} ({bus.transport})"


class Capture:
    """Wraps a frame scanner and keeps the bytes of the frame it accepted."""

    def __init__(self) -> None:
        self.raw = b""

    def wrap(self, scan: Scanner[T]) -> Scanner[T]:
        def scanned(buffer: bytes) -> tuple[T | None, int]:
            result, used = scan(buffer)
            if result is not None:
                self.raw = buffer[:used]
            return result, used
        return scanned


@dataclass(frozen=True, slots=True)
class Timed:
    """One transaction: how long it took (real time) and the error, if any."""

    ms: float
    error: DeviceError | None


async def timed(call: Callable[[], Awaitable[T]]) -> tuple[T | None, Timed]:
    started = time.perf_counter()
    try:
        result = await call()
    except DeviceError as exc:
        return None, Timed((time.perf_counter() - started) * 1000, exc)
    return result, Timed((time.perf_counter() - started) * 1000, None)


async def transact(hub: StreamHub, request: bytes, scanner: Scanner[T], *, device: str,
                   timeout_s: float, what: str) -> T:
    """One request and its reply frame under the bus lock, as the agent's polls do."""
    async with hub.session(Priority.POLL, device=device):
        return await hub.transact(request, scanner, device=device, timeout_s=timeout_s,
                                  what=what)


async def read_range(hub: ModbusHub, table: Table, address: int, count: int, *, unit: int,
                     timeout_s: float, device: str) -> list[int]:
    """One Modbus read under the bus lock, as the agent's polls do."""
    async with hub.session(Priority.POLL, device=device):
        return await hub.modbus_read(table, address, count, unit=unit, device=device,
                                     timeout_s=timeout_s)


def hexbytes(data: bytes) -> str:
    return data.hex(" ").upper()


def hexregs(registers: list[int]) -> str:
    return " ".join(f"{r:04X}" for r in registers)
