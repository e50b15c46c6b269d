"""The `savings:` section of the institution config: how the estimate of what each rule saved
is made (docs/savings.md). Its own module because the institution model holds it and the
estimator (central/savings.py) reads the institution model.

    savings:
      max_hold_h: 16                 # no switch-off is credited for longer than this
      setpoint_share_per_c: 0.06     # AC load avoided per °C a setpoint is clamped
      load_window_s: 3600            # a load sample older than this before a write is not used
      loads:                         # where a unit's load is measured, if not on the unit
        - {edge: edge-a, device: ac-301, meter: ac-301-power, point: power_w}
        - {edge: edge-a, device: ac-302, rated_w: 1500}
      occupancy:                     # occupancy sensors of the units' zones
        - {edge: edge-a, device: pir-301, zone: "301"}
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_POINT = r"^[a-z][a-z0-9_.]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LoadSource(_Model):
    """Where the load of one switched unit is measured: its own `point` (plugs report
    `power_w`), a `meter` on the unit's circuit, or (no measurement) its `rated_w`."""

    edge: Annotated[str, Field(pattern=_ID)]
    device: Annotated[str, Field(pattern=_ID)]
    meter: Annotated[str, Field(pattern=_ID)] | None = None  # same edge; default: the unit
    point: Annotated[str, Field(pattern=_POINT)] = "power_w"
    rated_w: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False)] | None = None
    zone: str | None = None  # for units the institution config gives no zone


class OccupancySensor(_Model):
    edge: Annotated[str, Field(pattern=_ID)]
    device: Annotated[str, Field(pattern=_ID)]
    zone: Annotated[str, Field(min_length=1)]
    point: Annotated[str, Field(pattern=_POINT)] = "occupied"


class SavingsConfig(_Model):
    max_hold_h: Annotated[float, Field(gt=0, le=14 * 24, allow_inf_nan=False)] = 16.0
    setpoint_share_per_c: Annotated[float, Field(gt=0, le=0.5, allow_inf_nan=False)] = 0.06
    load_window_s: Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)] = 3600.0
    loads: list[LoadSource] = Field(default_factory=list)
    occupancy: list[OccupancySensor] = Field(default_factory=list)

    def load_of(self, edge: str, device: str) -> LoadSource:
        for source in self.loads:
            if source.edge == edge and source.device == device:
                return source
        return LoadSource(edge=edge, device=device)
