"""Request and response models of the HTTP API (what the OpenAPI schema shows).

The page and alarm models live with their read models (`central.dashboard`,
`central.alarms`, `central.edgehealth`); this module holds the API's own shapes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from central.auth import Role
from central.edgehealth import EdgeHealth
from central.view import View

IID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ID_PATTERN = IID_PATTERN  # edges and devices
POINT_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"



class InstitutionSummary(View):
    id: str = Field(examples=["demo-school"])
    name: str = Field(examples=["示范中学 Demo Middle School"])
    type: str = Field(examples=["school"])
    timezone: str = Field(examples=["Asia/Shanghai"])
    buildings: int = Field(examples=[2])
    meters: int = Field(examples=[6])


class BuildingOut(View):
    id: str = Field(examples=["A"])
    name: str = Field(examples=["教学楼 Teaching"])
    floor_area_m2: float = Field(examples=[7000.0])
    quota_class: str | None = None
    meters: int = Field(examples=[3])


class InstitutionDetail(View):
    id: str
    name: str
    type: str
    timezone: str
    coefficient_profile: str
    buildings: list[BuildingOut]
    energy_users: float = Field(examples=[1620.0])
    targets: dict[str, dict[str, float]] = Field(
        examples=[{"2025": {"kgce_per_m2": 0.25, "kgce_per_person": 2.0,
                            "water_m3_per_person": 5.0}}])


class PointOut(View):
    point: str = Field(examples=["power_w"])
    unit: str | None = Field(examples=["W"])
    ts: int | None = Field(description="last sample, ms since the epoch",
                           examples=[1751428800000])
    value: float | int | bool | str | None = Field(examples=[12000.0])


class DeviceOut(View):
    edge: str = Field(examples=["edge-1"])
    device: str = Field(examples=["meter-a"])
    kind: Literal["meter", "ac", "other"] = Field(examples=["meter"])
    building: str | None = Field(examples=["A"])
    zone: str | None = None
    energy: str | None = Field(default=None, examples=["electricity"])
    role: str | None = Field(default=None, examples=["main"])
    item: str | None = Field(default=None, examples=["01B00"])
    points: list[PointOut]


class Bucket(View):
    start: int = Field(description="bucket start, ms since the epoch",
                       examples=[1751428800000])
    count: int = Field(examples=[15])
    avg: float | None = Field(examples=[11875.5])
    min: float | None = Field(examples=[9000.0])
    max: float | None = Field(examples=[14000.0])
    last: float | int | bool | str | None = Field(examples=[12000.0])


class Series(View):
    edge: str
    device: str
    point: str
    start: int
    end: int
    bucket_s: int
    buckets: list[Bucket]


class IntervalOut(View):
    edge: str
    device: str
    point: str
    start: int = Field(examples=[1751428800000])
    duration_s: int = Field(examples=[900])
    quantity: float = Field(examples=[12.5])
    unit: str = Field(examples=["kWh"])
    flags: list[str] = Field(examples=[["estimated"]])
    synced: bool


class EventOut(View):
    edge: str = Field(examples=["edge-1"])
    epoch: int
    seq: int
    ts: int = Field(examples=[1751428800000])
    name: str = Field(examples=["alarm.leak"])
    severity: str = Field(examples=["warning"])
    device: str | None = Field(examples=["water-a"])
    data: dict[str, Any] = Field(examples=[{"state": "raised", "rule": "leak",
                                            "point": "flow_m3h", "flow": 0.4}])
    synced: bool


class AlarmOut(View):
    """One alarm's current state (central/alarms.py has the rules)."""

    name: str = Field(examples=["alarm.leak"])
    edge: str
    device: str | None
    rule: str | None = Field(examples=["leak"])
    point: str | None = Field(default=None, examples=["flow_m3h"])
    state: Literal["raised", "cleared"]
    since: int = Field(description="ts of the event that set the state (a repeated raise "
                       "keeps the first), ms")
    data: dict[str, Any]


class TokenOut(View):
    id: str = Field(examples=["9f2c4e1a7b3d5f60"])
    name: str = Field(examples=["energy office"])
    role: Role
    institutions: list[str] | None = Field(description="null: every institution",
                                           examples=[["demo-school"]])
    created: float
    expires: float | None
    revoked: float | None


class TokenCreated(TokenOut):
    token: str = Field(description="the bearer token; shown once, never stored")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["energy office"])]
    role: Role = Field(examples=["viewer"])
    institutions: list[Annotated[str, Field(pattern=IID_PATTERN)]] | None = Field(
        default=None, description="null: every institution (central admin)",
        examples=[["demo-school"]])
    ttl_s: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] | None = Field(
        default=None, description="lifetime in seconds; null: until revoked",
        examples=[86400 * 90])


class ErrorOut(View):
    detail: str = Field(examples=["unauthorised: token expired"])


class ProblemOut(View):
    field: str = Field(examples=["entries[0].quantity"])
    value: Any = Field(examples=[-5])
    reason: str = Field(examples=["Input should be greater than or equal to 0"])


class UnprocessableOut(View):
    """A refused request: FastAPI's list of parameter errors (`loc`, `msg`, `input`), or
    one sentence naming the field and value, with `problems` for ledger entries (of
    which none were stored)."""

    detail: str | list[dict[str, Any]] = Field(
        examples=["end: must be after start (got 2025-01-01)"])
    stored: int | None = None
    problems: list[ProblemOut] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not parseable JSON"},
    422: {"model": UnprocessableOut, "description": "a parameter or entry is invalid; the "
          "answer names the field and the value"},
    401: {"model": ErrorOut, "description": "no token, or a malformed, unsigned, wrongly "
          "signed, expired, unknown or revoked one"},
    403: {"model": ErrorOut, "description": "the token's role is too low"},
    404: {"model": ErrorOut, "description": "no such institution, or not one the token may "
          "see (the same answer, so a token cannot probe for other institutions)"},
    503: {"model": ErrorOut, "description": "the store cannot be read"},
}


class WhoAmI(View):
    token_id: str
    name: str
    role: Role
    institutions: list[str] | None


__all__ = [
    "ERRORS",
    "IID_PATTERN",
    "AlarmOut",
    "Bucket",
    "BuildingOut",
    "DeviceOut",
    "EdgeHealth",
    "ErrorOut",
    "EventOut",
    "InstitutionDetail",
    "InstitutionSummary",
    "IntervalOut",
    "PointOut",
    "ProblemOut",
    "Series",
    "TokenCreated",
    "TokenOut",
    "TokenRequest",
    "UnprocessableOut",
    "WhoAmI",
]
