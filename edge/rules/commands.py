"""Commands from the central (`override.set`, `override.clear`) and the local CLI's
overrides: validated without I/O, executed at most once per id, answered with a
`command.result` status.

Statuses: `applied` (override stored), `cleared`, `expired` (arrived after its expiry:
dropped), `duplicate` (the id was executed before: nothing done), `rejected` (bad arguments,
unknown device or point, a value outside the device's allowlist, a protected device, or
outside `rules.overrides`: too long, outside the comfort band, a mode against the season
without `args.off_season: true`). Commands the control gate refuses (edge/control.py) never
get here; they are answered `refused`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from edge.drivers.base import DeviceConfig
from edge.drivers.modbus import ModbusConfig
from edge.drivers.plugs import PlugConfig
from edge.rules.arbiter import ActiveOverride
from edge.rules.config import RulesConfig
from edge.rules.overrides import OverrideStore
from edge.rules.policy import (
    COOLING_MODES,
    DEFAULT_COOLING_MONTHS,
    DEFAULT_HEATING_MONTHS,
    HEATING_MODES,
    OverridePolicy,
)
from protocols.errors import RegisterMapError
from protocols.registermap import PointValue
from protocols.wire import Command


def zone_of(rules: RulesConfig, device: DeviceConfig) -> str | None:
    role = rules.devices.get(device.id)
    return role.zone if role is not None and role.zone is not None else device.zone


def protected_devices(rules: RulesConfig, devices: Mapping[str, DeviceConfig]) -> frozenset[str]:
    """Devices never written: listed, or in a protected zone."""
    zones = set(rules.protected_zones)
    return frozenset([*rules.protected,
                      *(d for d, c in devices.items() if zone_of(rules, c) in zones)])


class OverrideRejectedError(ValueError):
    """An override that cannot be accepted; the message says which field and why."""


def check_override_value(device: DeviceConfig, point: str, value: object) -> PointValue:
    """The value as it would be written, or `OverrideRejectedError` naming the problem. The same
    allowlist the driver enforces before any write (register map `write:` ranges)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise OverrideRejectedError(f"value: must be finite, got {value!r}")
    if isinstance(device, ModbusConfig):
        rmap = device.register_map()
        try:
            spec = rmap.point(point)
        except KeyError:
            raise OverrideRejectedError(f"args.point: {point!r} is not a point of {device.id!r}"
                                   f" ({rmap.model})") from None
        try:
            return rmap.check_write(spec, value)
        except RegisterMapError as exc:
            raise OverrideRejectedError(f"args.value: {device.id}.{point}: {exc.reason}") from None
    if isinstance(device, PlugConfig):
        if point != "on":
            raise OverrideRejectedError(f"{device.id}.{point}: only `on` can be written on a plug")
        if not isinstance(value, bool):
            raise OverrideRejectedError(f"{device.id}.on: must be true or false, got {value!r}")
        return value
    raise OverrideRejectedError(f"device {device.id!r} cannot be written")


def parse_override(args: Mapping[str, Any], *, override_id: str, expires: float,
                   devices: Mapping[str, DeviceConfig], protected: Collection[str],
                   origin: str) -> ActiveOverride:
    device_id = args.get("device")
    if not isinstance(device_id, str) or device_id not in devices:
        known = ", ".join(sorted(devices))
        raise OverrideRejectedError(f"args.device: unknown device {device_id!r} (known: {known})")
    if device_id in protected:
        raise OverrideRejectedError(f"args.device: {device_id!r} is protected and never written")
    point = args.get("point")
    if not isinstance(point, str):
        raise OverrideRejectedError(f"args.point: must be a point name, got {point!r}")
    reason = args.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        raise OverrideRejectedError(
            f"args.reason: must be text up to 200 characters, got {reason!r}")
    if "value" not in args:
        raise OverrideRejectedError("args.value: missing")
    value = check_override_value(devices[device_id], point, args["value"])
    return ActiveOverride(override_id, device_id, point, value, reason, expires, origin)


