"""The simulated meters behind a real Modbus TCP server, read with a real pymodbus client."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import struct
from collections.abc import AsyncIterator

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException

from protocols.clock import VirtualClock
from protocols.registermap import Table, plan_reads, shortest_float32
from simulators.meters import SimulatedMeter
from simulators.modbus_server import ModbusMeterServer
from simulators.profile import local_day_start
from simulators.scenario import build_meters, load_scenario
from tests.conftest import free_port

pytestmark = pytest.mark.integration

START = local_day_start(dt.date(2026, 3, 2)) + 9 * 3600 + 17.5  # Monday morning, mid-minute
ELEC, WATER = 1, 2  # device ids of the school's teaching-building meters


def float32(value: float) -> float:
    """The value as a float32 register carries it, in its shortest decimal (as decoded)."""
    return float(shortest_float32(struct.unpack(">f", struct.pack(">f", value))[0]))


async def advance(clock: VirtualClock, seconds: float) -> None:
    """Move virtual time as a participant would: sleep while the clock runs up to then."""
    target = clock.now() + seconds
    await asyncio.gather(clock.run(until=target), clock.sleep_until(target))


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def meters(clock: VirtualClock) -> list[SimulatedMeter]:
    return build_meters(load_scenario("school"), clock, START)


@pytest.fixture
async def server(meters: list[SimulatedMeter]) -> AsyncIterator[ModbusMeterServer]:
    async with ModbusMeterServer(meters, port=free_port()) as running:
        yield running


@pytest.fixture
async def client(server: ModbusMeterServer) -> AsyncIterator[AsyncModbusTcpClient]:
    modbus = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=0.5, retries=0)
    assert await modbus.connect()
    try:
        yield modbus
    finally:
        modbus.close()


async def read_point(client: AsyncModbusTcpClient, meter: SimulatedMeter, name: str) -> float:
    spec = meter.register_map.point(name)
    read = (
        client.read_input_registers if spec.table is Table.INPUT else client.read_holding_registers
    )
    response = await read(spec.address, count=spec.count, device_id=meter.device_id)
    assert not response.isError(), response
    return meter.register_map.decode(spec, list(response.registers))


async def test_cumulative_equals_initial_plus_consumed(
    server: ModbusMeterServer, client: AsyncModbusTcpClient, clock: VirtualClock
) -> None:
    elec, water = server.meters[ELEC], server.meters[WATER]
    await advance(clock, 2 * 3600 + 31.25)
    now = clock.now()
    kwh = await read_point(client, elec, "energy_import_kwh")
    assert kwh == float32(elec.initial + elec.consumed(START, now))
    assert kwh > elec.initial
    m3 = await read_point(client, water, "water_m3")
    assert m3 == pytest.approx(water.initial + water.consumed(START, now), abs=0.0005 + 1e-9)
    assert elec.read_log[-1].t == now
    assert elec.read_log[-1].cumulative == kwh


async def test_value_follows_the_clock(
    server: ModbusMeterServer, client: AsyncModbusTcpClient, clock: VirtualClock
) -> None:
    elec = server.meters[ELEC]
    t0 = clock.now()
    first = await read_point(client, elec, "energy_import_kwh")
    assert await read_point(client, elec, "energy_import_kwh") == first  # time stood still
    await advance(clock, 900)
    second = await read_point(client, elec, "energy_import_kwh")
    resolution = 2 * 2.0**-10  # float32 spacing around 12,000 kWh, once per reading
    assert second - first == pytest.approx(elec.consumed(t0, clock.now()), abs=resolution)
    assert second > first


async def test_planned_block_reads_decode_every_point(
    server: ModbusMeterServer, client: AsyncModbusTcpClient, clock: VirtualClock
) -> None:
    """The edge merges nearby points into one read; holes between points read as 0."""
    elec = server.meters[ELEC]
    expected = elec.values_at(clock.now())
    for request in plan_reads(elec.register_map.points):
        assert request.table is Table.INPUT
        response = await client.read_input_registers(
            request.address, count=request.count, device_id=ELEC
        )
        assert not response.isError(), (request, response)
        for spec in request.points:
            offset = spec.address - request.address
            raw = list(response.registers[offset : offset + spec.count])
            decoded = elec.register_map.decode(spec, raw)
            assert decoded == float32(expected[spec.name]), spec.name


async def test_unknown_address_gives_illegal_data_address(
    server: ModbusMeterServer, client: AsyncModbusTcpClient
) -> None:
    response = await client.read_input_registers(0x0100, count=2, device_id=ELEC)
    assert response.isError()
    assert response.exception_code == 2
    # FC03 on a meter whose values are input registers is the classic mapping mistake.
    response = await client.read_holding_registers(0x0048, count=2, device_id=ELEC)
    assert response.exception_code == 2
    # The connection is still usable afterwards.
    assert await read_point(client, server.meters[ELEC], "power_w") > 0


async def test_writes_and_coils_are_refused(
    server: ModbusMeterServer, client: AsyncModbusTcpClient
) -> None:
    response = await client.write_register(0x0000, 5, device_id=WATER)
    assert response.exception_code == 2
    response = await client.read_coils(0, count=8, device_id=ELEC)
    assert response.exception_code == 1


async def test_exception_fault_hook(
    server: ModbusMeterServer, client: AsyncModbusTcpClient
) -> None:
    meter = server.meters[ELEC]
    meter.exception_code = 6  # server device busy
    response = await client.read_input_registers(0x0048, count=2, device_id=ELEC)
    assert response.exception_code == 6
    meter.exception_code = None
    assert await read_point(client, meter, "energy_import_kwh") > 0


async def test_silent_meter_and_unknown_device_do_not_answer(
    server: ModbusMeterServer, meters: list[SimulatedMeter]
) -> None:
    server.meters[WATER].silent = True
    for device_id in (WATER, 99):
        modbus = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=0.2, retries=0)
        assert await modbus.connect()
        try:
            with pytest.raises(ModbusIOException):
                await modbus.read_holding_registers(0, count=2, device_id=device_id)
        finally:
            modbus.close()
    assert server.meters[WATER].reads == 0


async def test_port_zero_binds_a_free_port(meters: list[SimulatedMeter]) -> None:
    async with ModbusMeterServer(meters) as running:
        assert running.port > 0
        modbus = AsyncModbusTcpClient("127.0.0.1", port=running.port, timeout=0.5, retries=0)
        assert await modbus.connect()
        try:
            assert await read_point(modbus, meters[0], "energy_import_kwh") > 0
        finally:
            modbus.close()


async def test_stop_frees_the_port_and_leaves_no_tasks(meters: list[SimulatedMeter]) -> None:
    before = asyncio.all_tasks()
    server = ModbusMeterServer(meters, port=free_port())
    await server.start()
    port = server.port
    modbus = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
    assert await modbus.connect()
    assert await read_point(modbus, meters[0], "energy_import_kwh") > 0
    modbus.close()
    await server.stop()
    await server.stop()  # idempotent
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    assert asyncio.all_tasks() - before == set()
    with socket.socket() as probe:  # the listening socket is gone: the port can be bound again
        probe.bind(("127.0.0.1", port))
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 1):
        pass


async def test_stop_closes_connected_clients_and_the_port_can_be_reused(
    meters: list[SimulatedMeter],
) -> None:
    server = ModbusMeterServer(meters, port=free_port())
    await server.start()
    port = server.port
    modbus = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.3, retries=0, reconnect_delay=0)
    assert await modbus.connect()
    try:
        await server.stop()
        assert not modbus.connected  # the server hung up on it
        with pytest.raises(ModbusException):
            await modbus.read_input_registers(0x48, count=2, device_id=ELEC)
    finally:
        modbus.close()
    # The server closed first, so its side of that connection sits in TIME_WAIT; a new
    # listener (SO_REUSEADDR, as every server sets) must still get the port straight away.
    async with ModbusMeterServer(meters, port=port) as again:
        modbus = AsyncModbusTcpClient("127.0.0.1", port=again.port, timeout=0.5, retries=0)
        assert await modbus.connect()
        try:
            assert await read_point(modbus, meters[0], "energy_import_kwh") > 0
        finally:
            modbus.close()


def test_duplicate_device_ids_are_refused(meters: list[SimulatedMeter]) -> None:
    with pytest.raises(ValueError, match="device_id 1 is used by both"):
        ModbusMeterServer([meters[0], meters[0]])
