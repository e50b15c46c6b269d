"""A real pymodbus server on loopback for simulated Modbus devices of every kind, with
Modbus TCP or RTU-over-TCP framing (a transparent serial server in front of an RS-485 line).

Like `modbus_server.py` (which serves the demo's meters), every request is answered from the
device model at the moment of the read, through pymodbus 3.16's `SimDevice(action=...)`
hook. Here the four tables are separate blocks (pymodbus "non-shared" mode), so coils and
discrete inputs are addressed bit by bit as on real devices; the action computes the
answer from the device and writes it into pymodbus's block just before pymodbus slices it.

Faults are injected where they happen on real buses: a silent device raises
`NoSuchIdException` (pymodbus then sends nothing and the client times out), an exception
code is returned from the action, `delay_s` sleeps in the action (a slow bridge), and
`garble` corrupts the outgoing bytes in pymodbus's `trace_packet` hook (a flipped CRC byte
for RTU framing, an unparsable function code for TCP framing). Every request is appended to
`requests` (bounded) in the order the server saw it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from protocols.registermap import Table
from simulators.errors import IllegalAddressError, IllegalValueError
from simulators.meters import TimeSource
from simulators.modbus_devices import ModbusSlave
from simulators.modbus_server import stop_server

_TABLES = {1: Table.COIL, 2: Table.DISCRETE, 3: Table.HOLDING, 4: Table.INPUT,
           5: Table.COIL, 15: Table.COIL, 6: Table.HOLDING, 16: Table.HOLDING}


@dataclass(frozen=True, slots=True)
class Request:
    device_id: int
    function: int
    address: int
    count: int
    t: float = 0.0  # the server clock's time when it arrived (0 without a clock)

    @property
    def is_write(self) -> bool:
        return self.function in (5, 6, 15, 16)


def _blocks() -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """Coils, discrete inputs, holding and input registers over the whole address space,
    so pymodbus's own address checks never fire and every decision is the device's."""
    def bits() -> list[SimData]:
        # One entry of 65536 bits (`count` would multiply them once more in pymodbus).
        return [SimData(0, values=[False] * 65536, datatype=DataType.BITS)]

    def registers() -> list[SimData]:
        return [SimData(0, count=65536, values=0, datatype=DataType.REGISTERS)]

    return bits(), bits(), registers(), registers()


class _Responder:
    def __init__(self, device: ModbusSlave, server: ModbusDeviceServer) -> None:
        self.device = device
        self.server = server

    async def on_access(self, function_code: int, start_address: int, address: int,
                        count: int, registers: list[int],
                        set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        device = self.device
        table = _TABLES.get(function_code)
        writing = set_values is not None and function_code in (5, 6, 15, 16)
        n = len(set_values) if writing and set_values is not None else count
        if writing or function_code not in (5, 6, 15, 16):  # not pymodbus's own read-back
            self.server.requests.append(Request(device.device_id, function_code, address, n,
                                                self.server.now()))
        if device.silent:
            raise NoSuchIdException(f"device {device.device_id} is silent")
        if device.delay_s > 0:
            await asyncio.sleep(device.delay_s)
        if device.exception_code is not None:
            return ExcCodes(device.exception_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        try:
            if writing:
                assert set_values is not None
                device.write(table, address, [int(v) for v in set_values])
                return None
            if table.is_bits:
                # pymodbus slices bit `address % 16` onwards of `count` registers starting
                # at register `address // 16`: fill all those bits from the device.
                first = address - address % 16
                bits = device.read(table, first, count * 16)
                offset = address // 16 - start_address
                registers[offset : offset + count] = SimUtils.bitsToRegisters(
                    [bool(b) for b in bits])
                return None
            values = device.read(table, address, count)
        except IllegalAddressError:
            return ExcCodes.ILLEGAL_ADDRESS
        except IllegalValueError:
            return ExcCodes.ILLEGAL_VALUE
        offset = address - start_address
        registers[offset : offset + count] = values
        return None


async def _absent(function_code: int, start_address: int, address: int, count: int,
                  registers: list[int], set_values: list[int] | list[bool] | None
                  ) -> ExcCodes | None:
    raise NoSuchIdException("no simulated device at this id")


class ModbusDeviceServer:
    """`async with ModbusDeviceServer(devices, framing="rtu") as server: server.port`."""

    def __init__(self, devices: Iterable[ModbusSlave], *, framing: str = "tcp",
                 host: str = "127.0.0.1", port: int = 0, log_size: int = 10_000,
                 clock: TimeSource | None = None) -> None:
        if framing not in ("tcp", "rtu"):
            raise ValueError(f"framing must be tcp or rtu, got {framing!r}")
        self.devices: dict[int, ModbusSlave] = {}
        for device in devices:
            if device.device_id in self.devices:
                raise ValueError(f"device_id {device.device_id} used twice")
            self.devices[device.device_id] = device
        if not self.devices:
            raise ValueError("a Modbus server needs at least one device")
        self.framing = framing
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: ModbusTcpServer | None = None
        self.requests: collections.deque[Request] = collections.deque(maxlen=log_size)
        self.clock = clock

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else 0.0

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Modbus server is not running")
        return self._port

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending or len(data) < 4:
            return data
        unit = data[0] if self.framing == "rtu" else (data[6] if len(data) > 7 else -1)
        device = self.devices.get(unit)
        if device is None or not device.garble:
            return data
        if self.framing == "rtu":
            return data[:-1] + bytes([data[-1] ^ 0xA5])  # CRC no longer matches
        return data[:7] + b"\x63" + data[8:]  # a function code nobody asked for

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("already running")
        sims = [SimDevice(id=0, simdata=_blocks(), action=_absent)]
        for device_id, device in sorted(self.devices.items()):
            responder = _Responder(device, self)
            sims.append(SimDevice(id=device_id, simdata=_blocks(), action=responder.on_access))
        framer = FramerType.RTU if self.framing == "rtu" else FramerType.SOCKET
        server = ModbusTcpServer(sims, framer=framer, address=(self.host, self._requested_port),
                                 ignore_missing_devices=True, trace_packet=self._trace)
        await server.serve_forever(background=True)
        sockets = getattr(server.transport, "sockets", None) or ()
        if not sockets:
            await server.shutdown()  # type: ignore[no-untyped-call]
            raise RuntimeError("Modbus server has no socket")
        self._port = int(sockets[0].getsockname()[1])
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        self._port = None
        if server is None:
            return
        await stop_server(server)

    async def __aenter__(self) -> ModbusDeviceServer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
