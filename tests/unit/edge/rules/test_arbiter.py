"""The arbiter: priorities, bounds for every source, minimum on/off times, rate limit,
protected devices; with the three Hypothesis properties of the issue."""

from __future__ import annotations

import itertools
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.rules.arbiter import ActiveOverride, Arbiter, ArbiterSettings
from edge.rules.engine import evaluate
from edge.rules.model import DeviceKind, DeviceView, Proposal, SetpointBounds
from tests.unit.edge.rules.helpers import CALENDAR, MONDAY_NOON, ac, dev, rule, state, ts

SETTINGS = ArbiterSettings(min_on_s=300, min_off_s=300, max_writes=6, rate_window_s=600)


def views(*devices: DeviceView) -> dict[str, DeviceView]:
    return {d.id: d for d in devices}


def off(device: str, rule_id: str = "r") -> Proposal:
    return Proposal(device, "on", False, rule_id, "test")


def override(device: str, point: str, value: Any, expires: float = MONDAY_NOON + 3600,
             oid: str = "o1") -> ActiveOverride:
    return ActiveOverride(oid, device, point, value, "evening event", expires)


def test_override_beats_rule_until_it_expires() -> None:
    a = Arbiter(SETTINGS)
    v = views(ac())
    o = override("ac-1", "on", True, expires=MONDAY_NOON + 60)
    assert a.decide(v, [off("ac-1")], [o], {}, MONDAY_NOON).writes == []
    writes = a.decide(v, [off("ac-1")], [o], {}, MONDAY_NOON + 60).writes
    assert [(w.value, w.source) for w in writes] == [(False, "rule")]


def test_override_writes_with_its_source_and_id() -> None:
    a = Arbiter(SETTINGS)
    writes = a.decide(views(ac(on=False)), [], [override("ac-1", "on", True)], {},
                      MONDAY_NOON).writes
    assert [(w.value, w.source, w.rule, w.before) for w in writes] == [
        (True, "override", "override:o1", False)]


def test_override_setpoint_is_clamped_and_says_so() -> None:
    a = Arbiter(SETTINGS)
    bounds = {"ac-1": SetpointBounds(26.0, None, "ac-limits")}
    writes = a.decide(views(ac(setpoint_c=27.0)), [], [override("ac-1", "setpoint_c", 22.0)],
                      bounds, MONDAY_NOON).writes
    assert [w.value for w in writes] == [26.0]
    assert "22 °C clamped to 26 °C by ac-limits" in writes[0].reason


def test_protected_never_written() -> None:
    a = Arbiter(SETTINGS, protected=["dc-ac"])
    d = a.decide(views(ac("dc-ac")), [off("dc-ac")], [override("dc-ac", "on", False)],
                          {}, MONDAY_NOON)
    assert d.writes == []
    assert [(h.device, h.why) for h in d.held] == [("dc-ac", "protected")]


def test_no_write_when_already_there_or_stale() -> None:
    a = Arbiter(SETTINGS)
    assert a.decide(views(ac(on=False)), [off("ac-1")], [], {}, MONDAY_NOON).writes == []
    stale = dev("ac-1", DeviceKind.AC, fresh=False, on=True)
    assert a.decide(views(stale), [off("ac-1")], [], {}, MONDAY_NOON).writes == []


def test_minimum_on_time_after_a_person_switches_on() -> None:
    a = Arbiter(SETTINGS)
    a.observe(views(ac(on=False)), MONDAY_NOON)
    a.observe(views(ac(on=True)), MONDAY_NOON + 10)  # switched on by hand
    held = a.decide(views(ac()), [off("ac-1")], [], {}, MONDAY_NOON + 309)
    assert held.writes == []
    assert [h.why for h in held.held] == ["min_on"]
    assert a.decide(views(ac()), [off("ac-1")], [], {}, MONDAY_NOON + 310).writes != []


