"""An override through the real stack: HTTP POST with an engineer token → the central
publishes a wire Command on `gg/v1/<site>/<edge>/cmd` through a real Mosquitto (QoS 1, not
retained) → a fake edge receives it and answers with a `command.result` event through the
ordinary ingest path → the API reports the edge's status."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import httpx
import pytest
import yaml

from central.auth import Authenticator, Role, TokenStore
from central.config import CentralSettings
from central.service import run_central
from protocols.clock import Clock, SystemClock
from protocols.signing import Verifier, public_key_text
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    Channel,
    Command,
    Event,
    Sample,
    Severity,
    StreamId,
    encode,
    topic,
)
from tests.conftest import Broker, free_port
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET

pytestmark = pytest.mark.integration

SITE, EDGE = "school", "edge-1"
STREAM = StreamId(EDGE, 1_750_000_000_000)
BASE = "/api/v1/institutions/demo-school"


@pytest.fixture
def settings(tmp_path: Path, mosquitto: Broker) -> CentralSettings:
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), encoding="utf-8")
    return CentralSettings(institution_config=config, database=tmp_path / "central.sqlite",
                           mqtt_host=mosquitto.host, mqtt_port=mosquitto.port,
                           mqtt_client_id="central-cmd-test", http_port=free_port(),
                           auth_secret=TEST_SECRET)


def token(settings: CentralSettings, role: Role) -> dict[str, str]:
    tokens = TokenStore(settings.auth_path)
    try:
        _, raw = Authenticator(TEST_SECRET, tokens).issue(f"test {role}", role, ["demo-school"])
    finally:
        tokens.close()
    return {"Authorization": f"Bearer {raw}"}


@contextlib.asynccontextmanager
async def central(settings: CentralSettings, clock: Clock | None = None
                  ) -> AsyncIterator[None]:
    """The central service in this event loop, until the block ends."""
    ready = asyncio.Event()
    task = asyncio.create_task(run_central(settings, clock or SystemClock(), ready=ready))
    try:
        async with asyncio.timeout(20):
            done, _ = await asyncio.wait([task, asyncio.create_task(ready.wait())],
                                         return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
        yield
    finally:
        task.cancel()
        async with asyncio.timeout(15):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def next_message(client: aiomqtt.Client, channel: Channel) -> aiomqtt.Message:
    async with asyncio.timeout(15):
        async for message in client.messages:
            if message.topic.matches(topic(SITE, EDGE, channel)):
                return message
    raise AssertionError("no message")


def opened(verifier: Verifier, message: aiomqtt.Message) -> Ack | Command:
    """The inner message of a signed downlink envelope, checked as an edge checks it."""
    assert isinstance(message.payload, bytes)
    return verifier.check(message.topic.value, message.payload,
                          now_ms=round(time.time() * 1000)).message


async def test_override_reaches_the_edge_and_its_answer_the_api(
        settings: CentralSettings, mosquitto: Broker) -> None:
    engineer = token(settings, Role.ENGINEER)
    async with central(settings), aiomqtt.Client(
            mosquitto.host, mosquitto.port, identifier="fake-edge") as edge, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.http_port}{BASE}/") as http:
        await edge.subscribe(topic(SITE, EDGE, Channel.ACK), qos=1)
        await edge.subscribe(topic(SITE, EDGE, Channel.CMD), qos=1)
        # Its birth first (the central admits no epoch without one), then one report, so
        # the central knows its site (the command topic).
        await edge.publish(topic(SITE, EDGE, Channel.STATE), encode(
            Birth(STREAM, 1_750_000_000_000, True, "test")), qos=1)
        verifier = Verifier(public_key_text(settings.control_key_path.read_bytes()))
        await edge.publish(topic(SITE, EDGE, Channel.TELEMETRY), encode(Batch(
            STREAM, 0, 1_750_000_000_000, True, (Sample(
                seq=1, ts=1_750_000_000_000, device="meter-a", point="power_w",
                value=1.0, unit="W"),))), qos=1)
        ack = opened(verifier, await next_message(edge, Channel.ACK))
        assert isinstance(ack, Ack)
        assert ack.upto == 1

        body = {"edge": EDGE, "name": "override.set", "duration_s": 900,
                "args": {"device": "ac-101", "point": "setpoint_c", "value": 26,
                         "reason": "exam in room 101"}}
        viewer = token(settings, Role.VIEWER)
        assert (await http.post("commands", json=body, headers=viewer)).status_code == 403
        async with asyncio.timeout(15):
            while (r := await http.post("commands", json=body, headers=engineer)
                   ).status_code == 503:  # the command link is still connecting
                await asyncio.sleep(0.1)
        assert r.status_code == 202, r.text
        sent = r.json()
        assert sent["status"] == "pending"

        message = await next_message(edge, Channel.CMD)
        assert message.qos == 1
        assert message.retain is False
        command = opened(verifier, message)  # signed with the central's key
        assert isinstance(command, Command)
        assert (command.id, command.name) == (sent["id"], "override.set")
        assert command.args == {"device": "ac-101", "point": "setpoint_c", "value": 26.0,
                                "reason": "exam in room 101"}
        assert command.expires - command.issued == 900_000

        await edge.publish(topic(SITE, EDGE, Channel.EVENTS), encode(Batch(
            STREAM, 1, 1_750_000_001_000, True, (Event(
                seq=2, ts=1_750_000_001_000, name="command.result", severity=Severity.INFO,
                device=None, data={"id": command.id, "status": "applied",
                                   "detail": "setpoint_c 26 until 12:15"}),))), qos=1)
        ack = opened(verifier, await next_message(edge, Channel.ACK))
        assert isinstance(ack, Ack)
        assert ack.upto == 2
        got = (await http.get(f"commands/{command.id}", headers=viewer)).json()
        assert (got["status"], got["detail"]) == ("applied", "setpoint_c 26 until 12:15")
        audit = (await http.get("audit", headers=viewer)).json()
        assert audit[0]["data"]["id"] == command.id
