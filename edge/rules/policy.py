"""The limits every central override must respect, beyond the device's write allowlist and
the energy-saving rules (`rules.overrides` in edge.yaml; docs/rules.md).

Why: the energy-saving limit alone (heating ≤ 20 °C) let a command write 16 °C in winter —
legal, but a cold room nobody asked for; a unit could be switched to cooling in December and
an override could last "until 2100". An override is an exception a person asked for, so it
is bounded in time and kept in a comfort band, and a mode against the season needs the
command to say so explicitly (`args.off_season: true`, which the central's API only sends
when the engineer sets it).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from edge.drivers.base import Strict

DEFAULT_COOLING_MONTHS = (5, 6, 7, 8, 9, 10)
DEFAULT_HEATING_MONTHS = (11, 12, 1, 2, 3)
COOLING_MODES = frozenset({"cool", "dry"})
HEATING_MODES = frozenset({"heat"})


class OverridePolicy(Strict):
    max_duration_s: float = Field(
        86_400, gt=0, le=7 * 86_400,
        description="an override.set lasting longer than this (from its arrival) is rejected")
    comfort_min_c: float = Field(18.0, ge=5, le=35, allow_inf_nan=False,
                                 description="setpoint overrides below are rejected")
    comfort_max_c: float = Field(28.0, ge=5, le=35, allow_inf_nan=False,
                                 description="setpoint overrides above are rejected")
    cooling_months: list[int] | None = Field(
        None, description="default: the setpoint_limits rule's, else May–October")
    heating_months: list[int] | None = Field(
        None, description="default: the setpoint_limits rule's, else November–March")

    @model_validator(mode="after")
    def _order(self) -> OverridePolicy:
        if self.comfort_min_c >= self.comfort_max_c:
            raise ValueError(f"comfort_min_c {self.comfort_min_c} must be below comfort_max_c "
                             f"{self.comfort_max_c}")
        bad = [m for m in (*(self.cooling_months or ()), *(self.heating_months or ()))
               if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months must be 1–12, got {bad}")
        return self
