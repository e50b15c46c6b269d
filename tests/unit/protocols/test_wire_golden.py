"""Golden vectors for wire protocol v1: the exact bytes each message type encodes to.

A change to any expected string below is a change to the wire format: it needs a new entry
in docs/wire-protocol.md and, unless purely additive, a new protocol version.
"""

from __future__ import annotations

import json

import pytest

from protocols import wire
from protocols.errors import WireError
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    Channel,
    Command,
    Death,
    DeviceInfo,
    Event,
    IntervalFlag,
    IntervalRecord,
    Message,
    Notice,
    Sample,
    Severity,
    StreamId,
    TopicParts,
)

STREAM = StreamId("edge-hd01", 2)
T0 = 1718000000000  # 2024-06-10T06:13:20Z

BATCH = Batch(
    stream=STREAM,
    after=10,
    sent=T0 + 500,
    synced=True,
    records=(
        Sample(seq=11, ts=T0, device="m1", point="power_w", value=1500.5, unit="W"),
        Sample(seq=12, ts=T0, device="ac-3", point="on", value=True, unit="", synced=False),
        IntervalRecord(seq=13, device="m1", point="energy_import_kwh", start=T0 - 900_000,
                       duration_s=900, quantity=0.375, unit="kWh",
                       flags=frozenset({IntervalFlag.GAP, IntervalFlag.ESTIMATED}),
                       synced=False),
        Event(seq=14, ts=T0, name="device.offline", severity=Severity.WARNING, device="m2",
              data={"reason": "timeout", "room": "三楼会议室"}),
    ),
)
BATCH_JSON = (
    '{"v":1,"type":"batch","stream":{"edge":"edge-hd01","epoch":2},"seq":14,"after":10,'
    '"sent":1718000000500,"synced":true,"records":['
    '{"kind":"sample","seq":11,"ts":1718000000000,"device":"m1","point":"power_w",'
    '"value":1500.5,"unit":"W"},'
    '{"kind":"sample","seq":12,"ts":1718000000000,"device":"ac-3","point":"on",'
    '"value":true,"unit":"","synced":false},'
    '{"kind":"interval","seq":13,"device":"m1","point":"energy_import_kwh",'
    '"start":1717999100000,"duration_s":900,"quantity":0.375,"unit":"kWh",'
    '"flags":["estimated","gap"],"synced":false},'
    '{"kind":"event","seq":14,"ts":1718000000000,"name":"device.offline",'
    '"severity":"warning","device":"m2","data":{"reason":"timeout","room":"三楼会议室"}}'
    "]}"
).encode()  # UTF-8, Chinese text unescaped (ensure_ascii=False)

# Optional fields at their defaults are omitted: no flags, no device, no data, synced=true.
BATCH_MINIMAL = Batch(
    stream=StreamId("w-edge_1.b", 0),
    after=0,
    sent=T0,
    synced=False,
    records=(
        Sample(seq=1, ts=T0, device="w1", point="flow_m3h", value=3, unit="m3/h"),
        Sample(seq=2, ts=T0, device="ac-3", point="mode", value="制冷", unit=""),
        IntervalRecord(seq=7, device="w1", point="water_m3", start=T0, duration_s=3600,
                       quantity=-0.0, unit="m3", flags=frozenset({IntervalFlag.RESET})),
        Event(seq=9, ts=T0, name="outbox.gap", severity=Severity.ALARM),
        Event(seq=10, ts=T0, name="rule.action", severity=Severity.INFO, synced=False),
    ),
)
BATCH_MINIMAL_JSON = (
    '{"v":1,"type":"batch","stream":{"edge":"w-edge_1.b","epoch":0},"seq":10,"after":0,'
    '"sent":1718000000000,"synced":false,"records":['
    '{"kind":"sample","seq":1,"ts":1718000000000,"device":"w1","point":"flow_m3h",'
    '"value":3,"unit":"m3/h"},'
    '{"kind":"sample","seq":2,"ts":1718000000000,"device":"ac-3","point":"mode",'
    '"value":"制冷","unit":""},'
    '{"kind":"interval","seq":7,"device":"w1","point":"water_m3","start":1718000000000,'
    '"duration_s":3600,"quantity":-0.0,"unit":"m3","flags":["reset"]},'
    '{"kind":"event","seq":9,"ts":1718000000000,"name":"outbox.gap","severity":"alarm"},'
    '{"kind":"event","seq":10,"ts":1718000000000,"name":"rule.action","severity":"info",'
    '"synced":false}'
    "]}"
).encode()

