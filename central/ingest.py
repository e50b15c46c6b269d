"""Ingest: MQTT uplink → triage → store → ack, with counters and reconnect.

The order is the whole point: the ack ("stored up to seq N") is published only after the
store transaction committed, because the edge deletes its outbox rows on that ack. If the
write fails there is no ack at all (back-pressure): the edge keeps the rows and resends.

`Ingestor.handle` is the synchronous core (testable without a broker); `run_ingest` wires
it to aiomqtt: QoS 1 subscriptions on telemetry, events and state, a persistent session so
the broker queues uplink while the central restarts, and jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from central.admission import IngestGuard
from central.errors import StoreError
from central.samplerows import clock_counts, max_ts
from central.storeport import BatchWrite, IngestStore, Quarantine
from central.telemetry import TelemetryBatch, TelemetryStore
from central.triage import EdgeBirth, EdgeDeath, Rejected, StoreBatch, Triaged, triage
from protocols.clock import Clock
from protocols.signing import Signer
from protocols.wire import (
    Ack,
    Batch,
    Channel,
    Event,
    IntervalRecord,
    Record,
    StreamId,
    encode,
    encode_record,
    subscription,
    topic,
)

log = logging.getLogger(__name__)

UPLINK_CHANNELS = (Channel.TELEMETRY, Channel.EVENTS, Channel.STATE)


STORE_WRITE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(slots=True)
class IngestStats:
    """Counters since start; exposed by the API and asserted by tests."""

    received: int = 0  # MQTT messages handled
    batches: int = 0  # batches committed
    stored_records: int = 0  # new rows (or newer interval versions)
    duplicates: int = 0  # records already stored, absorbed by the dedup keys
    dead_letters: int = 0  # payloads refused plus poison records quarantined
    store_errors: int = 0  # failed writes: nothing acknowledged
    acks_sent: int = 0
    births: int = 0
    deaths: int = 0
    connects: int = 0
    disconnects: int = 0
    # Clock problems, flagged and counted but never dropped: unsynced and far-past records
    # are stored with their timestamps and synced flag (they can be corrected or excluded
    # later); records from beyond the clock tolerance are quarantined (dead letters), so a
    # sample stamped 2100 cannot pin a latest value.
    clock_unsynced: int = 0  # records the edge marked as taken with an unsynced clock
    clock_future: int = 0  # timestamped more than CLOCK_FUTURE_S after now: quarantined
    clock_far_past: int = 0  # timestamped before CLOCK_EPOCH_FLOOR (a clock at 1970)
    connected: bool = False
    last_error: str | None = None
    # Store write latency of each committed group (or failed write), as a histogram over
    # STORE_WRITE_BUCKETS_S: counts per bucket (not cumulative) and the sum of seconds.
    store_write_counts: list[int] = dataclasses.field(
        default_factory=lambda: [0] * (len(STORE_WRITE_BUCKETS_S) + 1))
    store_write_seconds: float = 0.0

    def observe_store_write(self, seconds: float) -> None:
        self.store_write_counts[bisect.bisect_left(STORE_WRITE_BUCKETS_S, seconds)] += 1
        self.store_write_seconds += seconds

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class AckOut:
    topic: str
    payload: bytes
    ack: Ack


CLOCK_FUTURE_S = 300.0
CLOCK_EPOCH_FLOOR_MS = 946_684_800_000  # 2000-01-01T00:00:00Z


def _record_ts(record: Record) -> int:
    return record.start if isinstance(record, IntervalRecord) else record.ts


class Ingestor:
    """Turns uplink messages into store writes and the acks to publish after they commit.

    `prepare` (decode and triage, pure) and `commit` (one store transaction for many
    messages) are separate so `run_ingest` can decode the next messages while the previous
    group commits; `handle` does both for one message.
    """

    def __init__(self, store: IngestStore, clock: Clock, stats: IngestStats | None = None,
                 telemetry: TelemetryStore | None = None, guard: IngestGuard | None = None,
                 signer: Signer | None = None,
                 on_stored: Callable[[Sequence[StoreBatch]], None] | None = None) -> None:
        self.store = store
        # Called after a commit, before its acks (central/notify/hook.py); a StoreError
        # there withholds the acks, so the edge resends.
        self.on_stored = on_stored
        self.telemetry = telemetry  # a second store (InfluxDB), written before the SQL store
        self.clock = clock
        self.stats = stats if stats is not None else IngestStats()
        # Configured edges, epochs and seq bounds (central/admission.py); None admits all
        # (unit tests of the ack contract; the central process always has one).
        self.guard = guard
        # Signs every ack (protocols/signing.py); None: bare acks, as before signing.
        self.signer = signer
        self._store_failing = False

    def handle(self, topic_name: str, payload: bytes) -> AckOut | None:
        acks = self.commit([self.prepare(topic_name, payload)])
        return acks[0] if acks else None

    def prepare(self, topic_name: str, payload: bytes) -> Triaged:
        self.stats.received += 1
        if self.guard is not None:  # an edge's signed uplink envelope (admission.py)
            opened = self.guard.unseal(topic_name, payload)
            if isinstance(opened, str):
                return Rejected(Quarantine(topic_name, payload, opened))
            payload = opened
        return triage(topic_name, payload)

    def commit(self, items: Sequence[Triaged]) -> list[AckOut]:
        """Store `items` in arrival order; batches that follow each other are written in one
        transaction (group commit). Returns one ack per stream, with the watermark of its
        last batch, only for what committed: a failed write acknowledges nothing."""
        acks: dict[StreamId, AckOut] = {}
        group: list[StoreBatch] = []
        for item in items:
            item = self._admit(item)
            if isinstance(item, StoreBatch):
                group.append(item)
                continue
            if group:
                self._commit_batches(group, acks)
                group = []
            self._commit_other(item)
        if group:
            self._commit_batches(group, acks)
        return list(acks.values())

    def _admit(self, item: Triaged) -> Triaged:
        """The guard's verdict (a refused message becomes a dead letter) and the future
        quarantine: records stamped beyond the clock tolerance go to dead letters with the
        batch still acknowledged, like poison records."""
        now = self.clock.now()
        guard = self.guard
        if guard is not None and not isinstance(item, Rejected):
            if isinstance(item, StoreBatch):
                reason = guard.batch(item.site, item.stream, item.after, item.upto, now)
                if reason is not None:
                    channel = (Channel.EVENTS if item.records and all(
                        isinstance(r, Event) for r in item.records) else Channel.TELEMETRY)
                    payload = encode(Batch(item.stream, item.after, 0, True, item.records)) \
                        if item.records else b""
                    return self._refused(item.site, item.stream.edge, channel, payload,
                                         reason, now)
            elif isinstance(item, EdgeBirth):
                reason = guard.birth(item.site, item.birth.stream, now)
                if reason is not None:
                    return self._refused(item.site, item.birth.stream.edge, Channel.STATE,
                                         encode(item.birth), reason, now)
            else:
                reason = guard.death(item.site, item.death.stream, now)
                if reason is not None:
                    return self._refused(item.site, item.death.stream.edge, Channel.STATE,
                                         encode(item.death), reason, now)
        if isinstance(item, StoreBatch):
            return self._quarantine_future(item, now)
        return item

    def _refused(self, site: str, edge: str, channel: Channel, payload: bytes, reason: str,
                 now: float) -> Rejected:
        assert self.guard is not None
        alarm = self.guard.alarm_event(site, edge, reason, now)
        if alarm is not None:
            stream, event = alarm
            try:
                self.store.store_records(stream, event.seq - 1, event.seq, [event], site=site,
                                         now=now)
            except StoreError as exc:  # the dead letter below still records the refusal
                log.warning("cannot store the foreign edge alarm: %s", exc)
        return Rejected(Quarantine(topic(site, edge, channel), payload, reason))

    def _quarantine_future(self, item: StoreBatch, now: float) -> StoreBatch:
        """Samples and interval records from beyond the clock tolerance go to dead letters.
        Events are stored (and counted): an edge's `clock.jump` is the evidence an operator
        needs, and the alarm view ignores events stamped after its end anyway."""
        future_ms = (now + CLOCK_FUTURE_S) * 1000
        if not item.records or max_ts(item.records) <= future_ms:
            return item
        good: list[Record] = []
        held = list(item.quarantine)
        where = topic(item.site, item.stream.edge, Channel.TELEMETRY)
        for r in item.records:
            if _record_ts(r) <= future_ms:
                good.append(r)
                continue
            self.stats.clock_future += 1
            if isinstance(r, Event):
                good.append(r)
                continue
            detail = (f'{{"stream":{{"edge":{json.dumps(item.stream.edge)},"epoch":'
                      f'{item.stream.epoch}}},"seq":{r.seq},"record":{encode_record(r)}}}')
            held.append(Quarantine(where, detail.encode(),
                                   f"{item.stream} seq {r.seq}: timestamp {_record_ts(r)} is "
                                   f"more than {CLOCK_FUTURE_S:g} s after the central's "
                                   f"clock ({round(now * 1000)}): quarantined"))
        return dataclasses.replace(item, records=tuple(good), quarantine=tuple(held))

    def _commit_batches(self, group: list[StoreBatch], acks: dict[StreamId, AckOut]) -> None:
        stats = self.stats
        now = self.clock.now()
        for item in group:
            self._check_clocks(item.records, now)
        started = time.perf_counter()
        try:
            if self.telemetry is not None:  # first: a failure must not move the watermark
                for b in group:
                    self.telemetry.write(TelemetryBatch(b.site, b.stream, b.after, b.upto,
                                                        tuple(b.records)))
            results = self.store.store_many(
                [BatchWrite(b.stream, b.after, b.upto, b.records, b.site, b.quarantine)
                 for b in group], now=now)
            if self.on_stored is not None:
                self.on_stored(group)
        except StoreError as exc:
            self._failed(exc)
            return
        finally:
            stats.observe_store_write(time.perf_counter() - started)
        self._recovered()
        for item, result in zip(group, results, strict=True):
            stats.batches += 1
            stats.stored_records += result.inserted
            stats.duplicates += result.duplicates
            stats.dead_letters += result.quarantined
            if self.guard is not None:
                self.guard.stored(item.stream, result.watermark)
            ack = Ack(item.stream, result.watermark)
            where = topic(item.site, item.stream.edge, Channel.ACK)
            acks[item.stream] = AckOut(where, encode(ack) if self.signer is None
                                       else self.signer.sign(where, ack, round(now * 1000)),
                                       ack)

    def _commit_other(self, item: Rejected | EdgeBirth | EdgeDeath) -> None:
        stats = self.stats
        now = self.clock.now()
        try:
            if isinstance(item, Rejected):
                stats.dead_letters += 1
                log.debug("dead letter on %s: %s", item.quarantine.topic,
                          item.quarantine.error)
                self.store.dead_letter(item.quarantine, now=now)
            elif isinstance(item, EdgeBirth):
                self.store.record_birth(item.site, item.birth, now=now)
                for notice in item.birth.notices:  # disk pressure: out of band, no ack
                    self.store.record_notice(item.birth.stream, notice, now=now)
                    log.warning("edge %s: %s %s", item.birth.stream.edge, notice.name,
                                notice.data.get("state", ""))
                stats.births += 1
                if self.guard is not None:
                    self.guard.born(item.birth.stream, item.site)
            else:
                self.store.record_death(item.site, item.death, now=now)
                stats.deaths += 1
        except StoreError as exc:
            self._failed(exc)
            return
        self._recovered()

    def _failed(self, exc: StoreError) -> None:
        self.stats.store_errors += 1
        self.stats.last_error = str(exc)
        if not self._store_failing:
            log.warning("store failing, not acknowledging: %s", exc)
            self._store_failing = True

    def _recovered(self) -> None:
        if self._store_failing:
            log.warning("store recovered")
            self._store_failing = False

    def _check_clocks(self, records: Sequence[Record], now: float) -> None:
        stats = self.stats
        # unsynced, far past (future ones were quarantined and counted)
        counts = clock_counts(records, CLOCK_EPOCH_FLOOR_MS)
        if any(counts):
            if not (stats.clock_unsynced or stats.clock_far_past):
                log.warning("records with clock problems arriving (unsynced %d, far past %d):"
                            " stored and flagged", *counts)
            stats.clock_unsynced += counts[0]
            stats.clock_far_past += counts[1]


@dataclass(frozen=True, slots=True)
class MqttOptions:
    host: str
    port: int
    site: str = "+"
    client_id: str = "greenguard-central"
    keepalive_s: int = 30
    io_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    max_queued_messages: int = 10_000  # aiomqtt drops beyond this; unacked, so resent
    tls: aiomqtt.TLSParameters | None = None  # CA, client certificate and key
    username: str | None = None  # a broker with a password file (the demo's)
    password: str | None = None
    # MQTT 5 shared subscription group (docs/scale-out.md): every worker of the group gets
    # a share of the uplink. Such workers use MQTT 5 sessions that end with the connection,
    # so the broker stops routing to a dead worker at once; what was in flight to it is
    # resent by the edge, which deletes nothing before the ack.
    share_group: str | None = None
    # Decoded messages waiting for the store: the writer takes all of them in one
    # transaction; the receiver stops reading (and aiomqtt's queue fills) beyond this.
    max_pending_messages: int = 256


def tls_parameters(ca_file: Path | None, cert_file: Path | None = None,
                   key_file: Path | None = None) -> aiomqtt.TLSParameters | None:
    """TLS for the production broker (deploy/mosquitto); None: plain MQTT."""
    if ca_file is None:
        return None
    return aiomqtt.TLSParameters(ca_certs=str(ca_file),
                                 certfile=None if cert_file is None else str(cert_file),
                                 keyfile=None if key_file is None else str(key_file))


def uplink_subscriptions(site: str = "+", share_group: str | None = None) -> list[str]:
    """Topic filters of the uplink: `$share/<group>/gg/v1/<site>/+/<channel>` when shared."""
    prefix = f"$share/{share_group}/" if share_group else ""
    return [prefix + subscription(channel, site=site) for channel in UPLINK_CHANNELS]


def backoff_delays(initial: float, maximum: float, rng: random.Random) -> Iterator[float]:
    """Exponential backoff with equal jitter: delay in [base/2, base], base doubling up to
    `maximum`, so a fleet of reconnecting clients spreads out instead of stampeding."""
    base = initial
    while True:
        yield base / 2 + rng.uniform(0, base / 2)
        base = min(maximum, base * 2)


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return b"" if payload is None else str(payload).encode()


def raise_if_cancelled() -> None:
    """Re-raise a cancellation lost inside aiomqtt: Python 3.11's `asyncio.wait_for`, which
    aiomqtt awaits every CONNACK, SUBACK and PUBACK through, can swallow one that races with
    the result (fixed in 3.12). The edge's uplink does the same."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def run_ingest(
    ingestor: Ingestor,
    options: MqttOptions,
    *,
    subscribed: asyncio.Event | None = None,
    rng: random.Random | None = None,
    on_client: Callable[[aiomqtt.Client | None], None] | None = None,
) -> None:
    """Run until cancelled; reconnect with jittered exponential backoff on any MQTT error.
    `on_client` is told the connected client (and None when it goes): the central publishes
    its commands over this connection, so it needs one MQTT identity, not two (under the
    hardened broker the client id is the certificate's CN; a second connection with the
    same certificate would take the first one's session over)."""
    rng = rng or random.Random()
    stats = ingestor.stats
    delays = backoff_delays(options.backoff_initial_s, options.backoff_max_s, rng)
    outage_logged = False
    try:
        while True:
            try:
                shared = options.share_group is not None
                async with aiomqtt.Client(
                    options.host, options.port, identifier=options.client_id,
                    protocol=aiomqtt.ProtocolVersion.V5 if shared else None,
                    clean_session=None if shared else False, keepalive=options.keepalive_s,
                    timeout=options.io_timeout_s,
                    max_queued_incoming_messages=options.max_queued_messages,
                    tls_params=options.tls, username=options.username,
                    password=options.password,
                ) as client:
                    raise_if_cancelled()
                    for topic_filter in uplink_subscriptions(options.site,
                                                             options.share_group):
                        await client.subscribe(topic_filter, qos=1,
                                               timeout=options.io_timeout_s)
                    raise_if_cancelled()
                    stats.connects += 1
                    stats.connected = True
                    delays = backoff_delays(options.backoff_initial_s, options.backoff_max_s,
                                            rng)
                    if outage_logged:
                        log.warning("MQTT connection to %s:%s recovered", options.host,
                                    options.port)
                        outage_logged = False
                    if subscribed is not None:
                        subscribed.set()
                    if on_client is not None:
                        on_client(client)
                    try:
                        await _pump(client, ingestor, options)
                    finally:
                        if on_client is not None:
                            on_client(None)
            except aiomqtt.MqttError as exc:
                if stats.connected:
                    stats.disconnects += 1
                stats.connected = False
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # aiomqtt can turn our cancellation into an MqttError on the way out of
                    # the client; swallowing it would keep a cancelled ingest reconnecting.
                    raise asyncio.CancelledError from exc
                stats.last_error = f"mqtt: {exc}"
                if not outage_logged:
                    log.warning("MQTT connection to %s:%s lost or refused, retrying: %s",
                                options.host, options.port, exc)
                    outage_logged = True
            await asyncio.sleep(next(delays))
    finally:
        stats.connected = False


