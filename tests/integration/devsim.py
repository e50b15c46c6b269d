"""Shared set-up for the device integration tests: simulators of every device type, and
helpers to run an edge on a virtual clock against them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from central.ingest import Ingestor, MqttOptions, run_ingest
from central.store import Store
from edge.agent import EdgeAgent
from edge.outbox import Outbox
from protocols.clock import VirtualClock
from protocols.registermap import load_register_map
from protocols.sensors import BinGeometry
from protocols.wire import Event, Record, Sample, record_from_dict
from simulators.cjt188_meter import Cjt188Responder, SimulatedWaterMeter
from simulators.dlt645_meter import Dlt645Responder, SimulatedDlt645Meter
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import AcController, AcUnit, PirSensor, ProfileMeter, VrfGateway
from simulators.mqtt_devices import (
    SimulatedBinSensor,
    SimulatedShellyPlug,
    SimulatedTasmotaPlug,
    SimulatedZigbeePir,
)
from simulators.profile import FlowProfile, PowerProfile, ProfileParams
from simulators.serial_bus import RtuResponder, SerialLineServer

BEIJING = timezone(timedelta(hours=8))
# Monday 2 March 2026 10:00 Beijing time: a school morning.
START = datetime(2026, 3, 2, 10, 0, tzinfo=BEIJING).timestamp()
BIN_GEOMETRY = BinGeometry(empty_mm=1200, full_mm=200)


def power(seed: int, base: float = 500.0, peak: float = 3000.0) -> PowerProfile:
    return PowerProfile(ProfileParams(base=base, peak=peak, seed=seed))


def flow(seed: int) -> FlowProfile:
    return FlowProfile(ProfileParams(base=0.05, peak=1.5, seed=seed))


@dataclass
class Sims:
    """Every simulated device of the all-devices edge."""

    clock: VirtualClock
    meters: dict[str, ProfileMeter]
    ac: AcController
    vrf: VrfGateway
    vrf_units: dict[int, AcUnit]
    pir: PirSensor
    dlt645: SimulatedDlt645Meter
    water: SimulatedWaterMeter
    tasmota: SimulatedTasmotaPlug
    shelly: SimulatedShellyPlug
    bin: SimulatedBinSensor
    zpir: SimulatedZigbeePir
    modbus_tcp: ModbusDeviceServer | None = None
    modbus_rtu: ModbusDeviceServer | None = None
    serial: SerialLineServer | None = None
    dlt645_line: SerialLineServer | None = None
    cjt188_line: SerialLineServer | None = None


def build_sims(clock: VirtualClock) -> Sims:
    meters = {
        "sdm120": ProfileMeter(name="sdm120", register_map=load_register_map("eastron-sdm120"),
                               device_id=1, clock=clock, profile=power(1), start=START,
                               initial=1200.0),
        "sdm630": ProfileMeter(name="sdm630", register_map=load_register_map("eastron-sdm630"),
                               device_id=2, clock=clock, profile=power(2, 2000, 15000),
                               start=START, initial=54321.0),
        "ddsu666": ProfileMeter(name="ddsu666", register_map=load_register_map("chint-ddsu666"),
                                device_id=3, clock=clock, profile=power(3), start=START,
                                initial=321.0),
        "adl400": ProfileMeter(name="adl400", register_map=load_register_map("acrel-adl400"),
                               device_id=4, clock=clock, profile=power(4, 1000, 8000),
                               start=START, initial=9876.5),
        "water": ProfileMeter(name="water", register_map=load_register_map(
            "generic-water-modbus"), device_id=5, clock=clock, profile=flow(5), start=START,
            initial=432.1),
    }
    vrf_units = {i: AcUnit(start=START, ambient_c=29.0) for i in range(4)}
    return Sims(
        clock=clock,
        meters=meters,
        ac=AcController(name="ac", register_map=load_register_map("ac-controller-modbus"),
                        device_id=10, clock=clock, unit=AcUnit(start=START, ambient_c=30.0)),
        vrf=VrfGateway(name="vrf", register_map=load_register_map("vrf-gateway-modbus"),
                       device_id=11, clock=clock, units=vrf_units),
        vrf_units=vrf_units,
        pir=PirSensor(name="pir", register_map=load_register_map("pir-modbus"), device_id=20,
                      clock=clock, occupied=True, illuminance_lx=420),
        dlt645=SimulatedDlt645Meter(address="123456789012", profile=power(6), clock=clock,
                                    start=START, initial_kwh=12345.67),
        water=SimulatedWaterMeter(address="00000000000012", profile=flow(7), clock=clock,
                                  start=START, initial_m3=1000.1),
        tasmota=SimulatedTasmotaPlug(topic="plug_301", clock=clock, load_w=120.0,
                                     tele_period_s=None),
        shelly=SimulatedShellyPlug(prefix="shellyplusplugs-a8032ab12345", clock=clock,
                                   load_w=45.0),
        bin=SimulatedBinSensor(topic="application/bins/device/a84041000181c2d5/event/up",
                               dev_eui="a84041000181c2d5", clock=clock,
                               geometry=BIN_GEOMETRY, fill_pct=35.0, period_s=60.0,
                               phase_s=-10.0),
        zpir=SimulatedZigbeePir(topic="zigbee2mqtt/room-301-pir", clock=clock, occupied=True,
                                period_s=60.0, phase_s=-10.0),
    )


@contextlib.asynccontextmanager
async def serving_wired(sims: Sims) -> AsyncIterator[Sims]:
    """The wired simulators on loopback: Modbus TCP, RTU over TCP, RTU on a pty, and a
    DL/T 645 and a CJ/T 188 line behind serial servers."""
    async with contextlib.AsyncExitStack() as stack:
        sims.modbus_tcp = await stack.enter_async_context(
            ModbusDeviceServer(sims.meters.values(), framing="tcp"))
        sims.modbus_rtu = await stack.enter_async_context(
            ModbusDeviceServer([sims.ac, sims.vrf], framing="rtu"))
        sims.serial = await stack.enter_async_context(
            SerialLineServer(RtuResponder([sims.pir]), transport="pty"))
        sims.dlt645_line = await stack.enter_async_context(
            SerialLineServer(Dlt645Responder([sims.dlt645]), transport="tcp"))
        sims.cjt188_line = await stack.enter_async_context(
            SerialLineServer(Cjt188Responder([sims.water]), transport="tcp"))
        yield sims


@contextlib.asynccontextmanager
async def serving_mqtt(sims: Sims, broker_host: str, broker_port: int) -> AsyncIterator[Sims]:
    """The MQTT devices on the broker. Start them after the edge is subscribed: bin and PIR
    messages are not retained (as with ChirpStack and zigbee2mqtt defaults)."""
    async with contextlib.AsyncExitStack() as stack:
        for device in (sims.tasmota, sims.shelly, sims.bin, sims.zpir):
            await stack.enter_async_context(device.running(broker_host, broker_port))
        yield sims


def all_devices_config(sims: Sims, *, broker_host: str, broker_port: int,
                       poll_interval_s: float = 60.0) -> dict[str, Any]:
    """ONE edge config with one device of every type (and every transport)."""
    assert sims.modbus_tcp is not None
    assert sims.modbus_rtu is not None
    assert sims.serial is not None
    assert sims.dlt645_line is not None
    assert sims.cjt188_line is not None
    poll = {"poll_interval_s": poll_interval_s}
    return {
        "edge_id": "edge-dev", "site": "school",
        "interval_s": 60,
        "mqtt": {"host": broker_host, "port": broker_port},
        "buses": [
            {"id": "meters", "transport": "modbus_tcp", "host": "127.0.0.1",
             "port": sims.modbus_tcp.port, "timeout_s": 0.5},
            {"id": "ac-gw", "transport": "serial_over_tcp", "host": "127.0.0.1",
             "port": sims.modbus_rtu.port, "timeout_s": 0.5, "frame_gap_s": 0.002},
            {"id": "rs485", "transport": "serial", "device": sims.serial.path,
             "baudrate": 115200, "timeout_s": 0.5},
            {"id": "dlt645-line", "transport": "serial_over_tcp", "host": "127.0.0.1",
             "port": sims.dlt645_line.port, "timeout_s": 0.5, "frame_gap_s": 0.002},
            {"id": "water-line", "transport": "serial_over_tcp", "host": "127.0.0.1",
             "port": sims.cjt188_line.port, "timeout_s": 0.5, "frame_gap_s": 0.002},
            {"id": "plugs", "transport": "mqtt", "host": broker_host, "port": broker_port,
             "timeout_s": 1.0},
        ],
        "devices": [
            {"id": "m-sdm120", "driver": "modbus", "bus": "meters", "device_id": 1,
             "model": "eastron-sdm120", **poll},
            {"id": "m-sdm630", "driver": "modbus", "bus": "meters", "device_id": 2,
             "model": "eastron-sdm630", **poll},
            {"id": "m-ddsu666", "driver": "modbus", "bus": "meters", "device_id": 3,
             "model": "chint-ddsu666", **poll},
            {"id": "m-adl400", "driver": "modbus", "bus": "meters", "device_id": 4,
             "model": "acrel-adl400", **poll},
            {"id": "w-modbus", "driver": "modbus", "bus": "meters", "device_id": 5,
             "model": "generic-water-modbus", **poll},
            {"id": "ac-301", "driver": "modbus", "bus": "ac-gw", "device_id": 10,
             "model": "ac-controller-modbus", "zone": "301", **poll},
            {"id": "vrf-302", "driver": "modbus", "bus": "ac-gw", "device_id": 11,
             "model": "vrf-gateway-modbus", "unit": 0, "zone": "302", **poll},
            {"id": "vrf-303", "driver": "modbus", "bus": "ac-gw", "device_id": 11,
             "model": "vrf-gateway-modbus", "unit": 1, "zone": "303", **poll},
            {"id": "pir-301", "driver": "modbus", "bus": "rs485", "device_id": 20,
             "model": "pir-modbus", **poll},
            {"id": "m-dlt645", "driver": "dlt645", "bus": "dlt645-line",
             "address": "123456789012", **poll},
            {"id": "w-cjt188", "driver": "cjt188", "bus": "water-line",
             "address": "00000000000012", **poll},
            {"id": "plug-tasmota", "driver": "tasmota", "bus": "plugs", "topic": "plug_301",
             **poll},
            {"id": "plug-shelly", "driver": "shelly", "bus": "plugs",
             "prefix": "shellyplusplugs-a8032ab12345", **poll},
            {"id": "bin-1", "driver": "bin_fill", "bus": "plugs", "topic": sims.bin.topic,
             "category": "可回收物", "empty_mm": 1200, "full_mm": 200,
             "stale_after_s": 600, **poll},
            {"id": "pir-302", "driver": "occupancy", "bus": "plugs",
             "topic": "zigbee2mqtt/room-301-pir", "stale_after_s": 600, **poll},
        ],
    }


@contextlib.asynccontextmanager
async def central(store: Store, clock: VirtualClock, host: str,
                  port: int) -> AsyncIterator[Ingestor]:
    """The central's ingest (store, then ack) against the broker."""
    ingestor = Ingestor(store, clock)
    subscribed = asyncio.Event()
    task = asyncio.create_task(run_ingest(ingestor, MqttOptions(host=host, port=port,
                                                                client_id="central-test"),
                                          subscribed=subscribed))
    try:
        async with asyncio.timeout(10):
            await subscribed.wait()
        yield ingestor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    """The agent's TaskGroup in a task; returns once every poller has joined the clock."""
    task = asyncio.create_task(agent.run(), name="edge")
    try:
        async with asyncio.timeout(10):
            await agent.wait_started()
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for _ in range(3):
            await asyncio.sleep(0)


