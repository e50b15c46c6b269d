"""What a figure rests on: how many days of the period have data, how many meters report,
how much bills cover, and which part is metered and which billed. Pure view models; the
store side is `central.metrics.coverage_for`.

Every figure the dashboard, the API, the reports and the XLSX show comes with its coverage
("数据覆盖 214 / 365 天 · 6 / 6 块表"), and a month or item without any data is blank ("—"),
never 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from central.energy import EnergyType

QuantitySource = Literal["metered", "bill", "vehicle"]
SOURCE_ZH = {"metered": "计量", "bill": "账单", "vehicle": "加油记录"}
SOURCE_EN = {"metered": "metered", "bill": "bill", "vehicle": "fuel log"}


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class QuantityLine(_View):
    """One energy type (or water) in its physical unit, by source. Metered and billed parts
    never overlap in time (a bill counts only before metering of its type began)."""

    energy: EnergyType
    unit: str  # the profile's unit of the type (kWh, m³, kg…), m³ for water
    metered: float
    billed: float
    vehicle: float
    total: float
    sources: list[QuantitySource]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source_zh(self) -> str:
        return " + ".join(SOURCE_ZH[s] for s in self.sources) or "—"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source_en(self) -> str:
        return " + ".join(SOURCE_EN[s] for s in self.sources) or "—"


class Coverage(_View):
    days: int  # local days of the period (until now)
    days_with_data: int  # days with a record of at least one main meter in scope
    meters: int  # main meters configured in scope
    meters_reporting: int  # of them, those that recorded consumption in the period
    billed_days: int  # days of the period covered by at least one bill
    metered_kgce: float
    billed_kgce: float
    vehicle_kgce: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_data(self) -> bool:
        return self.days_with_data > 0 or self.billed_days > 0 or self.vehicle_kgce > 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text_zh(self) -> str:
        parts = [f"数据覆盖 {self.days_with_data} / {self.days} 天",
                 f"{self.meters_reporting} / {self.meters} 块表"]
        if self.billed_days:
            parts.append(f"账单覆盖 {self.billed_days} / {self.days} 天")
        return " · ".join(parts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text_en(self) -> str:
        parts = [f"data on {self.days_with_data} / {self.days} days",
                 f"{self.meters_reporting} / {self.meters} meters reporting"]
        if self.billed_days:
            parts.append(f"bills cover {self.billed_days} / {self.days} days")
        return " · ".join(parts)
