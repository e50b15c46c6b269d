"""A real Modbus TCP server whose registers are computed from meter models on every read.

Several `SimulatedMeter`s share one port at different device ids, like RS-485 meters behind
one serial-to-Ethernet gateway. Every FC03/FC04 request is answered from the meter model at
`meter.clock.now()` *at the moment of the read*, so with a `VirtualClock` the edge reads
exactly the simulated instant it polled at, and the ground truth (`SimulatedMeter.consumed`)
matches what went over the wire to the register's resolution.

How dynamic reads are done with pymodbus 3.16.1, and why:

- The 3.16 datastore is `SimDevice`/`SimData`; `ModbusServerContext` and
  `ModbusDeviceContext` still exist but log a deprecation and are gone in v4.
- `SimDevice(action=...)` is the documented hook: pymodbus awaits the action with
  (function code, block start, address, count, the block's register list, values to
  write) before it slices the answer out of that list, and an `ExcCodes` returned by the
  action becomes the exception response. Our action validates the request against the
  meter's `RegisterMap`, computes the registers at `clock.now()` and writes them into the
  list; nothing is awaited between that write and pymodbus's slice, so concurrent
  connections cannot interleave.
- Each device therefore gets one *shared* scratch block over the whole address space
  (0–65535, a few ms to build): pymodbus's own address checks never fire, and every
  decision (illegal address → exception 2, holes between points per the meter's
  `UnmappedRegisters` policy, coils → exception 1, writes → exception 2, fault hooks) is
  made in one place from the register map, the single source of truth.
- A silent meter raises `NoSuchIdException` from the action; with
  `ignore_missing_devices=True` pymodbus then sends nothing, exactly like a dead device on
  a bus (the client times out). A catch-all device at id 0 does the same for ids that are
  not configured, instead of pymodbus's default of logging an error and answering 0x04.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusBaseServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from protocols.registermap import Table
from simulators.errors import IllegalAddressError
from simulators.meters import SimulatedMeter

_READ_TABLES = {3: Table.HOLDING, 4: Table.INPUT}
_ADDRESS_SPACE = 65536


async def _shutdown(server: ModbusTcpServer) -> None:
    await server.shutdown()  # type: ignore[no-untyped-call]  # untyped in pymodbus 3.16


async def stop_server(server: ModbusTcpServer) -> None:
    """Close a pymodbus server's listener and every client connection, leaving no socket
    or global reference behind (shared by every simulator that serves Modbus)."""
    listener = server.transport
    await _shutdown(server)
    if ModbusBaseServer.active_server is server:
        # pymodbus keeps the last server in a class attribute for ServerStop(); drop it.
        ModbusBaseServer.active_server = None
    if isinstance(listener, asyncio.Server):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(listener.wait_closed(), timeout=5.0)
    # Let the transports' close callbacks run so the sockets are really released.
    for _ in range(3):
        await asyncio.sleep(0)


def _scratch_block() -> list[SimData]:
    return [SimData(0, count=_ADDRESS_SPACE, values=0, datatype=DataType.REGISTERS)]


class _MeterResponder:
    """The `SimDevice` action of one meter: answer a request from the model at now()."""

    def __init__(self, meter: SimulatedMeter) -> None:
        self.meter = meter

    async def on_access(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        meter = self.meter
        if meter.silent:
            raise NoSuchIdException(f"device {meter.device_id} ({meter.meter_id}) is silent")
        if meter.exception_code is not None:
            return ExcCodes(meter.exception_code)
        table = _READ_TABLES.get(function_code)
        if table is None:
            # Meters have no coils or discrete inputs; measurement registers are read-only.
            return ExcCodes.ILLEGAL_ADDRESS if set_values is not None else ExcCodes.ILLEGAL_FUNCTION
        if set_values is not None:
            return ExcCodes.ILLEGAL_ADDRESS
        try:
            values = meter.registers(table, address, count, meter.clock.now())
        except IllegalAddressError:
            return ExcCodes.ILLEGAL_ADDRESS
        offset = address - start_address
        registers[offset : offset + count] = values
        return None


async def _absent_device(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    raise NoSuchIdException("no simulated meter at this device id")


class ModbusMeterServer:
    """Modbus TCP on 127.0.0.1 serving simulated meters by device id.

    Use as `async with ModbusMeterServer(meters) as server: ... server.port`, or call
    `start()` / `stop()`. `port=0` (the default) binds a free port; `port` tells which.
    """

    def __init__(
        self, meters: Iterable[SimulatedMeter], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._meters: dict[int, SimulatedMeter] = {}
        for meter in meters:
            if meter.device_id in self._meters:
                other = self._meters[meter.device_id]
                raise ValueError(
                    f"device_id {meter.device_id} is used by both {other.meter_id!r} "
                    f"and {meter.meter_id!r}"
                )
            self._meters[meter.device_id] = meter
        if not self._meters:
            raise ValueError("a Modbus server needs at least one meter")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0–65535, got {port!r}")
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: ModbusTcpServer | None = None

    @property
    def meters(self) -> dict[int, SimulatedMeter]:
        """Meters by device id."""
        return dict(self._meters)

    @property
    def port(self) -> int:
        """The bound TCP port; only valid while running."""
        if self._port is None:
            raise RuntimeError("the Modbus server is not running")
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    def _devices(self) -> list[SimDevice]:
        devices = [SimDevice(id=0, simdata=_scratch_block(), action=_absent_device)]
        for device_id, meter in sorted(self._meters.items()):
            responder = _MeterResponder(meter)
            devices.append(
                SimDevice(id=device_id, simdata=_scratch_block(), action=responder.on_access)
            )
        return devices

    async def start(self) -> None:
        """Bind and start serving; returns once the port accepts connections."""
        if self._server is not None:
            raise RuntimeError("the Modbus server is already running")
        server = ModbusTcpServer(
            self._devices(),
            address=(self.host, self._requested_port),
            ignore_missing_devices=True,
        )
        try:
            await server.serve_forever(background=True)
        except BaseException:
            await _shutdown(server)
            raise
        listener = server.transport
        sockets = getattr(listener, "sockets", None) or ()
        if not sockets:
            await _shutdown(server)
            raise RuntimeError(f"Modbus server on {self.host}:{self._requested_port} has no socket")
        self._port = int(sockets[0].getsockname()[1])
        self._server = server

    async def stop(self) -> None:
        """Close the listener and every client connection; idempotent."""
        server, self._server = self._server, None
        self._port = None
        if server is None:
            return
        await stop_server(server)

    async def __aenter__(self) -> ModbusMeterServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
