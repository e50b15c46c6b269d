"""Plugs and sensors over a real Mosquitto, against firmware imitations: absolute writes
read back, revert, last wills, RPC errors, silent devices, telemetry-only Tasmota, bin
readings out of range and garbled uplinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from edge.errors import DeviceTimeoutError
from protocols.clock import VirtualClock
from simulators.mqtt_devices import (
    SimulatedBinSensor,
    SimulatedShellyPlug,
    SimulatedTasmotaPlug,
)
from tests.conftest import Broker
from tests.integration.devsim import (
    BIN_GEOMETRY,
    START,
    advance,
    events,
    outbox_records,
    polling,
    samples,
    slot_ms,
    until,
)

pytestmark = pytest.mark.integration


def config(broker: Broker, devices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"edge_id": "edge-mqtt", "site": "school",
            "buses": [{"id": "lan", "transport": "mqtt", "host": broker.host,
                       "port": broker.port, "timeout_s": 0.5}],
            "devices": devices}


async def publish(broker: Broker, topic: str, payload: bytes, *, retain: bool = False) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="test-pub") as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def test_plugs_switch_absolutely_and_read_back(mosquitto: Broker, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    tasmota = SimulatedTasmotaPlug(topic="plug_a", clock=clock, load_w=100.0, on=True,
                                   tele_period_s=None)
    shelly = SimulatedShellyPlug(prefix="shellyplug-b", clock=clock, load_w=50.0, on=True)
    devices = [{"id": "pa", "driver": "tasmota", "bus": "lan", "topic": "plug_a",
                "revert_on": True, "poll_interval_s": 600},
               {"id": "pb", "driver": "shelly", "bus": "lan", "prefix": "shellyplug-b",
                "poll_interval_s": 600}]
    agent = EdgeAgent.create(parse_edge_config(config(mosquitto, devices)), clock=clock,
                             base_dir=tmp_path)
    async with tasmota.running(mosquitto.host, mosquitto.port), \
            shelly.running(mosquitto.host, mosquitto.port), polling(agent):
        await advance(clock, START + 60)  # polled at 10:00, written at 10:01
        off_a = await agent.write("pa", "on", False)
        off_b = await agent.write("pb", "on", False)
        await advance(clock, START + 3600)
        back = await agent.revert("pa")
        await advance(clock, START + 4200)
    records = outbox_records(agent)
    assert (off_a.ok, off_a.read_back, off_b.ok, off_b.read_back) == (True, False, True, False)
    assert [(r.point, r.requested, r.ok) for r in back] == [("on", True, True)]
    assert "POWER OFF" in tasmota.commands
    assert "POWER TOGGLE" not in tasmota.commands
    assert shelly.calls.count("Switch.Set") == 1
    # Energy stops while off: 100 W for the first minute, then 0 until the revert.
    energy = {s.ts: s.value for s in samples(records, "pa", "energy_import_kwh")}
    assert energy[slot_ms(START + 3600)] == pytest.approx(100 * 60 / 3.6e6, abs=0.0005)
    shelly_energy = [s.value for s in samples(records, "pb", "energy_import_kwh")]
    assert shelly_energy[-1] == pytest.approx(50 * 60 / 3.6e6, abs=1e-6)  # Wh → kWh
    assert [s.value for s in samples(records, "pa", "on")][-1] is True
    writes = events(records, "actuator.write")
    assert [(e.device, e.data["value"], e.data["source"]) for e in writes] == [
        ("pa", False, "api"), ("pb", False, "api"), ("pa", True, "revert")]


async def test_last_will_rpc_errors_and_silence(mosquitto: Broker, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    tasmota = SimulatedTasmotaPlug(topic="plug_c", clock=clock, tele_period_s=None)
    shelly = SimulatedShellyPlug(prefix="shellyplug-d", clock=clock)
    devices = [{"id": "pc", "driver": "tasmota", "bus": "lan", "topic": "plug_c"},
               {"id": "pd", "driver": "shelly", "bus": "lan", "prefix": "shellyplug-d"},
               {"id": "pe", "driver": "shelly", "bus": "lan", "prefix": "shellyplug-d",
                "switch": 1}]  # a second switch the plug does not have: RPC error -103
    agent = EdgeAgent.create(parse_edge_config(config(mosquitto, devices)), clock=clock,
                             base_dir=tmp_path)
    async with tasmota.running(mosquitto.host, mosquitto.port), \
            shelly.running(mosquitto.host, mosquitto.port), polling(agent):
        await advance(clock, START)
        # The broker publishes the plug's will when its connection dies (done by hand here).
        await publish(mosquitto, "tele/plug_c/LWT", b"Offline", retain=True)
        await until(lambda: agent.drivers["pc"].online is False)  # type: ignore[attr-defined]
        shelly.silent = True
        before = tasmota.requests
        await advance(clock, START + 60)
        assert tasmota.requests == before  # offline by will: no command was even sent
        with pytest.raises(DeviceTimeoutError):
            await agent.write("pd", "on", False)
        await publish(mosquitto, "tele/plug_c/LWT", b"Online", retain=True)
        await until(lambda: agent.drivers["pc"].online is True)  # type: ignore[attr-defined]
        shelly.silent = False
        await advance(clock, START + 300)
    records = outbox_records(agent)
    offline = {(e.device, e.data["error"]) for e in events(records, "device.offline")}
    assert offline == {("pc", "DeviceError"), ("pd", "DeviceTimeoutError"),
                       ("pe", "DeviceFaultError")}
    assert {e.device for e in events(records, "device.online")} == {"pc", "pd"}
    assert len(events(records, "actuator.write_failed")) == 1
    assert not samples(records, "pe")


async def test_tasmota_telemetry_only(mosquitto: Broker, tmp_path: Path) -> None:
    """Readings from tele/<t>/SENSOR only: stale ones (150 s) mark the plug offline.

    Push messages take real time to arrive while virtual time jumps, so the test waits for
    each one to reach the driver before running the clock to the next poll slot."""
    clock = VirtualClock(START - 5)
    tasmota = SimulatedTasmotaPlug(topic="plug_f", clock=clock, load_w=80.0,
                                   tele_period_s=60.0)
    tasmota.phase_s = -5.0  # telemetry 5 s before each poll slot
    devices = [{"id": "pf", "driver": "tasmota", "bus": "lan", "topic": "plug_f",
                "source": "telemetry", "stale_after_s": 150}]
    agent = EdgeAgent.create(parse_edge_config(config(mosquitto, devices)), clock=clock,
                             base_dir=tmp_path)
    driver: Any = agent.drivers["pf"]
    async with polling(agent), tasmota.running(mosquitto.host, mosquitto.port):
        for k in range(6):
            if k <= 2:  # the messages of 09:59:55, 10:00:55 and 10:01:55 reach the edge
                await until(lambda: driver._tele_at == clock.now())
            tasmota.silent = k >= 2
            await advance(clock, START + 60 * k)
            await advance(clock, START + 60 * k + 55)
    records = outbox_records(agent)
    assert tasmota.commands == []  # telemetry only: nothing is ever sent to the plug
    # Heard at 09:59:55, 10:00:55, 10:01:55 (then silent): fresh until 10:04:25.
    assert {s.ts for s in samples(records, "pf", "power_w")} == {
        slot_ms(START + 60 * k) for k in range(5)}
    assert [e.ts for e in events(records, "device.offline")] == [slot_ms(START + 300)]


async def test_bin_sensor_readings(mosquitto: Broker, tmp_path: Path) -> None:
    clock = VirtualClock(START - 5)
    sensor = SimulatedBinSensor(topic="lora/bin-7/up", dev_eui="a84041000181c2d7",
                                clock=clock, geometry=BIN_GEOMETRY, fill_pct=50.0,
                                battery_pct=77.0, period_s=60.0, phase_s=-5.0)
    devices = [{"id": "bin-7", "driver": "bin_fill", "bus": "lan", "topic": "lora/bin-7/up",
                "category": "湿垃圾", "empty_mm": 1200, "full_mm": 200}]
    agent = EdgeAgent.create(parse_edge_config(config(mosquitto, devices)), clock=clock,
                             base_dir=tmp_path)
    driver: Any = agent.drivers["bin-7"]
    async with polling(agent), sensor.running(mosquitto.host, mosquitto.port):
        for k in range(4):
            if k == 3:
                await until(lambda: driver.bad_messages == 1)
            else:
                await until(lambda: driver.received_at == clock.now())
            await advance(clock, START + 60 * k)
            # What the sensor sends before the next slot:
            sensor.distance_override_mm = 2500.0 if k == 0 else None  # an echo off the wall
            sensor.fill_pct = 80.0
            sensor.garble = k == 2
            await advance(clock, START + 60 * k + 55)
    records = outbox_records(agent)
    fills = {s.ts: s.value for s in samples(records, "bin-7", "fill_pct")}
    assert fills == {slot_ms(START): pytest.approx(50.0), slot_ms(START + 120): pytest.approx(80.0),
                     slot_ms(START + 180): pytest.approx(80.0)}  # garbled: previous kept
    bad = events(records, "point.bad_value", "bin-7")
    assert {e.data["point"] for e in bad} == {"fill_pct", "distance_mm"}
    assert [e.ts for e in bad] == [slot_ms(START + 60)] * 2
    assert {s.value for s in samples(records, "bin-7", "category")} == {"kitchen"}
    assert {s.value for s in samples(records, "bin-7", "battery_pct")} == {77.0}
    assert driver.bad_messages == 1
