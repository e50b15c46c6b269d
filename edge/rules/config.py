"""The `rules:` section of the edge config (the `calendar:` section is in `calendar.py`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, field_validator

from edge.drivers.base import Identifier, Strict
from edge.rules import builtin as _builtin  # noqa: F401  (registers the built-in rules)
from edge.rules.arbiter import ArbiterSettings
from edge.rules.model import DeviceKind
from edge.rules.policy import OverridePolicy
from edge.rules.registry import RuleConfig, build


class DeviceRole(Strict):
    """What the rules treat a device as, where the driver does not say (a relay that
    drives lights is a `light`), and its zone if the device config has none."""

    kind: DeviceKind | None = None
    zone: str | None = None


class RulesConfig(Strict):
    enabled: bool = True
    dry_run: bool = Field(False, description="audit what would be written, write nothing")
    tick_s: float = Field(60, ge=1, le=3600, description="evaluate this often")
    tick_offset_s: float = Field(
        5, ge=0, le=600, description="after the aligned poll slot, so a tick sees fresh reads")
    min_on_s: float = Field(300, ge=0, le=86_400)
    min_off_s: float = Field(300, ge=0, le=86_400)
    max_writes: int = Field(6, ge=1, le=1000, description="per device per rate_window_s")
    rate_window_s: float = Field(600, gt=0, le=86_400)
    retries: int = Field(2, ge=0, le=10, description="extra write attempts before an alarm")
    stale_after_s: float | None = Field(
        None, gt=0, description="device values older than this are not acted on; "
                                "default: 3 × its poll interval")
    state_path: str = Field("rules.sqlite", description="overrides and executed command ids")
    protected: list[Identifier] = Field(
        default_factory=list, description="devices never written (data-room AC, fridges)")
    protected_zones: list[str] = Field(default_factory=list)
    devices: dict[str, DeviceRole] = Field(default_factory=dict)
    rules: list[RuleConfig] = Field(default_factory=list)
    overrides: OverridePolicy = Field(
        default_factory=OverridePolicy,
        description="duration, comfort band and season of central overrides (policy.py)")

    @field_validator("rules", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for i, raw in enumerate(value):
            try:
                out.append(build(raw, i))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                rid = raw.get("id") if isinstance(raw, dict) else None
                raise ValueError(f"rules[{i}] (id {rid!r}).{where}: {first['msg']} "
                                 f"(got {first.get('input')!r})") from None
        ids = [r.id for r in out]
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            raise ValueError(f"duplicate rule ids: {', '.join(dupes)}")
        return out

    def arbiter_settings(self) -> ArbiterSettings:
        return ArbiterSettings(self.min_on_s, self.min_off_s, self.max_writes,
                               self.rate_window_s)
