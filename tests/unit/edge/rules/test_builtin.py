"""Each built-in rule at its boundaries, as tables: pure, no I/O, no clock."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from edge.rules.config import RulesConfig
from edge.rules.engine import evaluate
from edge.rules.model import DeviceKind, DeviceView
from tests.unit.edge.rules.helpers import (
    CALENDAR,
    MONDAY_EVENING,
    MONDAY_NOON,
    ac,
    dev,
    pir,
    rule,
    state,
    ts,
)

# -- after hours ----------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "devices", "proposed", "notice"), [
    (MONDAY_NOON, [ac()], False, None),  # working time
    (ts(2026, 6, 15, 17, 29), [ac()], False, None),
    (ts(2026, 6, 15, 17, 30), [ac()], False, "rule.warning"),  # warning period starts
    (ts(2026, 6, 15, 17, 39), [ac()], False, "rule.warning"),
    (ts(2026, 6, 15, 17, 40), [ac()], True, None),  # warning (10 min) over
    (MONDAY_EVENING, [ac(on=False)], False, None),  # already off
    (MONDAY_EVENING, [dev("ac-1", DeviceKind.AC, on=True, fresh=False)], False, None),  # stale
    (MONDAY_EVENING, [ac(), pir(occupied=True)], False, "rule.hold"),  # someone still here
    (MONDAY_EVENING, [ac(), pir(occupied=False)], True, None),
    (MONDAY_EVENING, [ac(), pir(zone="302", occupied=True)], True, None),  # another room
    (ts(2026, 6, 19, 10, 0), [ac()], True, None),  # Dragon Boat Festival
    (ts(2026, 2, 14, 10, 0), [ac()], False, None),  # Saturday make-up workday
    (ts(2026, 6, 15, 6, 0), [ac()], True, None),  # left on overnight
])
def test_after_hours(now: float, devices: list[DeviceView], proposed: bool,
                     notice: str | None) -> None:
    r = rule({"type": "after_hours_off", "warning_min": 10})
    out = evaluate([r], state(*devices), now, CALENDAR)
    assert [(p.device, p.point, p.value) for p in out.proposals] == (
        [("ac-1", "on", False)] if proposed else [])
    assert [n.name for n in out.notices] == ([notice] if notice else [])


def test_after_hours_exemptions_and_kinds() -> None:
    devices = [ac("ac-1"), ac("ac-dc", zone="data-room"),
               dev("fridge", DeviceKind.PLUG, on=True), dev("light-1", DeviceKind.LIGHT, on=True),
               dev("meter", DeviceKind.METER, on=True)]
    r = rule({"type": "after_hours_off", "warning_min": 0, "exempt": ["fridge"],
              "exempt_zones": ["data-room"]})
    out = evaluate([r], state(*devices), MONDAY_EVENING, CALENDAR)
    assert sorted(p.device for p in out.proposals) == ["ac-1", "light-1"]


def test_time_based_rules_pause_while_unsynced() -> None:
    rules = [rule({"type": "after_hours_off", "warning_min": 0}),
             rule({"id": "sp", "type": "setpoint_limits"})]
    out = evaluate(rules, state(ac(setpoint_c=22.0), synced=False), MONDAY_EVENING, CALENDAR)
    # The setpoint clamp does not depend on the time of day: it still runs.
    assert [(p.rule, p.point) for p in out.proposals] == [("sp", "setpoint_c")]
    assert [(n.name, n.rule) for n in out.notices] == [("rules.paused", "r")]


# -- setpoint limits ------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "month", "wanted"), [
    ({"mode": "cool", "setpoint_c": 22.0}, 6, 26.0),
    ({"mode": "cool", "setpoint_c": 25.9}, 6, 26.0),
    ({"mode": "cool", "setpoint_c": 26.0}, 6, None),  # exactly at the limit
    ({"mode": "cool", "setpoint_c": 28.0}, 6, None),
    ({"mode": "dry", "setpoint_c": 20.0}, 6, 26.0),
    ({"mode": "heat", "setpoint_c": 24.0}, 1, 20.0),
    ({"mode": "heat", "setpoint_c": 20.0}, 1, None),
    ({"mode": "heat", "setpoint_c": 20.1}, 1, 20.0),
    ({"mode": "cool", "setpoint_c": 22.0}, 1, 26.0),  # cooling in winter: still the floor
    ({"mode": "auto", "setpoint_c": 22.0}, 7, 26.0),  # auto follows the season
    ({"mode": "auto", "setpoint_c": 24.0}, 12, 20.0),
    ({"mode": "auto", "setpoint_c": 18.0}, 4, 20.0),  # between seasons: the 20–26 band
    ({"mode": "auto", "setpoint_c": 23.0}, 4, None),
    ({"mode": "fan", "setpoint_c": 16.0}, 6, None),
    ({"mode": "cool", "setpoint_c": 22.0, "on": False}, 6, None),  # off: left alone
    ({"mode": "cool", "setpoint_c": "garbage"}, 6, None),
])
def test_setpoint_limits(values: dict[str, Any], month: int, wanted: float | None) -> None:
    r = rule({"type": "setpoint_limits"})
    out = evaluate([r], state(ac(**values)), ts(2026, month, 15, 12, 0), CALENDAR)
    assert [p.value for p in out.proposals] == ([wanted] if wanted is not None else [])


def test_setpoint_limits_per_zone_and_exempt_zones() -> None:
    r = rule({"type": "setpoint_limits", "zone_limits": {"lab": {"cooling_min_c": 24}},
              "exempt_zones": ["data-room"]})
    devices = [ac("a", zone="301", setpoint_c=22.0), ac("b", zone="lab", setpoint_c=22.0),
               ac("c", zone="data-room", setpoint_c=18.0)]
    out = evaluate([r], state(*devices), MONDAY_NOON, CALENDAR)
    assert {p.device: p.value for p in out.proposals} == {"a": 26.0, "b": 24.0}
    assert "c" not in out.bounds  # exempt: no bound either


def test_setpoint_limits_validation() -> None:
    with pytest.raises(ValidationError, match="both cooling and heating"):
        RulesConfig.model_validate({"rules": [{"id": "s", "type": "setpoint_limits",
                                               "cooling_months": [5, 6],
                                               "heating_months": [6]}]})
    with pytest.raises(ValidationError, match="cooling_min_c"):
        RulesConfig.model_validate({"rules": [{"id": "s", "type": "setpoint_limits",
                                               "cooling_min_c": "nan"}]})


# -- vacancy --------------------------------------------------------------------------------


def history(sensor: str, points: list[tuple[float, bool]]) -> dict[str, Any]:
    return {sensor: tuple((t, {"occupied": o}) for t, o in points)}


@pytest.mark.parametrize(("last_occupied_min_ago", "proposed"), [
    (None, True),  # no occupied reading in 20 min of history
    (17, True), (16, True), (15, False), (1, False),  # empty from the first empty reading
])
def test_vacancy(last_occupied_min_ago: int | None, proposed: bool) -> None:
    now = MONDAY_NOON
    samples = [(now - m * 60, False) for m in range(20, -1, -1)]
    if last_occupied_min_ago is not None:
        samples = [(t, t == now - last_occupied_min_ago * 60) for t, _ in samples]
    s = state(ac(), pir(occupied=False), history=history("pir-1", samples))
    out = evaluate([rule({"type": "vacancy_off", "after_min": 15})], s, now, CALENDAR)
    assert bool(out.proposals) is proposed


def test_vacancy_needs_evidence() -> None:
    now = MONDAY_NOON
    short = history("pir-1", [(now - 60 * m, False) for m in range(5, -1, -1)])
    r = rule({"type": "vacancy_off", "after_min": 15})
    assert not evaluate([r], state(ac(), pir(), history=short), now, CALENDAR).proposals
    no_sensor = state(ac(), history={})
    assert not evaluate([r], no_sensor, now, CALENDAR).proposals
    occupied_now = state(ac(), pir(occupied=True),
                         history=history("pir-1", [(now - 3600, False)]))
    assert not evaluate([r], occupied_now, now, CALENDAR).proposals


# -- standby --------------------------------------------------------------------------------


@pytest.mark.parametrize(("powers", "now", "proposed"), [
    ([3.0] * 31, MONDAY_EVENING, True),
    ([3.0] * 31, MONDAY_NOON, False),  # working hours
    ([3.0] * 30 + [10.0], MONDAY_EVENING, False),  # at the threshold is not standby
    ([3.0] * 20, MONDAY_EVENING, False),  # only 19 min of evidence
    ([9.9] * 31, MONDAY_EVENING, True),
])
def test_standby(powers: list[float], now: float, proposed: bool) -> None:
    hist = {"plug-1": tuple((now - 60 * (len(powers) - 1 - i), {"power_w": p, "on": True})
                            for i, p in enumerate(powers))}
    s = state(dev("plug-1", DeviceKind.PLUG, on=True, power_w=powers[-1]), history=hist)
    r = rule({"type": "standby_cut", "below_w": 10, "for_min": 30})
    assert bool(evaluate([r], s, now, CALENDAR).proposals) is proposed


# -- lights ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("now", "occupied", "why"), [
    (MONDAY_NOON, True, None),
    (ts(2026, 6, 15, 17, 44), False, None),  # within the 15 min grace
    (ts(2026, 6, 15, 17, 45), False, "after_hours"),
    (ts(2026, 6, 15, 19, 0), True, None),  # someone still working
])
def test_lights_left_on(now: float, occupied: bool, why: str | None) -> None:
    s = state(dev("light-1", DeviceKind.LIGHT, on=True), pir(occupied=occupied))
    out = evaluate([rule({"type": "lights_left_on"})], s, now, CALENDAR)
    assert [a.data["why"] for a in out.alarms] == ([why] if why else [])
    assert [a.kind for a in out.alarms] == (["lights_on"] if why else [])
    assert len(out.proposals) == (1 if why else 0)


def test_lights_in_an_empty_room_during_the_day() -> None:
    now = MONDAY_NOON
    hist = history("pir-1", [(now - 60 * m, False) for m in range(20, -1, -1)])
    s = state(dev("light-1", DeviceKind.LIGHT, on=True), pir(), history=hist)
    out = evaluate([rule({"type": "lights_left_on", "switch_off": False})], s, now, CALENDAR)
    assert [a.data["why"] for a in out.alarms] == ["vacant"]
    assert out.proposals == []  # alarm only


# -- water ----------------------------------------------------------------------------------


def water_history(now: float, hours: float, m3h: float) -> dict[str, Any]:
    steps = int(hours * 4) + 1
    return {"w-1": tuple((now - 900 * (steps - 1 - i), {"water_m3": 100 + m3h * i / 4})
                         for i in range(steps))}


@pytest.mark.parametrize(("hours", "m3h", "raised"), [
    (3.5, 0.2, True), (3.5, 0.04, False), (2.0, 0.2, False),  # not long enough yet
])
def test_continuous_flow(hours: float, m3h: float, raised: bool) -> None:
    s = state(dev("w-1", DeviceKind.WATER, water_m3=100.0),
              history=water_history(MONDAY_NOON, hours, m3h))
    r = rule({"type": "water_leak", "continuous_m3h": 0.05, "continuous_h": 3})
    out = evaluate([r], s, MONDAY_NOON, CALENDAR)
    assert [(a.kind, a.data["why"]) for a in out.alarms] == (
        [("leak", "continuous")] if raised else [])


@pytest.mark.parametrize(("nights", "raised"), [
    ({15: 0.03, 14: 0.03, 13: 0.03}, True),
    ({15: 0.03, 14: 0.01, 13: 0.03}, False),  # one quiet night breaks the run
    ({15: 0.03, 14: 0.03}, False),
    ({14: 0.03, 13: 0.03, 12: 0.03}, True),  # before tonight's window: up to last night
])
def test_night_minimum(nights: dict[int, float], raised: bool) -> None:
    nightly = {"w-1": {date(2026, 6, d): v for d, v in nights.items()}}
    s = state(dev("w-1", DeviceKind.WATER, water_m3=1.0), nightly=nightly)
    out = evaluate([rule({"type": "water_leak", "night_min_m3h": 0.02, "nights": 3})], s,
                   MONDAY_NOON, CALENDAR)
    assert [a.data.get("why") for a in out.alarms] == (["night_minimum"] if raised else [])


# -- bins -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("category", "fill", "raised", "hazardous"), [
    ("recyclable", 79.9, False, False), ("recyclable", 80.0, True, False),
    ("hazardous", 59.0, False, True), ("hazardous", 60.0, True, True),
])
def test_bin_full(category: str, fill: float, raised: bool, hazardous: bool) -> None:
    s = state(dev("bin-1", DeviceKind.BIN, attrs={"category": category}, fill_pct=fill))
    out = evaluate([rule({"type": "bin_full"})], s, MONDAY_NOON, CALENDAR)
    assert [(a.kind, a.data["hazardous"]) for a in out.alarms] == (
        [("bin_full", hazardous)] if raised else [])


# -- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rules", "message"), [
    ([{"id": "x", "type": "nope"}], "unknown rule type 'nope'"),
    ([{"id": "x", "type": "vacancy_off", "after_min": -1}], r"rules\[0\] \(id 'x'\).after_min"),
    ([{"id": "x", "type": "vacancy_off"}, {"id": "x", "type": "bin_full"}], "duplicate rule"),
    ([{"id": "x", "type": "bin_full", "threshold": 3}], "threshold"),
])
def test_bad_rule_config(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RulesConfig.model_validate({"rules": rules})
