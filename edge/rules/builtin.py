"""The built-in rules (seeds 002 and 004, STANDARDS §5): each a config model with a pure
`evaluate(state, now, calendar)`. Rules only ever propose switching off or clamping; the
arbiter decides what is written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from edge.drivers.base import Strict
from edge.rules.model import (
    Alarm,
    DeviceKind,
    DeviceView,
    Notice,
    Proposal,
    RuleOutput,
    SetpointBounds,
    SiteState,
)
from edge.rules.registry import RuleConfig, register

if TYPE_CHECKING:
    from edge.rules.calendar import InstitutionCalendar

Minutes = float


def _minutes(value: float) -> str:
    return f"{value / 60:.0f} min"


@register
class AfterHoursOff(RuleConfig):
    """Switch plugs, lights and AC off after working hours, after a warning period, unless
    someone is still in the zone."""

    type: Literal["after_hours_off"]
    warning_min: Minutes = Field(10, ge=0, le=240)
    hold_if_occupied: bool = True

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.AC, DeviceKind.PLUG,
                                                       DeviceKind.LIGHT)
    time_based: ClassVar[bool] = True

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        out = RuleOutput()
        for d in self.selected(state):
            if not d.fresh or d.is_on() is not True:
                continue
            status = calendar.at(now, d.zone)
            if status.working_time or status.after_hours_for_s is None:
                continue
            if self.hold_if_occupied and state.occupied(d.zone) is True:
                out.notices.append(Notice("rule.hold", d.id, self.id,
                                          {"zone": d.zone, "why": "occupied"}))
                continue
            warning_s = self.warning_min * 60
            if status.after_hours_for_s < warning_s:
                out.notices.append(Notice("rule.warning", d.id, self.id, {
                    "zone": d.zone, "off_in_s": round(warning_s - status.after_hours_for_s)}))
                continue
            out.proposals.append(Proposal(
                d.id, "on", False, self.id,
                f"after hours for {_minutes(status.after_hours_for_s)}"
                + (" (calendar fallback)" if status.fallback else "")))
        return out


class SetpointLimit(Strict):
    cooling_min_c: float = Field(26.0, ge=16, le=30, allow_inf_nan=False)
    heating_max_c: float = Field(20.0, ge=10, le=30, allow_inf_nan=False)


@register
class SetpointLimits(RuleConfig):
    """AC setpoints by mode and season: cooling not below `cooling_min_c`, heating not above
    `heating_max_c`; clamped whenever a unit is on, so a person's change by hand is undone
    at the next tick. `auto` mode follows the season."""

    type: Literal["setpoint_limits"]
    cooling_min_c: float = Field(26.0, ge=16, le=30, allow_inf_nan=False)
    heating_max_c: float = Field(20.0, ge=10, le=30, allow_inf_nan=False)
    zone_limits: dict[str, SetpointLimit] = Field(default_factory=dict)
    cooling_months: list[int] = Field(default_factory=lambda: [5, 6, 7, 8, 9, 10])
    heating_months: list[int] = Field(default_factory=lambda: [11, 12, 1, 2, 3])

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.AC,)

    @model_validator(mode="after")
    def _months(self) -> SetpointLimits:
        bad = [m for m in (*self.cooling_months, *self.heating_months) if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months must be 1–12, got {bad}")
        both = set(self.cooling_months) & set(self.heating_months)
        if both:
            raise ValueError(f"months {sorted(both)} are both cooling and heating months")
        return self

    def limits(self, zone: str | None) -> SetpointLimit:
        if zone is not None and zone in self.zone_limits:
            return self.zone_limits[zone]
        return SetpointLimit(cooling_min_c=self.cooling_min_c, heating_max_c=self.heating_max_c)

    def bounds(self, d: DeviceView, month: int) -> SetpointBounds:
        lim = self.limits(d.zone)
        mode = d.values.get("mode")
        if mode in ("cool", "dry"):
            return SetpointBounds(lim.cooling_min_c, None, self.id)
        if mode == "heat":
            return SetpointBounds(None, lim.heating_max_c, self.id)
        if mode == "fan":
            return SetpointBounds(None, None, self.id)
        # auto or unknown: by season; between seasons the band between the two limits
        if month in self.cooling_months:
            return SetpointBounds(lim.cooling_min_c, None, self.id)
        if month in self.heating_months:
            return SetpointBounds(None, lim.heating_max_c, self.id)
        low, high = sorted((lim.heating_max_c, lim.cooling_min_c))
        return SetpointBounds(low, high, self.id)

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        out = RuleOutput()
        month = datetime.fromtimestamp(now, calendar.tz).month
        for d in self.selected(state):
            b = self.bounds(d, month)
            out.bounds[d.id] = b
            if not d.fresh or d.is_on() is not True:
                continue
            current = d.number("setpoint_c")
            if current is None:
                continue
            wanted = b.clamp(current)
            if wanted != current:
                mode = d.values.get("mode")
                out.proposals.append(Proposal(
                    d.id, "setpoint_c", wanted, self.id,
                    f"setpoint {current:g} °C in {mode} mode, limit {wanted:g} °C"))
        return out


@register
class VacancyOff(RuleConfig):
    """AC and lights off after `after_min` minutes with nobody in the zone."""

    type: Literal["vacancy_off"]
    after_min: Minutes = Field(15, ge=0, le=1440)

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.AC, DeviceKind.LIGHT)

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        out = RuleOutput()
        for d in self.selected(state):
            if not d.fresh or d.is_on() is not True:
                continue
            vacant = state.vacant_for(d.zone, now)
            if vacant is not None and vacant >= self.after_min * 60:
                out.proposals.append(Proposal(d.id, "on", False, self.id,
                                              f"zone {d.zone} empty for {_minutes(vacant)}"))
        return out


def _window(state: SiteState, device: str, now: float, seconds: float,
            point: str) -> list[float] | None:
    """The numeric values of `point` over the last `seconds`, or None when the history does
    not cover the whole window."""
    history = state.history.get(device, ())
    if not history or history[0][0] > now - seconds:
        return None
    out = []
    for ts, values in history:
        if ts < now - seconds:
            continue
        value = values.get(point)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        out.append(float(value))
    return out or None


@register
class StandbyCut(RuleConfig):
    """Plugs drawing less than `below_w` (standby) for `for_min` minutes outside working
    hours are switched off."""

    type: Literal["standby_cut"]
    below_w: float = Field(10.0, gt=0, le=500)
    for_min: Minutes = Field(30, gt=0, le=1440)

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.PLUG,)
    time_based: ClassVar[bool] = True

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        out = RuleOutput()
        for d in self.selected(state):
            if not d.fresh or d.is_on() is not True:
                continue
            after = calendar.at(now, d.zone).after_hours_for_s
            if after is None or after < self.for_min * 60:
                continue  # the whole window must lie outside working hours
            powers = _window(state, d.id, now, self.for_min * 60, "power_w")
            if powers is not None and max(powers) < self.below_w:
                out.proposals.append(Proposal(
                    d.id, "on", False, self.id,
                    f"standby {max(powers):g} W < {self.below_w:g} W for "
                    f"{self.for_min:g} min outside working hours"))
        return out


@register
class LightsLeftOn(RuleConfig):
    """长明灯: a light on after hours (past `grace_min`) or in a zone empty for `vacant_min`
    raises `alarm.lights_on`; with `switch_off` it is also switched off."""

    type: Literal["lights_left_on"]
    grace_min: Minutes = Field(15, ge=0, le=240)
    vacant_min: Minutes = Field(15, ge=0, le=1440)
    switch_off: bool = True

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.LIGHT,)
    time_based: ClassVar[bool] = True

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        out = RuleOutput()
        for d in self.selected(state):
            if not d.fresh or d.is_on() is not True:
                continue
            status = calendar.at(now, d.zone)
            why: str | None = None
            after = status.after_hours_for_s
            if (not status.working_time and after is not None and after >= self.grace_min * 60
                    and state.occupied(d.zone) is not True):
                why = "after_hours"
            vacant = state.vacant_for(d.zone, now)
            if why is None and vacant is not None and vacant >= self.vacant_min * 60:
                why = "vacant"
            if why is None:
                continue
            out.alarms.append(Alarm("lights_on", d.id, self.id, {"zone": d.zone, "why": why}))
            if self.switch_off:
                out.proposals.append(Proposal(d.id, "on", False, self.id,
                                              f"light left on ({why.replace('_', ' ')})"))
        return out


def flow_series(state: SiteState, device: str) -> list[tuple[float, float]]:
    """(ts, m³/h) from a `flow_m3h` point or from consecutive `water_m3` readings."""
    history = state.history.get(device, ())
    out: list[tuple[float, float]] = []
    prev: tuple[float, float] | None = None
    for ts, values in history:
        flow = values.get("flow_m3h")
        if isinstance(flow, int | float) and not isinstance(flow, bool):
            out.append((ts, float(flow)))
            continue
        total = values.get("water_m3")
        if isinstance(total, bool) or not isinstance(total, int | float):
            continue
        if prev is not None and ts > prev[0] and total >= prev[1]:
            out.append((ts, (total - prev[1]) / ((ts - prev[0]) / 3600)))
        prev = (ts, float(total))
    return out


@register
class WaterLeak(RuleConfig):
    """长流水, 跑冒滴漏: flow above `continuous_m3h` without a break for `continuous_h`
    hours, or a night-time minimum above `night_min_m3h` for `nights` nights in a row →
    `alarm.leak`."""

    type: Literal["water_leak"]
    continuous_m3h: float = Field(0.05, gt=0)
    continuous_h: float = Field(3.0, gt=0, le=48)
    night_min_m3h: float = Field(0.02, gt=0)
    nights: int = Field(3, ge=1, le=14)

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.WATER,)

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        out = RuleOutput()
        today = datetime.fromtimestamp(now, calendar.tz).date()
        for d in self.selected(state):
            series = flow_series(state, d.id)
            point = "flow_m3h" if "flow_m3h" in d.values else "water_m3"
            window = [f for ts, f in series if ts >= now - self.continuous_h * 3600]
            covered = bool(series) and series[0][0] <= now - self.continuous_h * 3600
            if covered and window and min(window) > self.continuous_m3h:
                out.alarms.append(Alarm("leak", d.id, self.id, {
                    "point": point, "flow": round(min(window), 4), "why": "continuous",
                    "hours": self.continuous_h}))
                continue
            nightly = state.nightly_min_flow.get(d.id, {})
            newest = today if today in nightly else today - timedelta(days=1)
            last = [newest - timedelta(days=i) for i in range(self.nights)]
            if all(day in nightly and nightly[day] > self.night_min_m3h for day in last):
                out.alarms.append(Alarm("leak", d.id, self.id, {
                    "point": point, "flow": round(min(nightly[day] for day in last), 4),
                    "why": "night_minimum", "nights": self.nights}))
        return out


HAZARDOUS = frozenset({"hazardous", "有害垃圾"})


@register
class BinFull(RuleConfig):
    """Bins above `threshold_pct` raise `alarm.bin_full` (a clearance request); hazardous
    bins already at `hazardous_threshold_pct`, flagged `hazardous: true`."""

    type: Literal["bin_full"]
    threshold_pct: float = Field(80.0, gt=0, le=100)
    hazardous_threshold_pct: float = Field(60.0, gt=0, le=100)

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = (DeviceKind.BIN,)

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        out = RuleOutput()
        for d in self.selected(state):
            fill = d.number("fill_pct")
            if fill is None or not d.fresh:
                continue
            category = str(d.attrs.get("category", d.values.get("category", "")))
            hazardous = category in HAZARDOUS
            limit = self.hazardous_threshold_pct if hazardous else self.threshold_pct
            if fill >= limit:
                out.alarms.append(Alarm("bin_full", d.id, self.id, {
                    "fill_pct": round(fill, 1), "category": category,
                    "hazardous": hazardous}))
        return out
