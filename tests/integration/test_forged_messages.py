"""RELIABILITY scenario 21 with impersonation (issue 20): a forger who can publish on the
broker — here a real Mosquitto misconfigured to allow anonymous clients — sends every forged
message the attack run used, against the real edge agent (with the central's public key) and
the real central. None of them changes a stored figure, a latest value, the watermark, the
edge's outbox or the AC; the central's own signed command still works.

Run twice: without edge signatures, where the central's admission rules alone refuse the
forged uplink (a plausible batch just ahead of the watermark cannot be told from a real one
then, so it is not sent: broker credentials and ACLs keep such a forger out), and with the
edge signing its uplink (`edge_keys`), where that batch is refused too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
import yaml

from central.auth import Authenticator, Role, TokenStore
from central.config import CentralSettings
from central.control import create_control_key, public_key_path
from central.store import Store
from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from edge.control import load_uplink_signer
from protocols.clock import VirtualClock
from protocols.registermap import load_register_map
from protocols.signing import Signer, generate_private_key_pem
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    Channel,
    Command,
    IntervalRecord,
    Sample,
    StreamId,
    encode,
    topic,
)
from simulators.modbus_bus import ModbusDeviceServer
from simulators.modbus_devices import AcController, AcUnit
from tests.conftest import Broker, free_port
from tests.integration.devsim import START, advance, running, until
from tests.integration.test_api_commands import central
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET

pytestmark = pytest.mark.integration

EDGE, SITE, IID = "edge-1", "school", "demo-school"
NOW_MS = round(START * 1000)
YEAR_2100_MS = 4_102_444_800_000


def _institution(edge_key: str | None) -> dict[str, Any]:
    config = dict(INSTITUTION)
    config["ac_units"] = [{"edge": EDGE, "device": "ac-301", "building": "A"}]
    if edge_key is not None:
        config["edge_keys"] = {EDGE: edge_key}
    return config


@contextlib.asynccontextmanager
async def forger(broker: Broker) -> AsyncIterator[aiomqtt.Client]:
    """An anonymous client that also listens to the edge's ack and cmd topics, as a forger
    on a misconfigured broker could."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="forger") as client:
        await client.subscribe(topic(SITE, EDGE, Channel.ACK), qos=1)
        yield client


def _figures(store_path: Path, stream: StreamId) -> dict[str, Any]:
    """Everything a forger must not change at the central."""
    with Store(store_path, readonly=True) as store:
        return {"intervals": sorted(store.rows("intervals")),
                "latest": {k: (v.ts, v.value) for k, v in store.latest_samples().items()},
                "watermark": store.watermark(stream),
                "samples": len(store.rows("samples")),
                "edges": sorted((e.edge, e.epoch, e.site) for e in store.edges()
                                if not e.edge.startswith("@"))}