@dataclass(frozen=True, slots=True)
class OverrideLimits:
    """`rules.overrides` with the seasons resolved and the local time zone."""

    policy: OverridePolicy
    cooling_months: frozenset[int]
    heating_months: frozenset[int]
    tz: tzinfo

    @classmethod
    def of(cls, rules: RulesConfig, tz: tzinfo) -> OverrideLimits:
        cooling: Collection[int] = DEFAULT_COOLING_MONTHS
        heating: Collection[int] = DEFAULT_HEATING_MONTHS
        for rule in rules.rules:  # the setpoint_limits rule's seasons, if configured
            if getattr(rule, "type", None) == "setpoint_limits":
                cooling = getattr(rule, "cooling_months", cooling)
                heating = getattr(rule, "heating_months", heating)
        p = rules.overrides
        return cls(p, frozenset(p.cooling_months if p.cooling_months is not None else cooling),
                   frozenset(p.heating_months if p.heating_months is not None else heating), tz)

    def check(self, o: ActiveOverride, args: Mapping[str, Any], now: float) -> None:
        """`OverrideRejectedError` naming the limit the override breaks."""
        p = self.policy
        if o.expires - now > p.max_duration_s + 60:  # a minute for transit
            raise OverrideRejectedError(
                f"expires: the override would last {o.expires - now:.0f} s, more than "
                f"rules.overrides.max_duration_s {p.max_duration_s:g}")
        value = o.value
        if o.point == "setpoint_c" and isinstance(value, int | float) \
                and not isinstance(value, bool) \
                and not p.comfort_min_c <= value <= p.comfort_max_c:
            raise OverrideRejectedError(
                f"args.value: setpoint {value:g} °C is outside the comfort band "
                f"{p.comfort_min_c:g}–{p.comfort_max_c:g} °C (rules.overrides)")
        if o.point == "mode" and isinstance(value, str) and args.get("off_season") is not True:
            month = datetime.fromtimestamp(now, self.tz).month
            if (value in COOLING_MODES and month in self.heating_months) or \
                    (value in HEATING_MODES and month in self.cooling_months):
                season = "heating" if month in self.heating_months else "cooling"
                raise OverrideRejectedError(
                    f"args.value: mode {value!r} against the {season} season (month "
                    f"{month}) needs args.off_season: true")


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    id: str
    status: str
    detail: str = ""
    override: ActiveOverride | None = None
    rejected_value: object = None


def execute(cmd: Command, *, store: OverrideStore, now: float,
            devices: Mapping[str, DeviceConfig], protected: Collection[str],
            limits: OverrideLimits | None = None) -> CommandOutcome:
    """Run one command at most once. Its id is recorded together with its effect."""
    if store.seen(cmd.id) is not None:
        return CommandOutcome(cmd.id, "duplicate", f"id already executed ({store.seen(cmd.id)})")
    now_ms = round(now * 1000)
    if cmd.expired(now_ms):
        outcome = CommandOutcome(cmd.id, "expired",
                                 f"expired {(now_ms - cmd.expires) / 1000:.0f} s ago")
        return outcome if store.record_command(cmd.id, cmd.name, now, "expired",
                                               outcome.detail) else _dup(cmd)
    if cmd.name == "override.set":
        try:
            o = parse_override(cmd.args, override_id=cmd.id, expires=cmd.expires / 1000,
                               devices=devices, protected=protected, origin="central")
            if limits is not None:
                limits.check(o, cmd.args, now)
        except OverrideRejectedError as exc:
            store.record_command(cmd.id, cmd.name, now, "rejected", str(exc))
            return CommandOutcome(cmd.id, "rejected", str(exc),
                                  rejected_value=cmd.args.get("value"))
        detail = f"{o.device}.{o.point} = {o.value!r} until {cmd.expires}"
        if not store.record_command(cmd.id, cmd.name, now, "applied", detail, override=o):
            return _dup(cmd)
        return CommandOutcome(cmd.id, "applied", detail, override=o)
    if cmd.name == "override.clear":
        target = cmd.args.get("override_id")
        if not isinstance(target, str) or not store.is_open(target):
            detail = f"args.override_id: no active override {target!r}"
            store.record_command(cmd.id, cmd.name, now, "rejected", detail)
            return CommandOutcome(cmd.id, "rejected", detail)
        if not store.record_command(cmd.id, cmd.name, now, "cleared", target, clear=target):
            return _dup(cmd)
        return CommandOutcome(cmd.id, "cleared", target)
    detail = f"name: unknown command {cmd.name!r} (known: override.set, override.clear)"
    store.record_command(cmd.id, cmd.name, now, "rejected", detail)
    return CommandOutcome(cmd.id, "rejected", detail)


def _dup(cmd: Command) -> CommandOutcome:
    return CommandOutcome(cmd.id, "duplicate", "id already executed")
