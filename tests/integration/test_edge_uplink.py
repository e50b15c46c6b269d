"""Uplink against a real Mosquitto: rows leave the outbox only on the central's ack."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from edge.config import parse_edge_config
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.clock import SystemClock
from protocols.wire import Ack, Batch, Birth, Channel, Sample, decode, encode, subscription, topic
from tests.conftest import Broker

pytestmark = pytest.mark.integration


def make_uplink(broker: Broker, tmp_path: Path, **uplink: float) -> Uplink:
    config = parse_edge_config({
        "edge_id": "edge-1", "site": "school",
        "mqtt": {"host": broker.host, "port": broker.port},
        "uplink": {"batch_max_records": 10, **uplink},
        "devices": [{"id": "m1", "host": "127.0.0.1", "model": "eastron-sdm120"}],
    })
    outbox = Outbox(tmp_path / "outbox.sqlite", edge_id="edge-1")
    return Uplink(config, outbox, SystemClock())


@contextlib.asynccontextmanager
async def running(uplink: Uplink) -> AsyncIterator[None]:
    task = asyncio.create_task(uplink.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def collect(client: aiomqtt.Client, n: int, within_s: float = 10) -> list[Batch]:
    batches: list[Batch] = []
    async with asyncio.timeout(within_s):
        async for message in client.messages:
            msg = decode(message.payload)  # type: ignore[arg-type]
            if isinstance(msg, Batch):
                batches.append(msg)
                if sum(len(b.records) for b in batches) >= n:
                    return batches
    return batches


async def test_rows_are_deleted_only_after_the_central_acks(
    mosquitto: Broker, tmp_path: Path
) -> None:
    uplink = make_uplink(mosquitto, tmp_path)
    outbox = uplink.outbox
    outbox.append([Sample(0, i, "m1", "power_w", float(i), "W") for i in range(25)])
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="central") as central:
        await central.subscribe(subscription(Channel.TELEMETRY), qos=1)
        async with running(uplink):
            batches = await collect(central, 25)
            assert [len(b.records) for b in batches] == [10, 10, 5]
            assert [b.after for b in batches] == [0, 10, 20]
            await asyncio.sleep(0.3)
            assert outbox.stats().depth == 25  # PUBACKs alone delete nothing
            ack = Ack(outbox.stream, 20)
            await central.publish(topic("school", "edge-1", Channel.ACK), encode(ack), qos=1)
            async with asyncio.timeout(5):
                while outbox.acked_upto != 20:
                    await asyncio.sleep(0.02)
            assert [r.seq for r in outbox.read_after(0, 100)] == list(range(21, 26))


async def test_unacknowledged_rows_are_resent(mosquitto: Broker, tmp_path: Path) -> None:
    uplink = make_uplink(mosquitto, tmp_path, resend_after_s=0.5)
    uplink.outbox.append([Sample(0, 1, "m1", "power_w", 1.0, "W")])
    async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="central") as central:
        await central.subscribe(subscription(Channel.TELEMETRY), qos=1)
        async with running(uplink):
            first = await collect(central, 1)
            again = await collect(central, 1)
    assert first[0].records == again[0].records
    assert uplink.stats.resends >= 1


async def test_birth_is_retained_and_names_the_stream(mosquitto: Broker, tmp_path: Path) -> None:
    uplink = make_uplink(mosquitto, tmp_path)
    async with running(uplink):
        async with asyncio.timeout(5):
            while not uplink.stats.connected:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="late") as late:
            await late.subscribe(subscription(Channel.STATE), qos=1)
            async with asyncio.timeout(5):
                message = await anext(aiter(late.messages))
    birth = decode(message.payload)  # type: ignore[arg-type]
    assert isinstance(birth, Birth)
    assert birth.stream == uplink.outbox.stream
    assert message.retain


async def test_cancelling_the_uplink_always_ends_it(mosquitto: Broker, tmp_path: Path) -> None:
    """Guards the cancellation path. aiomqtt can turn a cancellation into an MqttError on its
    way out of the client; the uplink once swallowed it and kept reconnecting after being
    cancelled (seen as a hang of the resend test above, 2 in 12 runs under load). This test
    cancels at many moments; it did not catch the old code in our runs, the resend test did."""
    uplink = make_uplink(mosquitto, tmp_path, resend_after_s=0.2)
    uplink.outbox.append([Sample(0, i, "m1", "power_w", 1.0, "W") for i in range(50)])
    for delay in [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7] * 2:
        task = asyncio.create_task(uplink.run())
        await asyncio.sleep(delay)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert task in done, f"uplink still running 5 s after cancel (cancelled at {delay}s)"
