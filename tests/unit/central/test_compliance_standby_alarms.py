"""Standby waste of plugs outside working hours, open leak alarms and the alarm summary,
computed by hand and through a real SQLite store."""

from __future__ import annotations

from typing import Any

import pytest

from central.institution import InstitutionConfig, StandbyRule, parse_institution
from central.metrics import alarms_for, period_metrics, standby_for
from central.profile import load_profile
from central.store import Store
from protocols.wire import Event, Sample, Severity
from tests.unit.central.central_helpers import INSTITUTION, batch, local_ms, local_ts

MIN = 60_000


def school() -> InstitutionConfig:
    return parse_institution({**INSTITUTION, "plugs": [
        {"edge": "edge-1", "device": "plug-1", "building": "A"},
        {"edge": "edge-2", "device": "plug-2", "building": "B"},
    ], "working_hours": {"start": "08:00", "end": "18:00"}})


def power(seq: int, ts: int, watts: float, device: str = "plug-1") -> Sample:
    return Sample(seq=seq, ts=ts, device=device, point="power_w", value=watts, unit="W")


def test_standby_outside_working_hours_by_hand(tmp_path: Any) -> None:
    inst = school()
    # Friday 2025-03-07 (a working day), then Saturday (a day off).
    fri = local_ms(2025, 3, 7)
    samples = [
        power(1, fri + 17 * 60 * MIN, 6.0),  # 17:00–19:00 standby at 6 W: 1 h in, 1 h out
        power(2, fri + 19 * 60 * MIN, 100.0),  # 19:00–19:10 in use: not standby
        power(3, fri + 19 * 60 * MIN + 10 * MIN, 0.2),  # 19:10–… off: not standby
        power(4, fri + 24 * 60 * MIN + 9 * 60 * MIN, 10.0),  # Sat 09:00 standby, held 15 min
    ]
    hold = StandbyRule().max_hold_s
    assert hold == 900
    with Store(tmp_path / "s.sqlite") as store:
        # Held samples: 17:00 → 19:00 only because the next sample comes at 19:00; each
        # sample holds at most 15 min, so put a keep-alive sample every 15 min.
        keep = [power(10 + i, fri + 17 * 60 * MIN + i * 15 * MIN, 6.0) for i in range(8)]
        store.store_batch(batch(samples + keep, after=0), "s")
        got = standby_for(store, inst, start=local_ts(2025, 3, 7), end=local_ts(2025, 3, 9))
    [p1, p2] = got.plugs
    # 6 W × 2 h = 12 Wh standby, 6 Wh of it after 18:00; Saturday 10 W × 0.25 h = 2.5 Wh,
    # all after hours (a day off).
    assert p1.standby_kwh == pytest.approx(0.012 + 0.0025)
    assert p1.after_hours_standby_kwh == pytest.approx(0.006 + 0.0025)
    assert p1.after_hours_standby_h == pytest.approx(1.25)
    assert p2.standby_kwh == 0.0
    assert p2.reported_h == 0.0
    assert got.after_hours_standby_kwh == pytest.approx(0.0085)
    assert got.working_hours == "08:00–18:00"


def alarm(seq: int, ts: int, kind: str, state: str, device: str = "water-a",
          **data: Any) -> Event:
    return Event(seq=seq, ts=ts, name=f"alarm.{kind}", severity=Severity.ALARM,
                 device=device, data={"state": state, "rule": f"{kind}_rule", **data})


def test_open_leaks_and_summary(tmp_path: Any) -> None:
    inst = school()
    day = local_ms(2025, 3, 7)
    events = [
        alarm(1, day - 86_400_000, "leak", "raised", point="water_m3", flow=0.4),  # yesterday
        alarm(2, day + 60 * MIN, "leak", "raised", device="meter-b", point="water_m3"),
        alarm(3, day + 70 * MIN, "leak", "cleared", device="meter-b", point="water_m3"),
        alarm(4, day + 80 * MIN, "lights_on", "raised", device="meter-a"),
        alarm(5, day + 90 * MIN, "bin_full", "raised", device="bin-1", fill_pct=95,
              category="other", hazardous=False),
        alarm(6, day + 95 * MIN, "bin_full", "cleared", device="bin-1"),
        Event(seq=7, ts=day + 99 * MIN, name="alarm.leak", severity=Severity.ALARM,
              device="x", data={"rule": "r"}),  # no state: counted, never guessed
        Event(seq=8, ts=day, name="device_offline", severity=Severity.WARNING),
    ]
    with Store(tmp_path / "s.sqlite") as store:
        # meter-b is on edge-2 in the config; the rest comes from edge-1.
        on_b = [e for e in events if e.device == "meter-b"]
        rest = [e for e in events if e.device != "meter-b"]
        store.store_batch(batch(rest, after=0), "s")
        store.store_batch(batch(on_b, after=0, edge="edge-2"), "s")
        store.store_batch(batch(rest[:3], after=0), "s")  # a replay changes nothing
        view = alarms_for(store, inst, start=day / 1000, end=(day + 86_400_000) / 1000)
        # Before the leak on meter-b cleared, both leaks were open.
        earlier = alarms_for(store, inst, start=day / 1000, end=(day + 65 * MIN) / 1000)
        building_b = alarms_for(store, inst, start=day / 1000, end=(day + 65 * MIN) / 1000,
                                building="B")
    assert [(a.kind, a.device, a.rule) for a in view.open] == [
        ("leak", "water-a", "leak_rule"), ("lights_on", "meter-a", "lights_on_rule")]
    assert [(a.device, a.point, a.data["flow"]) for a in view.open_leaks] == [
        ("water-a", "water_m3", 0.4)]
    assert view.open_leaks[0].age_s == pytest.approx(86_400 * 2)
    assert {s.kind: (s.raised, s.cleared, s.open) for s in view.summary} == {
        "leak": (1, 1, 1), "lights_on": (1, 0, 1), "bin_full": (1, 1, 0)}
    assert view.unknown_state == 1
    assert [a.device for a in earlier.open_leaks] == ["water-a", "meter-b"]
    assert [a.device for a in building_b.open_leaks] == ["meter-b"]


def test_period_metrics_carry_standby_alarms_and_waste(tmp_path: Any) -> None:
    inst = school()
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch([alarm(1, local_ms(2025, 3, 2), "leak", "raised")], after=0),
                          "s")
        pm = period_metrics(store, None, inst, load_profile("national"),
                            start=local_ts(2025, 3, 1), end=local_ts(2025, 4, 1))
    assert len(pm.alarms.open_leaks) == 1
    assert [p.plug for p in pm.standby.plugs] == ["edge-1/plug-1", "edge-2/plug-2"]
    assert pm.waste.clearances == []
