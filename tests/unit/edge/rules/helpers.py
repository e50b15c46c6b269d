"""Builders for pure rule tests: devices, state, a summer-term calendar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from edge.rules.calendar import CalendarConfig, InstitutionCalendar
from edge.rules.config import RulesConfig
from edge.rules.model import DeviceKind, DeviceView, SiteState, Snapshot
from edge.rules.registry import RuleConfig
from protocols.registermap import PointValue

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR: InstitutionCalendar = CalendarConfig(working_hours="08:00-17:30").build()


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=TZ).timestamp()  # type: ignore[misc]


MONDAY_NOON = ts(2026, 6, 15, 12, 0)
MONDAY_EVENING = ts(2026, 6, 15, 18, 0)  # 30 min after hours


def dev(id: str, kind: DeviceKind, zone: str | None = "301", fresh: bool = True,
        attrs: Mapping[str, str | bool] | None = None, **values: PointValue) -> DeviceView:
    return DeviceView(id, kind, zone, dict(values), fresh, dict(attrs or {}))


def ac(id: str = "ac-1", zone: str | None = "301", **values: PointValue) -> DeviceView:
    base: dict[str, PointValue] = {"on": True, "mode": "cool", "setpoint_c": 26.0}
    base.update(values)
    return dev(id, DeviceKind.AC, zone, **base)


def pir(id: str = "pir-1", zone: str = "301", occupied: bool = False) -> DeviceView:
    return dev(id, DeviceKind.OCCUPANCY, zone, occupied=occupied)


def state(*devices: DeviceView, history: Mapping[str, Sequence[Snapshot]] | None = None,
          synced: bool = True, nightly: Mapping[str, Any] | None = None) -> SiteState:
    return SiteState({d.id: d for d in devices}, dict(history or {}), dict(nightly or {}),
                     synced)


def rule(raw: dict[str, Any]) -> RuleConfig:
    cfg = RulesConfig.model_validate({"rules": [{"id": raw.get("id", "r"), **raw}]})
    return cfg.rules[0]
