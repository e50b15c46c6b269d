"""Polling one bus on the injectable clock, turning readings into outbox records.

Polls are scheduled at multiples of each device's poll interval since the epoch, so with a
`VirtualClock` a read happens at exactly the instant it was planned for. After each device
read, in one outbox transaction: a sample per point, interval records for the cumulative
points, and the updated meter state.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.drivers.modbus_tcp import ModbusTcpMeter
from edge.errors import DeviceError, OutboxError
from edge.intervals import MeterState, Outcome, feed
from edge.outbox import Outbox
from protocols.clock import Clock
from protocols.wire import Event, IntervalFlag, IntervalRecord, Record, Sample, Severity

log = logging.getLogger(__name__)


@dataclass
class PollStats:
    polls: int = 0
    failures: int = 0
    samples: int = 0
    intervals: int = 0
    bad_values: int = 0
    rejected_readings: int = 0
    outbox_errors: int = 0


@dataclass
class _DeviceRuntime:
    meter: ModbusTcpMeter
    next_due: float
    online: bool | None = None  # None until the first poll
    states: dict[str, MeterState] = field(default_factory=dict)


def next_aligned(now: float, interval: float) -> float:
    """The first multiple of `interval` at or after `now`."""
    return math.ceil(now / interval - 1e-9) * interval


class BusPoller:
    """Polls the devices of one hub in turn; one instance per bus, one task each."""

    def __init__(self, name: str, meters: Sequence[ModbusTcpMeter], *, outbox: Outbox,
                 clock: Clock, interval_s: int, stats: PollStats | None = None) -> None:
        self.name = name
        self.outbox = outbox
        self.clock = clock
        self.interval_s = interval_s
        self.stats = stats if stats is not None else PollStats()
        saved = outbox.meter_states()
        now = clock.now()
        self._devices = []
        for meter in meters:
            states = {p.name: saved.get((meter.id, p.name), MeterState())
                      for p in meter.points if p.cumulative}
            self._devices.append(_DeviceRuntime(
                meter, next_aligned(now, meter.config.poll_interval_s), states=states))

    async def run(self) -> None:
        self.clock.register()
        try:
            while True:
                due = min(d.next_due for d in self._devices)
                await self.clock.sleep_until(due)
                for dev in self._devices:
                    if dev.next_due <= self.clock.now():
                        await self.poll(dev)
                        interval = dev.meter.config.poll_interval_s
                        dev.next_due = next_aligned(max(self.clock.now(), dev.next_due + 1e-6),
                                                    interval)
        finally:
            self.clock.unregister()

    async def poll(self, dev: _DeviceRuntime) -> None:
        meter = dev.meter
        ts = self.clock.now()
        ts_ms = round(ts * 1000)
        synced = self.clock.synced
        records: list[Record] = []
        self.stats.polls += 1
        try:
            values, bad = await meter.read()
        except DeviceError as exc:
            self.stats.failures += 1
            if dev.online is not False:
                log.warning("%s offline: %s", meter.id, exc.reason)
                records.append(Event(0, ts_ms, "device.offline", Severity.WARNING, meter.id,
                                     {"reason": exc.reason}, synced))
                dev.online = False
            self._append(records, ())
            return
        if dev.online is False:
            log.info("%s back online", meter.id)
            records.append(Event(0, ts_ms, "device.online", Severity.INFO, meter.id, {}, synced))
        dev.online = True
        for point, reason in bad.items():
            self.stats.bad_values += 1
            records.append(Event(0, ts_ms, "point.bad_value", Severity.WARNING, meter.id,
                                 {"point": point, "reason": reason}, synced))
        changed: list[tuple[str, str, MeterState]] = []
        for spec in meter.points:
            if spec.name not in values:
                continue
            value = values[spec.name]
            records.append(Sample(0, ts_ms, meter.id, spec.name, value, spec.unit, synced))
            if not spec.cumulative:
                continue
            state = dev.states[spec.name]
            result = feed(state, ts_ms, value, interval_s=self.interval_s,
                          max_gap_s=meter.config.max_gap_s)
            if result.outcome in (Outcome.REJECTED_TIME, Outcome.REJECTED_VALUE):
                self.stats.rejected_readings += 1
                records.append(Event(0, ts_ms, "point.rejected_reading", Severity.WARNING,
                                     meter.id, {"point": spec.name, "value": value,
                                                "why": result.outcome.value}, synced))
                continue
            if result.outcome is Outcome.RESET:
                records.append(Event(0, ts_ms, "meter.counter_reset", Severity.ALARM, meter.id,
                                     {"point": spec.name, "value": value}, synced))
            for closed in result.closed:
                flags = closed.flags if synced else closed.flags | {IntervalFlag.ESTIMATED}
                records.append(IntervalRecord(0, meter.id, spec.name, closed.start_ms,
                                              closed.duration_s, closed.quantity, spec.unit,
                                              frozenset(flags), synced))
                self.stats.intervals += 1
            changed.append((meter.id, spec.name, state))
        self.stats.samples += sum(isinstance(r, Sample) for r in records)
        self._append(records, changed)

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
