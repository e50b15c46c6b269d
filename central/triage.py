"""Sort one uplink MQTT message into what ingest must do with it. Pure: no I/O, no clock.

A payload is never allowed to crash ingest or block a stream:

- topic unparsable, payload undecodable, an edge publishing under another edge's id, or a
  message type that does not belong on its channel → `Rejected` (dead letter, no ack);
- a batch whose envelope is sound but some records are invalid → `StoreBatch` with the
  good records and the poison ones quarantined, acknowledged up to the envelope seq, so one
  poison point cannot wedge the edge's outbox (RELIABILITY.md scenario 7);
- otherwise `StoreBatch`, `EdgeBirth` or `EdgeDeath`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from central.storeport import Quarantine
from protocols.errors import WireError
from protocols.wire import (
    Batch,
    Birth,
    Channel,
    Death,
    Record,
    StreamId,
    TopicParts,
    decode,
    from_dict,
    parse_topic,
    record_from_dict,
)

_MAX_SEQ = 2**63 - 1
_PROBE_RECORD = {"kind": "event", "seq": 1, "ts": 0, "name": "probe", "severity": "info"}


@dataclass(frozen=True, slots=True)
class StoreBatch:
    site: str
    stream: StreamId
    after: int
    upto: int  # the envelope seq: acknowledged even if its own record was quarantined
    records: Sequence[Record]  # a tuple, or SampleColumns (protocols/wire.py)
    quarantine: tuple[Quarantine, ...] = ()


@dataclass(frozen=True, slots=True)
class EdgeBirth:
    site: str
    birth: Birth


@dataclass(frozen=True, slots=True)
class EdgeDeath:
    site: str
    death: Death


@dataclass(frozen=True, slots=True)
class Rejected:
    quarantine: Quarantine


Triaged = StoreBatch | EdgeBirth | EdgeDeath | Rejected


def triage(topic: str, payload: bytes) -> Triaged:
    def reject(error: str) -> Rejected:
        return Rejected(Quarantine(topic, payload, error))

    try:
        parts = parse_topic(topic)
    except WireError as exc:
        return reject(str(exc))
    if parts.channel not in (Channel.TELEMETRY, Channel.EVENTS, Channel.STATE):
        return reject(f"channel {parts.channel.value} is not an uplink channel")
    try:
        msg = decode(payload)
    except WireError as exc:
        if exc.field.startswith("records["):
            salvaged = _salvage(parts, topic, payload)
            if salvaged is not None:
                return salvaged
        return reject(str(exc))
    if isinstance(msg, Batch):
        if parts.channel is Channel.STATE:
            return reject("a batch does not belong on the state channel")
        if msg.stream.edge != parts.edge:
            return reject(f"stream.edge {msg.stream.edge!r} does not match the topic's "
                          f"edge {parts.edge!r}")
        return StoreBatch(parts.site, msg.stream, msg.after, msg.seq, msg.records)
    if isinstance(msg, Birth | Death):
        if parts.channel is not Channel.STATE:
            return reject(f"{type(msg).__name__.lower()} belongs on the state channel")
        if msg.stream.edge != parts.edge:
            return reject(f"stream.edge {msg.stream.edge!r} does not match the topic's "
                          f"edge {parts.edge!r}")
        return EdgeBirth(parts.site, msg) if isinstance(msg, Birth) else EdgeDeath(parts.site,
                                                                                   msg)
    return reject(f"a {type(msg).__name__.lower()} is not an uplink message")


def _salvage(parts: TopicParts, topic: str, payload: bytes) -> StoreBatch | None:
    """Split a batch into good and poison records, or None if the envelope itself is bad."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("records"), list):
        return None
    try:  # the envelope alone: stream, sent, synced
        envelope = from_dict({**obj, "records": [_PROBE_RECORD], "after": 0, "seq": 1})
    except WireError:
        return None
    assert isinstance(envelope, Batch)
    after, upto = obj.get("after"), obj.get("seq")
    if (type(after) is not int or type(upto) is not int
            or not 0 <= after < upto <= _MAX_SEQ or envelope.stream.edge != parts.edge):
        return None
    good: list[Record] = []
    poison: list[Quarantine] = []
    for i, raw in enumerate(obj["records"]):
        try:
            good.append(record_from_dict(raw, f"records[{i}]."))
        except WireError as exc:
            detail = json.dumps({"stream": obj["stream"], "after": after, "seq": upto,
                                 "index": i, "record": raw}, ensure_ascii=True,
                                default=repr).encode()
            poison.append(Quarantine(topic, detail, str(exc)))
    if not poison:
        return None  # the records are fine one by one; the chain between them is not
    prev = after
    for r in good:
        if not prev < r.seq <= upto:
            return None
        prev = r.seq
    return StoreBatch(parts.site, envelope.stream, after, upto, tuple(good), tuple(poison))
