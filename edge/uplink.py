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
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from edge.config import EdgeConfig
from edge.control import ControlGate, RefusedCommand, load_uplink_signer
from edge.errors import EdgeError
from edge.outbox import Outbox, OutboxRow
from protocols.clock import Clock
from protocols.errors import WireError
from protocols.wire import (
    Birth,
    Channel,
    Command,
    Death,
    DeviceInfo,
    Notice,
    Severity,
    encode,
    encode_batch_raw,
    topic,
)

log = logging.getLogger(__name__)

SOFTWARE = "greenguard-edge/0.1.0"
DISK_REPORT_MIN_S = 1.0  # disk status reports: at most one per second while ranges grow


@dataclass
class UplinkStats:
    connects: int = 0
    batches_sent: int = 0
    records_sent: int = 0
    resends: int = 0
    live_records: int = 0  # sent as they were produced
    replayed_records: int = 0  # backlog sent behind live data after a (re)connect
    acks: int = 0
    bad_acks: int = 0
    refused_publishes: int = 0  # MQTT 5 PUBACK with a failure reason code (e.g. ACL)
    disk_reports: int = 0  # births republished to report a disk status change
    commands: int = 0  # commands handed to the agent
    bad_commands: int = 0  # malformed payloads on the cmd topic
    connected: bool = False
    in_flight_batches: int = 0  # backlog batches sent and not yet acknowledged
    last_sent_seq: int = 0  # highest seq published on this connection