ACK = Ack(stream=STREAM, upto=14)
ACK_JSON = b'{"v":1,"type":"ack","stream":{"edge":"edge-hd01","epoch":2},"upto":14}'

ACK_ZERO = Ack(stream=StreamId("e", 9007199254740992), upto=0)
ACK_ZERO_JSON = b'{"v":1,"type":"ack","stream":{"edge":"e","epoch":9007199254740992},"upto":0}'

BIRTH = Birth(
    stream=STREAM,
    ts=T0,
    synced=False,
    software="greenguard-edge 0.1.0",
    devices=(
        DeviceInfo(id="m1", kind="modbus_meter", model="eastron-sdm120",
                   points=("voltage_v", "power_w", "energy_import_kwh")),
        DeviceInfo(id="w1", kind="modbus_meter", model="generic-water-modbus",
                   points=("water_m3", "flow_m3h")),
    ),
)
BIRTH_JSON = (
    b'{"v":1,"type":"birth","stream":{"edge":"edge-hd01","epoch":2},"ts":1718000000000,'
    b'"synced":false,"software":"greenguard-edge 0.1.0","devices":['
    b'{"id":"m1","kind":"modbus_meter","model":"eastron-sdm120",'
    b'"points":["voltage_v","power_w","energy_import_kwh"]},'
    b'{"id":"w1","kind":"modbus_meter","model":"generic-water-modbus",'
    b'"points":["water_m3","flow_m3h"]}]}'
)

BIRTH_EMPTY = Birth(stream=STREAM, ts=T0, synced=True, software="绿色学校 edge")
BIRTH_EMPTY_JSON = (
    '{"v":1,"type":"birth","stream":{"edge":"edge-hd01","epoch":2},"ts":1718000000000,'
    '"synced":true,"software":"绿色学校 edge","devices":[]}'
).encode()

BIRTH_NOTICE = Birth(stream=STREAM, ts=T0, synced=True, software="edge", notices=(
    Notice(ts=T0, name="alarm.outbox_disk", severity=Severity.ALARM,
           data={"state": "raised", "disk_pressure": True, "dropped_seqs": [[352, 378]],
                 "dropped_records": 27}),),)
BIRTH_NOTICE_JSON = (
    b'{"v":1,"type":"birth","stream":{"edge":"edge-hd01","epoch":2},"ts":1718000000000,'
    b'"synced":true,"software":"edge","devices":[],"notices":[{"ts":1718000000000,'
    b'"name":"alarm.outbox_disk","severity":"alarm","data":{"state":"raised",'
    b'"disk_pressure":true,"dropped_seqs":[[352,378]],"dropped_records":27},"synced":true}]}'
)

DEATH = Death(stream=STREAM)
DEATH_JSON = b'{"v":1,"type":"death","stream":{"edge":"edge-hd01","epoch":2}}'

COMMAND = Command(
    id="cmd-0001",
    name="override.set",
    issued=T0,
    expires=T0 + 3_600_000,
    args={"device": "ac-3", "setpoint_c": 26.0, "note": "校长办公室", "hours": [1, 2]},
)
COMMAND_JSON = (
    '{"v":1,"type":"command","id":"cmd-0001","name":"override.set","issued":1718000000000,'
    '"expires":1718003600000,"args":{"device":"ac-3","setpoint_c":26.0,"note":"校长办公室",'
    '"hours":[1,2]}}'
).encode()

