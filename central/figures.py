"""The figures central/ computes, as read-only view models: what the API returns, the
dashboard shows and the reports print. Formulas that fill them are in `central.formulas`
(pure) and `central.metrics` (assembly against the store and ledger ports)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from central.alarms import AlarmView
from central.carbon import CarbonFigures
from central.compliance import EnergyLine
from central.coverage import Coverage, QuantityLine
from central.energy import EnergyType
from central.institution import ClearanceDetection
from central.ledger import Clearance, HazardousMove
from central.standby import StandbyWaste
from central.view import View as _View  # the one read-model base
from central.waste import BinLevel


class ItemLine(_View):
    code: str
    label_zh: str
    label_en: str
    kwh: float
    share: float | None  # of the main meters' electricity in the same scope


class DataCentre(_View):
    metered: bool
    meters: int
    kwh: float
    it_kwh: float | None
    pue: float | None


class QuotaCheck(_View):
    building: str
    quota_class: str
    climate_zone: str
    standard: str
    kwh: float
    floor_area_m2: float
    kwh_per_m2_a: float  # annualised over the period
    constraint: float
    guide: float
    verdict: Literal["within_guide", "within_constraint", "over_constraint"]
    annualised: bool  # the period is not a whole year


class AcCompliance(_View):
    units: int
    exempt_units: int
    judged_s: float
    compliant_s: float
    share: float | None
    summer_min_setpoint_c: float
    winter_max_setpoint_c: float


class AfterHours(_View):
    kwh: float
    after_hours_kwh: float
    share: float | None
    working_hours: str
    unknown_calendar_days: int  # days of a year the calendar has no 调休 data for


class VehicleLine(_View):
    id: str
    plate: str
    fuel: EnergyType
    litres: float
    km: float
    l_per_100km: float | None
    kgce: float
    entries: int


class WasteMonth(_View):
    month: str  # YYYY-MM
    category: str
    label_zh: str
    label_en: str
    weight_kg: float
    volume_l: float
    bins: int
    clearances: int


class HazardousBalance(_View):
    item: str
    unit: str
    stored_in: float
    taken_out: float
    balance: float


class WasteView(_View):
    levels: list[BinLevel]  # latest fill per bin, as of `now`
    clearances: list[Clearance]  # the clearance ledger of the period: manual + sensor
    sensor_clearances: int
    manual_clearances: int
    monthly: list[WasteMonth]
    hazardous_moves: list[HazardousMove]  # the store log of the period
    hazardous: list[HazardousBalance]  # store balance at the period's end (all moves)
    detection: ClearanceDetection


class BuildingSummary(_View):
    """The statistics-ledger figures of one building and period; equal to the same fields of
    `period_metrics(..., building=...)`."""

    building: str
    name: str
    start: datetime
    end: datetime
    electricity_kwh: float
    water_m3: float
    energy_kgce: float
    energy_kgce_for_area: float
    floor_area_m2: float
    kgce_per_m2: float | None
    quantities: list[QuantityLine] = Field(default_factory=list)
    coverage: Coverage | None = None


class PeriodMetrics(_View):
    institution_id: str
    building: str | None
    start: datetime
    end: datetime
    profile_id: str
    profile_version: str
    energy_by_type: list[EnergyLine]
    energy_kgce: float
    energy_kgce_for_area: float
    electricity_kwh: float  # metered + billed; `electricity_kwh_metered` the main meters'
    water_m3: float  # metered + billed
    floor_area_m2: float
    energy_users: float | None  # None for a building: 用能人数 is the institution's
    kgce_per_m2: float | None  # None when the floor area is 0 (all out of use)
    kgce_per_person: float | None
    water_m3_per_person: float | None
    items: list[ItemLine]
    data_centre: DataCentre
    quotas: list[QuotaCheck]
    ac: AcCompliance
    after_hours: AfterHours
    vehicles: list[VehicleLine]
    standby: StandbyWaste
    alarms: AlarmView
    waste: WasteView
    electricity_kwh_metered: float = 0.0
    # per energy type and water, metered / billed
    quantities: list[QuantityLine] = Field(default_factory=list)
    coverage: Coverage | None = None
    carbon: CarbonFigures | None = None  # tCO₂, per m², per person (central/carbon.py)
