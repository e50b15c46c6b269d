"""The rules runtime inside a real agent (real config, real outbox and rules SQLite files),
with device values set directly and the bus write replaced: audit events, retries and the
actuation alarm, dry run, allowlist rejects, commands at most once, overrides across a
restart, the unsynced pause and the calendar fallback state."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest

from edge.agent import EdgeAgent
from edge.config import parse_edge_config
from edge.drivers.base import WriteResult
from edge.errors import ConfigError, DeviceTimeoutError
from edge.rules.model import Proposal, RuleOutput
from edge.rules.registry import RULES, RuleConfig, register
from protocols.wire import Command, Event, record_from_dict
from tests.unit.edge.rules.helpers import ts

NOON = ts(2026, 6, 15, 12, 0)
EVENING = ts(2026, 6, 15, 19, 0)


class Clock:
    def __init__(self, now: float, synced: bool = True) -> None:
        self.t = now
        self.synced = synced

    def now(self) -> float:
        return self.t

    def register(self) -> None: ...
    def unregister(self) -> None: ...

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(0)


def config(**rules: Any) -> dict[str, Any]:
    return {
        "edge_id": "edge-r", "site": "school",
        "buses": [{"id": "gw", "transport": "modbus_tcp", "host": "127.0.0.1", "port": 1},
                  {"id": "lan", "transport": "mqtt", "host": "127.0.0.1", "port": 1}],
        "devices": [
            {"id": "ac-301", "driver": "modbus", "bus": "gw", "device_id": 10,
             "model": "ac-controller-modbus", "zone": "301"},
            {"id": "ac-dc", "driver": "modbus", "bus": "gw", "device_id": 11,
             "model": "ac-controller-modbus", "zone": "data-room"},
            {"id": "plug-301", "driver": "tasmota", "bus": "lan", "topic": "plug_301"},
        ],
        "calendar": {"working_hours": "08:00-17:30"},
        "rules": {"protected_zones": ["data-room"],
                  "rules": [{"id": "ac-limits", "type": "setpoint_limits",
                             "exempt_zones": ["data-room"]},
                            {"id": "after-hours", "type": "after_hours_off", "warning_min": 0}],
                  **rules},
    }


class Rig:
    def __init__(self, tmp: Path, clock: Clock, **rules: Any) -> None:
        self.clock = clock
        self.agent = EdgeAgent.create(parse_edge_config(config(**rules)), clock=clock,
                                      base_dir=tmp)
        self.writes: list[tuple[str, str, object]] = []
        self.fail: list[Exception | object] = []  # next outcomes: exception or read-back
        self.agent.write = self._write  # type: ignore[method-assign]
        assert self.agent.rules is not None
        self.rules = self.agent.rules

    async def _write(self, device: str, point: str, value: object, *,
                     source: str = "api") -> WriteResult:
        self.writes.append((device, point, value))
        if self.fail:
            outcome = self.fail.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return WriteResult(device, point, value, outcome, False)  # type: ignore[arg-type]
        self.set(device, **{point: value})
        return WriteResult(device, point, value, value, True)  # type: ignore[arg-type]

    def set(self, device: str, **values: object) -> None:
        for s in self.agent.schedulers:
            for d in s.devices:
                if d.driver.id == device:
                    d.values.update(values)
                    d.read_at = self.clock.now()
                    d.online = True

    def events(self, name: str | None = None) -> list[Event]:
        rows = self.agent.outbox.read_after(0, 100_000)
        out = [record_from_dict(json.loads(r.body)) for r in rows]
        return [e for e in out if isinstance(e, Event) and (name is None or e.name == name)]

    def close(self) -> None:
        for hub in self.agent.hubs:
            hub.close()
        self.rules.store.close()
        self.agent.outbox.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path, Clock(NOON))
    yield r
    r.close()


async def test_clamp_is_written_and_audited(rig: Rig) -> None:
    rig.set("ac-301", on=True, mode="cool", setpoint_c=22.0)
    rig.set("ac-dc", on=True, mode="cool", setpoint_c=18.0)  # exempt and protected
    await rig.rules.tick()
    assert rig.writes == [("ac-301", "setpoint_c", 26.0)]
    [audit] = rig.events("audit.write")
    assert audit.device == "ac-301"
    assert audit.data == {"rule": "ac-limits", "source": "rule", "point": "setpoint_c",
                          "before": 22.0, "after": 26.0, "dry_run": False,
                          "reason": "setpoint 22 °C in cool mode, limit 26 °C"}
    await rig.rules.tick()  # re-derived: nothing left to do
    assert len(rig.writes) == 1


async def test_person_resets_by_hand_and_the_next_tick_corrects(rig: Rig) -> None:
    rig.set("ac-301", on=True, mode="cool", setpoint_c=22.0)
    await rig.rules.tick()
    rig.clock.t += 60
    rig.set("ac-301", setpoint_c=20.0)  # a person, by the remote
    await rig.rules.tick()
    assert [w[2] for w in rig.writes] == [26.0, 26.0]


async def test_protected_devices_are_never_switched(rig: Rig) -> None:
    rig.clock.t = EVENING
    rig.set("ac-301", on=True, mode="cool", setpoint_c=26.0)
    rig.set("ac-dc", on=True, mode="cool", setpoint_c=26.0)
    await rig.rules.tick()
    await rig.rules.tick()
    assert rig.writes == [("ac-301", "on", False)]
    held = rig.events("rule.held")
    assert [(e.device, e.data["why"]) for e in held] == [("ac-dc", "protected")]  # once


async def test_dry_run_audits_and_writes_nothing(tmp_path: Path) -> None:
    r = Rig(tmp_path, Clock(NOON), dry_run=True)
    try:
        r.set("ac-301", on=True, mode="cool", setpoint_c=22.0)
        await r.rules.tick()
        assert r.writes == []
        [audit] = r.events("audit.write")
        assert audit.data["dry_run"] is True
        assert audit.data["after"] == 26.0
    finally:
        r.close()


async def test_bounded_retries_then_one_alarm_then_cleared(rig: Rig) -> None:
    rig.set("ac-301", on=True, mode="cool", setpoint_c=22.0)
    rig.fail = [DeviceTimeoutError("ac-301", "no answer"), 23.0, DeviceTimeoutError("ac-301", "x")]
    await rig.rules.tick()
    assert len(rig.writes) == 3  # 1 + retries (2)
    [alarm] = rig.events("alarm.actuation_failed")
    assert alarm.data["state"] == "raised"
    assert alarm.data["rule"] == "ac-limits"
    assert alarm.data["attempts"] == 3
    rig.fail = [DeviceTimeoutError("ac-301", "x")] * 3
    rig.clock.t += 600
    rig.set("ac-301")  # a fresh poll
    await rig.rules.tick()  # still failing: no second alarm
    assert len(rig.writes) == 6
    assert len(rig.events("alarm.actuation_failed")) == 1
    rig.clock.t += 600
    rig.set("ac-301")
    await rig.rules.tick()
    assert len(rig.writes) == 7
    states = [e.data["state"] for e in rig.events("alarm.actuation_failed")]
    assert states == ["raised", "cleared"]


@register
class BadRule(RuleConfig):
    """A custom rule plugged in through the registry, proposing values the allowlist
    refuses."""

    type: Literal["test_bad_values"]

    def evaluate(self, state: Any, now: float, calendar: Any) -> RuleOutput:
        return RuleOutput(proposals=[Proposal("ac-301", "setpoint_c", True, self.id, "bad")])


async def test_custom_rule_and_allowlist_rejects_are_audited(tmp_path: Path) -> None:
    assert RULES["test_bad_values"] is BadRule
    rules = {"rules": [{"id": "bad", "type": "test_bad_values"}], "protected_zones": []}
    r = Rig(tmp_path, Clock(NOON), **rules)
    try:
        r.set("ac-301", on=True, mode="cool", setpoint_c=26.0)
        await r.rules.tick()
        assert r.writes == []
        [rejected] = r.events("audit.rejected")
        assert rejected.data["value"] is True
        assert "number" in str(rejected.data["why"])
    finally:
        r.close()


def cmd(id: str, name: str, args: dict[str, Any], *, issued: float = NOON,
        expires: float = NOON + 3600) -> Command:
    return Command(id, name, round(issued * 1000), round(expires * 1000), args)


def results(rig: Rig) -> list[tuple[object, object]]:
    return [(e.data["id"], e.data["status"]) for e in rig.events("command.result")]


async def test_commands_at_most_once_expired_dropped(rig: Rig) -> None:
    on = {"device": "ac-301", "point": "on", "value": True, "reason": "evening event"}
    rig.agent.handle_command(cmd("c1", "override.set", on))
    rig.agent.handle_command(cmd("c1", "override.set", on))  # replayed
    rig.agent.handle_command(cmd("c2", "override.set", on, issued=NOON - 7200,
                                 expires=NOON - 3600))  # stale
    rig.agent.handle_command(cmd("c2", "override.set", on, issued=NOON - 7200,
                                 expires=NOON - 3600))
    assert results(rig) == [("c1", "applied"), ("c1", "duplicate"), ("c2", "expired"),
                            ("c2", "duplicate")]
    assert [o.id for o in rig.rules.overrides(NOON)] == ["c1"]
    rig.agent.handle_command(cmd("c3", "override.clear", {"override_id": "c1"}))
    rig.agent.handle_command(cmd("c4", "override.clear", {"override_id": "c1"}))
    assert results(rig)[-2:] == [("c3", "cleared"), ("c4", "rejected")]
    assert rig.rules.overrides(NOON) == []


@pytest.mark.parametrize(("args", "detail"), [
    ({"device": "ac-301", "point": "setpoint_c", "value": 5}, "below the allowed minimum"),
    ({"device": "ac-301", "point": "setpoint_c", "value": 40}, "above the allowed maximum"),
    ({"device": "ac-301", "point": "setpoint_c", "value": float("nan")}, "finite"),
    ({"device": "ac-301", "point": "setpoint_c", "value": "hot"}, "number"),
    ({"device": "ac-301", "point": "room_temp_c", "value": 20}, "not writable"),
    ({"device": "ac-301", "point": "nope", "value": 20}, "args.point"),
    ({"device": "ac-404", "point": "on", "value": True}, "unknown device"),
    ({"device": "ac-dc", "point": "on", "value": False}, "protected"),
    ({"device": "plug-301", "point": "on", "value": "yes"}, "true or false"),
    ({"device": "ac-301", "point": "on"}, "args.value: missing"),
])
async def test_bad_overrides_are_rejected_and_audited(rig: Rig, args: dict[str, Any],
                                                      detail: str) -> None:
    rig.agent.handle_command(cmd("bad", "override.set", args))
    [result] = rig.events("command.result")
    assert result.data["status"] == "rejected"
    assert detail in str(result.data["detail"])
    [audit] = rig.events("audit.rejected")
    assert audit.data["source"] == "override"
    assert rig.rules.overrides(NOON) == []


async def test_unknown_command_is_rejected(rig: Rig) -> None:
    rig.agent.handle_command(cmd("x", "reboot", {}))
    assert results(rig) == [("x", "rejected")]


async def test_override_survives_restart_and_ends_on_time(tmp_path: Path) -> None:
    clock = Clock(ts(2026, 6, 15, 17, 0))
    r = Rig(tmp_path, clock)
    r.agent.handle_command(cmd("ev", "override.set",
                               {"device": "ac-301", "point": "on", "value": True},
                               issued=clock.t, expires=ts(2026, 6, 15, 20, 0)))
    r.close()
    clock.t = ts(2026, 6, 15, 19, 0)  # after hours, after a restart
    r = Rig(tmp_path, clock)
    try:
        r.set("ac-301", on=True, mode="cool", setpoint_c=26.0)
        await r.rules.tick()
        assert r.writes == []  # the override holds the AC on
        clock.t = ts(2026, 6, 15, 20, 0)
        r.set("ac-301")
        await r.rules.tick()
        assert r.writes == [("ac-301", "on", False)]
        [expired] = r.events("override.expired")
        assert expired.data["id"] == "ev"
        [audit] = r.events("audit.write")
        assert audit.data["rule"] == "after-hours"
    finally:
        r.close()


async def test_local_override_wins_over_rule(rig: Rig) -> None:
    rig.clock.t = EVENING
    rig.set("ac-301", on=True, mode="cool", setpoint_c=24.0)
    rig.agent.handle_command(cmd("o", "override.set",
                                 {"device": "ac-301", "point": "setpoint_c", "value": 22},
                                 issued=EVENING, expires=EVENING + 3600))
    rig.agent.handle_command(cmd("o2", "override.set",
                                 {"device": "ac-301", "point": "on", "value": True},
                                 issued=EVENING, expires=EVENING + 3600))
    await rig.rules.tick()
    # The override keeps the AC on; its 22 °C is clamped to the 26 °C floor.
    assert rig.writes == [("ac-301", "setpoint_c", 26.0)]
    [audit] = rig.events("audit.write")
    assert audit.data["source"] == "override"
    assert "clamped to 26" in str(audit.data["reason"])


async def test_time_based_rules_pause_while_the_clock_is_unsynced(tmp_path: Path) -> None:
    r = Rig(tmp_path, Clock(EVENING, synced=False))
    try:
        r.set("ac-301", on=True, mode="cool", setpoint_c=22.0)
        await r.rules.tick()
        await r.rules.tick()
        assert r.writes == [("ac-301", "setpoint_c", 26.0)]  # not time-based
        assert [e.data["rule"] for e in r.events("rules.paused")] == ["after-hours"]
        r.clock.synced = True
        await r.rules.tick()
        assert r.writes[-1] == ("ac-301", "on", False)
    finally:
        r.close()


async def test_2027_fallback_is_reported_once(tmp_path: Path) -> None:
    r = Rig(tmp_path, Clock(ts(2027, 3, 1, 12, 0)))
    try:
        await r.rules.tick()
        await r.rules.tick()
        [event] = r.events("calendar.fallback")
        assert event.data == {"day": "2027-03-01", "working": True, "fallback": "weekdays",
                              "rule": "calendar"}
    finally:
        r.close()


def test_rules_config_names_unknown_devices() -> None:
    raw = config(protected=["ac-999"])
    with pytest.raises(ConfigError, match=r"rules.protected: unknown device 'ac-999'"):
        parse_edge_config(raw)
    raw = config()
    raw["rules"]["rules"][1]["exempt"] = ["fridge"]
    with pytest.raises(ConfigError, match=r"rules.rules\[1\] \(id 'after-hours'\).exempt"):
        parse_edge_config(raw)


async def test_occupancy_flapping_every_second(tmp_path: Path) -> None:
    """RELIABILITY #16: a PIR flapping every second and a person switching the AC back on
    whenever it goes off: the rules switch it at most once per minimum on window."""
    raw = config(min_on_s=300, min_off_s=300, tick_s=1, max_writes=1000,
                 rules=[{"id": "vacancy", "type": "vacancy_off", "after_min": 0}])
    raw["devices"].append({"id": "pir-301", "driver": "modbus", "bus": "gw", "device_id": 20,
                           "model": "pir-modbus", "zone": "301"})
    clock = Clock(NOON)
    agent = EdgeAgent.create(parse_edge_config(raw), clock=clock, base_dir=tmp_path)
    r = Rig.__new__(Rig)
    r.clock, r.agent, r.writes, r.fail = clock, agent, [], []
    agent.write = r._write  # type: ignore[method-assign]
    assert agent.rules is not None
    r.rules = agent.rules
    try:
        switched_off: list[float] = []
        for second in range(1800):
            clock.t = NOON + second
            on = r.agent.rules is not None and any(
                d.values.get("on") for s in agent.schedulers for d in s.devices
                if d.driver.id == "ac-301")
            if not on and second % 7 == 0:
                r.set("ac-301", on=True, mode="cool", setpoint_c=26.0)  # a person
            else:
                r.set("ac-301")
            r.set("pir-301", occupied=second % 2 == 0)
            writes = await r.rules.tick()
            switched_off += [clock.t for w in writes if w.point == "on"]
        assert len(switched_off) >= 3
        gaps = [b - a for a, b in itertools.pairwise(switched_off)]
        assert min(gaps) >= 300
    finally:
        r.close()