class _Client(aiomqtt.Client):
    """aiomqtt's client, counting publishes the broker refused.

    Under MQTT 5 a broker answers a publish its ACL refuses with a PUBACK reason code
    (0x87 not authorised); aiomqtt resolves the publish as if it succeeded. Nothing is
    deleted on a PUBACK anyway (only the central's ack deletes rows), but the refusal must
    be visible, so it is counted and logged once per connection.
    """

    def __init__(self, *args: Any, stats: UplinkStats, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gg_stats = stats
        self._gg_logged = False

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any,
                    properties: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            self._gg_stats.refused_publishes += 1
            if not self._gg_logged:
                log.warning("broker refused a publish: %s (rows stay in the outbox)",
                            reason_code)
                self._gg_logged = True
        super()._on_publish(client, userdata, mid, reason_code, properties)


def _force_close(client: aiomqtt.Client) -> None:
    """Close the socket of a client whose graceful disconnect did not finish (a dead link,
    or a broker that never closes its end: amqtt), so no socket outlives the session."""
    sock = client._client.socket()  # aiomqtt exposes no public way; pinned to aiomqtt 2.x
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that was swallowed on the way.

    Python 3.11's `asyncio.wait_for` can lose a cancellation that races with the result it
    waits for (fixed in 3.12), and aiomqtt awaits every CONNACK, SUBACK and PUBACK through
    it: the task is then marked as cancelling but runs on. Called after each such await.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


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
        self._status_sent = 0  # the outbox's disk_status.version last published
        # Set by the agent: receives each decoded command from the edge's cmd topic.
        self.on_command: Callable[[Command], None] | None = None
        # Set by the agent: answers a command the control gate refused (edge/control.py).
        self.on_refused: Callable[[RefusedCommand], None] | None = None
        self.control = ControlGate(config.mqtt.central_public_key)
        key_file = config.mqtt.signing_key_file
        self.sealer = None if key_file is None else load_uplink_signer(key_file)
        # Highest seq handed to the MQTT client (set before the publish is awaited: the ack
        # for a batch may arrive before its PUBACK). No ack deletes beyond it.
        self._handed_upto = 0

    def _topic(self, channel: Channel) -> str:
        return topic(self.config.site, self.config.edge_id, channel)

    def _sealed(self, channel: Channel, payload: bytes) -> bytes:
        """Signed with this edge's key when it has one (`mqtt.signing_key_file`)."""
        if self.sealer is None:
            return payload
        return self.sealer.seal(self._topic(channel), payload, round(self.clock.now() * 1000))

    async def run(self) -> None:
        """Connect, forward, reconnect with jittered exponential backoff; forever."""
        backoff = 0.5
        mqtt = self.config.mqtt
        self.control.warn_if_open(self.config.edge_id)
        will = aiomqtt.Will(self._topic(Channel.STATE),
                            self._sealed(Channel.STATE, encode(Death(self.outbox.stream))),
                            qos=1, retain=True)
        while True:
            client = _Client(
                mqtt.host, mqtt.port, identifier=f"gg-edge-{self.config.edge_id}",
                username=mqtt.username, password=mqtt.password,
                keepalive=mqtt.keepalive_s, will=will, timeout=10,
                protocol=(aiomqtt.ProtocolVersion.V5 if mqtt.protocol == "5"
                          else aiomqtt.ProtocolVersion.V311),
                stats=self.stats,
                tls_params=None if mqtt.ca_file is None else aiomqtt.TLSParameters(
                    ca_certs=str(mqtt.ca_file),
                    certfile=None if mqtt.cert_file is None else str(mqtt.cert_file),
                    keyfile=None if mqtt.key_file is None else str(mqtt.key_file)),
            )
            try:
                await client.__aenter__()
                try:
                    raise_if_cancelled()
                    self.stats.connects += 1
                    self.stats.connected = True
                    backoff = 0.5
                    log.info("uplink connected to broker %s:%s", mqtt.host, mqtt.port)
                    await self._session(client)
                except asyncio.CancelledError:
                    await self._publish_death(client)
                    raise
                finally:
                    # Not `async with`: a graceful disconnect waits for the broker without a
                    # limit, and a cancelled uplink must end even on a dead link.
                    try:
                        async with asyncio.timeout(2):
                            await client.__aexit__(None, None, None)
                    except (aiomqtt.MqttError, TimeoutError):
                        _force_close(client)
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

    async def _publish_death(self, client: aiomqtt.Client) -> None:
        """A clean stop replaces the retained birth with a retained death, as the will does
        after an unclean one: otherwise the broker keeps the birth and the central (and
        anyone subscribing later) sees the stopped edge online. Best effort, 2 s at most."""
        death = encode(Death(self.outbox.stream))
        try:
            async with asyncio.timeout(2):
                await client.publish(self._topic(Channel.STATE), death, qos=1, retain=True)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            log.info("could not announce the stop to the broker: %s", exc)
        else:
            log.info("uplink stopped; offline state published")

    async def _session(self, client: aiomqtt.Client) -> None:
        birth = self._birth()
        await client.subscribe(self._topic(Channel.ACK), qos=1)
        await self._subscribe_commands(client)
        await client.publish(self._topic(Channel.STATE),
                             self._sealed(Channel.STATE, encode(birth)), qos=1, retain=True)
        raise_if_cancelled()
        # Not a TaskGroup: it cancels and un-cancels this task internally, which would blur
        # the one question `run` must answer after an MqttError: were we cancelled?
        tasks = [asyncio.create_task(self._receive_acks(client), name="uplink-acks"),
                 asyncio.create_task(self._send(client), name="uplink-send"),
                 asyncio.create_task(self._report_disk(client), name="uplink-disk")]
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
            raise_if_cancelled()
            if message.topic.matches(self._topic(Channel.CMD)):
                self._command(message.payload, retained=message.retain)
                continue
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                self.stats.bad_acks += 1
                continue
            try:
                ack = self.control.ack(message.topic.value, bytes(payload),
                                       now_ms=round(self.clock.now() * 1000),
                                       synced=self.clock.synced, retained=message.retain)
            except WireError as exc:
                self.stats.bad_acks += 1
                log.warning("ignoring malformed ack: %s", exc)
                continue
            if ack is None or ack.stream != self.outbox.stream:
                self.stats.bad_acks += 1
                continue
            self.stats.acks += 1
            # Never past what this process sent: an ack "up to 10^13" (a watermark a forger
            # moved) must not delete rows the central has not received.
            upto = min(ack.upto, self._handed_upto)
            if upto > self.outbox.acked_upto:
                # Never raises: a delete the disk cannot take is retried by the outbox.
                self.outbox.ack(upto)
                self._acked.set()

    # -- disk pressure, out of band (edge/diskguard.py) ----------------------------------

    def _birth(self) -> Birth:
        """The birth, with the outbox's disk status as a notice once there was one."""
        box = self.outbox
        status = box.disk_status
        self._status_sent = status.version
        notices: tuple[Notice, ...] = ()
        if status.version > 0:
            notices = (Notice(round(self.clock.now() * 1000), "alarm.outbox_disk",
                              Severity.ALARM if status.pressure else Severity.INFO,
                              status.data(box.stats().depth), self.clock.synced),)
        return Birth(box.stream, round(self.clock.now() * 1000), self.clock.synced, SOFTWARE,
                     self.devices, notices)

    async def _report_disk(self, client: aiomqtt.Client) -> None:
        """Publish the birth again, with the outbox's disk status as a notice (retained on
        the state topic, outside the stream), whenever that status changes, at most once
        per `DISK_REPORT_MIN_S`: an alarm that needs no successful append."""
        status = self.outbox.disk_status
        while True:
            if status.version > self._status_sent:
                self.stats.disk_reports += 1
                await client.publish(self._topic(Channel.STATE), encode(self._birth()),
                                     qos=1, retain=True)
                raise_if_cancelled()
                await asyncio.sleep(DISK_REPORT_MIN_S)
                continue
            self.outbox.status_changed.clear()
            await self.outbox.status_changed.wait()

    # -- commands (central → edge) ------------------------------------------------------

    async def _subscribe_commands(self, client: aiomqtt.Client) -> None:
        """The edge's own cmd topic, when the agent handles commands (never retained)."""
        if self.on_command is not None:
            await client.subscribe(self._topic(Channel.CMD), qos=1)

    def _command(self, payload: Any, *, retained: bool = False) -> None:
        """Check one command at the control gate and hand it to the agent; a malformed one
        is counted, a refused one answered `refused` (never executed)."""
        if self.on_command is None:
            return
        try:
            if not isinstance(payload, bytes | bytearray):
                raise WireError("<message>", payload, "must be bytes")
            cmd = self.control.command(self._topic(Channel.CMD), bytes(payload),
                                       now_ms=round(self.clock.now() * 1000),
                                       synced=self.clock.synced, retained=retained)
        except WireError as exc:
            self.stats.bad_commands += 1
            log.warning("ignoring malformed command: %s", exc)
            return
        if cmd is None:
            return
        if isinstance(cmd, RefusedCommand):
            if self.on_refused is not None:
                try:
                    self.on_refused(cmd)
                except EdgeError as exc:
                    log.error("refused command %s not recorded: %s", cmd.command.id, exc)
            return
        self.stats.commands += 1
        try:
            self.on_command(cmd)
        except EdgeError as exc:  # the agent could not record it: no result, the central retries
            log.error("command %s not executed: %s", cmd.id, exc)

    async def _send(self, client: aiomqtt.Client) -> None:
        """Live data first, backlog replayed behind it at a bounded rate.

        On connect, rows up to `boundary` (the last seq at that moment) are backlog and
        everything newer is live. Live rows are sent as soon as they exist; backlog batches
        follow, at most `replay_records_per_s` and `max_in_flight_batches` unacknowledged
        at a time. The central stores live batches at once (their `after` points into the
        backlog, so they wait as a pending range) and its cumulative ack jumps over them
        when the backlog arrives. Without acks for `resend_after_s`, everything
        unacknowledged is sent again from the last acknowledged seq.
        """
        s = self.config.uplink
        loop = asyncio.get_running_loop()
        acked = self.outbox.acked_upto
        boundary = self.outbox.last_seq
        backlog_next = live_next = acked  # chain pointers: last seq sent on each lane
        live_next = boundary
        in_flight: list[int] = []  # last seq of each unacknowledged backlog batch
        last_acked, last_progress = acked, loop.time()
        budget, budget_time = float(s.batch_max_records), loop.time()
        last_live = 0.0
        while True:
            raise_if_cancelled()
            now = loop.time()
            acked = self.outbox.acked_upto
            if acked > last_acked:
                last_acked, last_progress = acked, now
            in_flight = [q for q in in_flight if q > acked]
            self.stats.in_flight_batches = len(in_flight)
            unacked = max(backlog_next, live_next) > acked
            if unacked and now - last_progress > s.resend_after_s:
                self.stats.resends += 1
                log.info("no ack for %.0fs; resending from seq %d", s.resend_after_s, acked)
                boundary = self.outbox.last_seq
                backlog_next, live_next, in_flight = acked, boundary, []
                last_progress = now
            backlog_next = max(backlog_next, acked)
            if backlog_next >= boundary:  # backlog done: one lane again
                live_next = boundary = max(live_next, backlog_next)
            budget = min(budget + (now - budget_time) * s.replay_records_per_s,
                         float(max(s.batch_max_records, s.replay_records_per_s)))
            budget_time = now
            sent_any = False
            live = self.outbox.read_after(live_next, s.batch_max_records)
            # Coalesce: a full batch goes at once, a partial one after `linger_s`, so a
            # trickle of readings does not become a trickle of one-record transactions.
            if live and (len(live) == s.batch_max_records or now - last_live >= s.linger_s):
                await self._publish(client, live, live_next)
                live_next = live[-1].seq
                last_live = now
                self.stats.live_records += len(live)
                sent_any = True
            if (backlog_next < boundary and len(in_flight) < s.max_in_flight_batches
                    and budget >= 1):
                limit = min(s.batch_max_records, int(budget))
                rows = [r for r in self.outbox.read_after(backlog_next, limit)
                        if r.seq <= boundary]
                if rows:
                    await self._publish(client, rows, backlog_next)
                    backlog_next = rows[-1].seq
                    in_flight.append(backlog_next)
                    budget -= len(rows)
                    self.stats.replayed_records += len(rows)
                    sent_any = True
                else:  # the rest of the backlog was acknowledged or dropped
                    backlog_next = boundary
            if sent_any:
                if not unacked:
                    last_progress = now
                continue
            self.outbox.changed.clear()
            self._acked.clear()
            # Wake on an ack (room for backlog), on new rows (unless a partial live batch is
            # already waiting for its linger to pass), or when that linger is due.
            timeout = 0.2 if backlog_next < boundary else 1.0
            events = [self._acked]
            if live:
                timeout = min(timeout, max(0.0, last_live + s.linger_s - now))
            else:
                events.append(self.outbox.changed)
            waiters = [asyncio.ensure_future(e.wait()) for e in events]
            try:
                await asyncio.wait(waiters, timeout=timeout,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()

    async def _publish(self, client: aiomqtt.Client, rows: list[OutboxRow], after: int) -> None:
        for channel, first_after, chunk in split_batches(rows, after):
            payload = encode_batch_raw(
                self.outbox.stream, after=first_after, seq=chunk[-1].seq,
                sent=round(self.clock.now() * 1000), synced=self.clock.synced,
                records_json=[r.body for r in chunk])
            self._handed_upto = max(self._handed_upto, chunk[-1].seq)
            await client.publish(self._topic(channel), self._sealed(channel, payload), qos=1)
            raise_if_cancelled()
            self.stats.batches_sent += 1
            self.stats.records_sent += len(chunk)
            self.stats.last_sent_seq = max(self.stats.last_sent_seq, chunk[-1].seq)
