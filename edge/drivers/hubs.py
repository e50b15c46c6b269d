"""One hub per physical bus: the only owner of its connection, with a lock and a pace.

Users of Home Assistant, Telegraf and OpenEMS keep reporting the same failures on slow
RS-485 bridges: two requests interleaved on one connection, frames sent back to back
faster than the bridge can turn the line around, a write stuck behind a minute of polls.
A hub therefore

- serialises every transaction behind a `PriorityLock` where writes jump ahead of queued
  polls (at most `max_pending_writes` may wait; more are refused with `BusBusyError`,
  counted, never queued without bound),
- keeps `frame_gap_s` of silence between the end of one transaction and the next,
- bounds every transaction with the calling device's timeout_s, and after a timeout_s or a
  garbled answer drops whatever is still in the receive buffer so it cannot be taken for
  the next answer,
- keeps a shared gateway connection open when one unit times out: healthy units behind
  the same gateway keep their connection; only `RECONNECT_AFTER_TIMEOUTS` timeouts in a
  row with no answer at all (a dead link) reopen it.

Hubs: `ModbusTcpHub` (Modbus TCP through pymodbus), `StreamHub` (a byte stream — a
transparent serial server or a local serial port — carrying Modbus RTU, DL/T 645 or
CJ/T 188 frames). The MQTT hub for plugs and sensors lives in `edge.drivers.mqtt`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.drivers.base import Priority
from edge.drivers.links import LinkError, StreamLink
from edge.errors import (
    BusBusyError,
    DeviceError,
    DeviceFaultError,
    DeviceTimeoutError,
    GarbledFrameError,
)
from protocols import modbus_rtu
from protocols.errors import DeviceReplyError, FrameError
from protocols.registermap import Table

log = logging.getLogger(__name__)

T = TypeVar("T")

RECONNECT_AFTER_TIMEOUTS = 3
"""Timeouts in a row, with no unit answering in between, before a Modbus TCP connection is
reopened."""


class PriorityLock:
    """A lock handed to the highest-priority waiter first (FIFO within a priority)."""

    def __init__(self, *, max_waiting: dict[Priority, int]) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._max_waiting = max_waiting

    @property
    def locked(self) -> bool:
        return self._locked

    def waiting(self, priority: Priority | None = None) -> int:
        return sum(1 for p, _, fut in self._waiters
                   if not fut.done() and (priority is None or p == priority))

    async def acquire(self, priority: Priority) -> None:
        if not self._locked and not self.waiting():
            self._locked = True
            return
        limit = self._max_waiting.get(priority)
        if limit is not None and self.waiting(priority) >= limit:
            raise OverflowError(f"{limit} {priority.name.lower()} requests already wait")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._order), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # we were handed the lock just as we were cancelled
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)  # ownership passes on; stays locked
                return
        self._locked = False


@dataclass
class HubStats:
    """Counters per hub; exposed through the agent and asserted by tests."""

    transactions: int = 0
    writes: int = 0
    timeouts: int = 0
    garbled: int = 0
    faults: int = 0  # the device answered with an error
    busy_refused: int = 0  # writes refused because max_pending_writes were waiting
    connects: int = 0
    discarded_bytes: int = 0


class Hub:
    """The base: lock, pace, stats. Subclasses add the transactions of their transport."""

    transport: ClassVar[str] = ""

    def __init__(self, name: str, *, frame_gap_s: float = 0.0, max_pending_writes: int = 16,
                 connect_timeout_s: float = 5.0) -> None:
        self.name = name
        self.frame_gap_s = frame_gap_s
        self.connect_timeout_s = connect_timeout_s
        self.max_pending_writes = max_pending_writes
        self.lock = PriorityLock(max_waiting={Priority.WRITE: max_pending_writes,
                                              Priority.POLL: 64})
        self.stats = HubStats()
        self._last_end: float | None = None
        self.ready = asyncio.Event()
        self.ready.set()

    def session(self, priority: Priority, *, device: str) -> _Session:
        """Exclusive use of the bus for one or more transactions (a write and its read-back
        are one session, so no poll can slip in between)."""
        return _Session(self, priority, device)

    async def _pace(self) -> None:
        """Silence between frames: real time, since it is the physical line that needs it."""
        if self._last_end is None or self.frame_gap_s <= 0:
            return
        loop = asyncio.get_running_loop()
        delay = self._last_end + self.frame_gap_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)

    def _mark_end(self) -> None:
        self._last_end = asyncio.get_running_loop().time()

    async def run(self) -> None:
        """Background work of the hub (the MQTT hub's connection); none by default."""

    def close(self) -> None:
        """Release the connection."""


class _Session:
    """`async with hub.session(priority, device=...)`: a plain class rather than an
    asynccontextmanager, because it wraps every single request on the bus."""

    __slots__ = ("device", "hub", "priority")

    def __init__(self, hub: Hub, priority: Priority, device: str) -> None:
        self.hub = hub
        self.priority = priority
        self.device = device

    async def __aenter__(self) -> None:
        try:
            await self.hub.lock.acquire(self.priority)
        except OverflowError as exc:
            self.hub.stats.busy_refused += 1
            raise BusBusyError(self.device, f"bus {self.hub.name} busy: {exc}") from None

    async def __aexit__(self, *exc: object) -> None:
        self.hub.lock.release()


class ModbusHub(Hub):
    """A hub that carries Modbus: registers as ints, bits as 0/1 ints."""

    async def modbus_read(self, table: Table, address: int, count: int, *, unit: int,
                          device: str, timeout_s: float) -> list[int]:
        raise NotImplementedError

    async def modbus_write(self, table: Table, address: int, values: list[int], *,
                           unit: int, device: str, timeout_s: float) -> None:
        raise NotImplementedError


class ModbusTcpHub(ModbusHub):
    """Modbus TCP (MBAP) to a meter or a protocol-converting gateway, through pymodbus."""

    transport = "modbus_tcp"

    def __init__(self, name: str, host: str, port: int, *, timeout_s: float,
                 frame_gap_s: float = 0.0, max_pending_writes: int = 16) -> None:
        super().__init__(name, frame_gap_s=frame_gap_s, max_pending_writes=max_pending_writes,
                         connect_timeout_s=timeout_s)
        self.host = host
        self.port = port
        self._client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0,
                                            reconnect_delay=0)
        self._silent = 0  # timeouts in a row, over all units of the connection

    def _silence(self) -> None:
        """One request got no answer. A gateway shares its connection between units, and
        one dead unit must not cut off the healthy ones: the connection is dropped only
        after `RECONNECT_AFTER_TIMEOUTS` timeouts in a row with no answer from any unit (a
        dead link). A late answer cannot be taken for the next one: pymodbus drops answers
        whose transaction id is not the request's."""
        self.stats.timeouts += 1
        self._silent += 1
        if self._silent >= RECONNECT_AFTER_TIMEOUTS:
            self._silent = 0
            self._client.close()

    async def _call(self, device: str, timeout_s: float, what: str,
                    call: Callable[[], object]) -> object:
        await self._pace()
        self.stats.transactions += 1
        try:
            async with asyncio.timeout(timeout_s):
                if not self._client.connected:
                    self.stats.connects += 1
                    await self._client.connect()
                    if not self._client.connected:
                        raise DeviceError(device, f"cannot connect to {self.host}:{self.port}")
                result = await call()  # type: ignore[misc]  # pymodbus coroutines, untyped
        except TimeoutError:
            self._silence()
            raise DeviceTimeoutError(device, f"no answer to {what} within {timeout_s:g} s "
                                             f"from {self.name}") from None
        except ModbusException as exc:
            if "No response" in str(exc) or "timeout_s" in str(exc).lower():
                self._silence()
                raise DeviceTimeoutError(device, f"no answer to {what} from {self.name}"
                                         ) from None
            self._client.close()
            self.stats.garbled += 1
            raise GarbledFrameError(device, f"{what} on {self.name}: {exc}") from None
        finally:
            self._mark_end()
        self._silent = 0
        if result.isError():
            code = int(getattr(result, "exception_code", 0) or 0)
            self.stats.faults += 1
            name = modbus_rtu.EXCEPTION_NAMES.get(code, "unknown")
            raise DeviceFaultError(device, f"Modbus exception {code} ({name}) to {what}", code)
        return result

    async def modbus_read(self, table: Table, address: int, count: int, *, unit: int,
                          device: str, timeout_s: float) -> list[int]:
        c = self._client
        calls = {
            Table.HOLDING: lambda: c.read_holding_registers(address, count=count, device_id=unit),
            Table.INPUT: lambda: c.read_input_registers(address, count=count, device_id=unit),
            Table.COIL: lambda: c.read_coils(address, count=count, device_id=unit),
            Table.DISCRETE: lambda: c.read_discrete_inputs(address, count=count, device_id=unit),
        }
        what = f"read {table.value} {address}+{count}"
        result = await self._call(device, timeout_s, what, calls[table])
        if table.is_bits:
            bits = list(getattr(result, "bits", []))
            if len(bits) < count:
                raise GarbledFrameError(device, f"short answer to {what}: {len(bits)} bits")
            return [int(bool(b)) for b in bits[:count]]
        registers = list(getattr(result, "registers", []))
        if len(registers) != count:
            raise GarbledFrameError(device, f"answer to {what} has {len(registers)} registers")
        return registers

    async def modbus_write(self, table: Table, address: int, values: list[int], *,
                           unit: int, device: str, timeout_s: float) -> None:
        c = self._client
        what = f"write {table.value} {address}={values}"
        self.stats.writes += 1
        if table is Table.COIL:
            if len(values) == 1:
                await self._call(device, timeout_s, what,
                                 lambda: c.write_coil(address, bool(values[0]), device_id=unit))
            else:
                await self._call(device, timeout_s, what, lambda: c.write_coils(
                    address, [bool(v) for v in values], device_id=unit))
        elif len(values) == 1:
            await self._call(device, timeout_s, what,
                             lambda: c.write_register(address, values[0], device_id=unit))
        else:
            await self._call(device, timeout_s, what,
                             lambda: c.write_registers(address, values, device_id=unit))

    def close(self) -> None:
        self._client.close()


