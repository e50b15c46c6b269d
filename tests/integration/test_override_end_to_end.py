"""An override from the energy office to the air conditioner and back, with nothing faked
between: HTTP POST with an engineer token → the central publishes `override.set` through a
real Mosquitto → the real edge agent's rules runtime applies it to a Modbus AC simulator
(absolute write, read back) → its `command.result` and `audit.write` events travel the
ordinary outbox → uplink → ingest path → the API shows `applied` and the audit trail.

The central's and the edge's halves of the command contract are each tested on their own
(tests/integration/test_api_commands.py with a stand-in edge, test_rules_commands.py with a
stand-in central); this test is the one that fails if the two halves disagree."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from central.auth import Authenticator, Role, TokenStore
from central.config import CentralSettings
from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from protocols.clock import VirtualClock
from protocols.registermap import load_register_map
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import AcController, AcUnit
from tests.conftest import Broker, free_port
from tests.integration.devsim import START, running
from tests.integration.test_api_commands import central
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET

pytestmark = pytest.mark.integration

EDGE, SITE, IID = "edge-ac", "school", "demo-school"


def _institution() -> dict[str, Any]:
    config = dict(INSTITUTION)
    config["ac_units"] = [{"edge": EDGE, "device": "ac-301", "building": "A"}]
    return config


async def test_an_override_sent_through_the_api_switches_the_ac_and_reports_back(
        tmp_path: Path, mosquitto: Broker) -> None:
    clock = VirtualClock(START)
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(_institution(), allow_unicode=True), encoding="utf-8")
    settings = CentralSettings(institution_config=config, database=tmp_path / "central.sqlite",
                               mqtt_host=mosquitto.host, mqtt_port=mosquitto.port,
                               mqtt_client_id="central-e2e", http_port=free_port(),
                               auth_secret=TEST_SECRET)
    tokens = TokenStore(settings.auth_path)
    try:
        _, raw = Authenticator(TEST_SECRET, tokens).issue("office", Role.ENGINEER, [IID])
    finally:
        tokens.close()
    engineer = {"Authorization": f"Bearer {raw}"}

    ac = AcController(name="ac", register_map=load_register_map("ac-controller-modbus"),
                      device_id=10, clock=clock, unit=AcUnit(start=START))
    async with ModbusDeviceServer([ac], framing="tcp") as server:
        edge_config = parse_edge_config({
            "edge_id": EDGE, "site": SITE,
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "buses": [{"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1",
                       "port": server.port, "timeout_s": 0.5}],
            "devices": [{"id": "ac-301", "driver": "modbus", "bus": "gw", "device_id": 10,
                         "model": "ac-controller-modbus", "zone": "301"}],
            "rules": {"rules": [{"id": "ac-26", "type": "setpoint_limits"}]},
        })
        agent = EdgeAgent.create(edge_config, clock=clock, base_dir=tmp_path / "edge")
        base = f"http://127.0.0.1:{settings.http_port}/api/v1/institutions/{IID}/"
        async with central(settings, clock), running(agent), httpx.AsyncClient(
                base_url=base, headers=engineer, timeout=10) as http:
            body = {"edge": EDGE, "name": "override.set", "duration_s": 3600,
                    "args": {"device": "ac-301", "point": "setpoint_c", "value": 27,
                             "reason": "open day in room 301"}}
            # 409 until the edge's birth has told the central its site; 503 while the
            # central's MQTT connection is not up yet.
            async with asyncio.timeout(30):
                while (r := await http.post("commands", json=body)).status_code in (409, 503):
                    await asyncio.sleep(0.2)
            assert r.status_code == 202, r.text
            command_id = r.json()["id"]
            async with asyncio.timeout(30):
                while (status := (await http.get(f"commands/{command_id}")).json()
                       )["status"] == "pending":
                    await asyncio.sleep(0.2)
            assert status["status"] == "applied", status
            # The rules tick that acts on the override runs on the edge's (virtual) clock.
            await clock.run(until=START + 120)
            audit: list[dict[str, Any]] = []
            async with asyncio.timeout(30):
                while not any(e["name"] == "audit.write" for e in audit):
                    await asyncio.sleep(0.2)
                    audit = (await http.get("audit")).json()
    # The AC's setpoint register (holding 0x0001, in 0.1 °C) holds what the office asked for.
    writes = [s for s in ac.log if s.op == "write" and s.address == 1]
    assert writes, "the override never reached the AC"
    assert ac.unit.state.setpoint_c == pytest.approx(27.0)
    names = [e["name"] for e in audit]
    assert "command.result" in names
    assert any(e["name"] == "audit.write" and e["data"].get("after") == 27 for e in audit), audit