def test_rate_limit() -> None:
    a = Arbiter(ArbiterSettings(min_on_s=0, min_off_s=0, max_writes=2, rate_window_s=600))
    got = []
    for i, sp in enumerate([22.0, 23.0, 24.0, 25.0]):
        p = Proposal("ac-1", "setpoint_c", 26.0, "r", "clamp")
        got.append(bool(a.decide(views(ac(setpoint_c=sp)), [p], [], {},
                                 MONDAY_NOON + i).writes))
    assert got == [True, True, False, False]
    p = Proposal("ac-1", "setpoint_c", 26.0, "r", "clamp")
    assert a.decide(views(ac(setpoint_c=22.0)), [p], [], {}, MONDAY_NOON + 600).writes


def test_off_wins_between_rules() -> None:
    a = Arbiter(SETTINGS)
    proposals = [Proposal("ac-1", "on", True, "a", "x"), off("ac-1", "b")]
    assert [w.rule for w in a.decide(views(ac()), proposals, [], {}, MONDAY_NOON).writes] == ["b"]


# -- properties -----------------------------------------------------------------------------

ZONES = ["301", "302", "lab", "data-room"]
EXEMPT = {"data-room"}
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-100, 100),
                    st.sampled_from([5.0, 40.0, 16.0, 30.0, 25.99, 26.0, 20.0, 20.01]))
ac_states = st.builds(
    lambda i, zone, mode, sp, on, fresh: DeviceView(
        f"ac-{i}", DeviceKind.AC, zone, {"on": on, "mode": mode, "setpoint_c": sp}, fresh),
    st.integers(0, 5), st.sampled_from(ZONES),
    st.sampled_from(["cool", "heat", "dry", "fan", "auto", "garbage"]),
    st.one_of(numbers, st.text(max_size=3)), st.booleans(), st.booleans())
months = st.integers(1, 12)
LIMITS = rule({"id": "ac-limits", "type": "setpoint_limits", "exempt_zones": sorted(EXEMPT),
               "zone_limits": {"lab": {"cooling_min_c": 24, "heating_max_c": 22}}})


@settings(max_examples=300, deadline=None)
@given(st.lists(ac_states, max_size=6, unique_by=lambda d: d.id), months,
       st.lists(st.tuples(st.integers(0, 5), numbers), max_size=4))
def test_no_setpoint_write_outside_the_limits_of_a_non_exempt_zone(
        acs: list[DeviceView], month: int, overrides: list[tuple[int, float]]) -> None:
    now = ts(2026, month, 15, 12, 0)
    s = state(*acs)
    out = evaluate([LIMITS], s, now, CALENDAR)
    active = [override(f"ac-{i}", "setpoint_c", v, expires=now + 60, oid=f"o{n}")
              for n, (i, v) in enumerate(overrides)]
    decisions = Arbiter(SETTINGS).decide(s.devices, out.proposals, active, out.bounds, now)
    for w in decisions.writes:
        assert w.point == "setpoint_c"
        assert isinstance(w.value, float | int)
        assert math.isfinite(w.value)
        d = s.devices[w.device]
        if d.zone in EXEMPT:
            continue
        lim = LIMITS.limits(d.zone)  # type: ignore[attr-defined]
        mode = d.values["mode"]
        if mode in ("cool", "dry"):
            assert w.value >= lim.cooling_min_c
        elif mode == "heat":
            assert w.value <= lim.heating_max_c
        elif mode != "fan":
            low = lim.cooling_min_c if month in range(5, 11) else lim.heating_max_c
            if month in (5, 6, 7, 8, 9, 10):
                assert w.value >= low
            elif month in (11, 12, 1, 2, 3):
                assert w.value <= lim.heating_max_c
            else:
                assert lim.heating_max_c <= w.value <= lim.cooling_min_c


PROTECTED = ["ac-0", "plug-1"]
proposal = st.builds(Proposal, st.sampled_from(["ac-0", "ac-1", "plug-1", "plug-2"]),
                     st.sampled_from(["on", "setpoint_c"]),
                     st.one_of(st.booleans(), st.floats(16, 30)), st.just("r"), st.just("x"))


