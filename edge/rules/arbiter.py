"""The arbiter: from what rules propose and what people override, the writes to make now.

Priority (BACnet's priority array, simplified): **protected > override > rule**. With no
override and no rule opinion a device is left alone (the relinquish default is "no
command"). On top of that:

- **Setpoint bounds** of non-exempt zones hold for every source: an override's setpoint is
  clamped to the bounds, and the clamp is stated in the write's reason.
- **Minimum on/off times** for rule writes of `on`: a device is not switched by a rule
  sooner than `min_on_s` after it was last seen switching on (or `min_off_s` after off).
- **Rate limit**: at most `max_writes` writes per device per `rate_window_s`.
- **Protected devices** are never written; what would have been written is reported.

Stateful only in what it observes (when each device's `on` last changed, when it last
wrote): `observe` every tick, then `decide`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from edge.rules.model import DeviceView, Proposal, SetpointBounds
from protocols.registermap import PointValue

Source = Literal["protected", "override", "rule", "default"]


@dataclass(frozen=True, slots=True)
class ActiveOverride:
    id: str
    device: str
    point: str
    value: PointValue
    reason: str
    expires: float
    origin: str = "central"  # central | cli


@dataclass(frozen=True, slots=True)
class Write:
    """One absolute write the actuator is to make (and audit)."""

    device: str
    point: str
    value: PointValue
    before: PointValue | None
    source: Source
    rule: str  # rule id, or `override:<id>`
    reason: str


@dataclass(frozen=True, slots=True)
class Held:
    """A write the arbiter did not make now, and why (protected, min on/off, rate)."""

    device: str
    point: str
    value: PointValue
    rule: str
    why: Literal["protected", "min_on", "min_off", "rate_limit"]


@dataclass(slots=True)
class Decisions:
    writes: list[Write] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ArbiterSettings:
    min_on_s: float = 300.0
    min_off_s: float = 300.0
    max_writes: int = 6
    rate_window_s: float = 600.0


def _same(a: PointValue | None, b: PointValue) -> bool:
    if a is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return math.isclose(a, b, abs_tol=0.05)


class Arbiter:
    def __init__(self, settings: ArbiterSettings, protected: Iterable[str] = ()) -> None:
        self.settings = settings
        self.protected = frozenset(protected)
        self._on: dict[str, bool] = {}
        self._changed_at: dict[str, float] = {}
        self._writes: dict[str, deque[float]] = {}

    def observe(self, devices: Mapping[str, DeviceView], now: float) -> None:
        """Note when each device's `on` changed (by us, by hand, or by a timer)."""
        for d in devices.values():
            on = d.is_on()
            if on is None or not d.fresh:
                continue
            if d.id in self._on and self._on[d.id] != on:
                self._changed_at[d.id] = now
            self._on[d.id] = on

    def changed_at(self, device: str) -> float | None:
        return self._changed_at.get(device)

    def _min_time_blocks(self, device: str, value: PointValue,
                         now: float) -> Literal["min_on", "min_off"] | None:
        since = self._changed_at.get(device)
        if since is None or not isinstance(value, bool):
            return None  # never seen changing: nothing to protect
        on = self._on.get(device)
        if value is False and on is True and now - since < self.settings.min_on_s:
            return "min_on"
        if value is True and on is False and now - since < self.settings.min_off_s:
            return "min_off"
        return None

    def _rate_ok(self, device: str, now: float) -> bool:
        q = self._writes.setdefault(device, deque())
        while q and q[0] <= now - self.settings.rate_window_s:
            q.popleft()
        return len(q) < self.settings.max_writes

    def decide(self, devices: Mapping[str, DeviceView], proposals: Sequence[Proposal],
               overrides: Sequence[ActiveOverride], bounds: Mapping[str, SetpointBounds],
               now: float) -> Decisions:
        """The writes for this tick. Proposals and overrides for a device that is not fresh
        wait: nothing is written on a guess of its current value."""
        out = Decisions()
        wanted: dict[tuple[str, str], tuple[PointValue, Source, str, str]] = {}
        for p in proposals:
            key = (p.device, p.point)
            # Two rules on one point: switching off wins over leaving on; else the first.
            if key in wanted and not (p.point == "on" and p.value is False
                                      and wanted[key][0] is not False):
                continue
            wanted[key] = (p.value, "rule", p.rule, p.reason)
        for o in overrides:
            if o.expires > now:
                wanted[(o.device, o.point)] = (o.value, "override", f"override:{o.id}",
                                               o.reason or "manual override")
        for (device, point), (value, source, rule, reason) in wanted.items():
            view = devices.get(device)
            if view is None or not view.fresh:
                continue
            before = view.values.get(point)
            if isinstance(value, float) and not math.isfinite(value):
                continue  # never a write; overrides are checked on arrival, this is a guard
            if point == "setpoint_c" and device in bounds and isinstance(value, int | float) \
                    and not isinstance(value, bool):
                clamped = bounds[device].clamp(float(value))
                if clamped != value:
                    reason = f"{reason}; {value:g} °C clamped to {clamped:g} °C by " \
                             f"{bounds[device].rule}"
                    value = clamped
            if _same(before, value):
                continue
            if device in self.protected:
                out.held.append(Held(device, point, value, rule, "protected"))
                continue
            if source == "rule" and point == "on":
                blocked = self._min_time_blocks(device, value, now)
                if blocked is not None:
                    out.held.append(Held(device, point, value, rule, blocked))
                    continue
            if not self._rate_ok(device, now):
                out.held.append(Held(device, point, value, rule, "rate_limit"))
                continue
            self._writes[device].append(now)
            if point == "on" and isinstance(value, bool):
                # Our own switch counts as a change now: a person switching it back before
                # the next observation must not look like "no change since long ago".
                self._on[device] = value
                self._changed_at[device] = now
            out.writes.append(Write(device, point, value, before, source, rule, reason))
        return out
