"""Wire protocol v1 between edge agents and the central aggregator (see docs/wire-protocol.md).

All messages are UTF-8 JSON objects with `"v": 1` and a `"type"`. Times are integers in
milliseconds since the Unix epoch, UTC. Every uplink record carries `seq`, strictly
increasing within its `stream` (edge id + installation epoch).

    Uplink  (edge → central)   Batch (telemetry | events), Birth (with optional Notices), Death
    Downlink (central → edge)  Ack, Command, each wrapped in a Signed envelope when the
                               central has a control key (protocols/signing.py)

`decode_*` functions raise `WireError` naming the offending field; they never raise
anything else on any input (fuzzed in tests).
"""

from __future__ import annotations

import enum
import json
import math
import operator
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from protocols.errors import WireError

try:  # a C JSON parser, 2-3x faster on uplink batches; optional, the stdlib is the fallback
    import orjson
except ImportError:  # pragma: no cover - installed with the edge and central extras
    orjson = None  # type: ignore[assignment]

VERSION = 1
TOPIC_ROOT = "gg/v1"

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_.]{0,63}$")
MAX_MESSAGE_BYTES = 1 << 20
# orjson turns integers beyond 64 bits into floats where the stdlib keeps them exact, and
# an exact integer is what the validators judge: payloads with a run of 19 or more digits
# take the stdlib path. Found by mapping digits to "0" and the rest to " " and searching
# for 19 zeros (C speed; a regex took three times as long as parsing the JSON).
_DIGITS_TO_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19


def _has_long_number(payload: bytes) -> bool:
    return payload.translate(_DIGITS_TO_ZERO).find(_LONG_RUN) >= 0
MAX_TS_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
# An integer sample value must fit in 64 bits (signed), as the stores' integer columns do:
# a larger one is refused naming the field, not left to overflow in the store.
MIN_INT_VALUE = -(2**63)
MAX_INT_VALUE = 2**63 - 1


# -- topics -----------------------------------------------------------------------


class Channel(enum.StrEnum):
    TELEMETRY = "telemetry"  # edge → central, QoS 1: samples and interval records
    EVENTS = "events"  # edge → central, QoS 1: events, alarms, audit
    STATE = "state"  # edge → central, QoS 1, retained: birth; will = death
    ACK = "ack"  # central → edge, QoS 1
    CMD = "cmd"  # central → edge, QoS 1, never retained


def topic(site: str, edge: str, channel: Channel) -> str:
    return f"{TOPIC_ROOT}/{site}/{edge}/{channel.value}"


def subscription(channel: Channel, *, site: str = "+", edge: str = "+") -> str:
    return f"{TOPIC_ROOT}/{site}/{edge}/{channel.value}"


@dataclass(frozen=True, slots=True)
class TopicParts:
    site: str
    edge: str
    channel: Channel


def parse_topic(value: str) -> TopicParts:
    parts = value.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise WireError("topic", value, f"expected {TOPIC_ROOT}/<site>/<edge>/<channel>")
    try:
        channel = Channel(parts[4])
    except ValueError:
        raise WireError("topic", value, "unknown channel") from None
    for name, part in (("site", parts[2]), ("edge", parts[3])):
        if not _ID_RE.fullmatch(part):
            raise WireError(f"topic.{name}", part, "not a valid id")
    return TopicParts(parts[2], parts[3], channel)


# -- message types ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class StreamId:
    """Edge id plus installation epoch: a wiped edge starts a new stream, not a replay."""

    edge: str
    epoch: int

    def __str__(self) -> str:
        return f"{self.edge}@{self.epoch}"


class IntervalFlag(enum.StrEnum):
    ESTIMATED = "estimated"  # value partly interpolated, not read
    GAP = "gap"  # the readings around this interval are further apart than allowed
    RESET = "reset"  # the cumulative register went backwards (meter reset or replaced)


Value = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Sample:
    """An instantaneous reading of one point."""

    seq: int
    ts: int
    device: str
    point: str
    value: Value
    unit: str
    synced: bool = True


