"""Malformed wire messages: each is rejected with a `WireError` whose `field` is the dotted
path of the offending field and whose message names both the field and the value."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from protocols import wire
from protocols.errors import ProtocolError, WireError

BATCH: dict[str, Any] = {
    "v": 1, "type": "batch", "stream": {"edge": "e1", "epoch": 1}, "seq": 4, "after": 1,
    "sent": 1000, "synced": True,
    "records": [
        {"kind": "sample", "seq": 2, "ts": 1000, "device": "m1", "point": "power_w",
         "value": 1.5, "unit": "W"},
        {"kind": "interval", "seq": 3, "device": "m1", "point": "energy_import_kwh",
         "start": 0, "duration_s": 900, "quantity": 0.5, "unit": "kWh", "flags": ["gap"]},
        {"kind": "event", "seq": 4, "ts": 1000, "name": "device.offline",
         "severity": "warning", "device": "m2", "data": {"reason": "timeout"}},
    ],
}
ACK: dict[str, Any] = {"v": 1, "type": "ack", "stream": {"edge": "e1", "epoch": 1}, "upto": 4}
BIRTH: dict[str, Any] = {
    "v": 1, "type": "birth", "stream": {"edge": "e1", "epoch": 1}, "ts": 1000, "synced": True,
    "software": "gg 0.1",
    "devices": [{"id": "m1", "kind": "modbus_meter", "model": "eastron-sdm120",
                 "points": ["power_w"]}],
}
COMMAND: dict[str, Any] = {"v": 1, "type": "command", "id": "c1", "name": "override.set",
                           "issued": 1000, "expires": 2000, "args": {"setpoint_c": 26}}

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    """An edit that sets (or, with value DELETE, removes) a '/'-separated path."""

    def edit(obj: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value

    return edit


DELETE = object()


def _mutated(base: dict[str, Any], *edits: Edit) -> bytes:
    obj = copy.deepcopy(base)
    for edit in edits:
        edit(obj)
    return json.dumps(obj, ensure_ascii=False).encode()


def _raw(base: dict[str, Any], old: str, new: str) -> bytes:
    """Textual replacement, for JSON that `json.dumps` would refuse to write."""
    text = json.dumps(base, separators=(",", ":"))
    assert old in text
    return text.replace(old, new, 1).encode()


# (id, payload, expected field, text that must appear in the message as the value)
CASES: list[tuple[str, bytes | str, str, str]] = [
    # envelope
    ("missing-v", _mutated(ACK, _set("v", DELETE)), "v", "missing"),
    ("wrong-version", _mutated(ACK, _set("v", 2)), "v", "2"),
    # fixed: `true == 1` and `1.0 == 1` in Python, so these were accepted as version 1
    ("version-as-bool", _mutated(ACK, _set("v", True)), "v", "True"),
    ("version-as-float", _mutated(ACK, _set("v", 1.0)), "v", "1.0"),
    ("version-as-string", _mutated(ACK, _set("v", "1")), "v", "'1'"),
    ("missing-type", _mutated(ACK, _set("type", DELETE)), "type", "missing"),
    ("unknown-type", _mutated(ACK, _set("type", "telemetry")), "type", "'telemetry'"),
    ("type-not-string", _mutated(ACK, _set("type", 7)), "type", "7"),
    ("missing-stream", _mutated(ACK, _set("stream", DELETE)), "stream", "missing"),
    ("stream-not-object", _mutated(ACK, _set("stream", "e1@1")), "stream", "'e1@1'"),
    ("bad-stream-edge", _mutated(ACK, _set("stream/edge", "e 1")), "stream.edge", "'e 1'"),
    # fixed: `$` matches before a trailing newline; ids are now matched in full
    ("stream-edge-trailing-newline", _mutated(ACK, _set("stream/edge", "e1\n")),
     "stream.edge", "'e1\\n'"),
    ("negative-epoch", _mutated(ACK, _set("stream/epoch", -1)), "stream.epoch", "-1"),
    ("epoch-as-bool", _mutated(ACK, _set("stream/epoch", True)), "stream.epoch", "True"),
    ("epoch-too-large", _mutated(ACK, _set("stream/epoch", 2**53 + 1)), "stream.epoch",
     str(2**53 + 1)),
    # batch envelope and seq chain
    ("missing-records", _mutated(BATCH, _set("records", DELETE)), "records", "missing"),
    ("empty-records", _mutated(BATCH, _set("records", [])), "records", "[]"),
    ("records-not-list", _mutated(BATCH, _set("records", {})), "records", "{}"),
    ("record-not-object", _mutated(BATCH, _set("records/0", 5)), "records[0]", "5"),
    ("seq-not-int", _mutated(BATCH, _set("records/0/seq", "2")), "records[0].seq", "'2'"),
    ("seq-as-float", _mutated(BATCH, _set("records/0/seq", 2.0)), "records[0].seq", "2.0"),
    ("seq-as-bool", _mutated(BATCH, _set("after", 0), _set("records/0/seq", True)),
     "records[0].seq", "True"),
    ("seq-zero", _mutated(BATCH, _set("after", 0), _set("records/0/seq", 0)),
     "records[0].seq", "0"),
    ("seq-missing", _mutated(BATCH, _set("records/1/seq", DELETE)), "records[1].seq",
     "missing"),
    ("seq-repeated", _mutated(BATCH, _set("records/1/seq", 2)), "records[1].seq", "2"),
    ("seq-decreasing", _mutated(BATCH, _set("records/0/seq", 3), _set("records/1/seq", 2)),
     "records[1].seq", "2"),
    ("seq-equal-to-after", _mutated(BATCH, _set("after", 2)), "records[0].seq", "2"),
    ("seq-below-after", _mutated(BATCH, _set("after", 3)), "records[0].seq", "2"),
    ("negative-after", _mutated(BATCH, _set("after", -1)), "after", "-1"),
    ("envelope-seq-not-last", _mutated(BATCH, _set("seq", 3)), "seq", "3"),
    ("envelope-seq-missing", _mutated(BATCH, _set("seq", DELETE)), "seq", "missing"),
    ("batch-synced-not-bool", _mutated(BATCH, _set("synced", 1)), "synced", "1"),
    ("sent-after-year-9999", _mutated(BATCH, _set("sent", wire.MAX_TS_MS + 1)), "sent",
     str(wire.MAX_TS_MS + 1)),
    # records
    ("unknown-kind", _mutated(BATCH, _set("records/0/kind", "reading")), "records[0].kind",
     "'reading'"),
    ("missing-kind", _mutated(BATCH, _set("records/0/kind", DELETE)), "records[0].kind",
     "missing"),
    ("record-synced-not-bool", _mutated(BATCH, _set("records/0/synced", "false")),
     "records[0].synced", "'false'"),
    ("bad-device-id", _mutated(BATCH, _set("records/0/device", "电表1")), "records[0].device",
     "'电表1'"),
    ("device-id-starts-with-dash", _mutated(BATCH, _set("records/0/device", "-m1")),
     "records[0].device", "'-m1'"),
    # fixed (see stream-edge-trailing-newline)
    ("device-id-trailing-newline", _mutated(BATCH, _set("records/0/device", "m1\n")),
     "records[0].device", "'m1\\n'"),
    ("device-id-too-long", _mutated(BATCH, _set("records/0/device", "m" * 65)),
     "records[0].device", "'mmmm"),
    ("bad-point-name", _mutated(BATCH, _set("records/0/point", "Power")), "records[0].point",
     "'Power'"),
    ("unit-too-long", _mutated(BATCH, _set("records/0/unit", "x" * 17)), "records[0].unit",
     "'xxxxxxxxxxxxxxxxx'"),
    ("ts-negative", _mutated(BATCH, _set("records/0/ts", -5)), "records[0].ts", "-5"),
    ("sample-value-infinite", _raw(BATCH, '"value":1.5', '"value":-1e999'),
     "records[0].value", "-inf"),
    ("sample-value-nan", _raw(BATCH, '"value":1.5', '"value":NaN'), "records[0].value",
     "nan"),
    # fixed: accepted, then storing it raised OverflowError in the store and crashed ingest
    ("sample-value-beyond-64-bits", _mutated(BATCH, _set("records/0/value", 2**70)),
     "records[0].value", str(2**70)),
    ("sample-value-below-64-bits", _mutated(BATCH, _set("records/0/value", -(2**70))),
     "records[0].value", str(-(2**70))),
    ("sample-value-just-beyond-64-bits", _mutated(BATCH, _set("records/0/value", 2**63)),
     "records[0].value", str(2**63)),
    ("sample-value-just-below-64-bits", _mutated(BATCH, _set("records/0/value", -(2**63) - 1)),
     "records[0].value", str(-(2**63) - 1)),
    ("sample-value-overflows-a-double", _raw(BATCH, '"value":1.5', '"value":1e400'),
     "records[0].value", "inf"),
    ("interval-quantity-overflows-a-double", _mutated(BATCH, _set("records/1/quantity",
                                                                  10**400)),
     "records[1].quantity", "1000000"),
    ("sample-value-null", _mutated(BATCH, _set("records/0/value", None)), "records[0].value",
     "None"),
    ("sample-value-list", _mutated(BATCH, _set("records/0/value", [1])), "records[0].value",
     "[1]"),
    # fixed: accepted, then encode() raised UnicodeEncodeError when sending it on
    ("sample-value-lone-surrogate", _raw(BATCH, '"value":1.5', '"value":"\\ud800"'),
     "records[0].value", "'\\ud800'"),
    ("quantity-overflows-to-inf", _raw(BATCH, '"quantity":0.5', '"quantity":1e999'),
     "records[1].quantity", "inf"),
    ("quantity-nan", _raw(BATCH, '"quantity":0.5', '"quantity":NaN'), "records[1].quantity",
     "nan"),
    # fixed: escaped as OverflowError instead of WireError
    ("quantity-integer-too-large-for-float",
     _raw(BATCH, '"quantity":0.5', '"quantity":1' + "0" * 400), "records[1].quantity",
     "1000000"),
    ("quantity-as-string", _mutated(BATCH, _set("records/1/quantity", "0.5")),
     "records[1].quantity", "'0.5'"),
    ("quantity-as-bool", _mutated(BATCH, _set("records/1/quantity", True)),
     "records[1].quantity", "True"),
    ("unknown-interval-flag", _mutated(BATCH, _set("records/1/flags", ["gap", "late"])),
     "records[1].flags[1]", "'late'"),
    ("interval-flag-not-string", _mutated(BATCH, _set("records/1/flags", [["gap"]])),
     "records[1].flags[0]", "['gap']"),
    ("interval-flags-not-list", _mutated(BATCH, _set("records/1/flags", "gap")),
     "records[1].flags", "'gap'"),
    ("duration-zero", _mutated(BATCH, _set("records/1/duration_s", 0)),
     "records[1].duration_s", "0"),
    ("duration-over-a-year", _mutated(BATCH, _set("records/1/duration_s", 366 * 86400 + 1)),
     "records[1].duration_s", str(366 * 86400 + 1)),
    ("interval-start-missing", _mutated(BATCH, _set("records/1/start", DELETE)),
     "records[1].start", "missing"),
    ("bad-severity", _mutated(BATCH, _set("records/2/severity", "critical")),
     "records[2].severity", "'critical'"),
    ("severity-unhashable", _mutated(BATCH, _set("records/2/severity", {"x": 1})),
     "records[2].severity", "{'x': 1}"),
    ("event-name-with-dash", _mutated(BATCH, _set("records/2/name", "device-offline")),
     "records[2].name", "'device-offline'"),
    ("event-bad-device", _mutated(BATCH, _set("records/2/device", "")), "records[2].device",
     "''"),
    ("event-data-not-object", _mutated(BATCH, _set("records/2/data", [1, 2])),
     "records[2].data", "[1, 2]"),
    # fixed: accepted, then encode() raised ValueError (allow_nan=False)
    ("event-data-nan", _raw(BATCH, '"reason":"timeout"', '"reason":{"retry":[1,NaN]}'),
     "records[2].data.reason.retry[1]", "nan"),
    ("event-data-lone-surrogate", _raw(BATCH, '"timeout"', '"\\udfff"'),
     "records[2].data.reason", "'\\udfff'"),
    # ack
    ("ack-upto-negative", _mutated(ACK, _set("upto", -1)), "upto", "-1"),
    ("ack-upto-string", _mutated(ACK, _set("upto", "4")), "upto", "'4'"),
    ("ack-upto-missing", _mutated(ACK, _set("upto", DELETE)), "upto", "missing"),
    # birth
    ("birth-devices-not-list", _mutated(BIRTH, _set("devices", {})), "devices", "{}"),
    ("birth-device-not-object", _mutated(BIRTH, _set("devices/0", "m1")), "devices[0]",
     "'m1'"),
    ("birth-bad-device-id", _mutated(BIRTH, _set("devices/0/id", "m/1")), "devices[0].id",
     "'m/1'"),
    ("birth-points-not-strings", _mutated(BIRTH, _set("devices/0/points", ["a", 1])),
     "devices[0].points", "['a', 1]"),
    ("birth-device-kind-missing", _mutated(BIRTH, _set("devices/0/kind", DELETE)),
     "devices[0].kind", "missing"),
    ("birth-synced-missing", _mutated(BIRTH, _set("synced", DELETE)), "synced", "missing"),
    # fixed (see sample-value-lone-surrogate)
    ("birth-software-lone-surrogate", _raw(BIRTH, '"gg 0.1"', '"\\ud800"'), "software",
     "'\\ud800'"),
    ("birth-software-too-long", _mutated(BIRTH, _set("software", "软" * 257)), "software",
     "'软软软"),
    # command
    ("expires-equal-issued", _mutated(COMMAND, _set("expires", 1000)), "expires", "1000"),
    ("expires-before-issued", _mutated(COMMAND, _set("expires", 999)), "expires", "999"),
    ("command-id-missing", _mutated(COMMAND, _set("id", DELETE)), "id", "missing"),
    ("command-bad-id", _mutated(COMMAND, _set("id", "c 1")), "id", "'c 1'"),
    ("command-bad-name", _mutated(COMMAND, _set("name", "Override")), "name", "'Override'"),
    ("command-args-not-object", _mutated(COMMAND, _set("args", None)), "args", "None"),
    # fixed (see event-data-nan)
    ("command-args-infinite", _raw(COMMAND, '"setpoint_c":26', '"setpoint_c":Infinity'),
     "args.setpoint_c", "inf"),
    # not a message at all
    ("not-json", b'{"v":1,', "<message>", "b'{\"v\":1,'"),
    ("empty-payload", b"", "<message>", "b''"),
    ("invalid-utf8", b'{"v":1,"type":"\xff"}', "<message>", "\\xff"),
    ("json-array-root", b'[{"v":1}]', "<message>", "[{'v': 1}]"),
    ("json-string-root", b'"ack"', "<message>", "'ack'"),
    ("json-null-root", b"null", "<message>", "None"),
    ("nested-too-deep", b"[" * 100_000, "<message>", "b'[[[["),
    ("oversize-payload", b" " * (wire.MAX_MESSAGE_BYTES + 1), "<message>",
     f"'{wire.MAX_MESSAGE_BYTES + 1} bytes'"),
]


@pytest.mark.parametrize(("payload", "field", "shown"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_message(payload: bytes | str, field: str, shown: str) -> None:
    with pytest.raises(WireError) as info:
        wire.decode(payload)
    err = info.value
    assert err.field == field
    message = str(err)
    assert message.startswith(f"{field}: ")
    assert shown in message
    assert err.reason in message
    assert isinstance(err, ProtocolError)


def test_bases_are_valid() -> None:
    """The tables above mutate these; make sure the unmutated documents decode."""
    for base in (BATCH, ACK, BIRTH, COMMAND):
        wire.decode(json.dumps(base))


def test_long_values_are_truncated_in_the_message() -> None:
    err = WireError("records[0].unit", "x" * 500, "too long")
    assert len(str(err)) < 200
    assert str(err).endswith("...)")
    assert err.value == "x" * 500


BAD_TOPICS: list[tuple[str, str, str]] = [
    ("gg/v1/s1/e1", "topic", "'gg/v1/s1/e1'"),
    ("gg/v1/s1/e1/ack/extra", "topic", "'gg/v1/s1/e1/ack/extra'"),
    ("gg/v2/s1/e1/ack", "topic", "'gg/v2/s1/e1/ack'"),
    ("xx/v1/s1/e1/ack", "topic", "'xx/v1/s1/e1/ack'"),
    ("/gg/v1/s1/e1/ack", "topic", "'/gg/v1/s1/e1/ack'"),
    ("gg/v1/s1/e1/telemetry2", "topic", "'gg/v1/s1/e1/telemetry2'"),
    ("gg/v1/s1/e1/ACK", "topic", "'gg/v1/s1/e1/ACK'"),
    ("", "topic", "''"),
    ("gg/v1//e1/ack", "topic.site", "''"),
    ("gg/v1/+/e1/ack", "topic.site", "'+'"),
    ("gg/v1/s1/#/ack", "topic.edge", "'#'"),
    ("gg/v1/s1/e 1/ack", "topic.edge", "'e 1'"),
    # fixed (see stream-edge-trailing-newline)
    ("gg/v1/s1/e1\n/ack", "topic.edge", "'e1\\n'"),
    ("gg/v1/s1/" + "e" * 65 + "/ack", "topic.edge", "'eeee"),
]


@pytest.mark.parametrize(("value", "field", "shown"), BAD_TOPICS)
def test_bad_topic(value: str, field: str, shown: str) -> None:
    with pytest.raises(WireError) as info:
        wire.parse_topic(value)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert shown in str(info.value)
