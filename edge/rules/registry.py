"""Rule types by name, like the driver registry: a rule config model per `type`, each with a
pure `evaluate`. Custom rules plug in with `register` before the config is loaded.

    from edge.rules.registry import RuleConfig, register

    @register
    class MyRule(RuleConfig):
        type: Literal["my_rule"]
        def evaluate(self, state, now, calendar): ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, get_args

from pydantic import Field

from edge.drivers.base import Identifier, Strict
from edge.rules.model import DeviceKind, DeviceView, RuleOutput, SiteState

if TYPE_CHECKING:
    from edge.rules.calendar import InstitutionCalendar


class RuleConfig(Strict):
    """Fields every rule has: its id (named in every audit event) and which devices it
    applies to (by default every device of its kinds)."""

    id: Identifier
    type: str
    devices: list[str] | None = Field(None, description="only these devices")
    zones: list[str] | None = Field(None, description="only devices in these zones")
    kinds: list[DeviceKind] | None = Field(None, description="default: the rule's own kinds")
    exempt: list[str] = Field(default_factory=list, description="devices the rule leaves alone")
    exempt_zones: list[str] = Field(default_factory=list,
                                    description="zones the rule leaves alone (data rooms, labs)")

    default_kinds: ClassVar[tuple[DeviceKind, ...]] = ()
    time_based: ClassVar[bool] = False  # paused while the clock is not synced

    def selected(self, state: SiteState) -> list[DeviceView]:
        kinds = tuple(self.kinds) if self.kinds is not None else self.default_kinds
        out = []
        for d in state.devices.values():
            if d.kind not in kinds or d.id in self.exempt:
                continue
            if d.zone is not None and d.zone in self.exempt_zones:
                continue
            if self.devices is not None and d.id not in self.devices:
                continue
            if self.zones is not None and d.zone not in self.zones:
                continue
            out.append(d)
        return out

    def evaluate(self, state: SiteState, now: float,
                 calendar: InstitutionCalendar) -> RuleOutput:
        raise NotImplementedError


RULES: dict[str, type[RuleConfig]] = {}


def register(cls: type[RuleConfig]) -> type[RuleConfig]:
    """Add a rule type; its `type` field must be a `Literal` with one name."""
    names = get_args(cls.model_fields["type"].annotation)
    if len(names) != 1 or not isinstance(names[0], str):
        raise TypeError(f"{cls.__name__}.type must be Literal['<name>']")
    if names[0] in RULES and RULES[names[0]] is not cls:
        raise ValueError(f"rule type {names[0]!r} is already registered")
    RULES[names[0]] = cls
    return cls


def build(raw: Any, index: int) -> RuleConfig:
    """One rule from its config mapping; errors name `rules[i]` and the type."""
    if isinstance(raw, RuleConfig):
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"rules[{index}]: must be a mapping, got {raw!r}")
    kind = raw.get("type")
    cls = RULES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(sorted(RULES))
        raise ValueError(f"rules[{index}].type: unknown rule type {kind!r} (known: {known})")
    return cls.model_validate(raw)
