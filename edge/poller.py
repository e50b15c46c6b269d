"""The bus scheduler: one task per hub polls its devices in time slots on the injectable
clock, and turns readings into outbox records.

Slots are multiples of the points' poll intervals since the epoch, so with a `VirtualClock`
a read happens at exactly the instant it was planned for (the scheduler registers with the
clock and waits with `sleep_until`; simulated time stands still while it polls). Which
points are due in a slot, when the next slot is, how long a failing device waits and in
which order devices are polled are pure functions below, tested without I/O or sleeping.

Guarantees, stated in poll slots:

- **Healthy devices first.** Within a slot, devices that are online (or not yet polled)
  are read before devices that failed last time. A device that stops answering delays the
  others by at most one request timeout (`timeout_s`), in the one slot in which it fails
  first; after that it is retried only after every healthy device of the slot, and only
  in slots its backoff allows.
- **Backoff.** After n consecutive failures a device is retried no sooner than
  `interval × 2^(n−1)` (capped at the bus's `backoff_max_s`), at its next aligned slot.
  A failing device costs one timeout per attempt: its remaining requests of the slot are
  skipped.
- **Offline/online once each way.** The first failure logs a warning and records one
  `device.offline` event; the first success after that logs and records one
  `device.online`. Repeated failures are counted, not logged.
- **Long outages are alarms.** A device offline for its `offline_alarm_after_s` (checked
  every slot of its bus, also while it backs off) raises one `alarm.device_offline`
  (`state: raised`); its next good read clears it (`state: cleared`).
- **Writes first.** `write()` takes the bus ahead of any poll request still queued in the
  current slot (the hub's priority lock) and reads the value back in the same session.
- **Overruns are dropped, not queued.** If a slot's polls run past the next slot (a slow
  bus on the real clock), the missed slots are counted in `overruns` and skipped.

After each slot, in one outbox transaction: a sample per value, interval records for the
cumulative points, events, and the updated meter states.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.drivers.base import Actuator, Driver, PointInfo, Reading, WriteResult
from edge.drivers.hubs import Hub
from edge.errors import DeviceError, OutboxError
from edge.intervals import MeterState, Outcome, feed
from edge.outbox import Outbox
from protocols.clock import Clock
from protocols.errors import WriteRejectedError
from protocols.registermap import PointValue
from protocols.wire import Event, IntervalFlag, IntervalRecord, Record, Sample, Severity

log = logging.getLogger(__name__)

AnyDriver = Driver[Any, Any]
_EPS = 1e-6


# A gap of more than this many of the longest interval between slots is a wall-clock step.
_STEP_SLOTS = 100
POLL_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class PollStats:
    """Counters since start, shared by all schedulers of an agent; asserted by tests."""

    polls: int = 0  # device reads attempted
    failures: int = 0
    samples: int = 0
    intervals: int = 0
    bad_values: int = 0
    rejected_readings: int = 0
    outbox_errors: int = 0
    slots: int = 0
    overruns: int = 0  # slots skipped because the previous one ran past them
    skipped_backoff: int = 0  # device polls skipped while the device backs off
    offline_events: int = 0
    online_events: int = 0
    offline_alarms: int = 0  # alarm.device_offline raised
    writes: int = 0
    write_failures: int = 0
    writes_rejected: int = 0
    readback_mismatches: int = 0
    # Duration of each device read (real seconds), as counts per POLL_SECONDS_BUCKETS bucket
    # (not cumulative; the last one is +Inf) and their sum: edge/prom.py exports it.
    read_counts: list[int] = field(default_factory=lambda: [0] * (len(POLL_SECONDS_BUCKETS) + 1))
    read_seconds: float = 0.0

    def observe_read(self, seconds: float) -> None:
        self.read_counts[bisect.bisect_left(POLL_SECONDS_BUCKETS, seconds)] += 1
        self.read_seconds += seconds


# -- pure planning ------------------------------------------------------------------------


def _slot_index(t: float, interval: float) -> int:
    """The index of the last multiple of `interval` at or before `t`, to a microsecond.

    Tolerances are in seconds, not in units of the interval: at today's epoch times a
    relative epsilon of 1e-9 is below float resolution for intervals of 1000 s and more, and
    `next_slot` then returned the slot it was given (a poller spinning on one slot)."""
    k = round(t / interval)
    if abs(t - k * interval) < _EPS:
        return k
    return math.floor(t / interval)


def next_aligned(now: float, interval: float) -> float:
    """The first multiple of `interval` at or after `now`."""
    k = _slot_index(now, interval)
    return k * interval if abs(now - k * interval) < _EPS else (k + 1) * interval


def is_due(slot: float, interval: float) -> bool:
    """Is `slot` a multiple of `interval` (to a microsecond)?"""
    return abs(slot - round(slot / interval) * interval) < _EPS


def due_points(intervals: Mapping[str, float], slot: float) -> frozenset[str]:
    """The points whose poll interval has a multiple at `slot`."""
    return frozenset(name for name, every in intervals.items() if is_due(slot, every))


def next_slot(after: float, intervals: Iterable[float]) -> float:
    """The first slot strictly after `after` for any of the intervals."""
    return min((_slot_index(after, every) + 1) * every for every in intervals)


def backoff_s(failures: int, interval: float, cap: float) -> float:
    """How long a device that failed `failures` times in a row waits before the next try."""
    if failures <= 0:
        return 0.0
    return min(interval * 2.0 ** min(failures - 1, 30), max(cap, interval))


def poll_order(online: Sequence[bool | None]) -> list[int]:
    """Indexes in polling order: devices not known to fail first, in config order."""
    return sorted(range(len(online)), key=lambda i: online[i] is False)


# -- runtime ------------------------------------------------------------------------------


def _first_values(reading: Reading, shown: int = 4) -> str:
    """A short `point=value` list for the log line of a device's first reading."""
    items = [f"{name}={value}" for name, value in list(reading.values.items())[:shown]]
    more = len(reading.values) - shown
    if more > 0:
        items.append(f"… {more} more")
    if reading.bad:
        items.append(f"{len(reading.bad)} bad: {', '.join(sorted(reading.bad))}")
    return ", ".join(items) or "no values"