@dataclass(frozen=True, slots=True)
class IntervalRecord:
    """Consumption of a cumulative point over [start, start + duration), keyed by
    (device, point, start). Accounting is done on these, so a replay is an idempotent upsert.
    """

    seq: int
    device: str
    point: str
    start: int
    duration_s: int
    quantity: float
    unit: str
    flags: frozenset[IntervalFlag] = frozenset()
    synced: bool = True

    @property
    def end(self) -> int:
        return self.start + self.duration_s * 1000


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    ALARM = "alarm"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: device offline, a rule action, an outbox gap marker."""

    seq: int
    ts: int
    name: str
    severity: Severity
    device: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    synced: bool = True


Record = Sample | IntervalRecord | Event


class SampleColumns(Sequence[Sample]):
    """The records of a batch that holds samples only, kept as the columns they were
    decoded into. It is a sequence of `Sample`s like any other batch's records (built one at
    a time when iterated), but the central's hot path reads the columns and turns them into
    store rows without a `Sample` object per reading (central/samplerows.py). `synced` is
    None when every sample was taken with a synchronised clock (the usual case)."""

    __slots__ = ("device", "point", "seq", "synced", "ts", "unit", "value")

    def __init__(self, seq: Sequence[int], ts: Sequence[int], device: Sequence[str],
                 point: Sequence[str], value: Sequence[Value], unit: Sequence[str],
                 synced: Sequence[bool] | None = None) -> None:
        n = len(seq)
        if not (n == len(ts) == len(device) == len(point) == len(value) == len(unit)) or (
                synced is not None and len(synced) != n):
            raise ValueError("sample columns of different lengths")
        self.seq = seq
        self.ts = ts
        self.device = device
        self.point = point
        self.value = value
        self.unit = unit
        self.synced = synced

    def __len__(self) -> int:
        return len(self.seq)

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> tuple[Sample, ...]: ...

    def __getitem__(self, i: int | slice) -> Sample | tuple[Sample, ...]:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(len(self))))
        return Sample(self.seq[i], self.ts[i], self.device[i], self.point[i], self.value[i],
                      self.unit[i], True if self.synced is None else self.synced[i])

    def __iter__(self) -> Iterator[Sample]:
        synced = self.synced if self.synced is not None else [True] * len(self.seq)
        for row in zip(self.seq, self.ts, self.device, self.point, self.value, self.unit,
                       synced, strict=True):
            yield Sample(*row)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SampleColumns | tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"SampleColumns({list(self)!r})"

    def unsynced(self) -> int:
        """How many samples were taken with an unsynchronised clock."""
        return 0 if self.synced is None else len(self.synced) - sum(self.synced)


@dataclass(frozen=True, slots=True)
class Batch:
    """Records of one stream sent together. `after` is the seq of the record that preceded
    the first one in the edge's outbox (or the last acknowledged seq), which lets the central
    acknowledge cumulatively even when batches arrive out of order."""

    stream: StreamId
    after: int
    sent: int
    synced: bool
    records: Sequence[Record]  # a tuple, or `SampleColumns` when decoded as samples only

    @property
    def seq(self) -> int:
        """The envelope seq: the last record's."""
        return self.records[-1].seq


@dataclass(frozen=True, slots=True)
class Ack:
    """"Stored up to seq N": every record of `stream` with seq <= upto is durably stored."""

    stream: StreamId
    upto: int


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    kind: str
    model: str
    points: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """An event outside the stream (no seq), carried by a birth: what the edge must say even
    when its outbox cannot take a record, e.g. `alarm.outbox_disk` under disk pressure with
    the exact dropped seq ranges. Optional in v1 (old receivers ignore the field)."""

    ts: int
    name: str
    severity: Severity
    data: dict[str, Any] = field(default_factory=dict)
    synced: bool = True


@dataclass(frozen=True, slots=True)
class Birth:
    stream: StreamId
    ts: int
    synced: bool
    software: str
    devices: tuple[DeviceInfo, ...] = ()
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True, slots=True)
class Death:
    """Published by the broker as the edge's will when its connection dies."""

    stream: StreamId


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    name: str
    issued: int
    expires: int
    args: dict[str, Any] = field(default_factory=dict)

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expires


