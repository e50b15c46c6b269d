"""The scenario's air conditioners and the people who use them, for `greenguard demo`.

Each `ac_units` entry of a scenario becomes a simulated AC controller (register map
`ac-controller-modbus`) with one indoor unit, and a room of `Occupants` who arrive at 08:00
on working days, switch the AC on and set it to their liking (22 °C cooling from April to
October, 24 °C heating from November to March), set it back twice a day when a rule moved
it, and leave at 17:45 with the AC still on. The edge's rules clamp the setpoints and
switch the units off after hours; nothing here knows about the rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from protocols.clock import VirtualClock
from protocols.registermap import load_register_map
from protocols.workcalendar import WorkingCalendar
from simulators.modbus_devices import AcController, AcUnit, PirSensor
from simulators.occupants import Habits, Occupants
from simulators.scenario import AcUnitSpec, Scenario

TZ = ZoneInfo("Asia/Shanghai")
AC_MODEL = "ac-controller-modbus"
WORKING_HOURS = "08:00-17:30"
HEATING_MONTHS = frozenset({11, 12, 1, 2, 3})


@dataclass
class Classroom:
    spec: AcUnitSpec
    unit: AcUnit
    controller: AcController
    people: Occupants


def vacation_days(scenario: Scenario) -> list[dt.date]:
    """Every day of the scenario's school vacations (off days for the edge's rules)."""
    days: list[dt.date] = []
    for vacation in scenario.calendar.vacations:
        day = vacation.first
        while day <= vacation.last:
            days.append(day)
            day += dt.timedelta(days=1)
    return days


def habits_for(start: float) -> tuple[Habits, float]:
    """What people set in the season of `start`, and the outdoor temperature."""
    month = dt.datetime.fromtimestamp(start, TZ).month
    fiddle = (dt.time(10, 2), dt.time(14, 33))
    if month in HEATING_MONTHS:
        return Habits(arrive=dt.time(8, 0), fiddle=fiddle, mode="heat", setpoint_c=24.0), 8.0
    return Habits(arrive=dt.time(8, 0), fiddle=fiddle, mode="cool", setpoint_c=22.0), 32.0


def build_classrooms(scenario: Scenario, clock: VirtualClock, start: float
                     ) -> list[Classroom]:
    """One AC controller and its occupants per `ac_units` entry of the scenario."""
    register_map = load_register_map(AC_MODEL)
    pir_map = load_register_map("pir-modbus")
    calendar = WorkingCalendar(holidays=vacation_days(scenario))
    habits, ambient_c = habits_for(start)
    rooms: list[Classroom] = []
    for spec in scenario.ac_units:
        unit = AcUnit(start=start, ambient_c=ambient_c)
        controller = AcController(name=spec.id, register_map=register_map,
                                  device_id=spec.device_id, clock=clock, unit=unit)
        # The people's presence is tracked on a PIR that is not served: the demo's rules
        # work from the calendar alone.
        pir = PirSensor(name=f"{spec.id}-pir", register_map=pir_map,
                        device_id=spec.device_id, clock=clock)
        people = Occupants(clock, calendar, TZ, unit, pir, [], habits)
        rooms.append(Classroom(spec, unit, controller, people))
    return rooms
