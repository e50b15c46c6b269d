"""Code tables as versioned data: 分项 items, GB/T 51161 quotas, waste categories, policy
defaults and the seed-004 items the data can evidence (central/codes/*.yaml).

None of these values is a literal in code: local variants of the item tree, provincial quota
standards and a city's waste names are edits to a YAML file. Each table carries a `version`
that reports print beside the figures computed with it.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from central.energy import EnergyType
from central.errors import ConfigError
from central.validation import problems_from, read_yaml

Code = Annotated[str, Field(pattern=r"^[0-9]{2}[0-9A-Z]{3}$")]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Table):
    zh: str
    en: str


class ItemLabel(Label):
    parent: Code | None = None


class ItemTable(_Table):
    table: Literal["items"]
    version: str
    energy_categories: dict[Code, Label]
    electricity_items: dict[Code, ItemLabel]
    data_centre_item: Code
    energy_type_categories: dict[EnergyType, Code]

    def top_item(self, code: str) -> str:
        """The level-0 item (01A00…01D00) a code rolls up to; unknown codes stay as they are."""
        item = self.electricity_items.get(code)
        return item.parent if item is not None and item.parent else code


class QuotaValue(_Table):
    constraint: NonNegative
    guide: NonNegative


class QuotaClass(Label):
    values: dict[str, QuotaValue]


class QuotaTable(_Table):
    table: Literal["quotas"]
    version: str
    standard: str
    unit: str
    confidence: str
    climate_zones: dict[str, Label]
    classes: dict[str, QuotaClass]


class WasteCategory(Label):
    colour: str
    hazardous: bool


class WasteTable(_Table):
    table: Literal["waste"]
    version: str
    categories: dict[str, WasteCategory]


class AcPolicy(_Table):
    summer_min_setpoint_c: float
    winter_max_setpoint_c: float
    cooling_modes: list[str]
    heating_modes: list[str]
    max_hold_s: Annotated[int, Field(gt=0)]


class WorkingHours(_Table):
    start: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    end: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-4]):[0-5][0-9]$")]

    def minutes(self) -> tuple[int, int]:
        (h0, m0), (h1, m1) = (map(int, self.start.split(":")), map(int, self.end.split(":")))
        return h0 * 60 + m0, h1 * 60 + m1


class PolicyTable(_Table):
    table: Literal["policy"]
    version: str
    ac: AcPolicy
    working_hours: WorkingHours


Evidence = Literal["targets", "metering", "statistics_ledger", "ac_setpoint", "data_centre",
                   "vehicle_fuel", "hazardous_store", "clearance_ledger", "clearance_published",
                   "water_management", "sorting_bins"]


class ScoringItem(Label):
    id: str
    evidence: Evidence
    points: NonNegative


class ScoringTable(_Table):
    table: Literal["scoring"]
    version: str
    items: list[ScoringItem]


T = TypeVar("T", bound=_Table)


def _load(name: str, model: type[T]) -> T:
    resource = resources.files("central").joinpath("codes", f"{name}.yaml")
    source = f"central/codes/{name}.yaml"
    with resources.as_file(resource) as path:
        data: Any = read_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None


@functools.cache
def items() -> ItemTable:
    return _load("items", ItemTable)


@functools.cache
def quotas() -> QuotaTable:
    return _load("quotas", QuotaTable)


@functools.cache
def waste() -> WasteTable:
    return _load("waste", WasteTable)


@functools.cache
def policy() -> PolicyTable:
    return _load("policy", PolicyTable)


@functools.cache
def scoring() -> ScoringTable:
    return _load("scoring", ScoringTable)
