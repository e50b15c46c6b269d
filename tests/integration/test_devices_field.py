"""Field behaviour found with independent meter emulators (issue 14), on real simulators:
a meter model that lacks one mapped register (exception 02) keeps reporting the rest, and
one silent unit behind a Modbus TCP gateway does not cost the healthy units their
connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from edge.drivers.hubs import ModbusTcpHub
from edge.drivers.modbus import ModbusDriver
from protocols.clock import VirtualClock
from protocols.registermap import load_register_map
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import ProfileMeter
from simulators.serial_bus import RtuResponder, SerialLineServer
from tests.integration.devsim import (
    START,
    advance,
    events,
    outbox_records,
    polling,
    power,
    samples,
    slot_ms,
)

pytestmark = pytest.mark.integration

SDM120 = load_register_map("eastron-sdm120")
POINTS = {p.name for p in SDM120.points}


def meters(clock: VirtualClock) -> list[ProfileMeter]:
    return [ProfileMeter(name=f"m{i}", register_map=SDM120, device_id=i, clock=clock,
                         profile=power(i), start=START, initial=10.0) for i in (1, 2)]


def edge_config(bus: dict[str, Any]) -> dict[str, Any]:
    return {"edge_id": "edge-field", "site": "school", "buses": [bus],
            "devices": [{"id": f"m{i}", "driver": "modbus", "bus": "bus", "device_id": i,
                         "model": "eastron-sdm120"} for i in (1, 2)]}


@pytest.mark.parametrize("transport", ["modbus_tcp", "serial_over_tcp"])
async def test_exception_02_on_one_register_marks_that_point_bad_and_keeps_the_rest(
        transport: str, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    sims = meters(clock)
    sims[1].missing_points = {"power_factor"}  # an SDM120 variant without 0x001E
    framing = "tcp" if transport == "modbus_tcp" else "rtu"
    async with ModbusDeviceServer(sims, framing=framing, clock=clock) as server:
        bus = {"id": "bus", "transport": transport, "host": "127.0.0.1",
               "port": server.port, "timeout_s": 0.5}
        agent = EdgeAgent.create(parse_edge_config(edge_config(bus)), clock=clock,
                                 base_dir=tmp_path)
        driver = agent.drivers["m2"]
        assert isinstance(driver, ModbusDriver)
        async with polling(agent):
            await advance(clock, START)
            first_slot = driver.group.requests
            for k in range(1, 4):
                await advance(clock, START + 60 * k)
            per_slot = (driver.group.requests - first_slot) / 3
    records = outbox_records(agent)
    every = {slot_ms(START + 60 * k) for k in range(4)}
    assert not events(records, "device.offline")
    for point in POINTS - {"power_factor"}:  # every good value of every poll is kept
        assert {s.ts for s in samples(records, "m2", point)} == every, point
    assert not samples(records, "m2", "power_factor")
    bad = events(records, "point.bad_value", "m2")
    assert [(e.data["point"], e.ts) for e in bad] == [("power_factor", slot_ms(START))]
    assert "exception 2" in str(bad[0].data["reason"])
    # The planner learned: the refused request was split once, then the missing register
    # is left out and the rest read without another refusal (2 requests were 1 + 6 alone).
    assert ("m2", "power_factor") in driver.group.dropped
    assert per_slot == len(driver.group.plan({"m2": frozenset(POINTS - {"power_factor"})}))
    assert agent.poll_stats.failures == 0
    # m1 shares the bus and never lost a value.
    assert {s.ts for s in samples(records, "m1", "power_factor")} == every


async def test_exception_02_on_every_register_is_a_device_failure(tmp_path: Path) -> None:
    """A wrong map or unit id refuses every register: the device is offline, not a meter
    with seven bad points."""
    clock = VirtualClock(START)
    sims = meters(clock)
    sims[1].missing_points = set(POINTS)
    async with ModbusDeviceServer(sims, framing="tcp", clock=clock) as server:
        bus = {"id": "bus", "transport": "modbus_tcp", "host": "127.0.0.1",
               "port": server.port, "timeout_s": 0.5}
        agent = EdgeAgent.create(parse_edge_config(edge_config(bus)), clock=clock,
                                 base_dir=tmp_path)
        async with polling(agent):
            await advance(clock, START)
    records = outbox_records(agent)
    assert [(e.device, e.data["error"]) for e in events(records, "device.offline")] == [
        ("m2", "DeviceFaultError")]
    assert not events(records, "point.bad_value", "m2")
    assert samples(records, "m1")


async def test_a_silent_unit_keeps_the_gateway_connection_of_the_others(
        tmp_path: Path) -> None:
    clock = VirtualClock(START)
    sims = meters(clock)
    async with ModbusDeviceServer(sims, framing="tcp", clock=clock) as server:
        bus = {"id": "bus", "transport": "modbus_tcp", "host": "127.0.0.1",
               "port": server.port, "timeout_s": 0.2, "backoff_max_s": 60}
        agent = EdgeAgent.create(parse_edge_config(edge_config(bus)), clock=clock,
                                 base_dir=tmp_path)
        hub = agent.hubs[0]
        assert isinstance(hub, ModbusTcpHub)
        async with polling(agent):
            sims[1].silent = True
            for k in range(5):
                await advance(clock, START + 60 * k)
            sims[1].silent = False
            await advance(clock, START + 300)
    records = outbox_records(agent)
    assert hub.stats.timeouts >= 3  # m2 was asked in several slots and never answered
    assert hub.stats.connects == 1  # ... and m1's connection was never dropped for it
    assert {s.ts for s in samples(records, "m1", "power_w")} == {
        slot_ms(START + 60 * k) for k in range(6)}
    assert [e.device for e in events(records, "device.online")] == ["m2"]


async def test_a_dead_link_is_reopened(tmp_path: Path) -> None:
    """When no unit answers at all, the connection is the suspect: reopened after
    RECONNECT_AFTER_TIMEOUTS timeouts in a row."""
    clock = VirtualClock(START)
    sims = meters(clock)
    async with ModbusDeviceServer(sims, framing="tcp", clock=clock) as server:
        bus = {"id": "bus", "transport": "modbus_tcp", "host": "127.0.0.1",
               "port": server.port, "timeout_s": 0.2, "backoff_max_s": 60}
        agent = EdgeAgent.create(parse_edge_config(edge_config(bus)), clock=clock,
                                 base_dir=tmp_path)
        hub = agent.hubs[0]
        assert isinstance(hub, ModbusTcpHub)
        async with polling(agent):
            for sim in sims:
                sim.silent = True
            for k in range(3):
                await advance(clock, START + 60 * k)
            for sim in sims:
                sim.silent = False
            await advance(clock, START + 240)
    assert hub.stats.connects >= 2


async def test_rtu_exception_02_on_a_local_serial_line(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    sims = meters(clock)
    sims[0].missing_points = {"frequency_hz"}
    async with SerialLineServer(RtuResponder(sims), transport="pty") as line:
        bus = {"id": "bus", "transport": "serial", "device": line.path, "baudrate": 115200,
               "timeout_s": 0.2}
        agent = EdgeAgent.create(parse_edge_config(edge_config(bus)), clock=clock,
                                 base_dir=tmp_path)
        async with polling(agent):
            for k in range(2):
                await advance(clock, START + 60 * k)
    records = outbox_records(agent)
    assert not events(records, "device.offline")
    assert {s.ts for s in samples(records, "m1", "energy_import_kwh")} == {
        slot_ms(START), slot_ms(START + 60)}
    assert [e.data["point"] for e in events(records, "point.bad_value", "m1")] == [
        "frequency_hz"]
