"""Fault injection on real simulators (RELIABILITY #18): Modbus exception codes, timeouts
and garbled frames on every wired transport, DL/T 645 and CJ/T 188 error replies and noise.
Each time: the faulty device is marked offline once, nothing it said is stored, the other
device on the bus is read in every slot, and the device comes back online once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from protocols.clock import VirtualClock
from protocols.registermap import load_register_map
from simulators.cjt188_meter import Cjt188Responder, SimulatedWaterMeter
from simulators.dlt645_meter import Dlt645Responder, SimulatedDlt645Meter
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import ProfileMeter
from simulators.serial_bus import RtuResponder, SerialLineServer
from tests.integration.devsim import (
    START,
    advance,
    events,
    flow,
    outbox_records,
    polling,
    power,
    samples,
    slot_ms,
)

pytestmark = pytest.mark.integration

SDM120 = load_register_map("eastron-sdm120")
FAULTY_SLOTS = (1, 2)  # the fault is on in these slots; m2 is retried in 1, 2, then 4
ERRORS = {"exception": "DeviceFaultError", "garble": "GarbledFrameError",
          "silent": "DeviceTimeoutError"}


def two_meters(clock: VirtualClock) -> list[ProfileMeter]:
    return [ProfileMeter(name=f"m{i}", register_map=SDM120, device_id=i, clock=clock,
                         profile=power(i), start=START, initial=10.0) for i in (1, 2)]


def config(bus: dict[str, Any], devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"edge_id": "edge-faults", "site": "school", "buses": [bus], "devices": devices}


def set_fault(device: Any, fault: str, on: bool) -> None:
    if fault == "exception":
        device.exception_code = 6 if on else None  # server device busy
    else:
        setattr(device, fault, on)


async def run_slots(agent: EdgeAgent, clock: VirtualClock, faulty: Any, fault: str,
                    slots: int = 6) -> None:
    async with polling(agent):
        for k in range(slots):
            set_fault(faulty, fault, k in FAULTY_SLOTS)
            await advance(clock, START + 60 * k)


def check(agent: EdgeAgent, healthy: str, faulty: str, error: str, *,
          slots: int = 6) -> None:
    records = outbox_records(agent)
    offline = events(records, "device.offline")
    assert [(e.device, e.ts, e.data["error"]) for e in offline] == [
        (faulty, slot_ms(START + 60), error)]
    assert [(e.device, e.ts) for e in events(records, "device.online")] == [
        (faulty, slot_ms(START + 240))]
    every = {slot_ms(START + 60 * k) for k in range(slots)}
    assert {s.ts for s in samples(records, healthy)} == every
    assert {s.ts for s in samples(records, faulty)} == every - {
        slot_ms(START + 60 * k) for k in (1, 2, 3)}
    assert not events(records, "point.bad_value")


@pytest.mark.parametrize("fault", ["exception", "garble", "silent"])
@pytest.mark.parametrize("transport", ["modbus_tcp", "serial_over_tcp", "serial"])
async def test_modbus_faults(transport: str, fault: str, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    sims = two_meters(clock)
    devices = [{"id": f"m{i}", "driver": "modbus", "bus": "bus", "device_id": i,
                "model": "eastron-sdm120"} for i in (1, 2)]
    error = ERRORS[fault]
    if transport == "serial":
        async with SerialLineServer(RtuResponder(sims), transport="pty") as line:
            bus = {"id": "bus", "transport": "serial", "device": line.path,
                   "baudrate": 115200, "timeout_s": 0.2}
            agent = EdgeAgent.create(parse_edge_config(config(bus, devices)), clock=clock,
                                     base_dir=tmp_path)
            await run_slots(agent, clock, sims[1], fault)
    else:
        framing = "tcp" if transport == "modbus_tcp" else "rtu"
        async with ModbusDeviceServer(sims, framing=framing, clock=clock) as server:
            bus = {"id": "bus", "transport": transport, "host": "127.0.0.1",
                   "port": server.port, "timeout_s": 0.2}
            agent = EdgeAgent.create(parse_edge_config(config(bus, devices)), clock=clock,
                                     base_dir=tmp_path)
            await run_slots(agent, clock, sims[1], fault)
        if transport == "modbus_tcp" and fault == "garble":
            # Modbus TCP has no checksum: pymodbus drops the undecodable answer and the
            # request times out, which is what the edge reports.
            error = "DeviceTimeoutError"
    check(agent, "m1", "m2", error)


@pytest.mark.parametrize("fault", ["error_code", "garble", "silent"])
async def test_dlt645_faults(fault: str, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    good = SimulatedDlt645Meter(address="000000000001", profile=power(1), clock=clock,
                                start=START)
    bad = SimulatedDlt645Meter(address="000000000002", profile=power(2), clock=clock,
                               start=START)
    async with SerialLineServer(Dlt645Responder([good, bad]), transport="tcp") as line:
        bus = {"id": "bus", "transport": "serial_over_tcp", "host": "127.0.0.1",
               "port": line.port, "timeout_s": 0.2}
        devices = [{"id": f"e{i}", "driver": "dlt645", "bus": "bus",
                    "address": f"00000000000{i}"} for i in (1, 2)]
        agent = EdgeAgent.create(parse_edge_config(config(bus, devices)), clock=clock,
                                 base_dir=tmp_path)
        async with polling(agent):
            for k in range(6):
                on = k in FAULTY_SLOTS
                if fault == "error_code":
                    bad.error_code = 0x01 if on else None
                else:
                    setattr(bad, fault, on)
                await advance(clock, START + 60 * k)
    error = {"error_code": "DeviceFaultError", "garble": "GarbledFrameError",
             "silent": "DeviceTimeoutError"}[fault]
    check(agent, "e1", "e2", error)


async def test_dlt645_discovers_the_address_of_a_lone_meter(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    meter = SimulatedDlt645Meter(address="123456789012", profile=power(3), clock=clock,
                                 start=START, initial_kwh=12345.67)
    async with SerialLineServer(Dlt645Responder([meter]), transport="pty") as line:
        bus = {"id": "bus", "transport": "serial", "device": line.path, "baudrate": 2400,
               "parity": "E", "timeout_s": 0.5, "frame_gap_s": 0.001}
        devices = [{"id": "e1", "driver": "dlt645", "bus": "bus", "address": "auto",
                    "points": ["energy_import_kwh", "energy_total_kwh", "power_w",
                               "frequency_hz"]}]
        agent = EdgeAgent.create(parse_edge_config(config(bus, devices)), clock=clock,
                                 base_dir=tmp_path)
        async with polling(agent):
            await advance(clock, START + 60)
        requests = list(line.responder.requests)  # type: ignore[attr-defined]
    records = outbox_records(agent)
    assert requests[0][0] == "AAAAAAAAAAAA"  # one broadcast read-address, then reads
    assert [a for a, _, _ in requests[1:]] == ["123456789012"] * 8
    energy = samples(records, "e1", "energy_import_kwh")
    assert [s.value for s in energy] == [
        pytest.approx(meter.energy_at(START), abs=0.005),
        pytest.approx(meter.energy_at(START + 60), abs=0.005)]
    assert samples(records, "e1", "power_w")[0].unit == "W"


async def test_cjt188_status_bits_and_faults(tmp_path: Path) -> None:
    clock = VirtualClock(START)
    meters = [SimulatedWaterMeter(address=f"0000000000000{i}", profile=flow(i), clock=clock,
                                  start=START, initial_m3=100.0 * i) for i in (1, 2)]
    async with SerialLineServer(Cjt188Responder(meters), transport="tcp") as line:
        bus = {"id": "bus", "transport": "serial_over_tcp", "host": "127.0.0.1",
               "port": line.port, "timeout_s": 0.2}
        devices = [{"id": f"w{i}", "driver": "cjt188", "bus": "bus",
                    "address": f"0000000000000{i}"} for i in (1, 2)]
        agent = EdgeAgent.create(parse_edge_config(config(bus, devices)), clock=clock,
                                 base_dir=tmp_path)
        async with polling(agent):
            for k in range(6):
                meters[1].garble = k == 1
                meters[1].error = k == 2
                meters[0].valve_open = k < 3
                meters[0].battery_low = k >= 3
                await advance(clock, START + 60 * k)
    records = outbox_records(agent)
    offline = events(records, "device.offline")
    assert [(e.device, e.data["error"]) for e in offline] == [("w2", "GarbledFrameError")]
    assert [s.value for s in samples(records, "w1", "valve_open")] == [True] * 3 + [False] * 3
    assert [s.value for s in samples(records, "w1", "battery_low")] == [False] * 3 + [True] * 3
    volumes = [s.value for s in samples(records, "w1", "water_m3")]
    assert volumes == [meters[0].register_volume(START + 60 * k) for k in range(6)]
    assert len(samples(records, "w2", "water_m3")) == 3  # slots 0, and 4, 5 after backoff