@dataclass(frozen=True, slots=True)
class Signed:
    """A downlink message (ack or command) signed by the central with Ed25519.

    `msg` is the inner message's JSON text, exactly as signed; `sig` is the unpadded
    base64url signature of `signing_input(topic, kid, ts, exp, msg)`: the topic is part of
    what is signed, so an ack or command for one edge cannot be replayed to another. `kid`
    names the key (the first 16 hex digits of the SHA-256 of the raw public key), `ts` and
    `exp` bound when the envelope may be accepted."""

    kid: str
    ts: int
    exp: int
    msg: str
    sig: str


SIGNED_DOMAIN = b"greenguard-signed-v1"
_KID_RE = re.compile(r"^[0-9a-f]{16}$")
_SIG_RE = re.compile(r"^[A-Za-z0-9_-]{86}$")  # 64 bytes, base64url without padding


def signing_input(topic_name: str, kid: str, ts: int, exp: int, msg: str) -> bytes:
    """The exact bytes an Ed25519 signature of a `Signed` envelope covers: a domain tag,
    then topic, kid, ts, exp and msg separated by NUL (none of them can contain one)."""
    return b"\0".join((SIGNED_DOMAIN, topic_name.encode(), kid.encode(), str(ts).encode(),
                       str(exp).encode(), msg.encode()))


Message = Batch | Ack | Birth | Death | Command | Signed


# -- encoding ---------------------------------------------------------------------


def _stream(s: StreamId) -> dict[str, Any]:
    return {"edge": s.edge, "epoch": s.epoch}


def record_to_dict(r: Record) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(r, Sample):
        out = {"kind": "sample", "seq": r.seq, "ts": r.ts, "device": r.device,
               "point": r.point, "value": r.value, "unit": r.unit}
    elif isinstance(r, IntervalRecord):
        out = {"kind": "interval", "seq": r.seq, "device": r.device, "point": r.point,
               "start": r.start, "duration_s": r.duration_s, "quantity": r.quantity,
               "unit": r.unit}
        if r.flags:
            out["flags"] = sorted(f.value for f in r.flags)
    else:
        out = {"kind": "event", "seq": r.seq, "ts": r.ts, "name": r.name,
               "severity": r.severity.value}
        if r.device is not None:
            out["device"] = r.device
        if r.data:
            out["data"] = r.data
    if not r.synced:
        out["synced"] = False
    return out


def to_dict(msg: Message) -> dict[str, Any]:
    if isinstance(msg, Batch):
        return {"v": VERSION, "type": "batch", "stream": _stream(msg.stream), "seq": msg.seq,
                "after": msg.after, "sent": msg.sent, "synced": msg.synced,
                "records": [record_to_dict(r) for r in msg.records]}
    if isinstance(msg, Ack):
        return {"v": VERSION, "type": "ack", "stream": _stream(msg.stream), "upto": msg.upto}
    if isinstance(msg, Birth):
        out = {"v": VERSION, "type": "birth", "stream": _stream(msg.stream), "ts": msg.ts,
               "synced": msg.synced, "software": msg.software,
               "devices": [{"id": d.id, "kind": d.kind, "model": d.model,
                            "points": list(d.points)} for d in msg.devices]}
        if msg.notices:
            out["notices"] = [{"ts": n.ts, "name": n.name, "severity": n.severity.value,
                               "data": n.data, "synced": n.synced} for n in msg.notices]
        return out
    if isinstance(msg, Death):
        return {"v": VERSION, "type": "death", "stream": _stream(msg.stream)}
    if isinstance(msg, Signed):
        return {"v": VERSION, "type": "signed", "kid": msg.kid, "ts": msg.ts, "exp": msg.exp,
                "msg": msg.msg, "sig": msg.sig}
    return {"v": VERSION, "type": "command", "id": msg.id, "name": msg.name,
            "issued": msg.issued, "expires": msg.expires, "args": msg.args}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode(msg: Message) -> bytes:
    return _dumps(to_dict(msg)).encode()


def encode_record(r: Record) -> str:
    """One record as compact JSON, the form an edge outbox stores."""
    return _dumps(record_to_dict(r))