_READ_FUNCTIONS = {
    Table.HOLDING: modbus_rtu.Function.READ_HOLDING_REGISTERS,
    Table.INPUT: modbus_rtu.Function.READ_INPUT_REGISTERS,
    Table.COIL: modbus_rtu.Function.READ_COILS,
    Table.DISCRETE: modbus_rtu.Function.READ_DISCRETE_INPUTS,
}

Scanner = Callable[[bytes], tuple[T | None, int]]
"""Given the bytes received so far: (result, bytes consumed) or (None, droppable bytes)."""


class StreamHub(ModbusHub):
    """A byte stream shared by RTU, DL/T 645 and CJ/T 188 devices: one request, one answer."""

    def __init__(self, name: str, link: StreamLink, *, transport: str, frame_gap_s: float,
                 max_pending_writes: int = 16, connect_timeout_s: float = 5.0) -> None:
        super().__init__(name, frame_gap_s=frame_gap_s, max_pending_writes=max_pending_writes,
                         connect_timeout_s=connect_timeout_s)
        self.link = link
        self.transport = transport  # type: ignore[misc]  # per instance: serial | serial_over_tcp

    async def _open(self, device: str) -> None:
        if self.link.is_open:
            return
        self.stats.connects += 1
        try:
            await self.link.open(self.connect_timeout_s)
        except LinkError as exc:
            raise DeviceError(device, f"bus {self.name}: {exc}") from None

    async def _settle(self) -> None:
        """After garbage: wait for the line to be quiet, then drop what came."""
        quiet = max(self.frame_gap_s, 0.01)
        for _ in range(20):
            dropped = self.link.discard_input()
            self.stats.discarded_bytes += dropped
            await asyncio.sleep(quiet)
            if not self.link.peek():
                return

    async def transact(self, request: bytes, scan: Scanner[T], *, device: str,
                       timeout_s: float, what: str) -> T:
        """Send `request`, return what `scan` makes of the answer."""
        await self._open(device)
        await self._pace()
        self.stats.transactions += 1
        self.stats.discarded_bytes += self.link.discard_input()
        try:
            await self.link.write(request)
            async with asyncio.timeout(timeout_s):
                while True:
                    result, used = scan(self.link.peek())
                    if result is not None:
                        self.link.consume(used)
                        return result
                    if used:  # preamble, noise or a frame that is not ours: drop, rescan
                        self.link.consume(used)
                        continue
                    await self.link.wait_data()
        except TimeoutError:
            self.stats.timeouts += 1
            raise DeviceTimeoutError(device, f"no answer to {what} within {timeout_s:g} s on "
                                             f"{self.name}") from None
        except DeviceReplyError as exc:
            self.stats.faults += 1
            raise DeviceFaultError(device, f"{what}: {exc.reason}", exc.code) from None
        except FrameError as exc:
            self.stats.garbled += 1
            await self._settle()
            raise GarbledFrameError(device, f"{what} on {self.name}: {exc}") from None
        except LinkError as exc:
            self.link.close()
            raise DeviceError(device, f"bus {self.name}: {exc}") from None
        finally:
            self._mark_end()

    async def send(self, request: bytes, *, device: str) -> None:
        """A frame that gets no answer (DL/T 645 broadcast time sync)."""
        await self._open(device)
        await self._pace()
        self.stats.transactions += 1
        try:
            await self.link.write(request)
        except LinkError as exc:
            self.link.close()
            raise DeviceError(device, f"bus {self.name}: {exc}") from None
        finally:
            self._mark_end()

    async def modbus_read(self, table: Table, address: int, count: int, *, unit: int,
                          device: str, timeout_s: float) -> list[int]:
        request = modbus_rtu.read_request(_READ_FUNCTIONS[table], address, count)
        response = await self.transact(modbus_rtu.frame(unit, request.pdu()),
                                       _rtu_scanner(request, unit), device=device,
                                       timeout_s=timeout_s, what=f"read {table.value} "
                                                             f"{address}+{count}")
        if table.is_bits:
            return [int(b) for b in response.bits]
        return list(response.registers)

    async def modbus_write(self, table: Table, address: int, values: list[int], *,
                           unit: int, device: str, timeout_s: float) -> None:
        self.stats.writes += 1
        if table is Table.COIL:
            request = modbus_rtu.write_request(coil=True, address=address,
                                               values=[bool(v) for v in values])
        else:
            request = modbus_rtu.write_request(coil=False, address=address, values=values)
        await self.transact(modbus_rtu.frame(unit, request.pdu()), _rtu_scanner(request, unit),
                            device=device, timeout_s=timeout_s,
                            what=f"write {table.value} {address}={values}")

    def close(self) -> None:
        self.link.close()


def _rtu_scanner(request: modbus_rtu.Request, unit: int) -> Scanner[modbus_rtu.Response]:
    def scan(buffer: bytes) -> tuple[modbus_rtu.Response | None, int]:
        length = modbus_rtu.response_length(buffer, request)
        if length is None or len(buffer) < length:
            return None, 0
        return modbus_rtu.parse_response(buffer[:length], request, unit=unit), length
    return scan
