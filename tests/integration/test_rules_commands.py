"""RELIABILITY #17 over a real Mosquitto: central commands on the edge's cmd topic. A fresh
command is applied, a replayed id is a duplicate, a stale one is dropped as expired,
garbage is counted and ignored, and every command is answered with `command.result`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from protocols.clock import VirtualClock
from protocols.registermap import load_register_map
from protocols.wire import Channel, Command, encode, topic
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import AcController, AcUnit
from tests.conftest import Broker
from tests.integration.devsim import START, events, outbox_records, running, until

pytestmark = pytest.mark.integration


async def test_commands_over_mqtt(mosquitto: Broker, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    ac = AcController(name="ac", register_map=load_register_map("ac-controller-modbus"),
                      device_id=10, clock=clock, unit=AcUnit(start=START))
    async with ModbusDeviceServer([ac], framing="tcp") as server:
        cfg = parse_edge_config({
            "edge_id": "edge-cmd", "site": "school",
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "buses": [{"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1",
                       "port": server.port, "timeout_s": 0.5}],
            "devices": [{"id": "ac-301", "driver": "modbus", "bus": "gw", "device_id": 10,
                         "model": "ac-controller-modbus", "zone": "301"}],
            "rules": {"rules": [{"id": "ac-26", "type": "setpoint_limits"}]},
        })
        agent = EdgeAgent.create(cfg, clock=clock, base_dir=tmp_path)
        now_ms = round(START * 1000)
        on = {"device": "ac-301", "point": "on", "value": True, "reason": "open day"}
        fresh = Command("c-fresh", "override.set", now_ms, now_ms + 3_600_000, on)
        stale = Command("c-stale", "override.set", now_ms - 7_200_000, now_ms - 3_600_000, on)
        bad = Command("c-bad", "override.set", now_ms, now_ms + 60_000,
                      {"device": "ac-301", "point": "setpoint_c", "value": 5})
        async with running(agent):
            cmd_topic = topic("school", "edge-cmd", Channel.CMD)
            async with aiomqtt.Client(mosquitto.host, mosquitto.port,
                                      identifier="central-cmd") as central:
                # The edge publishes its (retained) birth after subscribing to its cmd topic.
                await central.subscribe(topic("school", "edge-cmd", Channel.STATE), qos=1)
                async with asyncio.timeout(10):
                    await anext(aiter(central.messages))
                for payload in (encode(fresh), encode(fresh), encode(stale), encode(bad),
                                b"{not json", b'{"v": 1, "type": "ack"}'):
                    await central.publish(cmd_topic, payload, qos=1)
                stats = agent.uplink.stats
                await until(lambda: stats.commands + stats.bad_commands >= 6, within_s=10)
            records = outbox_records(agent)
    results = [(e.data["id"], e.data["status"]) for e in events(records, "command.result")]
    assert results == [("c-fresh", "applied"), ("c-fresh", "duplicate"),
                       ("c-stale", "expired"), ("c-bad", "rejected")]
    assert agent.uplink.stats.bad_commands == 2
    [rejected] = events(records, "audit.rejected")
    assert rejected.data["value"] == 5
    # 5 °C never reached the AC's setpoint register (holding 0x0001).
    assert [s for s in ac.log if s.op == "write" and s.address == 1] == []
