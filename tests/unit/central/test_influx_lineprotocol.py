"""Line protocol built by central.influx, fuzzed against a small parser written from the
InfluxDB line-protocol reference: parse(build(x)) == x for any tag text, including Chinese,
spaces, commas, equals signs, quotes and backslashes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.influx import build_line, clean, record_lines
from central.telemetry import DeviceTags, TelemetryBatch
from protocols.wire import Event, IntervalFlag, IntervalRecord, Sample, Severity, StreamId

Parsed = tuple[str, dict[str, str], dict[str, Any], int]


def _until(text: str, i: int, stops: str) -> tuple[str, int]:
    """Unescape from i up to the first unescaped character in `stops`."""
    out = []
    while i < len(text) and text[i] not in stops:
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out), i


def _field_value(text: str, i: int) -> tuple[Any, int]:
    if text[i] == '"':
        out, i = [], i + 1
        while text[i] != '"':
            if text[i] == "\\" and text[i + 1] in '"\\':
                i += 1
            out.append(text[i])
            i += 1
        return "".join(out), i + 1
    raw, i = _until(text, i, ", ")
    if raw in ("true", "false"):
        return raw == "true", i
    if raw.endswith("i"):
        return int(raw[:-1]), i
    return float(raw), i


def parse(line: str) -> Parsed:
    assert "\n" not in line
    measurement, i = _until(line, 0, ", ")
    tags: dict[str, str] = {}
    while line[i] == ",":
        key, i = _until(line, i + 1, "=")
        value, i = _until(line, i + 1, ", ")
        tags[key] = value
    assert line[i] == " "
    fields: dict[str, Any] = {}
    i += 1
    while True:
        key, i = _until(line, i, "=")
        fields[key], i = _field_value(line, i + 1)
        if line[i] == " ":
            break
        assert line[i] == ","
        i += 1
    return measurement, tags, fields, int(line[i + 1:])


# Tag keys/values: anything but empty after cleaning; Chinese and separators on purpose.
_ALPHABET = st.sampled_from(list("ab Z9_-.,= \\\"'\t\n东区教学楼行政楼°%/"))
_text = st.text(_ALPHABET, min_size=1, max_size=12) | st.text(min_size=1, max_size=12)
_tag_text = _text.filter(lambda t: clean(t) != "")
_field_key = st.text(st.sampled_from(list("abcxyz_ ,=")), min_size=1, max_size=8)
_field = (st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**63, 2**63 - 1)
          | st.booleans() | _text)


@given(measurement=_tag_text, tags=st.dictionaries(_tag_text, _tag_text, max_size=6),
       fields=st.dictionaries(_field_key, _field, min_size=1, max_size=5),
       ts=st.integers(0, 2**62))
def test_parse_of_build_gives_back_the_input(measurement: str, tags: dict[str, str],
                                             fields: dict[str, Any], ts: int) -> None:
    line = build_line(measurement, tags, fields, ts)
    # Keys that only differ in control characters are one key once cleaned: the last wins.
    expected_fields = {clean(k): clean(v) if isinstance(v, str) else v
                       for k, v in fields.items()}
    got = parse(line)
    assert got[0] == clean(measurement)
    assert got[1] == {clean(k): clean(v) for k, v in tags.items()}
    assert list(got[1]) == sorted(got[1])  # InfluxDB's preferred tag order
    assert got[2].keys() == expected_fields.keys()
    for key, value in expected_fields.items():
        assert type(got[2][key]) is type(value)
        assert got[2][key] == value
    assert got[3] == ts


def test_tags_with_spaces_commas_equals_and_chinese_are_escaped() -> None:
    line = build_line("sample", {"zone": "东区 1,2=楼", "site": "s", "empty": "", "no": None},
                      {"value": 1.5}, 1_767_225_600_123)
    assert line == "sample,site=s,zone=东区\\ 1\\,2\\=楼 value=1.5 1767225600123"


def test_control_characters_become_spaces_and_numbers_stay_typed() -> None:
    line = build_line("event", {"name": "a\nb"}, {"data": 'say "hi"\n\\', "seq": 3,
                                                  "ok": False}, 5)
    assert line == 'event,name=a\\ b data="say \\"hi\\" \\\\",seq=3i,ok=false 5'


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        build_line("sample", {}, {"value": bad}, 1)


def test_a_line_needs_a_field() -> None:
    with pytest.raises(ValueError, match="at least one field"):
        build_line("sample", {"a": "b"}, {}, 1)


def test_records_map_to_the_documented_schema() -> None:
    batch = TelemetryBatch("school-1", StreamId("edge-1", 3), 0, 4, (
        Sample(seq=1, ts=1000, device="m", point="power_w", value=12, unit="W"),
        Sample(seq=2, ts=1001, device="ac", point="mode", value="cool", unit=""),
        IntervalRecord(seq=3, device="m", point="energy_import_kwh", start=900_000,
                       duration_s=900, quantity=1.5, unit="kWh",
                       flags=frozenset({IntervalFlag.GAP})),
        Event(seq=4, ts=1002, name="alarm.leak", severity=Severity.ALARM, device="w",
              data={"state": "raised", "flow": 0.2}),
    ))
    assert [parse(line) for line in record_lines(batch, DeviceTags())] == [
        ("sample", {"device": "m", "edge": "edge-1", "point": "power_w", "site": "school-1",
                    "unit": "W"}, {"value": 12.0}, 1000),
        ("sample", {"device": "ac", "edge": "edge-1", "point": "mode", "site": "school-1"},
         {"text": "cool"}, 1001),
        ("interval", {"device": "m", "edge": "edge-1", "point": "energy_import_kwh",
                      "site": "school-1", "unit": "kWh"},
         {"delta": 1.5, "seconds": 900, "estimated": False, "gap": True, "reset": False},
         900_000),
        ("event", {"device": "w", "edge": "edge-1", "name": "alarm.leak",
                   "severity": "alarm", "site": "school-1"},
         {"data": '{"flow": 0.2, "state": "raised"}', "seq": 4}, 1002),
    ]
