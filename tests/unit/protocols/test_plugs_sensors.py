"""Smart plug payloads (Tasmota, Shelly Gen2), bin-fill geometry and sensor payloads:
golden tables of (payload, expected reading), malformed payloads, fuzzing."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import plugs
from protocols.errors import DeviceReplyError, FrameError
from protocols.sensors import (
    BinGeometry,
    OccupancyReading,
    WasteCategory,
    bin_uplink_payload,
    occupancy_payload,
    parse_bin_uplink,
    parse_category,
    parse_occupancy,
)

# A Sonoff POW R2 / Gosund SP111 on Tasmota 13: tele/<t>/SENSOR
TASMOTA_SENSOR = (b'{"Time":"2026-03-02T10:00:00","ENERGY":{"TotalStartTime":"2025-09-01T08:00:00",'
                  b'"Total":12.345,"Yesterday":0.512,"Today":0.087,"Period":2,"Power":45,'
                  b'"ApparentPower":48,"ReactivePower":16,"Factor":0.94,"Voltage":229,'
                  b'"Current":0.209}}')
TASMOTA_STATUS10 = b'{"StatusSNS":' + TASMOTA_SENSOR + b"}"
# Shelly Plus Plug S answering Switch.GetStatus over MQTT
SHELLY_STATUS = (b'{"id":7,"src":"shellyplusplugs-a8032ab12345","dst":"gg-edge-1-lan",'
                 b'"result":{"id":0,"source":"init","output":true,"apower":8.9,'
                 b'"voltage":237.5,"current":0.04,"aenergy":{"total":6532.123,'
                 b'"by_minute":[0,0,0],"minute_ts":1772416800},"temperature":{"tC":41.2}}}')


def test_tasmota_sensor_golden() -> None:
    expected = plugs.PlugReading(None, 45.0, 12.345, 229.0, 0.209, 0.94)
    assert plugs.parse_tasmota_sensor(TASMOTA_SENSOR) == expected
    assert plugs.parse_tasmota_sensor(TASMOTA_STATUS10) == expected
    assert expected.values() == {"power_w": 45.0, "energy_import_kwh": 12.345,
                                 "voltage_v": 229.0, "current_a": 0.209, "power_factor": 0.94}


@pytest.mark.parametrize(("payload", "relay", "expected"), [
    (b'{"POWER":"ON"}', None, True), (b'{"POWER":"OFF"}', None, False),
    (b"ON", None, True), (b" off ", None, False),
    (b'{"POWER1":"ON","POWER2":"OFF"}', 2, False), (b'{"POWER":"ON"}', 1, True),
    (b'{"Dimmer":40}', None, None),  # RESULT of another command
])
def test_tasmota_power(payload: bytes, relay: int | None, expected: bool | None) -> None:
    assert plugs.parse_tasmota_power(payload, relay=relay) is expected


@pytest.mark.parametrize(("payload", "text"), [
    (b"not json", "not JSON"), (b"[1]", "must be an object"),
    (b'{"Time":"x"}', "no ENERGY"), (b'{"ENERGY":{"Power":"45"}}', "must be a number"),
    (b'{"ENERGY":{"Total":-1}}', "must not be negative"),
    (b'{"ENERGY":{"Power":1e999}}', "must be finite"),
])
def test_tasmota_bad_payloads(payload: bytes, text: str) -> None:
    with pytest.raises(FrameError, match=text):
        plugs.parse_tasmota_sensor(payload)
    with pytest.raises(FrameError):
        plugs.parse_tasmota_power(b'{"POWER":"TOGGLE"}')


def test_tasmota_commands_are_absolute() -> None:
    assert (plugs.tasmota_power_payload(True), plugs.tasmota_power_payload(False)) == (
        b"ON", b"OFF")
    topics = plugs.TasmotaTopics("plug_301")
    assert (topics.power_command, topics.result, topics.status10, topics.lwt) == (
        "cmnd/plug_301/POWER", "stat/plug_301/RESULT", "stat/plug_301/STATUS10",
        "tele/plug_301/LWT")


def test_shelly_golden() -> None:
    answer = plugs.parse_shelly_response(SHELLY_STATUS)
    assert (answer.id, answer.src) == (7, "shellyplusplugs-a8032ab12345")
    reading = plugs.parse_shelly_switch_status(answer.result)
    assert reading.energy_import_kwh == pytest.approx(6.532123, rel=1e-15)  # Wh → kWh
    assert reading == plugs.PlugReading(True, 8.9, reading.energy_import_kwh, 237.5, 0.04, None)
    request = plugs.shelly_request("Switch.Set", {"id": 0, "on": False}, request_id=8,
                                   src="gg-edge-1-lan")
    assert json.loads(request) == {"id": 8, "src": "gg-edge-1-lan", "method": "Switch.Set",
                                   "params": {"id": 0, "on": False}}
    assert plugs.shelly_answer_id(SHELLY_STATUS) == 7
    assert plugs.shelly_answer_id(b"garbage") is None


def test_shelly_errors() -> None:
    error = plugs.shelly_response(9, src="s", dst="d", error=(-103, "Invalid argument"))
    with pytest.raises(DeviceReplyError, match="-103") as info:
        plugs.parse_shelly_response(error)
    assert info.value.code == -103
    for bad in (b'{"id":"9","result":{}}', b'{"id":9,"result":[]}', b"{",
                b'{"id":9,"error":{"code":"x"}}'):
        with pytest.raises(FrameError):
            plugs.parse_shelly_response(bad)
    with pytest.raises(FrameError, match="output"):
        plugs.parse_shelly_switch_status({"output": "on"})


@given(st.binary(max_size=200))
def test_plug_parsers_raise_only_frame_errors(data: bytes) -> None:
    for parse in (plugs.parse_tasmota_sensor, plugs.parse_tasmota_power,
                  plugs.parse_shelly_response):
        with contextlib.suppress(FrameError):
            parse(data)


# -- bins -------------------------------------------------------------------------------

GEOMETRY = BinGeometry(empty_mm=1200, full_mm=200)
FILL = [  # (distance mm, fill %): (1200 − d) / (1200 − 200) × 100
    (1200, 0.0), (1100, 10.0), (700, 50.0), (450, 75.0), (200, 100.0),
    (150, 100.0),  # nearer than "full": clamped
    (1240, 0.0),  # a little beyond empty: within the 50 mm tolerance
]


@pytest.mark.parametrize(("distance", "pct"), FILL)
def test_fill_golden(distance: float, pct: float) -> None:
    assert GEOMETRY.fill_pct(distance) == pytest.approx(pct)


@pytest.mark.parametrize("distance", [1251, 0, -5, float("nan"), float("inf")])
def test_impossible_distances(distance: float) -> None:
    with pytest.raises(FrameError, match="bin-sensor"):
        GEOMETRY.fill_pct(distance)


def test_geometry_is_validated() -> None:
    with pytest.raises(ValueError, match="full_mm"):
        BinGeometry(empty_mm=200, full_mm=300)
    with pytest.raises(ValueError, match="finite"):
        BinGeometry(empty_mm=float("nan"), full_mm=0)


@pytest.mark.parametrize(("text", "category"), [
    ("recyclable", WasteCategory.RECYCLABLE), ("Hazardous", WasteCategory.HAZARDOUS),
    ("可回收物", WasteCategory.RECYCLABLE), ("有害垃圾", WasteCategory.HAZARDOUS),
    ("厨余垃圾", WasteCategory.KITCHEN), ("其他垃圾", WasteCategory.OTHER),
    ("湿垃圾", WasteCategory.KITCHEN), ("干垃圾", WasteCategory.OTHER),
    ("wet", WasteCategory.KITCHEN)])
def test_categories(text: str, category: WasteCategory) -> None:
    assert parse_category(text) is category


def test_category_labels_and_unknown() -> None:
    assert [(c.label_zh, c.colour) for c in WasteCategory] == [
        ("可回收物", "blue"), ("有害垃圾", "red"), ("厨余垃圾", "green"), ("其他垃圾", "grey")]
    with pytest.raises(ValueError, match="unknown waste category 'glass'"):
        parse_category("glass")


@pytest.mark.parametrize(("payload", "distance", "battery", "tilted"), [
    # ChirpStack v4 uplink with a Milesight EM310-UDL decoder
    (b'{"deviceInfo":{"devEui":"a840"},"object":{"battery":92,"distance":1250,'
     b'"position":"normal"}}', 1250.0, 92.0, False),
    (b'{"object":{"distance":300,"position":"tilt"}}', 300.0, None, True),
    (b'{"distance":640}', 640.0, None, None),  # a flat payload
])
def test_bin_uplinks(payload: bytes, distance: float, battery: float | None,
                     tilted: bool | None) -> None:
    reading = parse_bin_uplink(payload)
    assert (reading.distance_mm, reading.battery_pct, reading.tilted) == (
        distance, battery, tilted)


@pytest.mark.parametrize(("payload", "text"), [
    (b"{", "not JSON"), (b'{"object":{}}', "'distance' missing"),
    (b'{"object":{"distance":"far"}}', "finite number"),
    (b'{"object":{"distance":5,"battery":130}}', "0–100"), (b"[]", "JSON object")])
def test_bad_bin_uplinks(payload: bytes, text: str) -> None:
    with pytest.raises(FrameError, match=text):
        parse_bin_uplink(payload)


def test_bin_payload_round_trip() -> None:
    payload = bin_uplink_payload(distance_mm=GEOMETRY.distance_for(35.0), battery_pct=90,
                                 dev_eui="a84041000181c2d5")
    assert GEOMETRY.fill_pct(parse_bin_uplink(payload).distance_mm) == pytest.approx(35.0)


@pytest.mark.parametrize(("payload", "expected"), [
    (b'{"occupancy":true,"battery":100,"illuminance_lux":35,"linkquality":120}',
     OccupancyReading(True, 100.0, 35.0)),
    (b'{"occupancy":false,"illuminance":80}', OccupancyReading(False, None, 80.0)),
])
def test_occupancy(payload: bytes, expected: OccupancyReading) -> None:
    assert parse_occupancy(payload) == expected
    assert parse_occupancy(occupancy_payload(expected)) == expected


@pytest.mark.parametrize("payload", [b'{"occupancy":"yes"}', b'{"battery":100}', b"x"])
def test_bad_occupancy(payload: bytes) -> None:
    with pytest.raises(FrameError):
        parse_occupancy(payload)


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(
                        st.sampled_from(["object", "distance", "battery", "occupancy",
                                         "position"]), c, max_size=4), max_leaves=8))
def test_sensor_parsers_raise_only_frame_errors(obj: Any) -> None:
    payload = json.dumps(obj).encode()
    for parse in (parse_bin_uplink, parse_occupancy):
        with contextlib.suppress(FrameError):
            parse(payload)
