"""A simulated week of a whole institution (two buildings, main and 分项 meters, a data
centre, water, gas, AC units, a bin, a leak alarm), as uplink batches, deterministic.

The week runs over 清明 2026 (Saturday 4 – Monday 6 April are days off), so after-hours
figures that know only weekends would differ from the calendar-aware ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from central.institution import InstitutionConfig, parse_institution
from protocols.wire import Batch, Event, IntervalRecord, Record, Sample, Severity, StreamId

TZ = ZoneInfo("Asia/Shanghai")
SITE = "demo-site"
START_MS = int(datetime(2026, 4, 1, tzinfo=TZ).timestamp() * 1000)
DAYS = 7
END_MS = START_MS + DAYS * 86_400_000
STEP_MS = 900_000
LEAK_MS = START_MS + 3 * 86_400_000 + 10 * 3_600_000  # still open at the week's end
LIGHTS_MS = START_MS + 86_400_000 + 20 * 3_600_000  # raised, cleared 15 minutes later

INSTITUTION: dict[str, Any] = {
    "institution": {"id": "week-school", "name": "示范中学", "type": "school"},
    "buildings": [{"id": "A", "name": "教学楼", "floor_area_m2": 8000},
                  {"id": "B", "name": "行政楼", "floor_area_m2": 4000}],
    "headcount": {"staff": 150, "students_daily_avg": 1500},
    "targets": {2026: {"kgce_per_m2": 3.3, "kgce_per_person": 31.0,
                       "water_m3_per_person": 41.0}},
    "meters": [
        {"edge": "edge-a", "device": "a-main", "building": "A", "energy": "electricity",
         "role": "main", "live_point": "power_w"},
        {"edge": "edge-a", "device": "a-light", "building": "A", "energy": "electricity",
         "role": "sub", "item": "01A10"},
        {"edge": "edge-a", "device": "a-ac", "building": "A", "energy": "electricity",
         "role": "sub", "item": "01B00"},
        {"edge": "edge-a", "device": "a-water", "building": "A", "energy": "water",
         "role": "main"},
        {"edge": "edge-b", "device": "b-main", "building": "B", "energy": "electricity",
         "role": "main", "live_point": "power_w"},
        {"edge": "edge-b", "device": "b-dc", "building": "B", "energy": "electricity",
         "role": "sub", "item": "01D10"},
        {"edge": "edge-b", "device": "b-it", "building": "B", "energy": "electricity",
         "role": "sub", "it_load": True},
        {"edge": "edge-b", "device": "b-gas", "building": "B", "energy": "natural_gas",
         "role": "main", "point": "volume_m3", "unit": "m3"},
    ],
    "ac_units": [
        {"edge": "edge-a", "device": "ac-a1", "building": "A", "zone": "301"},
        {"edge": "edge-b", "device": "ac-b1", "building": "B", "zone": "office"},
    ],
    "bins": [{"edge": "edge-a", "device": "bin-a", "building": "A", "category": "other",
              "capacity_l": 240}],
}

# kWh (or m³) per 15 minutes at full working load, per meter
LOAD = {"a-main": 40.0, "a-light": 8.0, "a-ac": 15.0, "a-water": 0.6, "b-main": 25.0,
        "b-dc": 6.0, "b-it": 4.0, "b-gas": 1.5}


def institution() -> InstitutionConfig:
    return parse_institution(INSTITUTION)


def _load(ts_ms: int, device: str) -> float:
    """Working-hours load on weekdays, a base load otherwise (data centre flat)."""
    local = datetime.fromtimestamp(ts_ms / 1000, TZ)
    base = LOAD[device]
    if device in ("b-dc", "b-it"):
        return base
    working = local.weekday() < 5 and 8 <= local.hour < 18
    return base * (1.0 if working else 0.2) * (1.0 + 0.1 * math.sin(ts_ms / 3.6e6))


def _records(edge: str, config: InstitutionConfig) -> Iterator[Record]:
    seq = 0
    meters = [m for m in config.meters if m.edge == edge]
    units = [a for a in config.ac_units if a.edge == edge]
    for ts in range(START_MS, END_MS, STEP_MS):
        for m in meters:
            seq += 1
            q = _load(ts, m.device)
            yield IntervalRecord(seq, m.device, m.point, ts, 900, round(q, 4),
                                 m.unit or ("kWh" if m.energy.value == "electricity"
                                            else "m3"))
            if m.live_point:
                seq += 1
                yield Sample(seq, ts, m.device, m.live_point, round(q * 4000, 1), "W")
        for a in units:
            local = datetime.fromtimestamp(ts / 1000, TZ)
            on = local.weekday() < 5 and 8 <= local.hour < 18
            setpoint = 24.0 if a.device == "ac-a1" else (22.0 if local.hour < 12 else 26.0)
            for point, value, unit in (("on", on, ""), ("mode", "cool", ""),
                                       ("setpoint_c", setpoint, "°C")):
                seq += 1
                yield Sample(seq, ts, a.device, point, value, unit)
        if edge == "edge-a" and ts % 3_600_000 == 0:
            seq += 1
            yield Sample(seq, ts, "bin-a", "fill_pct", float((ts // 3_600_000) % 24 * 4), "%")
        if edge == "edge-a" and ts == LEAK_MS:
            seq += 1
            yield Event(seq, ts, "alarm.leak", Severity.ALARM, "a-water",
                        {"state": "raised", "rule": "leak"})
        if edge == "edge-b" and ts == END_MS - 6 * 3_600_000:
            seq += 1
            yield Event(seq, ts, "device_offline", Severity.WARNING, "b-gas",
                        {"why": "timeout"})
        if edge == "edge-b" and ts == LIGHTS_MS:
            for state, at in (("raised", ts), ("cleared", ts + STEP_MS)):
                seq += 1
                yield Event(seq, at, "alarm.lights_on", Severity.WARNING, "b-main",
                            {"state": state, "rule": "lights_on"})
        if edge == "edge-a" and ts == END_MS - 3 * 3_600_000:
            seq += 1
            yield Event(seq, ts, "alarm.bin_full", Severity.WARNING, "bin-a",
                        {"state": "raised", "rule": "bin_full"})


def batches(config: InstitutionConfig, size: int = 2000) -> Iterator[Batch]:
    for edge in ("edge-a", "edge-b"):
        chunk: list[Record] = []
        after = 0
        for r in _records(edge, config):
            chunk.append(r)
            if len(chunk) == size:
                yield Batch(StreamId(edge, 1), after, END_MS, True, tuple(chunk))
                after, chunk = chunk[-1].seq, []
        if chunk:
            yield Batch(StreamId(edge, 1), after, END_MS, True, tuple(chunk))
