"""Standby waste: energy smart plugs and sockets draw at standby power outside working
hours (the policy's "cut standby loads", STANDARDS.md). Pure: no I/O, no clock reads.

Each `power_w` sample holds until the next sample of the plug, at most `max_hold_s` (a plug
that stops reporting is not assumed to keep drawing). A held segment is standby when
off_w < P ≤ standby_max_w; its energy outside working hours (days off entirely; on working
days outside the working window) is the waste.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from central.institution import Plug, StandbyRule
from central.view import View
from central.workcalendar import WorkingCalendar

SampleValue = float | int | bool | str



class PlugStandby(View):
    plug: str
    name: str | None
    building: str
    standby_kwh: float  # at standby power, any time
    after_hours_standby_kwh: float  # the waste
    after_hours_standby_h: float
    reported_h: float  # time covered by samples


class StandbyWaste(View):
    plugs: list[PlugStandby]
    standby_kwh: float
    after_hours_standby_kwh: float
    off_w: float
    standby_max_w: float
    working_hours: str
    unknown_calendar_days: int


class WorkingTime:
    """Working windows of local days on the Chinese calendar, cached per day."""

    def __init__(self, tz: ZoneInfo, calendar: WorkingCalendar, hours: tuple[int, int]
                 ) -> None:
        self.tz, self.calendar, self.hours = tz, calendar, hours
        self._windows: dict[date, tuple[int, int] | None] = {}
        self.unknown: set[date] = set()

    def window(self, day: date) -> tuple[int, int] | None:
        if day not in self._windows:
            if not self.calendar.is_known(day):
                self.unknown.add(day)
            base = datetime(day.year, day.month, day.day, tzinfo=self.tz)
            self._windows[day] = (
                (int((base + timedelta(minutes=self.hours[0])).timestamp() * 1000),
                 int((base + timedelta(minutes=self.hours[1])).timestamp() * 1000))
                if self.calendar.is_working_day(day) else None)
        return self._windows[day]

    def outside_ms(self, lo: int, hi: int) -> int:
        """Milliseconds of [lo, hi) outside working time."""
        if hi <= lo:
            return 0
        inside = 0
        day = datetime.fromtimestamp(lo / 1000, self.tz).date()
        last = datetime.fromtimestamp((hi - 1) / 1000, self.tz).date()
        while day <= last:
            w = self.window(day)
            if w is not None:
                inside += max(0, min(hi, w[1]) - max(lo, w[0]))
            day += timedelta(days=1)
        return hi - lo - inside


def plug_standby(plug: Plug, samples: Sequence[tuple[int, SampleValue]], start_ms: int,
                 end_ms: int, rule: StandbyRule, working: WorkingTime) -> PlugStandby:
    hold = rule.max_hold_s * 1000
    standby: list[float] = []
    waste: list[float] = []
    waste_ms = reported_ms = 0
    ordered = sorted(samples, key=lambda s: s[0])
    for i, (ts, value) in enumerate(ordered):
        nxt = ordered[i + 1][0] if i + 1 < len(ordered) else end_ms
        lo, hi = max(ts, start_ms), min(nxt, ts + hold, end_ms)
        if hi <= lo or isinstance(value, bool | str) or not math.isfinite(float(value)):
            continue
        reported_ms += hi - lo
        watts = float(value)
        if not rule.off_w < watts <= rule.standby_max_w:
            continue
        outside = working.outside_ms(lo, hi)
        standby.append(watts * (hi - lo) / 3.6e9)
        waste.append(watts * outside / 3.6e9)
        waste_ms += outside
    return PlugStandby(plug=f"{plug.edge}/{plug.device}", name=plug.name,
                       building=plug.building, standby_kwh=math.fsum(standby),
                       after_hours_standby_kwh=math.fsum(waste),
                       after_hours_standby_h=waste_ms / 3.6e6, reported_h=reported_ms / 3.6e6)