def encode_batch_raw(stream: StreamId, *, after: int, seq: int, sent: int, synced: bool,
                     records_json: list[str]) -> bytes:
    """Assemble a Batch from records already encoded with `encode_record`.

    Byte-identical to `encode(Batch(...))`; it lets the edge forward stored rows without
    decoding and re-encoding each one.
    """
    head = _dumps({"v": VERSION, "type": "batch", "stream": _stream(stream), "seq": seq,
                   "after": after, "sent": sent, "synced": synced})
    return (head[:-1] + ',"records":[' + ",".join(records_json) + "]}").encode()


# -- decoding ---------------------------------------------------------------------


def _get(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise WireError(f"{path}{key}", None, "missing")
    return obj[key]


def _int(obj: dict[str, Any], key: str, path: str, *, minimum: int = 0,
         maximum: int = MAX_TS_MS) -> int:
    value = _get(obj, key, path)
    if type(value) is not int:
        raise WireError(f"{path}{key}", value, "must be an integer")
    if not minimum <= value <= maximum:
        raise WireError(f"{path}{key}", value, f"must be between {minimum} and {maximum}")
    return value


def _str(obj: dict[str, Any], key: str, path: str, *, pattern: re.Pattern[str] | None = None,
         max_len: int = 256) -> str:
    value = _get(obj, key, path)
    if not isinstance(value, str):
        raise WireError(f"{path}{key}", value, "must be a string")
    if pattern is not None and not pattern.fullmatch(value):
        raise WireError(f"{path}{key}", value, f"must match {pattern.pattern}")
    if len(value) > max_len:
        raise WireError(f"{path}{key}", value, f"longer than {max_len} characters")
    if not _utf8(value):
        raise WireError(f"{path}{key}", value, "not encodable as UTF-8 (lone surrogate)")
    return value


def _utf8(value: str) -> bool:
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_json(value: Any, path: str) -> None:
    """Reject what decodes from JSON but cannot be encoded again (NaN, infinity, lone
    surrogates), so every accepted message round-trips. Iterative: depth is bounded only
    by the JSON parser."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise WireError(where, item, "must be finite")
        if isinstance(item, str) and not _utf8(item):
            raise WireError(where, item, "not encodable as UTF-8 (lone surrogate)")
        if isinstance(item, dict):
            for k, v in item.items():
                if not _utf8(k):
                    raise WireError(where, k, "key not encodable as UTF-8 (lone surrogate)")
                stack.append((f"{where}.{k}", v))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(item))


def _bool(obj: dict[str, Any], key: str, path: str, default: bool | None = None) -> bool:
    if key not in obj and default is not None:
        return default
    value = _get(obj, key, path)
    if not isinstance(value, bool):
        raise WireError(f"{path}{key}", value, "must be true or false")
    return value


def _number(obj: dict[str, Any], key: str, path: str) -> float:
    value = _get(obj, key, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WireError(f"{path}{key}", value, "must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer literal too large for a double
        raise WireError(f"{path}{key}", value, "must be finite") from None
    if not math.isfinite(number):
        raise WireError(f"{path}{key}", value, "must be finite")
    return number


def _dict(obj: dict[str, Any], key: str, path: str, default: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    if key not in obj and default is not None:
        return default
    value = _get(obj, key, path)
    if not isinstance(value, dict):
        raise WireError(f"{path}{key}", value, "must be an object")
    _check_json(value, f"{path}{key}")
    return value


def _decode_stream(obj: dict[str, Any]) -> StreamId:
    raw = _dict(obj, "stream", "")
    return StreamId(_str(raw, "edge", "stream.", pattern=_ID_RE),
                    _int(raw, "epoch", "stream.", maximum=2**53))


def record_from_dict(raw: Any, path: str = "record.") -> Record:
    if not isinstance(raw, dict):
        raise WireError(path.rstrip("."), raw, "must be an object")
    kind = _get(raw, "kind", path)
    seq = _int(raw, "seq", path, minimum=1, maximum=2**63 - 1)
    synced = _bool(raw, "synced", path, default=True)
    if kind == "sample":
        value = _get(raw, "value", path)
        if isinstance(value, float) and not math.isfinite(value):
            raise WireError(f"{path}value", value, "must be finite")
        if not isinstance(value, int | float | str):  # bool is an int
            raise WireError(f"{path}value", value, "must be a number, boolean or string")
        if type(value) is int and not MIN_INT_VALUE <= value <= MAX_INT_VALUE:
            raise WireError(f"{path}value", value, "integer beyond 64 bits: must be between "
                            f"{MIN_INT_VALUE} and {MAX_INT_VALUE}")
        if isinstance(value, str) and not _utf8(value):
            raise WireError(f"{path}value", value, "not encodable as UTF-8 (lone surrogate)")
        return Sample(seq=seq, ts=_int(raw, "ts", path),
                      device=_str(raw, "device", path, pattern=_ID_RE),
                      point=_str(raw, "point", path, pattern=_NAME_RE),
                      value=value, unit=_str(raw, "unit", path, max_len=16), synced=synced)
    if kind == "interval":
        flags_raw = raw.get("flags", [])
        if not isinstance(flags_raw, list):
            raise WireError(f"{path}flags", flags_raw, "must be a list")
        flags: set[IntervalFlag] = set()
        for i, f in enumerate(flags_raw):
            try:
                flags.add(IntervalFlag(f))
            except (ValueError, TypeError):
                raise WireError(f"{path}flags[{i}]", f, "unknown flag") from None
        return IntervalRecord(
            seq=seq, device=_str(raw, "device", path, pattern=_ID_RE),
            point=_str(raw, "point", path, pattern=_NAME_RE),
            start=_int(raw, "start", path),
            duration_s=_int(raw, "duration_s", path, minimum=1, maximum=366 * 86400),
            quantity=_number(raw, "quantity", path), unit=_str(raw, "unit", path, max_len=16),
            flags=frozenset(flags), synced=synced)
    if kind == "event":
        sev = _get(raw, "severity", path)
        try:
            severity = Severity(sev)
        except (ValueError, TypeError):
            raise WireError(f"{path}severity", sev, "must be info, warning or alarm") from None
        device = None
        if raw.get("device") is not None:
            device = _str(raw, "device", path, pattern=_ID_RE)
        return Event(seq=seq, ts=_int(raw, "ts", path),
                     name=_str(raw, "name", path, pattern=_NAME_RE), severity=severity,
                     device=device, data=_dict(raw, "data", path, default={}), synced=synced)
    raise WireError(f"{path}kind", kind, "must be sample, interval or event")


# Strings already validated as ids, point names and units: a batch repeats the same few
# devices and points hundreds of times, and a regex per field per record was a third of the
# central's decode time. Bounded: cleared when full (it only ever holds valid strings).
_KNOWN_IDS: set[str] = set()
_KNOWN_NAMES: set[str] = set()
_KNOWN_UNITS: set[str] = set()
_KNOWN_MAX = 4096


def _known(value: Any, known: set[str], valid: re.Pattern[str] | None, max_len: int) -> bool:
    if type(value) is not str:
        return False
    if value in known:
        return True
    if len(value) > max_len or not value.isascii():
        return False  # the full validator decides (and names the field if it is bad)
    if valid is not None and not valid.fullmatch(value):
        return False
    if len(known) >= _KNOWN_MAX:
        known.clear()
    known.add(value)
    return True


def _fast_sample(raw: Any) -> Sample | None:
    """The common record, validated with plain type checks: a Sample exactly as
    `record_from_dict` would build it, or None to let that full validator decide (it
    accepts what this refuses to judge, and raises the error that names the field)."""
    if type(raw) is not dict or raw.get("kind") != "sample":
        return None
    seq: Any = raw.get("seq")
    ts: Any = raw.get("ts")
    value: Any = raw.get("value")
    synced: Any = raw.get("synced", True)
    device: Any = raw.get("device")
    point: Any = raw.get("point")
    unit: Any = raw.get("unit")
    tv = type(value)
    if (type(seq) is not int or not 1 <= seq <= 2**63 - 1
            or type(ts) is not int or not 0 <= ts <= MAX_TS_MS
            or type(synced) is not bool
            or not ((tv is int and MIN_INT_VALUE <= value <= MAX_INT_VALUE) or tv is bool
                    or (tv is float and math.isfinite(value))
                    or (tv is str and value.isascii()))
            or not _known(device, _KNOWN_IDS, _ID_RE, 64)
            or not _known(point, _KNOWN_NAMES, _NAME_RE, 64)
            or not _known(unit, _KNOWN_UNITS, None, 16)):
        return None
    return Sample(seq, ts, device, point, value, unit, synced)


_SAMPLE_FIELDS = operator.itemgetter("kind", "seq", "ts", "device", "point", "value", "unit")
_NUMBER_TYPES = frozenset({int, float, bool})


def _sample_columns(raw_records: list[Any], after: int) -> SampleColumns | None:
    """A batch of ordinary samples decoded column by column, with the checks done once per
    column (in C where the builtins allow) instead of once per record: `SampleColumns`
    equal to what the per-record path builds, or None to let that path decide (any record
    that is not a plain synced sample with exactly the seven fields, any value the fast
    checks do not judge, seqs out of order). Equality with the per-record path is a
    property test (tests/unit/protocols/test_wire_fast_path.py)."""
    if set(map(type, raw_records)) != {dict} or set(map(len, raw_records)) != {7}:
        return None
    try:
        kind, seq, ts, device, point, value, unit = zip(*map(_SAMPLE_FIELDS, raw_records),
                                                        strict=True)
    except KeyError:
        return None
    # Types first: a set of the values themselves would raise on an unhashable one.
    if (kind.count("sample") != len(kind) or set(map(type, seq)) != {int}
            or set(map(type, ts)) != {int} or not {str} == set(map(type, device))
            == set(map(type, point)) == set(map(type, unit))
            or seq[0] <= after or seq[-1] > 2**63 - 1
            or min(ts) < 0 or max(ts) > MAX_TS_MS
            or not all(map(operator.lt, seq, seq[1:]))):
        return None
    if not (all(_known(d, _KNOWN_IDS, _ID_RE, 64) for d in set(device))
            and all(_known(p, _KNOWN_NAMES, _NAME_RE, 64) for p in set(point))
            and all(_known(u, _KNOWN_UNITS, None, 16) for u in set(unit))):
        return None
    types = set(map(type, value))
    if types <= _NUMBER_TYPES:
        if float in types:
            try:
                if not all(map(math.isfinite, value)):
                    return None
            except OverflowError:  # an integer beyond a double: the per-record path judges
                return None
        if int in types and not MIN_INT_VALUE <= min(value) <= max(value) <= MAX_INT_VALUE:
            return None  # an integer beyond 64 bits (or a float beyond one): judged per record
    elif types <= _NUMBER_TYPES | {str}:
        for v in value:
            tv = type(v)
            if ((tv is float and not math.isfinite(v)) or (tv is str and not v.isascii())
                    or (tv is int and not MIN_INT_VALUE <= v <= MAX_INT_VALUE)):
                return None
    else:
        return None
    return SampleColumns(seq, ts, device, point, value, unit)


def from_dict(obj: Any) -> Message:
    if not isinstance(obj, dict):
        raise WireError("<message>", obj, "must be a JSON object")
    version = _get(obj, "v", "")
    if type(version) is not int or version != VERSION:  # true == 1 and 1.0 == 1 in Python
        raise WireError("v", version, f"unsupported version, this side speaks {VERSION}")
    kind = _get(obj, "type", "")
    if kind == "batch":
        stream = _decode_stream(obj)
        raw_records = _get(obj, "records", "")
        if not isinstance(raw_records, list) or not raw_records:
            raise WireError("records", raw_records, "must be a non-empty list")
        after_raw: Any = obj.get("after")
        columns = (_sample_columns(raw_records, after_raw) if type(after_raw) is int
                   and 0 <= after_raw <= 2**63 - 1 else None)
        records: Sequence[Record]
        if columns is not None:
            records = columns  # seqs already checked: increasing and above `after`
            after = int(after_raw)
        else:
            records = tuple(_fast_sample(r) or record_from_dict(r, f"records[{i}].")
                            for i, r in enumerate(raw_records))
            after = _int(obj, "after", "", maximum=2**63 - 1)
            prev = after
            for i, r in enumerate(records):
                if r.seq <= prev:
                    raise WireError(f"records[{i}].seq", r.seq,
                                    f"must be greater than the previous seq {prev}")
                prev = r.seq
        seq = _int(obj, "seq", "", minimum=1, maximum=2**63 - 1)
        if seq != records[-1].seq:
            raise WireError("seq", seq, f"must equal the last record's seq {records[-1].seq}")
        return Batch(stream=stream, after=after, sent=_int(obj, "sent", ""),
                     synced=_bool(obj, "synced", ""), records=records)
    if kind == "ack":
        return Ack(stream=_decode_stream(obj), upto=_int(obj, "upto", "", maximum=2**63 - 1))
    if kind == "birth":
        raw_devices = obj.get("devices", [])
        if not isinstance(raw_devices, list):
            raise WireError("devices", raw_devices, "must be a list")
        devices = []
        for i, d in enumerate(raw_devices):
            p = f"devices[{i}]."
            if not isinstance(d, dict):
                raise WireError(p.rstrip("."), d, "must be an object")
            pts = _get(d, "points", p)
            if not isinstance(pts, list) or not all(isinstance(x, str) for x in pts):
                raise WireError(f"{p}points", pts, "must be a list of strings")
            _check_json(pts, f"{p}points")
            devices.append(DeviceInfo(id=_str(d, "id", p, pattern=_ID_RE),
                                      kind=_str(d, "kind", p), model=_str(d, "model", p),
                                      points=tuple(pts)))
        return Birth(stream=_decode_stream(obj), ts=_int(obj, "ts", ""),
                     synced=_bool(obj, "synced", ""), software=_str(obj, "software", ""),
                     devices=tuple(devices), notices=_notices(obj.get("notices", [])))
    if kind == "death":
        return Death(stream=_decode_stream(obj))
    if kind == "command":
        issued = _int(obj, "issued", "")
        expires = _int(obj, "expires", "")
        if expires <= issued:
            raise WireError("expires", expires, f"must be after issued {issued}")
        return Command(id=_str(obj, "id", "", pattern=_ID_RE),
                       name=_str(obj, "name", "", pattern=_NAME_RE), issued=issued,
                       expires=expires, args=_dict(obj, "args", "", default={}))
    if kind == "signed":
        ts = _int(obj, "ts", "")
        exp = _int(obj, "exp", "")
        if exp <= ts:
            raise WireError("exp", exp, f"must be after ts {ts}")
        msg = _str(obj, "msg", "", max_len=MAX_MESSAGE_BYTES)
        if "\0" in msg:
            raise WireError("msg", msg, "must not contain NUL")
        return Signed(kid=_str(obj, "kid", "", pattern=_KID_RE), ts=ts, exp=exp, msg=msg,
                      sig=_str(obj, "sig", "", pattern=_SIG_RE))
    raise WireError("type", kind, "must be batch, ack, birth, death, command or signed")


MAX_NOTICES = 16


def _notices(raw: Any) -> tuple[Notice, ...]:
    """A birth's optional `notices`: events without a seq, validated like event records."""
    if not isinstance(raw, list) or len(raw) > MAX_NOTICES:
        raise WireError("notices", raw, f"must be a list of at most {MAX_NOTICES} objects")
    out = []
    for i, n in enumerate(raw):
        if not isinstance(n, dict):
            raise WireError(f"notices[{i}]", n, "must be an object")
        fields = {k: n[k] for k in ("ts", "name", "severity", "data", "synced") if k in n}
        ev = record_from_dict({**fields, "kind": "event", "seq": 1}, f"notices[{i}].")
        assert isinstance(ev, Event)
        out.append(Notice(ev.ts, ev.name, ev.severity, ev.data, ev.synced))
    return tuple(out)


def decode(payload: bytes | str) -> Message:
    """Parse and validate one message; raises `WireError` and nothing else."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise WireError("<message>", f"{len(payload)} bytes", f"larger than {MAX_MESSAGE_BYTES}")
    obj: Any = None
    if (orjson is not None and isinstance(payload, bytes)
            and not _has_long_number(payload)):
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            obj = None  # NaN, huge integers, lone surrogates, bad JSON: the stdlib decides
    if obj is None:
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise WireError("<message>", payload[:40], f"not valid JSON: {exc}") from None
    return from_dict(obj)