async def advance(clock: VirtualClock, until: float) -> None:
    """Run simulated time up to `until` and wait until every poller is asleep again."""
    await clock.run(until=until)
    await clock.settled()


async def drained(agent: EdgeAgent, within_s: float = 20.0) -> None:
    async with asyncio.timeout(within_s):
        while agent.outbox.acked_upto < agent.outbox.last_seq:
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def polling(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    """Only the agent's bus schedulers (and device-broker hubs), no uplink: tests read what
    they produced from the outbox."""
    tasks = [asyncio.create_task(hub.run(), name=f"hub {hub.name}") for hub in agent.hubs]
    tasks += [asyncio.create_task(s.run(), name=f"poll {s.name}") for s in agent.schedulers]
    try:
        async with asyncio.timeout(10):
            await agent.wait_started()
        yield agent
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for hub in agent.hubs:
            hub.close()
        agent.outbox.close()
        for _ in range(3):  # let the closed transports' callbacks run before the loop ends
            await asyncio.sleep(0)


def outbox_records(agent: EdgeAgent) -> list[Record]:
    """Every record the agent appended (its outbox is reopened if already closed)."""
    try:
        rows = agent.outbox.read_after(0, 1_000_000)
    except sqlite3.ProgrammingError:
        reopened = Outbox(agent.outbox.path, edge_id=agent.config.edge_id)
        try:
            rows = reopened.read_after(0, 1_000_000)
        finally:
            reopened.close()
    return [record_from_dict(json.loads(row.body)) for row in rows]


def events(records: list[Record], name: str, device: str | None = None) -> list[Event]:
    return [r for r in records if isinstance(r, Event) and r.name == name
            and (device is None or r.device == device)]


def samples(records: list[Record], device: str, point: str | None = None) -> list[Sample]:
    return [r for r in records if isinstance(r, Sample) and r.device == device
            and (point is None or r.point == point)]


def slot_ms(t: float) -> int:
    return round(t * 1000)


async def until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """Wait (real time) for something that travels outside simulated time, such as an MQTT
    message on its way to the edge."""
    async with asyncio.timeout(within_s):
        while not condition():
            await asyncio.sleep(0.005)
