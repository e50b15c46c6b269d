"""Builders shared by the central's unit tests (imported by name; tests/ is not a package)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from protocols.wire import Batch, Event, IntervalRecord, Record, Sample, Severity, StreamId

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_ts(*args: int) -> float:
    """POSIX seconds of a local Asia/Shanghai wall-clock time."""
    return datetime(*args, tzinfo=SHANGHAI).timestamp()  # type: ignore[misc]


def local_ms(*args: int) -> int:
    return int(local_ts(*args) * 1000)


# 12,000 m² and 120 staff + 1,500 students = 1,620 用能人数.
INSTITUTION: dict[str, Any] = {
    "institution": {"id": "demo-school", "name": "示范中学 Demo Middle School",
                    "type": "school"},
    "buildings": [
        {"id": "A", "name": "教学楼 Teaching", "floor_area_m2": 7000},
        {"id": "B", "name": "行政楼 Admin", "floor_area_m2": 5000},
    ],
    "headcount": {"staff": 120, "students_daily_avg": 1500},
    "targets": {2025: {"kgce_per_m2": 0.25, "kgce_per_person": 2.0,
                       "water_m3_per_person": 5.0}},
    "meters": [
        {"edge": "edge-1", "device": "meter-a", "building": "A", "energy": "electricity",
         "role": "main"},
        {"edge": "edge-1", "device": "meter-a-ac", "building": "A", "energy": "electricity",
         "role": "sub", "item": "01B00"},
        {"edge": "edge-1", "device": "water-a", "building": "A", "energy": "water",
         "role": "main"},
        {"edge": "edge-2", "device": "meter-b", "building": "B", "energy": "electricity",
         "role": "main"},
    ],
}


def sample(seq: int, *, ts: int = 1_735_689_600_000, device: str = "meter-a",
           point: str = "power_w", value: float | int | bool | str = 1000.0,
           unit: str = "W") -> Sample:
    return Sample(seq=seq, ts=ts, device=device, point=point, value=value, unit=unit)


def interval(seq: int, *, start: int = 1_735_689_600_000, quantity: float = 1.0,
             device: str = "meter-a", point: str = "energy_import_kwh", unit: str = "kWh",
             duration_s: int = 900) -> IntervalRecord:
    return IntervalRecord(seq=seq, device=device, point=point, start=start,
                          duration_s=duration_s, quantity=quantity, unit=unit)


def event(seq: int, *, name: str = "device_offline") -> Event:
    return Event(seq=seq, ts=1_735_689_600_000, name=name, severity=Severity.WARNING,
                 device="meter-a", data={"why": "timeout"})


def batch(records: Sequence[Record], *, after: int, edge: str = "edge-1",
          epoch: int = 1) -> Batch:
    return Batch(stream=StreamId(edge, epoch), after=after, sent=1_735_689_600_000,
                 synced=True, records=tuple(records))


# -- API auth ---------------------------------------------------------------------------

# A generated secret, fixed so failures are reproducible (never used outside tests).
TEST_SECRET = "O53ariNUvOt5jyEC8mPXwTmT_htHuycckblXX0A0HUOMrE-pdhUJ22uoNL2BKWTs"


def authenticator() -> Any:
    """An `Authenticator` over an in-memory token table."""
    from central.auth import Authenticator, TokenStore

    return Authenticator(TEST_SECRET, TokenStore(":memory:"))


def bearer(auth: Any, role: str = "admin",
           institutions: Sequence[str] | None = None) -> dict[str, str]:
    """Headers of a fresh token with `role`, scoped to `institutions` (None: all)."""
    from central.auth import Role

    _, raw = auth.issue(f"test {role}", Role(role), institutions)
    return {"Authorization": f"Bearer {raw}"}