@pytest.mark.parametrize("signed_uplink", [False, True], ids=["admission", "edge-signed"])
async def test_forged_messages_change_nothing_and_real_commands_still_work(
        tmp_path: Path, mosquitto: Broker, signed_uplink: bool) -> None:
    clock = VirtualClock(START)  # 2 March: the heating season
    edge_key_file = tmp_path / "edge" / "uplink.key"
    edge_key = load_uplink_signer(edge_key_file).public_key if signed_uplink else None
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(_institution(edge_key), allow_unicode=True),
                      encoding="utf-8")
    key_file = tmp_path / "central.control.key"
    create_control_key(key_file)
    settings = CentralSettings(institution_config=config, database=tmp_path / "central.sqlite",
                               mqtt_host=mosquitto.host, mqtt_port=mosquitto.port,
                               mqtt_client_id="central-21", http_port=free_port(),
                               auth_secret=TEST_SECRET, control_key_file=key_file)
    tokens = TokenStore(settings.auth_path)
    try:
        _, raw = Authenticator(TEST_SECRET, tokens).issue("office", Role.ENGINEER, [IID])
    finally:
        tokens.close()
    engineer = {"Authorization": f"Bearer {raw}"}
    foreign = Signer(generate_private_key_pem())  # a key the edge was not given

    ac = AcController(name="ac", register_map=load_register_map("ac-controller-modbus"),
                      device_id=10, clock=clock, unit=AcUnit(start=START))
    async with ModbusDeviceServer([ac], framing="tcp") as server:
        agent = EdgeAgent.create(parse_edge_config({
            "edge_id": EDGE, "site": SITE,
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port,
                     "central_public_key": public_key_path(key_file).read_text().strip(),
                     **({"signing_key_file": str(edge_key_file)} if signed_uplink else {})},
            "buses": [{"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1",
                       "port": server.port, "timeout_s": 0.5}],
            "devices": [{"id": "ac-301", "driver": "modbus", "bus": "gw", "device_id": 10,
                         "model": "ac-controller-modbus", "zone": "301"}],
            "rules": {"rules": [{"id": "ac-26", "type": "setpoint_limits"}]},
        }), clock=clock, base_dir=tmp_path / "edge")
        stream = agent.outbox.stream
        outbox, gate = agent.outbox, agent.uplink.control
        cmd_topic = topic(SITE, EDGE, Channel.CMD)
        base = f"http://127.0.0.1:{settings.http_port}/api/v1/institutions/{IID}/"
        async with running(agent), forger(mosquitto) as evil:
            # -- 1. real traffic: the edge's readings stored and acknowledged ------------------
            async with central(settings, clock):
                await advance(clock, START + 120)
                await until(lambda: outbox.last_seq > 0
                            and outbox.acked_upto == outbox.last_seq, within_s=30)
                captured = []  # real signed acks, seen by the eavesdropping forger
                async with asyncio.timeout(30):
                    async for message in evil.messages:
                        captured.append(bytes(message.payload))
                        break
                before = _figures(settings.database, stream)
                assert before["watermark"] == outbox.last_seq > 0
                assert before["latest"]
                writes_before = len([s for s in ac.log if s.op == "write"])
                w = before["watermark"]

                # -- 2. forged uplink, time stands still: the edge makes no records ---------
                def uplink(edge: str, channel: Channel) -> str:
                    return topic(SITE, edge, channel)

                ahead = Sample(w + 10**12, NOW_MS, "ac-301", "room_temp_c", 99.0, "°C")
                forged: list[tuple[str, bytes]] = [
                    # an unconfigured edge, its birth and data
                    (uplink("evil-1", Channel.STATE),
                     encode(Birth(StreamId("evil-1", NOW_MS), NOW_MS, True, "x"))),
                    (uplink("evil-1", Channel.TELEMETRY), encode(Batch(
                        StreamId("evil-1", NOW_MS), 0, NOW_MS, True,
                        (Sample(1, NOW_MS, "ac-301", "room_temp_c", 5.0, "°C"),)))),
                    # a birth and an interval with epoch 2^53 (5,000 kWh "for good")
                    (uplink(EDGE, Channel.STATE),
                     encode(Birth(StreamId(EDGE, 2**53), NOW_MS, True, "x"))),
                    (uplink(EDGE, Channel.TELEMETRY), encode(Batch(
                        StreamId(EDGE, 2**53), 0, NOW_MS, True, (IntervalRecord(
                            1, "ac-301", "energy_import_kwh", NOW_MS - 900_000, 900, 5000.0,
                            "kWh"),)))),
                    # a sample stamped 2100 in the real stream, next in line
                    (uplink(EDGE, Channel.TELEMETRY), encode(Batch(
                        stream, w, NOW_MS, True,
                        (Sample(w + 1, YEAR_2100_MS, "ac-301", "room_temp_c", 99.0, "°C"),)))),
                    # seqs far ahead of the edge, and a seq of 10^13 chained to the watermark
                    (uplink(EDGE, Channel.TELEMETRY), encode(Batch(
                        stream, w + 10**12 - 1, NOW_MS, True, (ahead,)))),
                    (uplink(EDGE, Channel.TELEMETRY), encode(Batch(
                        stream, w, NOW_MS, True,
                        (Sample(10**13, NOW_MS, "ac-301", "room_temp_c", 99.0, "°C"),)))),
                    *([] if not signed_uplink else [
                        # plausible records just ahead of the real edge: only a signature
                        # tells them apart
                        (uplink(EDGE, Channel.TELEMETRY), encode(Batch(
                            stream, w, NOW_MS, True,
                            (Sample(w + 1, NOW_MS, "ac-301", "room_temp_c", 21.0, "°C"),
                             Sample(w + 2, NOW_MS, "ac-301", "on", False, "")))))]),
                    # the real edge's id on another site
                    (uplink(EDGE, Channel.TELEMETRY).replace(f"/{SITE}/", "/elsewhere/"),
                     encode(Batch(stream, w, NOW_MS, True,
                                  (Sample(w + 1, NOW_MS, "ac-301", "on", True, ""),)))),
                ]
                for where, payload in forged:
                    await evil.publish(where, payload, qos=1)
                # forged commands: unsigned, signed by a foreign key, and retained
                off = {"device": "ac-301", "point": "on", "value": False, "reason": "x"}
                cold = {"device": "ac-301", "point": "setpoint_c", "value": 16, "reason": "x"}
                cool = {"device": "ac-301", "point": "mode", "value": "cool", "reason": "x"}
                commands = [Command("f-off", "override.set", NOW_MS, NOW_MS + 3_600_000, off),
                            Command("f-16", "override.set", NOW_MS, NOW_MS + 3_600_000, cold),
                            Command("f-cool", "override.set", NOW_MS, NOW_MS + 3_600_000,
                                    cool),
                            Command("f-2100", "override.set", NOW_MS, YEAR_2100_MS, off)]
                for cmd in commands:
                    await evil.publish(cmd_topic, encode(cmd), qos=1)
                    await evil.publish(cmd_topic, foreign.sign(cmd_topic, cmd, NOW_MS), qos=1)
                retained = Command("f-kept", "override.set", NOW_MS, NOW_MS + 3_600_000, off)
                await evil.publish(cmd_topic, foreign.sign(cmd_topic, retained, NOW_MS),
                                   qos=1, retain=True)
                refused = gate.stats.refused_commands
                await until(lambda: sum(refused.values()) >= 9, within_s=30)
                # the edge's `refused` answers reach the central (they are its only records)
                await until(lambda: outbox.acked_upto == outbox.last_seq
                            and _figures(settings.database, stream)["watermark"]
                            == outbox.last_seq, within_s=30)
                after = _figures(settings.database, stream)
                with Store(settings.database, readonly=True) as store:
                    answers = [(e.name, json.loads(e.data)["status"])
                               for e in store.events([EDGE], limit=1000)
                               if w < e.seq <= after["watermark"]]

            # -- 3. forged acks while the central is down: unsent rows stay ----------------
            await advance(clock, START + 240)  # new readings the central cannot ack
            await until(lambda: agent.uplink.stats.last_sent_seq == outbox.last_seq,
                        within_s=30)
            acked, last = outbox.acked_upto, outbox.last_seq
            assert last > acked
            huge = Ack(stream, 10**12)
            ack_topic = topic(SITE, EDGE, Channel.ACK)
            for payload, retain in [(encode(huge), False),
                                    (foreign.sign(ack_topic, huge, NOW_MS), False),
                                    (captured[0], False),  # a real ack, replayed
                                    (foreign.sign(ack_topic, huge, NOW_MS + 1), True)]:
                await evil.publish(ack_topic, payload, qos=1, retain=retain)
            await until(lambda: sum(gate.stats.refused_acks.values()) >= 4, within_s=30)
            assert outbox.acked_upto == acked  # nothing deleted by a forged ack
            assert len(outbox.read_after(acked, 1_000_000)) == outbox.last_seq - acked
            await evil.publish(ack_topic, b"", qos=1, retain=True)  # clear the retained one

            # -- 4. the central's real key: its command works, everything arrives -----------
            async with central(settings, clock), httpx.AsyncClient(
                    base_url=base, headers=engineer, timeout=10) as http:
                body = {"edge": EDGE, "name": "override.set", "duration_s": 3600,
                        "args": {"device": "ac-301", "point": "setpoint_c", "value": 27,
                                 "reason": "parents' evening"}}
                async with asyncio.timeout(30):
                    while (r := await http.post("commands", json=body)).status_code == 503:
                        await asyncio.sleep(0.2)
                assert r.status_code == 202, r.text
                command_id = r.json()["id"]
                async with asyncio.timeout(30):
                    while (status := (await http.get(f"commands/{command_id}")).json()
                           )["status"] == "pending":
                        await asyncio.sleep(0.2)
                assert status["status"] == "applied", status
                await clock.run(until=START + 360)  # the tick that writes the override
                await until(lambda: ac.unit.state.setpoint_c == pytest.approx(27.0),
                            within_s=30)
                await until(lambda: outbox.acked_upto == outbox.last_seq, within_s=30)
                audit = (await http.get("audit")).json()
                alarms = (await http.get("events", params={"name": "alarm.*"})).json()
            await evil.publish(cmd_topic, b"", qos=1, retain=True)

    # The forgeries changed nothing at the central but for the edge's own `refused` answers.
    assert after["intervals"] == before["intervals"] == []
    assert after["latest"] == before["latest"]
    assert after["edges"] == before["edges"] == [(EDGE, stream.epoch, SITE)]
    assert after["samples"] == before["samples"]
    # the only records the edge made meanwhile: its `refused` answers, one per command id
    assert set(answers) == {("command.result", "refused")}
    assert len(answers) == after["watermark"] - before["watermark"]
    # ... nor at the edge: no write to the AC before the real command, none by a forgery
    writes = [s for s in ac.log if s.op == "write"]
    assert len(writes) > writes_before
    assert all(s.address == 1 for s in writes[writes_before:])  # setpoint only, 27 °C
    assert gate.stats.refused_commands["unsigned"] == 4
    # 4 foreign-signed ones and the retained one, which a connected subscriber receives
    # live (retain flag cleared); after a reconnect it would be refused as `retained`
    # (tests/unit/protocols/test_wire_signed.py, tests/unit/edge/test_control.py)
    assert gate.stats.refused_commands["unknown_key"] == 5
    assert gate.stats.refused_acks["unsigned"] == 1
    assert gate.stats.refused_acks["replayed"] == 1
    refusals = [e for e in audit if e["name"] == "command.result"
                and e["data"]["status"] == "refused"]
    assert {e["data"]["id"] for e in refusals} >= {c.id for c in commands}
    applied = [e for e in audit if e["name"] == "command.result"
               and e["data"]["status"] == "applied"]
    assert [e["data"]["id"] for e in applied] == [command_id]
    assert not [e for e in audit if e["name"] == "audit.write"
                and str(e["data"].get("rule", "")).startswith("override:f-")]
    assert [(a["name"], a["device"]) for a in alarms] == [("alarm.foreign_edge", "evil-1")]
    with Store(settings.database, readonly=True) as store:
        final = store.watermark(stream)
        letters = {d.error.split(":")[0] for d in store.dead_letters()}
        seqs = sorted(row[2] for row in store.rows("samples"))
    # every row the edge deleted is stored (none deleted unsent), the phase-3 rows included
    assert final >= outbox.acked_upto >= last
    assert seqs == sorted(set(seqs))
    assert max(seqs) < 10**9
    assert letters  # every forged uplink message is kept for an engineer to inspect
