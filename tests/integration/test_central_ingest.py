"""Central ingest against a real Mosquitto: store first, then ack; duplicates and replays
stored once, also across a central restart; garbage dead-lettered; clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import httpx
import pytest
import yaml

from central.auth import Authenticator, Role, TokenStore
from central.config import CentralSettings
from central.ingest import Ingestor, IngestStats, MqttOptions, run_ingest
from central.service import run_central
from central.store import Store
from protocols.clock import SystemClock, VirtualClock
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    Channel,
    Death,
    IntervalRecord,
    Sample,
    Signed,
    StreamId,
    decode,
    encode,
    topic,
)
from tests.conftest import Broker, free_port, wait_for_port
from tests.unit.central.central_helpers import TEST_SECRET

pytestmark = pytest.mark.integration

SITE, EDGE = "school", "edge-1"
STREAM = StreamId(EDGE, 1_750_000_000_000)
INSTITUTION = {
    "institution": {"id": "demo", "name": "示范中学", "type": "school"},
    "buildings": [{"id": "A", "name": "教学楼", "floor_area_m2": 12000}],
    "headcount": {"staff": 120, "students_daily_avg": 1500},
    "targets": {2025: {"kgce_per_m2": 5, "kgce_per_person": 50, "water_m3_per_person": 40}},
    "meters": [{"edge": EDGE, "device": "m1", "building": "A", "energy": "electricity",
                "role": "main"}],
}


def samples(*seqs: int) -> tuple[Sample, ...]:
    return tuple(Sample(s, 1_750_000_000_000 + s, "m1", "power_w", float(s), "W")
                 for s in seqs)


def batch(after: int, *seqs: int) -> Batch:
    return Batch(STREAM, after, 1_750_000_000_000, True, samples(*seqs))


@pytest.fixture
def settings(tmp_path: Path, mosquitto: Broker) -> CentralSettings:
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(INSTITUTION, allow_unicode=True), encoding="utf-8")
    return CentralSettings(institution_config=config, database=tmp_path / "central.sqlite",
                           mqtt_host=mosquitto.host, mqtt_port=mosquitto.port,
                           mqtt_client_id="central-test", http_port=free_port(),
                           auth_secret=TEST_SECRET)


def viewer_token(settings: CentralSettings) -> dict[str, str]:
    tokens = TokenStore(settings.auth_path)
    try:
        _, raw = Authenticator(TEST_SECRET, tokens).issue("test", Role.VIEWER)
    finally:
        tokens.close()
    return {"Authorization": f"Bearer {raw}"}


@contextlib.asynccontextmanager
async def central(settings: CentralSettings) -> AsyncIterator[IngestStats]:
    stats = IngestStats()
    ready = asyncio.Event()
    task = asyncio.create_task(run_central(settings, SystemClock(), ready=ready, stats=stats))
    try:
        async with asyncio.timeout(10):
            done, _ = await asyncio.wait([task, asyncio.create_task(ready.wait())],
                                         return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()  # start-up failed: raise its error
        yield stats
    finally:
        task.cancel()
        async with asyncio.timeout(10):  # clean shutdown is prompt
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert not stats.connected
    address = ("127.0.0.1", settings.http_port)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(address, timeout=0.5):
        pass  # the HTTP port is released


@contextlib.asynccontextmanager
async def edge(broker: Broker, *, born: bool = True) -> AsyncIterator[aiomqtt.Client]:
    """A fake edge; like a real one it announces its epoch with a birth first (the central
    admits no epoch without one)."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="fake-edge") as client:
        await client.subscribe(topic(SITE, EDGE, Channel.ACK), qos=1)
        if born:
            await client.publish(topic(SITE, EDGE, Channel.STATE),
                                 encode(Birth(STREAM, 1_750_000_000_000, True, "test")), qos=1)
        yield client


async def send(client: aiomqtt.Client, b: Batch | bytes) -> None:
    payload = b if isinstance(b, bytes) else encode(b)
    await client.publish(topic(SITE, EDGE, Channel.TELEMETRY), payload, qos=1)


async def acks(client: aiomqtt.Client, n: int) -> list[int]:
    got: list[int] = []
    async with asyncio.timeout(10):
        async for message in client.messages:
            envelope = decode(message.payload)  # type: ignore[arg-type]
            assert isinstance(envelope, Signed)  # the central signs every ack
            ack = decode(envelope.msg.encode())
            assert isinstance(ack, Ack)
            assert ack.stream == STREAM
            got.append(ack.upto)
            if len(got) == n:
                return got
    return got


async def acks_until(client: aiomqtt.Client, upto: int) -> list[int]:
    """Acks up to the one for `upto`. Acks are cumulative, and batches that queue up while
    the central commits are written in one transaction and acknowledged once (group
    commit), so how many acks arrive depends on timing; their values do not."""
    got: list[int] = []
    while not got or got[-1] < upto:
        [value] = await acks(client, 1)
        got.append(value)
    assert got == sorted(got), got
    return got


