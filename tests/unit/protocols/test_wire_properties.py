"""Properties of wire protocol v1: every valid message round-trips, and no input makes
`decode` raise anything but `WireError` (RELIABILITY.md #21)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import wire
from protocols.errors import WireError
from protocols.wire import (
    MAX_TS_MS,
    Ack,
    Batch,
    Birth,
    Command,
    Death,
    DeviceInfo,
    Event,
    IntervalFlag,
    IntervalRecord,
    Message,
    Record,
    Sample,
    Severity,
    StreamId,
)

SEQ_MAX = 2**63 - 1
HEAVY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------

ids = st.from_regex(wire._ID_RE, fullmatch=True)
names = st.from_regex(wire._NAME_RE, fullmatch=True)
chinese = st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
                  max_size=12)


def texts(max_size: int) -> st.SearchStrategy[str]:
    """Any Unicode text without surrogates, often Chinese."""
    return st.one_of(st.text(max_size=max_size), chinese.map(lambda s: s[:max_size]))


timestamps = st.integers(min_value=0, max_value=MAX_TS_MS)
finite = st.floats(allow_nan=False, allow_infinity=False)
streams = st.builds(StreamId, edge=ids, epoch=st.integers(min_value=0, max_value=2**53))
values = st.one_of(st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), finite,
                   texts(64))
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), finite, texts(20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(texts(10), inner, max_size=4)),
    max_leaves=20,
)
json_objects = st.dictionaries(texts(10), json_values, max_size=5)


@st.composite
def records(draw: st.DrawFn, seq: int) -> Record:
    kind = draw(st.sampled_from(["sample", "interval", "event"]))
    synced = draw(st.booleans())
    if kind == "sample":
        return Sample(seq=seq, ts=draw(timestamps), device=draw(ids), point=draw(names),
                      value=draw(values), unit=draw(texts(16)), synced=synced)
    if kind == "interval":
        return IntervalRecord(
            seq=seq, device=draw(ids), point=draw(names), start=draw(timestamps),
            duration_s=draw(st.integers(min_value=1, max_value=366 * 86400)),
            quantity=draw(finite), unit=draw(texts(16)),
            flags=draw(st.frozensets(st.sampled_from(IntervalFlag))), synced=synced)
    return Event(seq=seq, ts=draw(timestamps), name=draw(names),
                 severity=draw(st.sampled_from(Severity)), device=draw(st.none() | ids),
                 data=draw(json_objects), synced=synced)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    after = draw(st.integers(min_value=0, max_value=2**62))
    steps = draw(st.lists(st.integers(min_value=1, max_value=2**40), min_size=1, max_size=8))
    seqs: list[int] = []
    seq = after
    for step in steps:
        seq += step
        seqs.append(seq)
    assert seqs[-1] <= SEQ_MAX
    return Batch(stream=draw(streams), after=after, sent=draw(timestamps),
                 synced=draw(st.booleans()),
                 records=tuple(draw(records(s)) for s in seqs))


acks = st.builds(Ack, stream=streams, upto=st.integers(min_value=0, max_value=SEQ_MAX))
device_infos = st.builds(DeviceInfo, id=ids, kind=texts(256), model=texts(256),
                         points=st.lists(texts(64), max_size=5).map(tuple))
births = st.builds(Birth, stream=streams, ts=timestamps, synced=st.booleans(),
                   software=texts(256),
                   devices=st.lists(device_infos, max_size=4).map(tuple))
deaths = st.builds(Death, stream=streams)


@st.composite
def commands(draw: st.DrawFn) -> Command:
    issued = draw(st.integers(min_value=0, max_value=MAX_TS_MS - 1))
    expires = draw(st.integers(min_value=issued + 1, max_value=MAX_TS_MS))
    return Command(id=draw(ids), name=draw(names), issued=issued, expires=expires,
                   args=draw(json_objects))


messages: st.SearchStrategy[Message] = st.one_of(batches(), acks, births, deaths, commands())


# -- round trips --------------------------------------------------------------------


def _assert_round_trip(msg: Message) -> None:
    encoded = wire.encode(msg)
    decoded = wire.decode(encoded)
    assert decoded == msg
    # Byte-stable: types survive too (1 vs 1.0 vs true compare equal in Python).
    assert wire.encode(decoded) == encoded


@HEAVY
@given(batches())
def test_batch_round_trip(msg: Batch) -> None:
    _assert_round_trip(msg)


@given(acks)
def test_ack_round_trip(msg: Ack) -> None:
    _assert_round_trip(msg)


@HEAVY
@given(births)
def test_birth_round_trip(msg: Birth) -> None:
    _assert_round_trip(msg)


@given(deaths)
def test_death_round_trip(msg: Death) -> None:
    _assert_round_trip(msg)


@HEAVY
@given(commands())
def test_command_round_trip(msg: Command) -> None:
    _assert_round_trip(msg)


@HEAVY
@given(batches())
def test_encode_batch_raw_matches_encode(msg: Batch) -> None:
    raw = wire.encode_batch_raw(msg.stream, after=msg.after, seq=msg.seq, sent=msg.sent,
                                synced=msg.synced,
                                records_json=[wire.encode_record(r) for r in msg.records])
    assert raw == wire.encode(msg)


@HEAVY
@given(st.data())
def test_record_round_trip(data: st.DataObject) -> None:
    record = data.draw(records(data.draw(st.integers(min_value=1, max_value=SEQ_MAX))))
    assert wire.record_from_dict(json.loads(wire.encode_record(record))) == record


@given(ids, ids, st.sampled_from(wire.Channel))
def test_topic_round_trip(site: str, edge: str, channel: wire.Channel) -> None:
    assert wire.parse_topic(wire.topic(site, edge, channel)) == wire.TopicParts(
        site, edge, channel)


# -- fuzzing: WireError or success, never anything else --------------------------------

# Values that decode from JSON but are easy to mishandle: non-finite floats, integers too
# large for a double, lone surrogates (only reachable through \u escapes), bool vs int.
awkward = st.sampled_from([float("nan"), float("inf"), -float("inf"), 10**400, -(10**400),
                           2**63, -1, 0, True, False, 1.0, "\ud800", "a\n", "", [], {}])
fuzz_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(awkward, st.none(), st.booleans(), st.integers(), st.floats(),
              st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=25,
)


def _decode_or_wire_error(payload: bytes | str) -> None:
    error: WireError | None = None
    try:
        msg = wire.decode(payload)
    except WireError as exc:
        error = exc
    if error is not None:
        assert error.field
        assert str(error).startswith(f"{error.field}: ")
        return
    # Whatever is accepted can be sent on again unchanged.
    assert wire.decode(wire.encode(msg)) == msg


@HEAVY
@given(st.binary(max_size=512))
def test_fuzz_arbitrary_bytes(payload: bytes) -> None:
    _decode_or_wire_error(payload)


@HEAVY
@given(st.text(max_size=256))
def test_fuzz_arbitrary_text(payload: str) -> None:
    _decode_or_wire_error(payload)


@HEAVY
@given(fuzz_values)
def test_fuzz_arbitrary_json(value: Any) -> None:
    _decode_or_wire_error(json.dumps(value))


@HEAVY
@given(st.sampled_from(["batch", "ack", "birth", "death", "command", "x", None]),
       st.dictionaries(st.sampled_from(["stream", "seq", "after", "sent", "synced",
                                        "records", "upto", "ts", "software", "devices",
                                        "id", "name", "issued", "expires", "args"]),
                       fuzz_values, max_size=8))
def test_fuzz_envelope_fields(kind: str | None, fields: dict[str, Any]) -> None:
    _decode_or_wire_error(json.dumps({"v": 1, "type": kind, **fields}))


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@HEAVY
@given(messages, st.data())
def test_fuzz_mutated_valid_messages(msg: Message, data: st.DataObject) -> None:
    """Replace or delete one field anywhere in a valid message: reaches every validator."""
    obj = wire.to_dict(msg)
    path = data.draw(st.sampled_from(_paths(obj)[1:]))
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(fuzz_values)
    elif isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    _decode_or_wire_error(json.dumps(obj, ensure_ascii=False))
