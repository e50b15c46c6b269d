"""Simulated people for rule tests and demos: they arrive on working days, switch the AC on
in cooling mode at 22 °C (and turn it back to 22 °C when a rule raised it), switch their
plugs on, go to lunch, and leave in the evening with everything still on.

`Occupants` is a participant of the `VirtualClock`: its actions happen at exact simulated
instants, and simulated time waits for them. `EnergyLedger` integrates the power of the
simulated devices over time, split into working time and after hours, as the ground truth
the rules' savings are measured against.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from protocols.clock import VirtualClock
from protocols.workcalendar import WorkingCalendar
from simulators.modbus_devices import AcUnit, PirSensor
from simulators.mqtt_devices import SimulatedTasmotaPlug


@dataclass(frozen=True, slots=True)
class Habits:
    """One office's daily routine (local times)."""

    arrive: time = time(7, 50)
    lunch: tuple[time, time] = (time(12, 0), time(13, 0))
    fiddle: tuple[time, ...] = (time(10, 2), time(14, 33), time(16, 12))  # back to 22 °C
    leave: time = time(17, 45)
    late_days: frozenset[date] = frozenset()  # days someone stays until `late_leave`
    late_leave: time = time(19, 0)
    setpoint_c: float = 22.0
    mode: str = "cool"


@dataclass
class Action:
    at: float
    what: str
    do: Callable[[], None]


@dataclass
class Occupants:
    """The people of one room: an AC, an occupancy sensor and their plugs."""

    clock: VirtualClock
    calendar: WorkingCalendar
    tz: ZoneInfo
    ac: AcUnit
    pir: PirSensor
    plugs: Sequence[SimulatedTasmotaPlug]
    habits: Habits = field(default_factory=Habits)
    done: list[tuple[float, str]] = field(default_factory=list)

    def _at(self, day: date, t: time) -> float:
        return datetime.combine(day, t, self.tz).timestamp()

    def actions(self, start: float, end: float) -> list[Action]:
        """Everything the people do between `start` and `end`, in order."""
        h = self.habits
        out: list[Action] = []
        day = datetime.fromtimestamp(start, self.tz).date()
        last = datetime.fromtimestamp(end, self.tz).date()
        while day <= last:
            if self.calendar.is_working_day(day):
                leave = h.late_leave if day in h.late_days else h.leave
                out += [Action(self._at(day, h.arrive), "arrive", self._arrive),
                        Action(self._at(day, h.lunch[0]), "lunch", self._out),
                        Action(self._at(day, h.lunch[1]), "back", self._arrive),
                        Action(self._at(day, leave), "leave", self._out)]
                out += [Action(self._at(day, t), "fiddle", self._fiddle) for t in h.fiddle]
            day += timedelta(days=1)
        return sorted((a for a in out if start <= a.at < end), key=lambda a: a.at)

    def _arrive(self) -> None:
        self.pir.occupied = True
        now = self.clock.now()
        if not self.ac.state.on:
            self.ac.set("on", True, now)
        self._fiddle()
        for plug in self.plugs:
            if not plug.on:
                plug.switch(True)

    def _fiddle(self) -> None:
        now = self.clock.now()
        if self.ac.state.mode != self.habits.mode:
            self.ac.set("mode", self.habits.mode, now)
        if self.ac.state.on and self.ac.state.setpoint_c != self.habits.setpoint_c:
            self.ac.set("setpoint_c", self.habits.setpoint_c, now)

    def _out(self) -> None:
        self.pir.occupied = False  # and everything is left on

    async def run(self, start: float, end: float) -> None:
        """Act at each planned instant (a clock participant until `end`)."""
        self.clock.register()
        try:
            for action in self.actions(start, end):
                await self.clock.sleep_until(action.at)
                action.do()
                self.done.append((action.at, action.what))
        finally:
            self.clock.unregister()


def ac_power_w(unit: AcUnit, *, rated_w: float = 400.0, per_degree_w: float = 150.0) -> float:
    """A simple AC load: a base plus a share per degree the unit holds below (cooling) or
    above (heating) the outdoor air."""
    s = unit.state
    if not s.on:
        return 0.0
    if s.mode in ("cool", "dry"):
        return rated_w + per_degree_w * max(0.0, unit.ambient_c - s.setpoint_c)
    if s.mode == "heat":
        return rated_w + per_degree_w * max(0.0, s.setpoint_c - unit.ambient_c)
    return rated_w / 4


@dataclass
class EnergyLedger:
    """Integrates power (a function of the simulated devices) in fixed steps, split by
    `is_working(t)` into working time and after hours, in kWh."""

    clock: VirtualClock
    power_w: Callable[[], float]
    is_working: Callable[[float], bool]
    step_s: float = 60.0
    working_kwh: float = 0.0
    after_hours_kwh: float = 0.0

    async def run(self, start: float, end: float) -> None:
        self.clock.register()
        try:
            t = start
            while t < end:
                power = self.power_w()  # constant until the next step (actions are on steps)
                step = min(self.step_s, end - t)
                kwh = power * step / 3_600_000
                if self.is_working(t):
                    self.working_kwh += kwh
                else:
                    self.after_hours_kwh += kwh
                t += step
                await self.clock.sleep_until(t)
        finally:
            self.clock.unregister()

    @property
    def total_kwh(self) -> float:
        return self.working_kwh + self.after_hours_kwh


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan
