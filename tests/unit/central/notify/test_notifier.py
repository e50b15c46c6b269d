"""The life of an alarm on a virtual clock, behind fake channels."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from central.errors import ConfigError
from central.notify.channels import FakeChannel, Outcome
from central.notify.notifier import Notifier
from central.notify.queue import NotifyQueue
from tests.unit.central.notify.helpers import T0, ManualClock, config, signal


def make(tmp_path: Path, ops: FakeChannel | None = None, **overrides: object
         ) -> tuple[Notifier, ManualClock, FakeChannel, FakeChannel]:
    clock = ManualClock()
    ops = ops or FakeChannel("ops")
    boss = FakeChannel("boss")
    n = Notifier(config(**overrides), {"ops": ops, "boss": boss},
                 NotifyQueue(tmp_path / "notify.sqlite"), clock, link_secret=b"s" * 32)
    return n, clock, ops, boss


def titles(ch: FakeChannel) -> list[str]:
    return [m.title for m, _ in ch.sent]


async def test_leak_notified_escalated_reminded_acknowledged_cleared(tmp_path: Path) -> None:
    n, clock, ops, boss = make(tmp_path)
    n.observe([signal("raised", T0)])
    n.observe([signal("raised", T0 + 60), signal("raised", T0)])  # repeat and replay
    await n.step()
    [(first, _)] = ops.sent
    assert first.title == "【紧急告警】漏水 · 教学楼 101"  # a leak ignores quiet hours
    assert "数值：0.4 m³/h" in first.lines
    assert "开始：2026-06-01 23:00" in first.lines
    assert first.ack_link is not None
    clock.advance(30 * 60 - 1)
    await n.step()
    assert boss.sent == []
    clock.advance(1)
    await n.step()
    assert titles(boss) == ["【升级】漏水未确认 · 教学楼 101"]  # on time, not before
    clock.advance(30 * 60)
    await n.step()
    assert titles(ops)[1:] == ["【提醒 1】漏水未确认 · 教学楼 101"]
    assert len(boss.sent) == 2
    [e] = n.queue.episodes("school")
    n.acknowledge(e.id, "engineer:li")
    clock.advance(3 * 3600)
    await n.step()
    assert len(ops.sent) == 2  # no reminder after the acknowledgement
    n.observe([signal("cleared", clock.now())])
    await n.step()
    assert len(ops.sent) == 2  # the all-clear waits out the flap window
    clock.advance(300)
    await n.step()
    assert titles(ops)[-1] == "【已恢复】漏水 · 教学楼 101"
    assert titles(boss)[-1] == "【已恢复】漏水 · 教学楼 101"
    assert n.queue.audit_log("school")[0]["action"] == "acknowledge"


async def test_quiet_hours_hold_a_minor_alarm_until_morning(tmp_path: Path) -> None:
    n, clock, ops, _ = make(tmp_path)
    n.observe([signal("raised", T0, kind="lights_on")])  # 23:00 local
    await n.step()
    assert ops.sent == []
    clock.advance(8 * 3600 - 1)  # 06:59:59
    await n.step()
    assert ops.sent == []
    clock.advance(1)
    await n.step()
    assert titles(ops)[0] == "【一般告警】灯未关 · 教学楼 101"


async def test_flapping_alarm_makes_one_message_and_one_all_clear(tmp_path: Path) -> None:
    n, clock, ops, _ = make(tmp_path)
    for i in range(5):  # raised and cleared every minute
        n.observe([signal("raised", T0 + 120 * i)])
        clock.t = T0 + 120 * i
        await n.step()
        n.observe([signal("cleared", T0 + 120 * i + 60)])
        clock.t = T0 + 120 * i + 60
        await n.step()
    clock.advance(300)
    await n.step()
    assert titles(ops) == ["【紧急告警】漏水 · 教学楼 101", "【已恢复】漏水 · 教学楼 101"]
    [e] = n.queue.episodes("school")
    assert e.flaps == 4


async def test_a_muted_device_is_recorded_and_audited_not_sent(tmp_path: Path) -> None:
    n, clock, ops, _ = make(tmp_path)
    n.mute("school", "edge-1", "water-1", minutes=60, reason="pipe repair", actor="engineer:li")
    n.observe([signal("raised", T0)])
    await n.step()
    assert ops.sent == []
    assert [a["action"] for a in n.queue.audit_log("school")] == ["suppressed", "mute"]
    clock.advance(3600)  # the mute ends while the leak goes on: now it is sent, once
    await n.step()
    await n.step()
    assert titles(ops) == ["【紧急告警】漏水 · 教学楼 101"]
    assert n.queue.audit_log("school")[0]["action"] == "unmuted"


async def test_retries_back_off_and_deliver_once(tmp_path: Path) -> None:
    ops = FakeChannel("ops", [Outcome.RETRY] * 3)
    n, clock, _, _ = make(tmp_path, ops=ops)
    n.observe([signal("raised", T0)])
    waits = []
    for _ in range(4):
        await n.step()
        due = n.queue.next_due_at()
        if due is None:
            break
        waits.append(due - clock.now())
        clock.t = due
    assert len(ops.sent) == 1
    assert waits[0] < waits[1] < waits[2]  # exponential backoff
    [d] = [d for d in n.queue.deliveries(institution="school") if d.channel == "ops"]
    assert (d.state, d.attempts) == ("sent", 4)
    assert [a["outcome"] for a in n.queue.attempts(d.key)] == ["retry"] * 3 + ["ok"]


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        config(institutions={"school": {"routes": [
            {"name": "r", "stages": [{"recipients": ["nobody"]}]}]}})
    assert err.value.problems[0][0] == "institutions.school.routes[0].stages[0].recipients[0]"
    with pytest.raises(ConfigError) as err:
        config(channels={"m": {"kind": "email", "host": "h", "sender": "a@b.cn",
                               "username": "u"}})
    assert "username and password go together" in str(err.value)


async def test_a_raise_after_the_all_clear_went_out_is_a_new_episode(tmp_path: Path) -> None:
    n, clock, ops, _ = make(tmp_path)
    n.observe([signal("raised", T0), signal("cleared", T0 + 60)])
    clock.advance(400)
    await n.step()
    assert titles(ops)[-1] == "【已恢复】漏水 · 教学楼 101"
    # A late raise (an edge's backlog) within the flap window of the clear's own time.
    n.observe([signal("raised", T0 + 120)])
    await n.step()
    assert len(n.queue.episodes("school")) == 2
    assert titles(ops)[-1] == "【紧急告警】漏水 · 教学楼 101"


async def test_run_wakes_on_alarms_observed_from_another_thread(tmp_path: Path) -> None:
    n, _, ops, _ = make(tmp_path)
    task = asyncio.create_task(n.run(poll_s=3600))  # only the wake-up can deliver
    try:
        await asyncio.sleep(0.05)
        await asyncio.to_thread(n.observe, [signal("raised", T0)])
        async with asyncio.timeout(10):
            while not ops.sent:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(ops.sent) == 1


async def test_refused_and_endless_retries_end_as_failed(tmp_path: Path) -> None:
    ops = FakeChannel("ops", [Outcome.FAIL])
    n, clock, _, boss = make(tmp_path, ops=ops)
    boss.script = [Outcome.RETRY] * 1000
    n.observe([signal("raised", T0)])
    await n.step()
    [refused] = [d for d in n.queue.deliveries(institution="school") if d.channel == "ops"]
    assert (refused.state, refused.attempts) == ("failed", 1)  # a refusal is not retried
    while clock.t < T0 + 27 * 3600:  # the escalation to boss retries until give_up_after_h
        clock.advance(600)
        await n.step()
    [gave_up] = [d for d in n.queue.deliveries(institution="school") if d.stage == "s1"]
    assert gave_up.state == "failed"
    assert gave_up.done_at is not None
    assert 24 * 3600 < gave_up.done_at - gave_up.created < 25 * 3600
    assert ("boss", "failed", 3) in n.queue.counts()["deliveries"]  # escalation, 2 reminders


async def test_the_ack_drops_escalations_waiting_to_be_sent_or_retried(
        tmp_path: Path) -> None:
    n, clock, _, boss = make(tmp_path)
    boss.script = [Outcome.RETRY]
    n.observe([signal("raised", T0), signal("raised", T0, device="water-2")])
    await n.step()
    clock.advance(30 * 60)
    n.tick()  # both escalations queued; send the first only, which fails and waits
    first, second = sorted((d for d in n.queue.deliveries(institution="school")
                            if d.stage == "s1"), key=lambda d: d.key)
    await n._attempt(first)  # one send; the other stays queued
    for e in n.queue.episodes("school"):
        n.acknowledge(e.id, "engineer:li")
    clock.advance(3600)
    await n.step()
    assert boss.sent == []
    states = {d.key: d.state for d in n.queue.deliveries(institution="school")}
    assert (states[first.key], states[second.key]) == ("cancelled", "cancelled")


async def test_routes_match_in_order_and_a_short_alarm_sends_nothing(tmp_path: Path) -> None:
    n, clock, ops, boss = make(tmp_path, institutions={"school": {
        "severities": {"bin_full": "major"},
        "routes": [
            {"name": "day-bins", "kinds": ["bin_full"], "hours": {"start": "07:00",
                                                                  "end": "19:00"},
             "stages": [{"recipients": ["boss"]}]},
            {"name": "major-elsewhere", "severities": ["major"], "buildings": ["行政楼"],
             "stages": [{"recipients": ["boss"]}]},
            {"name": "rest", "delay_s": 120, "stages": [{"recipients": ["ops"]}]}]}})
    # 23:00: not in day-bins' hours; major, but in 教学楼: the last route, after a delay.
    n.observe([signal("raised", T0, kind="bin_full"),
               signal("raised", T0, kind="lights_on", device="lamp-1")])
    clock.advance(60)
    n.observe([signal("cleared", T0 + 60, kind="lights_on", device="lamp-1")])  # short
    await n.step()
    assert ops.sent == []
    clock.advance(60)
    await n.step()
    assert [m.title for m, _ in ops.sent] == ["【重要告警】垃圾桶满溢 · 教学楼 101"]
    assert boss.sent == []
    routes = {e.kind: (e.route, e.suppressed) for e in n.queue.episodes("school")}
    assert routes == {"bin_full": ("rest", None), "lights_on": ("rest", "short")}
