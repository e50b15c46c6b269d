"""What every driver kind shares: the config base model, points, readings, write results.

A driver turns one configured device into `read()` (and, for actuators, absolute `write()`
and `revert()`), always through the hub of its bus: drivers never open connections (Home
Assistant's rule), so one physical bus has exactly one owner, one lock and one pace.

Config models validate without I/O; register maps are data files read at validation.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.clock import Clock
from protocols.registermap import PointValue

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PointName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]
Seconds = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a config must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Priority(enum.IntEnum):
    """Who gets the bus next: writes jump ahead of queued polls."""

    WRITE = 0
    POLL = 1


@dataclass(frozen=True, slots=True)
class PointInfo:
    """A point as the edge sends it: semantic name, unit, and how it is accounted."""

    name: str
    unit: str
    cumulative: bool = False
    writable: bool = False


class DeviceConfig(Strict):
    """Fields every driver kind has. Subclasses add `driver: Literal[...]` and their own."""

    id: Identifier
    bus: Identifier | None = Field(None, description="id of the bus (hub) the device is on")
    poll_interval_s: Seconds = 60.0
    point_intervals: dict[str, Seconds] = Field(
        default_factory=dict, description="per-point poll intervals overriding poll_interval_s")
    points: list[str] | None = Field(None, description="subset of the points; all by default")
    timeout_s: Seconds | None = Field(None, description="per request; default: the bus's")
    gap_after_s: Seconds | None = Field(
        None, description="readings further apart than this flag intervals as gap")
    offline_alarm_after_s: Seconds = Field(
        900.0, description="raise alarm.device_offline when the device has not answered "
                           "for this long")
    building: str | None = None
    zone: str | None = None
    item_code: str | None = Field(None, pattern=r"^\d{2}[A-Z0-9]\d{2}$")

    kind_transports: ClassVar[frozenset[str]] = frozenset()

    def available_points(self) -> dict[str, PointInfo]:
        """Every point this device model offers (pure; may read a register map file)."""
        raise NotImplementedError

    def selected_points(self) -> tuple[PointInfo, ...]:
        offered = self.available_points()
        if self.points is None:
            return tuple(offered.values())
        return tuple(offered[name] for name in self.points if name in offered)

    def interval_of(self, point: str) -> float:
        return self.point_intervals.get(point, self.poll_interval_s)

    @property
    def max_gap_s(self) -> float:
        return self.gap_after_s if self.gap_after_s is not None else 2.5 * self.poll_interval_s

    @property
    def model_name(self) -> str:
        """What the birth message calls the device model."""
        return getattr(self, "model", "") or str(getattr(self, "driver", ""))

    def check_points(self) -> list[str]:
        """Problems with `points` and `point_intervals` as `field: message` lines."""
        offered = self.available_points()
        problems: list[str] = []
        for name in self.points or []:
            if name not in offered:
                problems.append(f"points: {name!r} is not in model {self.model_name!r} "
                                f"(has {', '.join(sorted(offered))})")
        chosen = {p.name for p in self.selected_points()}
        for name in self.point_intervals:
            if name not in chosen:
                problems.append(f"point_intervals: {name!r} is not a polled point of this "
                                "device")
        return problems

    @model_validator(mode="after")
    def _own_timeout_below_interval(self) -> DeviceConfig:
        # With the bus default the EdgeConfig checks it; here only what the device says.
        if self.timeout_s is not None:
            shortest = min([self.poll_interval_s, *self.point_intervals.values()])
            if self.timeout_s >= shortest:
                raise ValueError(
                    f"timeout_s ({self.timeout_s}) must be shorter than poll_interval_s "
                    f"({shortest})" if shortest == self.poll_interval_s else
                    f"timeout_s ({self.timeout_s}) must be shorter than the shortest point "
                    f"interval ({shortest})")
        return self


@dataclass(slots=True)
class Reading:
    """One read of a device: good values, and points that did not decode (never stored)."""

    values: dict[str, PointValue] = field(default_factory=dict)
    bad: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """An absolute write and what the device reported afterwards."""

    device: str
    point: str
    requested: PointValue
    read_back: PointValue | None
    ok: bool


def same_value(requested: PointValue, read_back: PointValue | None, *,
               resolution: float = 0.0) -> bool:
    """Does a read-back confirm a write? Numbers within half the register resolution."""
    if read_back is None:
        return False
    if isinstance(requested, bool) or isinstance(read_back, bool):
        return requested is read_back
    if isinstance(requested, str) or isinstance(read_back, str):
        return requested == read_back
    return math.isclose(requested, read_back, abs_tol=resolution / 2 + 1e-9)


MessageHandler = Callable[[str, bytes], None]

C = TypeVar("C", bound=DeviceConfig)
H = TypeVar("H")


class Driver(ABC, Generic[C, H]):
    """One configured device on its hub."""

    kind: ClassVar[str]

    def __init__(self, config: C, hub: H, clock: Clock) -> None:
        self.config = config
        self.hub = hub
        self.clock = clock  # push devices stamp arrivals with it; polls never read it
        self.points: tuple[PointInfo, ...] = config.selected_points()
        self.timeout_s: float = config.timeout_s or 1.0  # the agent sets the bus default

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def model(self) -> str:
        return self.config.model_name

    def intervals(self) -> dict[str, float]:
        return {p.name: self.config.interval_of(p.name) for p in self.points}

    def prepare(self, slot: float, points: frozenset[str]) -> None:
        """Called for every device due in a slot before any is read (group planning)."""

    @abstractmethod
    async def read(self, points: frozenset[str], slot: float) -> Reading:
        """Read `points` now; raises `DeviceError` when the device cannot be read."""

    def subscriptions(self) -> Mapping[str, MessageHandler]:
        """MQTT topic filters this driver listens to (push devices), with handlers."""
        return {}


class Actuator(Driver[C, H]):
    """A driver that can also be written: absolute values only, read back every time."""

    @abstractmethod
    def check_write(self, point: str, value: object) -> PointValue:
        """The value to send, or `WriteRejectedError` (before any I/O)."""

    @abstractmethod
    async def write(self, point: str, value: PointValue) -> WriteResult:
        """Write an already-checked absolute value and read it back."""

    @abstractmethod
    def revert_values(self) -> dict[str, PointValue]:
        """What `revert` writes: the device's defaults (VOLTTRON's revert)."""