COMMAND_NO_ARGS = Command(id="c.2", name="birth.request", issued=0, expires=1)
COMMAND_NO_ARGS_JSON = (
    b'{"v":1,"type":"command","id":"c.2","name":"birth.request","issued":0,"expires":1,'
    b'"args":{}}'
)

GOLDEN: list[tuple[str, Message, bytes]] = [
    ("batch", BATCH, BATCH_JSON),
    ("batch-minimal", BATCH_MINIMAL, BATCH_MINIMAL_JSON),
    ("ack", ACK, ACK_JSON),
    ("ack-zero", ACK_ZERO, ACK_ZERO_JSON),
    ("birth", BIRTH, BIRTH_JSON),
    ("birth-no-devices", BIRTH_EMPTY, BIRTH_EMPTY_JSON),
    ("birth-notice", BIRTH_NOTICE, BIRTH_NOTICE_JSON),
    ("death", DEATH, DEATH_JSON),
    ("command", COMMAND, COMMAND_JSON),
    ("command-no-args", COMMAND_NO_ARGS, COMMAND_NO_ARGS_JSON),
]
IDS = [g[0] for g in GOLDEN]


@pytest.mark.parametrize(("name", "msg", "expected"), GOLDEN, ids=IDS)
def test_encode_golden(name: str, msg: Message, expected: bytes) -> None:
    assert wire.encode(msg) == expected


@pytest.mark.parametrize(("name", "msg", "expected"), GOLDEN, ids=IDS)
def test_decode_golden(name: str, msg: Message, expected: bytes) -> None:
    assert wire.decode(expected) == msg
    assert wire.decode(expected.decode()) == msg  # str payloads are accepted too


@pytest.mark.parametrize(("name", "msg", "expected"), GOLDEN, ids=IDS)
def test_encoding_is_utf8_without_escapes(name: str, msg: Message, expected: bytes) -> None:
    encoded = wire.encode(msg)
    assert b"\\u" not in encoded
    assert json.loads(encoded.decode("utf-8")) == wire.to_dict(msg)


def test_decoded_types_survive() -> None:
    batch = wire.decode(BATCH_MINIMAL_JSON)
    assert isinstance(batch, Batch)
    values = [r.value for r in batch.records if isinstance(r, Sample)]
    assert [type(v) for v in values] == [int, str]
    interval = batch.records[2]
    assert isinstance(interval, IntervalRecord)
    assert interval.flags == frozenset({IntervalFlag.RESET})
    assert interval.end == T0 + 3_600_000
    assert batch.seq == 10


@pytest.mark.parametrize("batch", [BATCH, BATCH_MINIMAL], ids=["batch", "batch-minimal"])
def test_encode_batch_raw_is_byte_identical(batch: Batch) -> None:
    raw = wire.encode_batch_raw(
        batch.stream,
        after=batch.after,
        seq=batch.seq,
        sent=batch.sent,
        synced=batch.synced,
        records_json=[wire.encode_record(r) for r in batch.records],
    )
    assert raw == wire.encode(batch)


def test_encode_record_golden() -> None:
    assert wire.encode_record(BATCH.records[2]) == (
        '{"kind":"interval","seq":13,"device":"m1","point":"energy_import_kwh",'
        '"start":1717999100000,"duration_s":900,"quantity":0.375,"unit":"kWh",'
        '"flags":["estimated","gap"],"synced":false}'
    )
    assert wire.record_from_dict(json.loads(wire.encode_record(BATCH.records[3]))) == (
        BATCH.records[3]
    )


def test_unknown_fields_are_ignored_within_v1() -> None:
    """Versioning policy: v1 may gain optional fields; an older reader ignores them."""
    obj = json.loads(ACK_JSON)
    obj["future_field"] = {"x": 1}
    assert wire.decode(json.dumps(obj)) == ACK
    obj = json.loads(BATCH_JSON)
    obj["records"][0]["quality"] = "good"
    assert wire.decode(json.dumps(obj, ensure_ascii=False)) == BATCH