async def _pump(client: aiomqtt.Client, ingestor: Ingestor, options: MqttOptions) -> None:
    """Receive and decode messages as they come; commit everything that queued up meanwhile
    in one transaction (group commit), then publish the acks: never before the commit.

    The commit runs on the event loop, not in a worker thread (unless an InfluxDB telemetry
    store is configured, whose HTTP writes may take seconds): SQLite gives up the GIL on
    every row of an executemany, and with the loop busy decoding, each row then waited for
    the GIL's switch interval (measured: 168 ms per group in a thread against 60 ms inline).
    Receiver and writer end together: whichever fails first (an MqttError) cancels the
    other; acks not yet sent are simply resent later (the edge resends, dedup absorbs it).
    """
    pending: list[Triaged] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def receive() -> None:
        async for message in client.messages:
            pending.append(ingestor.prepare(message.topic.value,
                                            _payload_bytes(message.payload)))
            arrived.set()
            if len(pending) >= options.max_pending_messages:
                room.clear()
                await room.wait()

    async def write() -> None:
        while True:
            await arrived.wait()
            arrived.clear()
            group = pending[:]
            pending.clear()
            room.set()
            if ingestor.telemetry is None:
                acks = ingestor.commit(group)
            else:
                # An InfluxDB write is HTTP with retries (seconds when it is down): off the
                # loop, or MQTT keepalives stall and the broker drops the connection.
                acks = await asyncio.to_thread(ingestor.commit, group)
            raise_if_cancelled()
            for out in acks:
                await client.publish(out.topic, out.payload, qos=1, retain=False,
                                     timeout=options.io_timeout_s)
                raise_if_cancelled()
                ingestor.stats.acks_sent += 1

    tasks = [asyncio.create_task(receive(), name="ingest-receive"),
             asyncio.create_task(write(), name="ingest-write")]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()  # re-raises the MqttError that ended the session
