"""The rules tick inside the agent: observe the devices, `evaluate` (pure), arbitrate,
actuate (absolute writes, read back, bounded retries, then `alarm.actuation_failed`), and
put every decision in the outbox as an event, streamed to the central like telemetry.

Desired state is re-derived on every tick and at start-up; what is kept between ticks is
observation only (recent readings for durations such as "empty for 15 minutes", when a
device last switched) plus the overrides, which are persisted.

Events (all in the outbox, channel `events`):

- `audit.write` `{rule, source, reason, point, before, after, dry_run}` before every write;
- `audit.rejected` `{rule, source, reason, point, value}` for a value the allowlist refuses;
- `alarm.<kind>` `{state: raised|cleared, rule, …}` (lights_on, leak, bin_full,
  actuation_failed);
- `command.result` `{id, status, detail}`; `override.expired` `{id, point, value}`;
- once while they last: `rule.warning`, `rule.hold`, `rule.held`, `rules.paused`,
  `calendar.fallback`.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Protocol

from edge.drivers.base import Actuator, DeviceConfig, Driver, WriteResult
from edge.drivers.modbus import ModbusConfig
from edge.drivers.sensors import BinFillConfig
from edge.errors import DeviceError, EdgeError, OutboxError
from edge.outbox import Outbox
from edge.poller import BusScheduler, DeviceRuntime
from edge.rules.arbiter import ActiveOverride, Arbiter, Write
from edge.rules.builtin import LightsLeftOn, StandbyCut, VacancyOff, WaterLeak
from edge.rules.calendar import InstitutionCalendar
from edge.rules.commands import (
    CommandOutcome,
    OverrideLimits,
    execute,
    protected_devices,
    zone_of,
)
from edge.rules.config import RulesConfig
from edge.rules.engine import evaluate
from edge.rules.model import Alarm, DeviceKind, DeviceView, Notice, SiteState, Snapshot
from edge.rules.overrides import OverrideStore
from protocols.clock import Clock
from protocols.errors import RegisterMapError
from protocols.wire import Command, Event, Record, Severity

log = logging.getLogger(__name__)

AnyDriver = Driver[Any, Any]
NIGHT = (time(1, 0), time(5, 0))  # local hours for the night-time minimum flow
_AC_MODELS = frozenset({"ac-controller-modbus", "vrf-gateway-modbus"})
_WATER_MODELS = frozenset({"generic-water-modbus"})
_OCCUPANCY_MODELS = frozenset({"pir-modbus"})


class Plant(Protocol):
    """What the rules need from the agent: its drivers, schedulers and checked writes."""

    drivers: dict[str, AnyDriver]
    schedulers: list[BusScheduler]

    async def write(self, device_id: str, point: str, value: object, *,
                    source: str = "api") -> WriteResult: ...


def infer_kind(config: DeviceConfig, driver_kind: str) -> DeviceKind:
    if driver_kind in ("tasmota", "shelly"):
        return DeviceKind.PLUG
    if driver_kind == "occupancy":
        return DeviceKind.OCCUPANCY
    if driver_kind == "bin_fill":
        return DeviceKind.BIN
    if driver_kind == "cjt188":
        return DeviceKind.WATER
    if isinstance(config, ModbusConfig):
        if config.model in _AC_MODELS:
            return DeviceKind.AC
        if config.model in _OCCUPANCY_MODELS:
            return DeviceKind.OCCUPANCY
        if config.model in _WATER_MODELS:
            return DeviceKind.WATER
    return DeviceKind.METER


def history_window_s(config: RulesConfig) -> float:
    """How much recent history the configured rules can look at."""
    need = 0.0
    for rule in config.rules:
        if isinstance(rule, VacancyOff):
            need = max(need, rule.after_min * 60)
        elif isinstance(rule, StandbyCut):
            need = max(need, rule.for_min * 60)
        elif isinstance(rule, LightsLeftOn):
            need = max(need, rule.vacant_min * 60)
        elif isinstance(rule, WaterLeak):
            need = max(need, rule.continuous_h * 3600)
    return min(need + 3 * config.tick_s, 2 * 86_400.0)


@dataclass
class RulesStats:
    ticks: int = 0
    writes: int = 0
    write_failures: int = 0
    rejected: int = 0
    held: int = 0
    commands: dict[str, int] = field(default_factory=dict)


class History:
    """Bounded recent readings per device, and each water meter's night-time minimum flow
    for the last 14 nights."""

    def __init__(self, keep_s: float, tz: Any) -> None:
        self.keep_s = keep_s
        self.tz = tz
        self.series: dict[str, deque[Snapshot]] = {}
        self.nightly: dict[str, dict[date, float]] = {}

    def record(self, views: Mapping[str, DeviceView], read_at: Mapping[str, float],
               now: float) -> None:
        for device, ts in read_at.items():
            view = views[device]
            q = self.series.setdefault(device, deque())
            if q and q[-1][0] >= ts:
                continue  # no new reading since the last tick
            prev = q[-1] if q else None
            q.append((ts, dict(view.values)))
            if view.kind is DeviceKind.WATER:
                self._night(device, prev, (ts, view.values))
        for q in self.series.values():
            while q and q[0][0] < now - self.keep_s:
                q.popleft()

    def _night(self, device: str, prev: Snapshot | None, cur: Snapshot) -> None:
        ts, values = cur
        local = datetime.fromtimestamp(ts, self.tz)
        if not NIGHT[0] <= local.time() < NIGHT[1]:
            return
        flow = values.get("flow_m3h")
        rate: float | None = None
        if isinstance(flow, int | float) and not isinstance(flow, bool):
            rate = float(flow)
        elif prev is not None:
            a, b = prev[1].get("water_m3"), values.get("water_m3")
            if (isinstance(a, int | float) and isinstance(b, int | float)
                    and not isinstance(a, bool) and not isinstance(b, bool)
                    and b >= a and ts > prev[0]):
                rate = (b - a) / ((ts - prev[0]) / 3600)
        if rate is None:
            return
        nights = self.nightly.setdefault(device, {})
        day = local.date()
        nights[day] = min(nights.get(day, math.inf), rate)
        for old in sorted(nights)[:-14]:
            del nights[old]


def _json(value: object) -> object:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return repr(value)[:80]


class RulesRuntime:
    def __init__(self, *, plant: Plant, config: RulesConfig, calendar: InstitutionCalendar,
                 outbox: Outbox, clock: Clock, store: OverrideStore) -> None:
        self.plant = plant
        self.config = config
        self.calendar = calendar
        self.outbox = outbox
        self.clock = clock
        self.store = store
        self.stats = RulesStats()
        self.configs: dict[str, DeviceConfig] = {d: drv.config for d, drv in plant.drivers.items()}
        self.protected = protected_devices(config, self.configs)
        self.arbiter = Arbiter(config.arbiter_settings(), self.protected)
        self.history = History(history_window_s(config), calendar.tz)
        self.started_at: float | None = None
        self._alarms: dict[tuple[str, str, str], Alarm] = {}
        self._notices: set[tuple[str, str | None, str, str]] = set()
        self._failing: dict[tuple[str, str], Write] = {}

    # -- observation ------------------------------------------------------------------

    def _runtimes(self) -> list[DeviceRuntime]:
        return [dev for s in self.plant.schedulers for dev in s.devices]

    def views(self, now: float) -> tuple[dict[str, DeviceView], dict[str, float]]:
        views: dict[str, DeviceView] = {}
        read_at: dict[str, float] = {}
        for dev in self._runtimes():
            driver = dev.driver
            cfg = driver.config
            role = self.config.devices.get(driver.id)
            kind = role.kind if role is not None and role.kind is not None else \
                infer_kind(cfg, driver.kind)
            stale = self.config.stale_after_s or 3 * dev.base_interval
            fresh = (dev.online is True and dev.read_at is not None
                     and now - dev.read_at <= stale)
            attrs: dict[str, str | bool] = {}
            if isinstance(cfg, BinFillConfig):
                attrs["category"] = str(cfg.category.value)
            views[driver.id] = DeviceView(driver.id, kind, zone_of(self.config, cfg),
                                          dict(dev.values), fresh, attrs)
            if dev.read_at is not None:
                read_at[driver.id] = dev.read_at
        return views, read_at

    def state(self, now: float) -> SiteState:
        views, read_at = self.views(now)
        self.history.record(views, read_at, now)
        return SiteState(views, {d: tuple(q) for d, q in self.history.series.items()},
                         {d: dict(n) for d, n in self.history.nightly.items()},
                         self.clock.synced, self.started_at)

    # -- the tick ---------------------------------------------------------------------

    def _event(self, name: str, severity: Severity, device: str | None,
               data: Mapping[str, object]) -> Event:
        return Event(0, round(self.clock.now() * 1000), name, severity, device,
                     {k: _json(v) for k, v in data.items()}, self.clock.synced)

    def _append(self, records: Sequence[Record]) -> None:
        if not records:
            return
        try:
            self.outbox.append(records, now=self.clock.now())
        except OutboxError as exc:  # keep enforcing; the events are lost and logged
            log.error("outbox write failed, %d rule events lost: %s", len(records), exc)

    async def tick(self) -> list[Write]:
        """One evaluation; returns the writes it decided (made unless dry-run)."""
        now = self.clock.now()
        if self.started_at is None:
            self.started_at = now
        self.stats.ticks += 1
        state = self.state(now)
        out = evaluate(self.config.rules, state, now, self.calendar)
        records: list[Record] = []
        status = self.calendar.at(now)
        if status.fallback:
            out.notices.append(Notice("calendar.fallback", None, "calendar", {
                "day": status.day.day.isoformat(), "working": status.day.working,
                "fallback": self.calendar.days.fallback.value}))
        for o in self.store.expire(now):
            records.append(self._event("override.expired", Severity.INFO, o.device, {
                "id": o.id, "point": o.point, "value": o.value}))
        overrides = self.store.active(now)
        self.arbiter.observe(state.devices, now)
        decisions = self.arbiter.decide(state.devices, out.proposals, overrides, out.bounds,
                                        now)
        for h in decisions.held:
            self.stats.held += 1
            out.notices.append(Notice("rule.held", h.device, h.rule,
                                      {"point": h.point, "value": h.value, "why": h.why}))
        self._append(records)
        for w in decisions.writes:
            await self.actuate(w)
        self._append(self._alarm_events(out.alarms) + self._notice_events(out.notices))
        return decisions.writes

    def _alarm_events(self, alarms: Sequence[Alarm]) -> list[Record]:
        records: list[Record] = []
        now_keys = {a.key: a for a in alarms}
        for key, a in now_keys.items():
            if key not in self._alarms:
                severity = Severity.ALARM if a.kind == "leak" or a.data.get("hazardous") \
                    else Severity.WARNING
                records.append(self._event(f"alarm.{a.kind}", severity, a.device,
                                           {**a.data, "state": "raised", "rule": a.rule}))
        for key, a in self._alarms.items():
            if key not in now_keys:
                records.append(self._event(f"alarm.{a.kind}", Severity.INFO, a.device,
                                           {**a.data, "state": "cleared", "rule": a.rule}))
        self._alarms = now_keys
        return records

    def _notice_events(self, notices: Sequence[Notice]) -> list[Record]:
        records: list[Record] = []
        keys = set()
        for n in notices:
            key = (*n.key, str(sorted((k, str(v)) for k, v in n.data.items()
                                      if k not in ("off_in_s",))))
            keys.add(key)
            if key not in self._notices:
                severity = Severity.WARNING if n.name in ("calendar.fallback", "rules.paused") \
                    else Severity.INFO
                records.append(self._event(n.name, severity, n.device,
                                           {**n.data, "rule": n.rule}))
        self._notices = keys
        return records

    async def actuate(self, w: Write) -> bool:
        """Audit, then write absolutely with read-back; retry; alarm when it keeps failing."""
        driver = self.plant.drivers.get(w.device)
        base = {"rule": w.rule, "source": w.source, "reason": w.reason, "point": w.point}
        try:
            if not isinstance(driver, Actuator):
                raise RegisterMapError(w.device, w.point, "device cannot be written")
            checked = driver.check_write(w.point, w.value)
        except RegisterMapError as exc:
            self.stats.rejected += 1
            self._append([self._event("audit.rejected", Severity.WARNING, w.device,
                                      {**base, "value": w.value, "why": exc.reason})])
            return False
        self._append([self._event("audit.write", Severity.INFO, w.device, {
            **base, "before": w.before, "after": checked, "dry_run": self.config.dry_run})])
        if self.config.dry_run:
            return True
        error = ""
        attempts = 0
        while attempts <= self.config.retries:
            attempts += 1
            try:
                result = await self.plant.write(w.device, w.point, checked,
                                                source=f"rule:{w.rule}")
            except DeviceError as exc:
                error = exc.reason
                continue
            except RegisterMapError as exc:
                error = exc.reason
                break
            if result.ok:
                self.stats.writes += 1
                if self._failing.pop((w.device, w.point), None) is not None:
                    self._append([self._event("alarm.actuation_failed", Severity.INFO,
                                              w.device, {**base, "state": "cleared",
                                                         "value": checked})])
                return True
            error = f"read back {result.read_back!r}, wanted {checked!r}"
        self.stats.write_failures += 1
        log.warning("%s.%s: write of %r failed %d times: %s", w.device, w.point, checked,
                    attempts, error)
        if (w.device, w.point) not in self._failing:
            self._failing[(w.device, w.point)] = w
            self._append([self._event("alarm.actuation_failed", Severity.ALARM, w.device, {
                **base, "state": "raised", "value": checked, "attempts": attempts,
                "error": error})])
        return False

    # -- commands ---------------------------------------------------------------------

    def handle_command(self, cmd: Command) -> CommandOutcome:
        """Execute a central command at most once and answer with `command.result`."""
        outcome = execute(cmd, store=self.store, now=self.clock.now(), devices=self.configs,
                          protected=self.protected,
                          limits=OverrideLimits.of(self.config, self.calendar.tz))
        self.stats.commands[outcome.status] = self.stats.commands.get(outcome.status, 0) + 1
        records: list[Record] = [self._event(
            "command.result", Severity.INFO if outcome.status in ("applied", "cleared")
            else Severity.WARNING, None,
            {"id": outcome.id, "status": outcome.status, "detail": outcome.detail})]
        if outcome.status == "rejected" and cmd.name == "override.set":
            device = cmd.args.get("device")
            records.append(self._event("audit.rejected", Severity.WARNING,
                                       device if device in self.configs else None, {
                "rule": f"override:{cmd.id}", "source": "override",
                "reason": str(cmd.args.get("reason", "")),
                "point": str(cmd.args.get("point", "")), "value": outcome.rejected_value,
                "why": outcome.detail}))
        self._append(records)
        log.info("command %s %s: %s %s", cmd.id, cmd.name, outcome.status, outcome.detail)
        return outcome

    def overrides(self, now: float) -> list[ActiveOverride]:
        return self.store.active(now)

    # -- the loop ---------------------------------------------------------------------

    def next_tick(self, after: float) -> float:
        tick, offset = self.config.tick_s, self.config.tick_offset_s
        return math.floor((after - offset) / tick + 1 + 1e-9) * tick + offset

    async def run(self) -> None:
        """Tick forever on the clock (a participant: simulated time waits for a tick)."""
        self.clock.register()
        try:
            when = self.next_tick(self.clock.now())
            while True:
                await self.clock.sleep_until(when)
                try:
                    await self.tick()
                except (EdgeError, sqlite3.Error) as exc:
                    # The rules state file failing (disk full) must not stop polling: the
                    # next tick re-derives everything anyway.
                    log.error("rules tick failed: %s", exc)
                when = self.next_tick(max(when, self.clock.now()))
        finally:
            self.clock.unregister()
