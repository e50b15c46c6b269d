"""Uplink: forwards outbox rows to the central over MQTT and deletes them only on the
central's application-level acknowledgement ("stored up to seq N"), never on a PUBACK.

On every (re)connect the edge publishes its birth (retained) with a will that announces its
death, subscribes to its ack topic, and resends from the last acknowledged seq. Batches are
chained by `after` so the central can acknowledge cumulatively even if batches arrive out
of order. At most `max_in_flight_batches` are unacknowledged at once; when no ack arrives for
`resend_after_s`, the unacknowledged rows are sent again (the central dedups by seq).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import aiomqtt

from edge.config import EdgeConfig
from edge.outbox import Outbox, OutboxRow
from protocols.clock import Clock
from protocols.errors import WireError
from protocols.wire import (
    Ack,
    Birth,
    Channel,
    Death,
    DeviceInfo,
    decode,
    encode,
    encode_batch_raw,
    topic,
)

log = logging.getLogger(__name__)

SOFTWARE = "greenguard-edge/0.1.0"


@dataclass
class UplinkStats:
    connects: int = 0
    batches_sent: int = 0
    records_sent: int = 0
    resends: int = 0
    acks: int = 0
    bad_acks: int = 0
    connected: bool = False


def split_batches(rows: list[OutboxRow], after: int) -> list[tuple[Channel, int, list[OutboxRow]]]:
    """Cut consecutive rows into batches of one channel each, chained by `after`."""
    out: list[tuple[Channel, int, list[OutboxRow]]] = []
    for row in rows:
        if out and out[-1][0] is row.channel:
            out[-1][2].append(row)
        else:
            out.append((row.channel, after, [row]))
        after = row.seq
    return out


class Uplink:
    def __init__(self, config: EdgeConfig, outbox: Outbox, clock: Clock,
                 devices: tuple[DeviceInfo, ...] = ()) -> None:
        self.config = config
        self.outbox = outbox
        self.clock = clock
        self.devices = devices
        self.stats = UplinkStats()
        self._acked = asyncio.Event()

    def _topic(self, channel: Channel) -> str:
        return topic(self.config.site, self.config.edge_id, channel)

    async def run(self) -> None:
        """Connect, forward, reconnect with jittered exponential backoff; forever."""
        backoff = 0.5
        mqtt = self.config.mqtt
        will = aiomqtt.Will(self._topic(Channel.STATE), encode(Death(self.outbox.stream)),
                            qos=1, retain=True)
        while True:
            try:
                async with aiomqtt.Client(
                    mqtt.host, mqtt.port, identifier=f"gg-edge-{self.config.edge_id}",
                    username=mqtt.username, password=mqtt.password,
                    keepalive=mqtt.keepalive_s, will=will, timeout=10,
                ) as client:
                    self.stats.connects += 1
                    self.stats.connected = True
                    backoff = 0.5
                    log.info("uplink connected to %s:%s", mqtt.host, mqtt.port)
                    await self._session(client)
            except aiomqtt.MqttError as exc:
                self.stats.connected = False
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # aiomqtt can turn our cancellation into an MqttError on the way out of
                    # the client; swallowing it would keep a cancelled uplink reconnecting.
                    raise asyncio.CancelledError from exc
                log.warning("uplink lost: %s", exc)
            delay = backoff * random.uniform(0.5, 1.5)
            backoff = min(backoff * 2, 30.0)
            await asyncio.sleep(delay)

    async def _session(self, client: aiomqtt.Client) -> None:
        birth = Birth(self.outbox.stream, round(self.clock.now() * 1000), self.clock.synced,
                      SOFTWARE, self.devices)
        await client.subscribe(self._topic(Channel.ACK), qos=1)
        await client.publish(self._topic(Channel.STATE), encode(birth), qos=1, retain=True)
        # Not a TaskGroup: it cancels and un-cancels this task internally, which would blur
        # the one question `run` must answer after an MqttError: were we cancelled?
        tasks = [asyncio.create_task(self._receive_acks(client), name="uplink-acks"),
                 asyncio.create_task(self._send(client), name="uplink-send")]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # re-raises the MqttError that ended the session

    async def _receive_acks(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                self.stats.bad_acks += 1
                continue
            try:
                ack = decode(bytes(payload))
            except WireError as exc:
                self.stats.bad_acks += 1
                log.warning("ignoring malformed ack: %s", exc)
                continue
            if not isinstance(ack, Ack) or ack.stream != self.outbox.stream:
                self.stats.bad_acks += 1
                continue
            self.stats.acks += 1
            if ack.upto > self.outbox.acked_upto:
                self.outbox.ack(ack.upto)
                self._acked.set()

    async def _send(self, client: aiomqtt.Client) -> None:
        settings = self.config.uplink
        loop = asyncio.get_running_loop()
        sent_upto = self.outbox.acked_upto
        in_flight: list[int] = []  # last seq of each unacknowledged batch
        last_progress = loop.time()
        while True:
            acked = self.outbox.acked_upto
            if in_flight and in_flight[0] <= acked:
                last_progress = loop.time()
            in_flight = [s for s in in_flight if s > acked]
            if in_flight and loop.time() - last_progress > settings.resend_after_s:
                self.stats.resends += 1
                log.info("no ack for %.0fs; resending from seq %d", settings.resend_after_s,
                         acked)
                sent_upto, in_flight, last_progress = acked, [], loop.time()
            sent_upto = max(sent_upto, acked)
            room = settings.max_in_flight_batches - len(in_flight)
            rows = (self.outbox.read_after(sent_upto, settings.batch_max_records * room)
                    if room > 0 else [])
            if not rows:
                self.outbox.changed.clear()
                self._acked.clear()
                waiters = [asyncio.ensure_future(self.outbox.changed.wait()),
                           asyncio.ensure_future(self._acked.wait())]
                try:
                    await asyncio.wait(waiters, timeout=1.0,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
                continue
            if not in_flight:
                last_progress = loop.time()
            for channel, after, chunk in split_batches(rows, sent_upto):
                for start in range(0, len(chunk), settings.batch_max_records):
                    part = chunk[start : start + settings.batch_max_records]
                    first_after = after if start == 0 else chunk[start - 1].seq
                    payload = encode_batch_raw(
                        self.outbox.stream, after=first_after, seq=part[-1].seq,
                        sent=round(self.clock.now() * 1000), synced=self.clock.synced,
                        records_json=[r.body for r in part])
                    await client.publish(self._topic(channel), payload, qos=1)
                    self.stats.batches_sent += 1
                    self.stats.records_sent += len(part)
                    in_flight.append(part[-1].seq)
            sent_upto = rows[-1].seq
