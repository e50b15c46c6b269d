"""Modbus TCP meters: one hub per TCP endpoint owns the client and a lock (Home Assistant's
rule: devices never open connections, and one connection never carries two requests at once).
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.config import ModbusTcpDevice
from edge.errors import DeviceError, DeviceTimeoutError
from protocols.errors import DecodeError
from protocols.registermap import ReadRequest, RegisterMap, Table, plan_reads

log = logging.getLogger(__name__)


class ModbusTcpHub:
    """One connection to one Modbus TCP endpoint (a meter or a serial gateway)."""

    def __init__(self, host: str, port: int, *, timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0,
                                            reconnect_delay=0)
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    async def read(self, request: ReadRequest, *, device_id: int, device: str) -> list[int]:
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout_s * 2):
                    if not self._client.connected:
                        await self._client.connect()
                        if not self._client.connected:
                            raise DeviceError(device, f"cannot connect to {self.name}")
                    if request.table is Table.INPUT:
                        result = await self._client.read_input_registers(
                            request.address, count=request.count, device_id=device_id)
                    else:
                        result = await self._client.read_holding_registers(
                            request.address, count=request.count, device_id=device_id)
            except TimeoutError:
                self._client.close()
                raise DeviceTimeoutError(device, f"no answer from {self.name} within "
                                            f"{self.timeout_s * 2:.1f}s") from None
            except ModbusException as exc:
                self._client.close()
                raise DeviceError(device, f"{self.name}: {exc}") from None
        if result.isError():
            code = getattr(result, "exception_code", "?")
            raise DeviceError(device, f"Modbus exception code {code} reading "
                                      f"{request.table.value} {request.address}+{request.count}")
        registers = list(result.registers)
        if len(registers) < request.count:
            raise DeviceError(device, f"short answer: {len(registers)} of {request.count} "
                                      "registers")
        return registers

    def close(self) -> None:
        self._client.close()


class ModbusTcpMeter:
    """A meter described by a register map, read through its hub."""

    def __init__(self, config: ModbusTcpDevice, hub: ModbusTcpHub) -> None:
        self.config = config
        self.hub = hub
        self.register_map: RegisterMap = config.register_map()
        wanted = set(config.points) if config.points else None
        self.points = tuple(p for p in self.register_map.points
                            if wanted is None or p.name in wanted)
        self.requests = plan_reads(self.points)

    @property
    def id(self) -> str:
        return self.config.id

    async def read(self) -> tuple[dict[str, float], dict[str, str]]:
        """Read every point; returns (values, bad) where bad maps point → reason.

        A point whose registers do not decode (NaN, out of range) is left out and reported,
        never stored as a value. Connection problems raise `DeviceError`.
        """
        values: dict[str, float] = {}
        bad: dict[str, str] = {}
        for request in self.requests:
            registers = await self.hub.read(request, device_id=self.config.device_id,
                                            device=self.id)
            for spec in request.points:
                offset = spec.address - request.address
                try:
                    values[spec.name] = self.register_map.decode(
                        spec, registers[offset : offset + spec.count])
                except DecodeError as exc:
                    bad[spec.name] = exc.reason
        return values, bad