@settings(max_examples=300, deadline=None)
@given(st.lists(proposal, max_size=8),
       st.lists(st.tuples(st.sampled_from(["ac-0", "ac-1", "plug-1"]), st.booleans()),
                max_size=3),
       st.lists(st.tuples(st.booleans(), st.floats(16, 30)), min_size=4, max_size=4))
def test_no_write_to_a_protected_device(proposals: list[Proposal],
                                        overrides: list[tuple[str, bool]],
                                        current: list[tuple[bool, float]]) -> None:
    devices = views(
        *(DeviceView(d, DeviceKind.AC if d.startswith("ac") else DeviceKind.PLUG, "301",
                     {"on": on, "setpoint_c": sp}, True)
          for d, (on, sp) in zip(["ac-0", "ac-1", "plug-1", "plug-2"], current, strict=True)))
    a = Arbiter(SETTINGS, protected=PROTECTED)
    active = [override(d, "on", v, oid=f"o{i}") for i, (d, v) in enumerate(overrides)]
    for t in range(3):
        a.observe(devices, MONDAY_NOON + t)
        for w in a.decide(devices, proposals, active, {}, MONDAY_NOON + t).writes:
            assert w.device not in PROTECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=1200),
       st.booleans(), st.integers(0, 600))
def test_at_most_one_change_per_minimum_window_under_flapping(
        wanted: list[bool | None], start_on: bool, last_change_ago: int) -> None:
    """A desire that flips every second (occupancy flapping): the device changes at most
    once per minimum on/off window."""
    window = 300
    a = Arbiter(ArbiterSettings(min_on_s=window, min_off_s=window, max_writes=1000,
                                rate_window_s=600))
    on = start_on
    t0 = MONDAY_NOON
    a.observe(views(dev("p", DeviceKind.PLUG, on=not on)), t0 - last_change_ago - 1)
    a.observe(views(dev("p", DeviceKind.PLUG, on=on)), t0 - last_change_ago)
    changes = [t0 - last_change_ago]
    for i, desire in enumerate(wanted):
        now = t0 + i
        v = views(dev("p", DeviceKind.PLUG, on=on))
        a.observe(v, now)
        proposals = [] if desire is None else [Proposal("p", "on", desire, "r", "flap")]
        for w in a.decide(v, proposals, [], {}, now).writes:
            assert isinstance(w.value, bool)
            on = w.value  # an ideal device: the write takes effect
            changes.append(now)
    gaps = [b - a_ for a_, b in itertools.pairwise(changes)]
    assert all(g >= window for g in gaps), gaps


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([False, None]), st.booleans()), min_size=1,
                max_size=900))
def test_rule_switches_spaced_by_the_minimum_window_when_a_person_fights_back(
        ticks: list[tuple[bool | None, bool]]) -> None:
    """Occupancy flapping under a vacancy rule (off or no opinion every second) while a
    person switches the device back on at random seconds: the rule's own switches are at
    least one minimum on time apart."""
    window = 300
    a = Arbiter(ArbiterSettings(min_on_s=window, min_off_s=window, max_writes=1000,
                                rate_window_s=600))
    on = True
    rule_writes: list[float] = []
    for i, (desire, person_on) in enumerate(ticks):
        now = MONDAY_NOON + i
        if person_on:
            on = True  # by hand, between two ticks
        v = views(dev("p", DeviceKind.PLUG, on=on))
        a.observe(v, now)
        proposals = [] if desire is None else [Proposal("p", "on", desire, "r", "vacant")]
        for w in a.decide(v, proposals, [], {}, now).writes:
            on = bool(w.value)
            rule_writes.append(now)
    gaps = [b - a_ for a_, b in itertools.pairwise(rule_writes)]
    assert all(g >= window for g in gaps), gaps