@dataclass
class DeviceRuntime:
    driver: AnyDriver
    intervals: dict[str, float]
    online: bool | None = None  # None until the first poll
    failures: int = 0
    retry_at: float = -math.inf
    bad: dict[str, str] = field(default_factory=dict)
    states: dict[str, MeterState] = field(default_factory=dict)
    # The latest good value of each point and when the device was last read (for rules).
    values: dict[str, PointValue] = field(default_factory=dict)
    read_at: float | None = None
    offline_since: float | None = None  # when the first failure of the current outage was
    alarmed: bool = False  # alarm.device_offline raised and not yet cleared
    # Per-device counters since start (edge/prom.py labels them with the device).
    polls: int = 0
    poll_failures: int = 0
    bad_values: int = 0

    points: dict[str, PointInfo] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = {p.name: p for p in self.driver.points}

    @property
    def base_interval(self) -> float:
        return min(self.intervals.values())


def _jsonable(value: object) -> object:
    if isinstance(value, bool | str | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return repr(value)[:80]


class BusScheduler:
    """Polls the devices of one hub; one instance and one task per bus."""

    def __init__(self, hub: Hub, drivers: Sequence[AnyDriver], *, outbox: Outbox,
                 clock: Clock, interval_s: int, backoff_max_s: float = 600.0,
                 stats: PollStats | None = None, ready_timeout_s: float = 5.0) -> None:
        if not drivers:
            raise ValueError(f"bus {hub.name} has no devices")
        self.hub = hub
        self.name = hub.name
        self.outbox = outbox
        self.clock = clock
        self.interval_s = interval_s
        self.backoff_max_s = backoff_max_s
        self.ready_timeout_s = ready_timeout_s
        self.stats = stats if stats is not None else PollStats()
        saved = outbox.meter_states()
        self.devices: list[DeviceRuntime] = []
        for driver in drivers:
            states = {p.name: saved.get((driver.id, p.name), MeterState())
                      for p in driver.points if p.cumulative}
            self.devices.append(DeviceRuntime(driver, driver.intervals(), states=states))
        self._by_id = {d.driver.id: d for d in self.devices}
        self.started = asyncio.Event()  # registered with the clock, hub ready
        self._intervals = sorted({i for d in self.devices for i in d.intervals.values()})

    def device(self, device_id: str) -> DeviceRuntime:
        return self._by_id[device_id]

    async def run(self) -> None:
        self.clock.register()
        try:
            if not self.hub.ready.is_set():
                # Wait (bounded, real time) for a device broker, so the first slot is not
                # lost to a connection still being set up.
                try:
                    async with asyncio.timeout(self.ready_timeout_s):
                        await self.hub.ready.wait()
                except TimeoutError:
                    log.warning("bus %s not ready after %.0f s; polling anyway", self.name,
                                self.ready_timeout_s)
            slot = min(next_aligned(self.clock.now(), i) for i in self._intervals)
            self.started.set()
            while True:
                await self.clock.sleep_until(slot)
                await self.poll_slot(slot)
                following = next_slot(slot, self._intervals)
                now = self.clock.now()
                if following < now:  # the slot ran past the next ones: skip, never queue
                    late = min(next_aligned(now, i) for i in self._intervals)
                    if now - following <= _STEP_SLOTS * self._intervals[-1]:
                        self.stats.overruns += sum(
                            1 for _ in _slots_between(following, late, self._intervals))
                    # else the wall clock stepped forward (from 1970, say): not an overrun,
                    # and counting decades of slots one by one would hang the poller
                    following = late
                elif following - now > self._intervals[-1]:
                    # The wall clock stepped back (a Pi at 1970, NTP correcting a fast
                    # clock): re-align to it instead of waiting out the difference.
                    following = next_slot(now - _EPS, self._intervals)
                slot = following
        finally:
            self.clock.unregister()

    async def poll_slot(self, slot: float) -> None:
        self.stats.slots += 1
        jobs: list[tuple[DeviceRuntime, frozenset[str]]] = []
        for dev in self.devices:
            points = due_points(dev.intervals, slot)
            if not points:
                continue
            if slot < dev.retry_at - _EPS:
                self.stats.skipped_backoff += 1
                continue
            jobs.append((dev, points))
        order = poll_order([dev.online for dev, _ in jobs])
        jobs = [jobs[i] for i in order]
        for dev, points in jobs:
            dev.driver.prepare(slot, points)
        records: list[Record] = []
        changed: list[tuple[str, str, MeterState]] = []
        for dev, points in jobs:
            ts = self.clock.now()
            self.stats.polls += 1
            dev.polls += 1
            started = time.perf_counter()
            try:
                reading = await dev.driver.read(points, slot)
            except DeviceError as exc:
                self._failed(dev, exc, ts, slot, records)
                continue
            finally:
                self.stats.observe_read(time.perf_counter() - started)
            self._succeeded(dev, reading, ts, records, changed)
        self._offline_alarms(self.clock.now(), records)
        self._append(records, changed)

    def _offline_alarms(self, now: float, records: list[Record]) -> None:
        """Raise `alarm.device_offline` for every device offline longer than its
        `offline_alarm_after_s`, also while it backs off and is not polled."""
        for dev in self.devices:
            if dev.online is not False or dev.alarmed or dev.offline_since is None:
                continue
            after = dev.driver.config.offline_alarm_after_s
            if now - dev.offline_since < after - _EPS:
                continue
            dev.alarmed = True
            self.stats.offline_alarms += 1
            log.warning("%s offline for %.0f s: alarm raised", dev.driver.id,
                        now - dev.offline_since)
            records.append(self._event(now, "alarm.device_offline", Severity.ALARM,
                                       dev.driver.id,
                                       {"state": "raised", "rule": "", "after_s": after,
                                        "since": round(dev.offline_since * 1000),
                                        "failures": dev.failures}))

    def _event(self, ts: float, name: str, severity: Severity, device: str,
               data: dict[str, object]) -> Event:
        return Event(0, round(ts * 1000), name, severity, device,
                     {k: _jsonable(v) for k, v in data.items()}, self.clock.synced)

    def _failed(self, dev: DeviceRuntime, exc: DeviceError, ts: float, slot: float,
                records: list[Record]) -> None:
        self.stats.failures += 1
        dev.poll_failures += 1
        dev.failures += 1
        if dev.offline_since is None:
            dev.offline_since = ts
        dev.retry_at = slot + backoff_s(dev.failures, dev.base_interval, self.backoff_max_s)
        if dev.online is not False:
            log.warning("%s offline: %s", dev.driver.id, exc.reason)
            records.append(self._event(ts, "device.offline", Severity.WARNING, dev.driver.id,
                                       {"reason": exc.reason, "error": type(exc).__name__}))
            self.stats.offline_events += 1
            dev.online = False
        else:
            log.debug("%s still offline (%d failures): %s", dev.driver.id, dev.failures,
                      exc.reason)

    def _succeeded(self, dev: DeviceRuntime, reading: Reading, ts: float,
                   records: list[Record], changed: list[tuple[str, str, MeterState]]) -> None:
        driver = dev.driver
        ts_ms = round(ts * 1000)
        synced = self.clock.synced
        if dev.online is None:  # the first answer: the lifecycle log shows each device working
            log.info("%s first reading: %s", driver.id, _first_values(reading))
        if dev.online is False:
            log.info("%s back online after %d failures", driver.id, dev.failures)
            records.append(self._event(ts, "device.online", Severity.INFO, driver.id,
                                       {"failures": dev.failures}))
            self.stats.online_events += 1
        if dev.alarmed:
            records.append(self._event(ts, "alarm.device_offline", Severity.INFO, driver.id,
                                       {"state": "cleared", "rule": "",
                                        "offline_s": round(ts - (dev.offline_since or ts), 3)}))
            dev.alarmed = False
        dev.offline_since = None
        dev.online = True
        dev.failures = 0
        dev.retry_at = -math.inf
        for point, reason in reading.bad.items():
            self.stats.bad_values += 1
            dev.bad_values += 1
            if dev.bad.get(point) != reason:  # an event per change, not per poll
                records.append(self._event(ts, "point.bad_value", Severity.WARNING, driver.id,
                                           {"point": point, "reason": reason}))
        dev.bad = dict(reading.bad)
        dev.values.update(reading.values)
        dev.read_at = ts
        points = dev.points
        for name, value in reading.values.items():
            info = points.get(name)
            if info is None:
                continue
            records.append(Sample(0, ts_ms, driver.id, name, value, info.unit, synced))
            self.stats.samples += 1
            if not info.cumulative or isinstance(value, bool | str):
                continue
            state = dev.states[name]
            result = feed(state, ts_ms, float(value), interval_s=self.interval_s,
                          max_gap_s=driver.config.max_gap_s)
            if result.outcome in (Outcome.REJECTED_TIME, Outcome.REJECTED_VALUE):
                self.stats.rejected_readings += 1
                records.append(self._event(ts, "point.rejected_reading", Severity.WARNING,
                                           driver.id, {"point": name, "value": value,
                                                       "why": result.outcome.value}))
                continue
            if result.outcome is Outcome.RESET:
                records.append(self._event(ts, "meter.counter_reset", Severity.ALARM,
                                           driver.id, {"point": name, "value": value}))
            elif result.outcome is Outcome.CLOCK_STEP:
                records.append(self._event(ts, "meter.clock_step", Severity.WARNING,
                                           driver.id, {"point": name, "value": value}))
            for closed in result.closed:
                flags = closed.flags if synced else closed.flags | {IntervalFlag.ESTIMATED}
                records.append(IntervalRecord(0, driver.id, name, closed.start_ms,
                                              closed.duration_s, closed.quantity, info.unit,
                                              frozenset(flags), synced))
                self.stats.intervals += 1
            changed.append((driver.id, name, state))

    def _append(self, records: list[Record],
                states: Sequence[tuple[str, str, MeterState]]) -> None:
        if not records and not states:
            return
        try:
            self.outbox.append(records, meter_states=states, now=self.clock.now())
        except OutboxError as exc:
            # Keep polling (and, later, enforcing rules); the reading is lost and counted.
            self.stats.outbox_errors += 1
            log.error("outbox write failed, %d records lost: %s", len(records), exc)

    # -- actuation ------------------------------------------------------------------------

    async def write(self, device_id: str, point: str, value: object, *,
                    source: str = "api") -> WriteResult:
        """An absolute write, checked against the allowlist first, read back, audited.

        Raises `WriteRejectedError` (nothing sent) or `DeviceError` (the bus or device failed);
        both are recorded as events, as is every completed write with its read-back.
        """
        dev = self._by_id[device_id]
        driver = dev.driver
        ts = self.clock.now()
        audit = {"point": point, "value": value, "source": source}
        if not isinstance(driver, Actuator):
            self.stats.writes_rejected += 1
            self._append([self._event(ts, "actuator.write_rejected", Severity.WARNING,
                                      device_id, audit | {"reason": "not an actuator"})], ())
            raise WriteRejectedError(driver.model, point, f"device {device_id!r} cannot be written")
        try:
            checked = driver.check_write(point, value)
        except WriteRejectedError as exc:
            self.stats.writes_rejected += 1
            self._append([self._event(ts, "actuator.write_rejected", Severity.WARNING,
                                      device_id, audit | {"reason": exc.reason})], ())
            raise
        try:
            result = await driver.write(point, checked)
        except DeviceError as exc:
            self.stats.write_failures += 1
            self._append([self._event(self.clock.now(), "actuator.write_failed",
                                      Severity.ALARM, device_id,
                                      audit | {"reason": exc.reason})], ())
            raise
        self.stats.writes += 1
        after = self.clock.now()
        records: list[Record] = [self._event(
            after, "actuator.write", Severity.INFO if result.ok else Severity.ALARM, device_id,
            audit | {"value": checked, "read_back": result.read_back, "ok": result.ok})]
        if not result.ok:
            self.stats.readback_mismatches += 1
            log.warning("%s.%s: wrote %r, read back %r", device_id, point, checked,
                        result.read_back)
        info = dev.points.get(point)
        if result.read_back is not None:
            dev.values[point] = result.read_back
        if result.read_back is not None and info is not None:
            records.append(Sample(0, round(after * 1000), device_id, point, result.read_back,
                                  info.unit, self.clock.synced))
        self._append(records, ())
        return result

    async def revert(self, device_id: str, *, source: str = "revert") -> list[WriteResult]:
        """Hand the device back to its defaults (VOLTTRON's revert): one write per point."""
        driver = self._by_id[device_id].driver
        if not isinstance(driver, Actuator):
            raise WriteRejectedError(driver.model, "revert",
                                     f"device {device_id!r} cannot be written")
        return [await self.write(device_id, point, value, source=source)
                for point, value in driver.revert_values().items()]


def _slots_between(first: float, stop: float, intervals: Sequence[float]) -> Iterable[float]:
    slot = first
    while slot < stop - _EPS:
        yield slot
        slot = next_slot(slot, intervals)