async def wait_for(predicate: Callable[[], bool], within_s: float = 10) -> None:
    """Poll counters that the central's tasks update (they expose no events)."""
    async with asyncio.timeout(within_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_store_then_ack_dedup_reorder_and_dead_letter(
        mosquitto: Broker, settings: CentralSettings) -> None:
    async with central(settings) as stats, edge(mosquitto) as client:
        await send(client, batch(0, 1, 2, 3))
        await send(client, batch(3, 4, 6))  # seq 5 was dropped by the edge: a hole
        await send(client, batch(0, 1, 2, 3))  # duplicate
        await send(client, batch(8, 9, 10))  # arrives before its predecessor
        await send(client, batch(6, 7, 8))
        got = await acks_until(client, 10)
        assert set(got) <= {0, 3, 6, 10}, got  # never beyond the unbroken chain

        await send(client, b"\x00 definitely not json")
        await send(client, Batch(StreamId("edge-2", 1), 0, 0, True, samples(1)))  # foreign
        await wait_for(lambda: stats.dead_letters == 2)
        await send(client, batch(10, 11))
        assert await acks(client, 1) == [11]  # the garbage did not block the stream

        await wait_for(lambda: stats.acks_sent == len(got) + 1)  # counted on the PUBACK
        assert stats.stored_records == 10
        assert stats.duplicates == 3

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http:
            health = (await http.get("/healthz")).json()
            assert health["status"] == "ok"
            assert health["mqtt_connected"] is True
            assert (await http.get("/api/v1/institutions/demo/overview")
                    ).status_code == 401
            overview = (await http.get("/api/v1/institutions/demo/overview",
                                       headers=viewer_token(settings))).json()
            assert overview["ingest"]["dead_letters"] == 2
            assert overview["institution"]["name"].startswith("示范中学")
            page = await http.get("/")
            assert page.status_code == 200

    with Store(settings.database, readonly=True) as store:
        seqs = [row[2] for row in store.rows("samples")]
        assert seqs == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]  # each stored once
        assert store.watermark(STREAM) == 11
        assert store.counts()["dead_letter"] == 2


async def test_watermark_and_dedup_survive_a_restart(mosquitto: Broker,
                                                     settings: CentralSettings) -> None:
    interval = IntervalRecord(4, "m1", "energy_import_kwh", 1_750_000_000_000, 900, 2.5, "kWh")
    async with central(settings), edge(mosquitto) as client:
        await send(client, batch(0, 1, 2, 3))
        await send(client, Batch(STREAM, 3, 0, True, (interval,)))
        assert set(await acks_until(client, 4)) <= {3, 4}
    async with central(settings) as stats, edge(mosquitto) as client:
        # The edge never saw the acks (say) and replays everything after seq 0.
        await send(client, Batch(STREAM, 0, 0, True, (*samples(1, 2, 3), interval)))
        assert await acks(client, 1) == [4]
        assert stats.stored_records == 0
        assert stats.duplicates == 4
    with Store(settings.database, readonly=True) as store:
        counts = store.counts()
        assert counts["samples"] == 3
        assert counts["intervals"] == 1


async def test_birth_and_death_set_edge_state(mosquitto: Broker,
                                              settings: CentralSettings) -> None:
    state = topic(SITE, EDGE, Channel.STATE)
    async with central(settings) as stats, edge(mosquitto, born=False) as client:
        await client.publish(state, encode(Birth(STREAM, 1_750_000_000_000, True, "0.1.0")),
                             qos=1, retain=True)
        await wait_for(lambda: stats.births == 1)
        with Store(settings.database, readonly=True) as store:
            assert store.edges()[0].online is True
        await client.publish(state, encode(Death(STREAM)), qos=1, retain=True)
        await wait_for(lambda: stats.deaths == 1)
        with Store(settings.database, readonly=True) as store:
            assert store.edges()[0].online is False


async def test_reconnects_after_the_broker_restarts(mosquitto: Broker, tmp_path: Path,
                                                    settings: CentralSettings) -> None:
    async with central(settings) as stats:
        mosquitto.process.terminate()
        await asyncio.to_thread(mosquitto.process.wait, 5)
        await wait_for(lambda: not stats.connected)
        assert stats.disconnects == 1
        # Same port, same config (written by the fixture); the central finds it on its own.
        binary = str(mosquitto.process.args[0])  # type: ignore[index]
        restarted = await asyncio.create_subprocess_exec(
            binary, "-c", str(tmp_path / "mosquitto.conf"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            await asyncio.to_thread(wait_for_port, mosquitto.port)
            await wait_for(lambda: stats.connected, within_s=30)
            assert stats.connects == 2
            async with edge(mosquitto) as client:
                await send(client, batch(0, 1))
                assert await acks(client, 1) == [1]
        finally:
            restarted.terminate()
            await restarted.wait()


async def test_cli_serves_and_stops_on_sigterm(settings: CentralSettings) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "central.cli", "--config", str(settings.institution_config),
        "--db", str(settings.database), "--mqtt-host", settings.mqtt_host,
        "--mqtt-port", str(settings.mqtt_port), "--http-port", str(settings.http_port),
        "--client-id", "central-cli", stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GREENGUARD_AUTH_SECRET": TEST_SECRET})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http:
            async with asyncio.timeout(20):
                while True:
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/healthz")).json()["mqtt_connected"]:
                            break
                    await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    assert b"Traceback" not in await proc.stderr.read()


async def test_cancelling_ingest_always_ends_it(mosquitto: Broker, tmp_path: Path) -> None:
    """Guards the cancellation path: a cancellation that aiomqtt converts to an MqttError
    must end ingest, not send it back to reconnecting (the bug the edge uplink had)."""
    store = Store(tmp_path / "central.sqlite")
    ingestor = Ingestor(store, VirtualClock(0.0), IngestStats())
    options = MqttOptions(host=mosquitto.host, port=mosquitto.port, site="+",
                          client_id="central-cancel")
    try:
        for delay in [0.0, 0.01, 0.05, 0.1, 0.3, 0.5] * 2:
            task = asyncio.create_task(run_ingest(ingestor, options))
            await asyncio.sleep(delay)
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=5)
            assert task in done, f"ingest still running 5 s after cancel (at {delay}s)"
    finally:
        store.close()
