"""The bus scheduler with in-memory drivers on a virtual clock: per-point intervals, interval
records, bad values, overruns, backoff and the audit of writes — no I/O anywhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.drivers.base import (
    Actuator,
    DeviceConfig,
    PointInfo,
    Reading,
    WriteResult,
)
from edge.drivers.hubs import Hub
from edge.errors import DeviceError
from edge.outbox import Outbox
from edge.poller import BusScheduler
from protocols.clock import VirtualClock
from protocols.errors import WriteRejectedError
from protocols.registermap import PointValue
from protocols.wire import Event, IntervalRecord, Record, Sample, record_from_dict

T0 = 1_772_416_800.0


class FakeConfig(DeviceConfig):
    driver: str = "fake"

    def available_points(self) -> dict[str, PointInfo]:
        return {"energy_kwh": PointInfo("energy_kwh", "kWh", cumulative=True),
                "power_w": PointInfo("power_w", "W"),
                "voltage_v": PointInfo("voltage_v", "V"),
                "setpoint_c": PointInfo("setpoint_c", "°C", writable=True)}


class FakeDevice(Actuator[FakeConfig, Hub]):
    """Energy grows 1 kWh a minute; `fail` makes reads raise; `advance_s` moves the clock
    during a read (a slow bus on the real clock)."""

    kind = "fake"

    def __init__(self, config: FakeConfig, clock: Any) -> None:
        super().__init__(config, Hub("bus"), clock)
        self.asked: list[tuple[float, frozenset[str]]] = []
        self.fail = False
        self.bad: dict[str, str] = {}
        self.advance_s = 0.0
        self.setpoint = 26.0
        self.stuck = False

    async def read(self, points: frozenset[str], slot: float) -> Reading:
        self.asked.append((slot, points))
        if self.fail:
            raise DeviceError(self.id, "no answer")
        if self.advance_s:
            self.clock.jump(self.advance_s)
        values: dict[str, PointValue] = {"energy_kwh": (slot - T0) / 60, "power_w": 60_000.0,
                                         "voltage_v": 230.0, "setpoint_c": self.setpoint}
        return Reading({k: v for k, v in values.items() if k in points and k not in self.bad},
                       {k: v for k, v in self.bad.items() if k in points})

    def check_write(self, point: str, value: object) -> PointValue:
        if point != "setpoint_c" or not isinstance(value, float) or not 16 <= value <= 30:
            raise WriteRejectedError("fake", point, f"{value!r} not allowed")
        return value

    async def write(self, point: str, value: PointValue) -> WriteResult:
        if self.fail:
            raise DeviceError(self.id, "no answer")
        if not self.stuck:
            assert isinstance(value, float)
            self.setpoint = value
        return WriteResult(self.id, point, value, self.setpoint, self.setpoint == value)

    def revert_values(self) -> dict[str, PointValue]:
        return {"setpoint_c": 26.0}


class JumpClock(VirtualClock):
    def jump(self, seconds: float) -> None:
        self._now += seconds


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite", edge_id="edge-1")
    yield box
    box.close()


def records(outbox: Outbox) -> list[Record]:
    return [record_from_dict(json.loads(r.body)) for r in outbox.read_after(0, 10_000)]


async def run_until(clock: VirtualClock, scheduler: BusScheduler, until: float) -> None:
    task = asyncio.create_task(scheduler.run())
    await scheduler.started.wait()
    await clock.run(until=until)
    await clock.settled()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_per_point_intervals_and_interval_records(outbox: Outbox) -> None:
    clock = JumpClock(T0)
    device = FakeDevice(FakeConfig(id="d1", poll_interval_s=60,
                                   point_intervals={"voltage_v": 300, "setpoint_c": 900}),
                        clock)
    scheduler = BusScheduler(device.hub, [device], outbox=outbox, clock=clock, interval_s=900)
    await run_until(clock, scheduler, T0 + 1800)
    assert [len(points) for _, points in device.asked[:6]] == [4, 2, 2, 2, 2, 3]
    assert sum(len(p) for _, p in device.asked) == 31 * 2 + 7 + 3  # 1 h / 60, /300, /900
    out = records(outbox)
    intervals = [r for r in out if isinstance(r, IntervalRecord)]
    assert [(r.start, r.quantity) for r in intervals] == [
        (round(T0 * 1000), 15.0), (round((T0 + 900) * 1000), 15.0)]  # 1 kWh per minute
    assert {r.ts for r in out if isinstance(r, Sample) and r.point == "voltage_v"} == {
        round((T0 + 300 * k) * 1000) for k in range(7)}


async def test_bad_values_are_events_on_change_not_every_poll(outbox: Outbox) -> None:
    clock = JumpClock(T0)
    device = FakeDevice(FakeConfig(id="d1"), clock)
    device.bad = {"voltage_v": "NaN"}
    scheduler = BusScheduler(device.hub, [device], outbox=outbox, clock=clock, interval_s=900)
    await run_until(clock, scheduler, T0 + 300)
    out = records(outbox)
    bad = [r for r in out if isinstance(r, Event) and r.name == "point.bad_value"]
    assert len(bad) == 1
    assert scheduler.stats.bad_values == 6
    assert not [r for r in out if isinstance(r, Sample) and r.point == "voltage_v"]


async def test_overruns_are_skipped_and_counted(outbox: Outbox) -> None:
    clock = JumpClock(T0)
    device = FakeDevice(FakeConfig(id="d1"), clock)
    device.advance_s = 150  # every read takes two and a half slots on the real clock
    scheduler = BusScheduler(device.hub, [device], outbox=outbox, clock=clock, interval_s=900)
    task = asyncio.create_task(scheduler.run())
    await scheduler.started.wait()
    await clock.run(until=T0 + 600)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    slots = [slot for slot, _ in device.asked]
    assert slots[:3] == [T0, T0 + 180, T0 + 360]  # 60 and 120 dropped, then 240 and 300
    assert scheduler.stats.overruns == 2 * len(slots)  # two slots lost after each read


async def test_offline_once_online_once_with_backoff(outbox: Outbox) -> None:
    clock = JumpClock(T0)
    device = FakeDevice(FakeConfig(id="d1"), clock)
    scheduler = BusScheduler(device.hub, [device], outbox=outbox, clock=clock, interval_s=900,
                             backoff_max_s=180)
    task = asyncio.create_task(scheduler.run())
    await scheduler.started.wait()
    device.fail = True
    await clock.run(until=T0 + 900)
    await clock.settled()
    device.fail = False
    await clock.run(until=T0 + 1200)
    await clock.settled()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    tried = [round((slot - T0) / 60) for slot, _ in device.asked]
    # failures at 0, 1, 3, 6, 9, 12, 15 (waits 1, 2, then capped at 3 slots); back at 18
    assert tried == [0, 1, 3, 6, 9, 12, 15, 18, 19, 20]
    names = [r.name for r in records(outbox) if isinstance(r, Event)]
    # Offline from minute 0 to 18, longer than the default offline_alarm_after_s (900 s).
    assert names == ["device.offline", "alarm.device_offline", "device.online",
                     "alarm.device_offline"]


async def _outage(outbox: Outbox, config: FakeConfig, minutes: int) -> list[Event]:
    clock = JumpClock(T0)
    device = FakeDevice(config, clock)
    scheduler = BusScheduler(device.hub, [device], outbox=outbox, clock=clock, interval_s=900,
                             backoff_max_s=3600)
    task = asyncio.create_task(scheduler.run())
    await scheduler.started.wait()
    device.fail = True
    await clock.run(until=T0 + minutes * 60)
    await clock.settled()
    raised = scheduler.devices[0].alarmed
    device.fail = False
    await clock.run(until=T0 + (minutes + 70) * 60)
    await clock.settled()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not scheduler.devices[0].alarmed
    assert scheduler.devices[0].poll_failures >= 1
    events = [r for r in records(outbox) if isinstance(r, Event)]
    assert raised == any(e.name == "alarm.device_offline" for e in events)
    return events


async def test_offline_alarm_raised_after_the_configured_time_even_while_backing_off(
        outbox: Outbox) -> None:
    # Backoff grows to 32 min, so the device is not polled at minute 10: the alarm is
    # raised at the slot where the outage reaches 10 min anyway, and cleared on return.
    events = await _outage(outbox, FakeConfig(id="d1", offline_alarm_after_s=600), 30)
    alarms = [(e.ts - round(T0 * 1000), e.severity.value, e.data["state"]) for e in events
              if e.name == "alarm.device_offline"]
    assert alarms[0] == (600_000, "alarm", "raised")
    assert [a[1:] for a in alarms] == [("alarm", "raised"), ("info", "cleared")]


async def test_short_outage_raises_no_alarm(outbox: Outbox) -> None:
    events = await _outage(outbox, FakeConfig(id="d1", offline_alarm_after_s=3600), 5)
    assert [e.name for e in events] == ["device.offline", "device.online"]


async def test_writes_are_checked_read_back_and_audited(outbox: Outbox) -> None:
    clock = JumpClock(T0)
    device = FakeDevice(FakeConfig(id="d1"), clock)
    scheduler = BusScheduler(device.hub, [device], outbox=outbox, clock=clock, interval_s=900)
    assert (await scheduler.write("d1", "setpoint_c", 24.0)).ok
    with pytest.raises(WriteRejectedError):
        await scheduler.write("d1", "setpoint_c", 40.0)
    device.stuck = True
    mismatch = await scheduler.write("d1", "setpoint_c", 25.0)
    device.fail = True
    with pytest.raises(DeviceError):
        await scheduler.write("d1", "setpoint_c", 25.0)
    device.fail = device.stuck = False
    assert [r.requested for r in await scheduler.revert("d1")] == [26.0]
    out = records(outbox)
    events = [(r.name, r.severity.value, r.data.get("source")) for r in out
              if isinstance(r, Event)]
    assert events == [("actuator.write", "info", "api"),
                      ("actuator.write_rejected", "warning", "api"),
                      ("actuator.write", "alarm", "api"),
                      ("actuator.write_failed", "alarm", "api"),
                      ("actuator.write", "info", "revert")]
    assert (mismatch.ok, mismatch.read_back) == (False, 24.0)
    read_backs = [r.value for r in out if isinstance(r, Sample)]
    assert read_backs == [24.0, 24.0, 26.0]
    stats = scheduler.stats
    assert (stats.writes, stats.writes_rejected, stats.write_failures,
            stats.readback_mismatches) == (3, 1, 1, 1)