def test_defaults_when_optional_fields_absent() -> None:
    msg = wire.decode(
        b'{"v":1,"type":"birth","stream":{"edge":"e1","epoch":1},"ts":5,"synced":true,'
        b'"software":"x"}'
    )
    assert msg == Birth(stream=StreamId("e1", 1), ts=5, synced=True, software="x", devices=())
    cmd = wire.decode(b'{"v":1,"type":"command","id":"c","name":"n","issued":1,"expires":2}')
    assert cmd == Command(id="c", name="n", issued=1, expires=2, args={})
    event = wire.decode(
        b'{"v":1,"type":"batch","stream":{"edge":"e1","epoch":1},"seq":3,"after":2,"sent":0,'
        b'"synced":true,"records":[{"kind":"event","seq":3,"ts":0,"name":"x",'
        b'"severity":"info","device":null}]}'
    )
    assert isinstance(event, Batch)
    assert event.records == (Event(seq=3, ts=0, name="x", severity=Severity.INFO),)


def test_command_expiry_is_exclusive() -> None:
    assert not COMMAND.expired(T0)
    assert not COMMAND.expired(T0 + 3_599_999)
    assert COMMAND.expired(T0 + 3_600_000)


def test_stream_id_str_and_order() -> None:
    assert str(STREAM) == "edge-hd01@2"
    assert StreamId("a", 1) < StreamId("a", 2) < StreamId("b", 0)


# -- topics -----------------------------------------------------------------------

TOPICS = [
    ("sch-07", "edge-hd01", Channel.TELEMETRY, "gg/v1/sch-07/edge-hd01/telemetry"),
    ("sch-07", "edge-hd01", Channel.EVENTS, "gg/v1/sch-07/edge-hd01/events"),
    ("sch-07", "edge-hd01", Channel.STATE, "gg/v1/sch-07/edge-hd01/state"),
    ("sch-07", "edge-hd01", Channel.ACK, "gg/v1/sch-07/edge-hd01/ack"),
    ("sch-07", "edge-hd01", Channel.CMD, "gg/v1/sch-07/edge-hd01/cmd"),
    ("BJ.haidian_01", "e.2", Channel.CMD, "gg/v1/BJ.haidian_01/e.2/cmd"),
]


@pytest.mark.parametrize(("site", "edge", "channel", "expected"), TOPICS)
def test_topic_golden(site: str, edge: str, channel: Channel, expected: str) -> None:
    assert wire.topic(site, edge, channel) == expected
    assert wire.parse_topic(expected) == TopicParts(site, edge, channel)


def test_channels_are_exactly_five() -> None:
    assert [c.value for c in Channel] == ["telemetry", "events", "state", "ack", "cmd"]


@pytest.mark.parametrize(
    ("kwargs", "channel", "expected"),
    [
        ({}, Channel.TELEMETRY, "gg/v1/+/+/telemetry"),
        ({}, Channel.STATE, "gg/v1/+/+/state"),
        ({"site": "sch-07"}, Channel.EVENTS, "gg/v1/sch-07/+/events"),
        ({"site": "sch-07", "edge": "edge-hd01"}, Channel.ACK, "gg/v1/sch-07/edge-hd01/ack"),
        ({"site": "sch-07", "edge": "edge-hd01"}, Channel.CMD, "gg/v1/sch-07/edge-hd01/cmd"),
    ],
)
def test_subscription_golden(kwargs: dict[str, str], channel: Channel, expected: str) -> None:
    assert wire.subscription(channel, **kwargs) == expected


def test_parse_topic_rejects_wildcards() -> None:
    with pytest.raises(WireError) as info:
        wire.parse_topic("gg/v1/+/+/telemetry")
    assert info.value.field == "topic.site"
