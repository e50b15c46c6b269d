"""What rules see and what they say. Plain frozen data: `evaluate` is a pure function of
these, the calendar and `now`.

A rule never switches anything on: conservation rules only propose `on: false` or a
setpoint clamp. Turning something on is a person's decision (by hand, or an override).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from protocols.registermap import PointValue


class DeviceKind(enum.StrEnum):
    AC = "ac"
    PLUG = "plug"
    LIGHT = "light"
    OCCUPANCY = "occupancy"
    WATER = "water"
    BIN = "bin"
    METER = "meter"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One device as the rules see it at a tick."""

    id: str
    kind: DeviceKind
    zone: str | None
    values: Mapping[str, PointValue]
    fresh: bool  # read successfully within its staleness window
    attrs: Mapping[str, str | bool] = field(default_factory=dict)  # e.g. bin category

    def is_on(self) -> bool | None:
        value = self.values.get("on")
        return value if isinstance(value, bool) else None

    def number(self, point: str) -> float | None:
        value = self.values.get(point)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) else None


Snapshot = tuple[float, Mapping[str, PointValue]]


@dataclass(frozen=True, slots=True)
class SiteState:
    """Every device's latest values plus bounded recent history (oldest first).

    `history` and `nightly_min_flow` are observations the runtime accumulates from
    readings, not remembered decisions: after a restart they start empty, and rules that
    need a duration of evidence (vacancy, standby, leaks) wait for it rather than guess.
    """

    devices: Mapping[str, DeviceView]
    history: Mapping[str, Sequence[Snapshot]] = field(default_factory=dict)
    nightly_min_flow: Mapping[str, Mapping[date, float]] = field(default_factory=dict)
    synced: bool = True
    observed_since: float | None = None  # when the runtime started observing

    def of_kind(self, *kinds: DeviceKind) -> list[DeviceView]:
        return [d for d in self.devices.values() if d.kind in kinds]

    def occupied(self, zone: str | None) -> bool | None:
        """True if any fresh occupancy sensor of the zone says so, False if all fresh ones
        say no, None when the zone has no fresh sensor."""
        if zone is None:
            return None
        seen: list[bool] = []
        for d in self.devices.values():
            if d.kind is DeviceKind.OCCUPANCY and d.zone == zone and d.fresh:
                value = d.values.get("occupied")
                if isinstance(value, bool):
                    seen.append(value)
        if not seen:
            return None
        return any(seen)

    def vacant_for(self, zone: str | None, now: float) -> float | None:
        """Seconds since the zone's sensors were first seen unoccupied after they last saw
        someone (from their history), or None when it is occupied now or there is no
        evidence. Counting from the first empty reading, not the last occupied one, never
        makes a room empty sooner than the sensors can tell."""
        if zone is None or self.occupied(zone) is not False:
            return None
        samples = sorted(
            (ts, values.get("occupied") is True)
            for d in self.devices.values()
            if d.kind is DeviceKind.OCCUPANCY and d.zone == zone
            for ts, values in self.history.get(d.id, ()))
        first_empty: float | None = None
        for ts, occupied in samples:
            if occupied:
                first_empty = None
            elif first_empty is None:
                first_empty = ts
        return None if first_empty is None else now - first_empty


@dataclass(frozen=True, slots=True)
class Proposal:
    """A rule wants `device.point` to be `value`."""

    device: str
    point: str
    value: PointValue
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class Alarm:
    """A condition that is true now (`alarm.<kind>`); the runtime raises it when it appears
    and clears it when it disappears."""

    kind: str
    device: str
    rule: str
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.device, self.rule)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something worth telling once while it lasts: an after-hours warning, a hold because
    someone is still here, a paused rule."""

    name: str
    device: str | None
    rule: str
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.name, self.device, self.rule)


@dataclass(frozen=True, slots=True)
class SetpointBounds:
    """The setpoint a device may have now, from the setpoint rules (None: no bound)."""

    low: float | None
    high: float | None
    rule: str

    def clamp(self, value: float) -> float:
        if self.low is not None and value < self.low:
            return self.low
        if self.high is not None and value > self.high:
            return self.high
        return value


@dataclass(slots=True)
class RuleOutput:
    proposals: list[Proposal] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    bounds: dict[str, SetpointBounds] = field(default_factory=dict)

    def extend(self, other: RuleOutput) -> None:
        self.proposals += other.proposals
        self.alarms += other.alarms
        self.notices += other.notices
        for device, b in other.bounds.items():
            self.bounds.setdefault(device, b)
