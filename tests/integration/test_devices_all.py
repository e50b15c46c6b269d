"""ONE edge config with one device of every type polls every simulator on loopback — Modbus
TCP, RTU over TCP, RTU on a serial port (pty), DL/T 645 and CJ/T 188 behind serial servers,
Tasmota and Shelly plugs, a bin-fill sensor and a PIR over a real Mosquitto — and what
arrives at the central carries the right semantic point names and units."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from central.store import Store
from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from protocols.clock import VirtualClock
from tests.conftest import Broker
from tests.integration.devsim import (
    START,
    advance,
    all_devices_config,
    build_sims,
    central,
    drained,
    running,
    serving_mqtt,
    serving_wired,
    until,
)

pytestmark = pytest.mark.integration

EXPECTED_UNITS: dict[str, dict[str, str]] = {
    "m-sdm120": {"voltage_v": "V", "current_a": "A", "power_w": "W", "power_factor": "1",
                 "frequency_hz": "Hz", "energy_import_kwh": "kWh", "energy_export_kwh": "kWh"},
    "m-sdm630": {"voltage_l1_v": "V", "voltage_l2_v": "V", "voltage_l3_v": "V",
                 "current_l1_a": "A", "current_l2_a": "A", "current_l3_a": "A",
                 "power_l1_w": "W", "power_l2_w": "W", "power_l3_w": "W",
                 "power_w": "W", "power_factor": "1", "frequency_hz": "Hz",
                 "energy_import_kwh": "kWh", "energy_export_kwh": "kWh",
                 "energy_total_kwh": "kWh"},
    "m-ddsu666": {"voltage_v": "V", "current_a": "A", "power_w": "W", "power_factor": "1",
                  "frequency_hz": "Hz", "energy_import_kwh": "kWh"},
    "m-adl400": {"voltage_l1_v": "V", "voltage_l2_v": "V", "voltage_l3_v": "V",
                 "current_l1_a": "A", "current_l2_a": "A", "current_l3_a": "A",
                 "power_w": "W", "energy_import_kwh": "kWh"},
    "w-modbus": {"water_m3": "m3", "flow_m3h": "m3/h"},
    "ac-301": {"on": "", "fault": "", "mode": "", "setpoint_c": "°C", "fan_speed": "",
               "room_temp_c": "°C"},
    "vrf-302": {"on": "", "mode": "", "setpoint_c": "°C", "fan_speed": "",
                "room_temp_c": "°C", "fault_code": ""},
    "vrf-303": {"on": "", "mode": "", "setpoint_c": "°C", "fan_speed": "",
                "room_temp_c": "°C", "fault_code": ""},
    "pir-301": {"occupied": "", "illuminance_lx": "lx"},
    "m-dlt645": {"energy_import_kwh": "kWh", "voltage_l1_v": "V", "current_l1_a": "A",
                 "power_w": "W"},
    "w-cjt188": {"water_m3": "m3", "valve_open": "", "battery_low": ""},
    "plug-tasmota": {"on": "", "power_w": "W", "energy_import_kwh": "kWh", "voltage_v": "V",
                     "current_a": "A", "power_factor": "1"},
    "plug-shelly": {"on": "", "power_w": "W", "energy_import_kwh": "kWh", "voltage_v": "V",
                    "current_a": "A", "power_factor": "1"},
    "bin-1": {"fill_pct": "%", "distance_mm": "mm", "battery_pct": "%", "category": ""},
    "pir-302": {"occupied": "", "battery_pct": "%", "illuminance_lx": "lx"},
}


async def test_one_edge_polls_every_device_type_into_the_central(
        mosquitto: Broker, tmp_path: Path) -> None:
    clock = VirtualClock(START - 10)  # just before ten: the first slot is 10:00 sharp
    sims = build_sims(clock)
    store = Store(tmp_path / "central.sqlite")
    try:
        async with serving_wired(sims), \
                central(store, clock, mosquitto.host, mosquitto.port) as ingestor:
            config = parse_edge_config(all_devices_config(
                sims, broker_host=mosquitto.host, broker_port=mosquitto.port))
            agent = EdgeAgent.create(config, clock=clock, base_dir=tmp_path)
            pushed: list[Any] = [agent.drivers["bin-1"], agent.drivers["pir-302"]]
            async with running(agent), serving_mqtt(sims, mosquitto.host, mosquitto.port):
                # Push sensors spoke on start; wait for their messages to reach the edge.
                await until(lambda: all(d.received_at is not None for d in pushed))
                await advance(clock, START + 4 * 60)
                await drained(agent)
            stats = agent.poll_stats
            latest = store.latest_samples()
        assert ingestor.stats.dead_letters == 0
    finally:
        store.close()

    # Five slots (START … START+4 min), every device polled in each, none failed.
    assert stats.failures == 0, stats
    assert stats.offline_events == 0
    assert stats.polls == 5 * len(EXPECTED_UNITS)
    arrived = {(k.device, k.point): v for k, v in latest.items() if k.edge == "edge-dev"}
    for device, points in EXPECTED_UNITS.items():
        for point, unit in points.items():
            assert (device, point) in arrived, f"{device}.{point} never reached the central"
            assert arrived[(device, point)].unit == unit, (device, point)
    # Every sample is from the last slot: the readings belong to the instant polled.
    assert {v.ts for v in arrived.values()} == {round((START + 240) * 1000)}

    # Values are what the simulators hold, in the semantic units.
    t = START + 240
    assert arrived[("m-dlt645", "energy_import_kwh")].value == pytest.approx(
        sims.dlt645.energy_at(t), abs=0.01)
    assert arrived[("w-cjt188", "water_m3")].value == sims.water.register_volume(t)
    assert arrived[("m-ddsu666", "power_w")].value == pytest.approx(
        sims.meters["ddsu666"].profile.value_at(t), rel=1e-6)  # kW × 1000
    assert arrived[("plug-shelly", "energy_import_kwh")].value == pytest.approx(
        sims.shelly.energy_wh(t) / 1000, abs=1e-6)  # Wh on the wire
    assert arrived[("plug-tasmota", "on")].value is True
    assert arrived[("bin-1", "category")].value == "recyclable"
    assert arrived[("bin-1", "fill_pct")].value == pytest.approx(35.0, abs=0.1)
    assert arrived[("ac-301", "mode")].value == "cool"
    assert arrived[("vrf-303", "setpoint_c")].value == 26.0
    assert arrived[("pir-301", "occupied")].value is True
    assert arrived[("pir-302", "occupied")].value is True
