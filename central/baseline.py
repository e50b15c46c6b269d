"""The institution file's `baseline:` section: the base year, the 14th Five-Year Plan
targets measured against it, and optional heating/cooling degree days.

    baseline:
      base_year: 2020            # the 14th FYP's base (default)
      target_year: 2025
      targets_pct:               # reduction against the base year by target_year
        kgce_per_m2: 5           # 单位建筑面积能耗 −5 %
        kgce_per_person: 6       # 人均综合能耗 −6 %
        water_m3_per_person: 6   # 人均用水量 −6 %
        co2_per_m2: 7            # 单位建筑面积碳排放 −7 %
      degree_days:               # optional: weather normalisation (docs/comparisons.md)
        heating_share: 0.25      # share of consumption that follows HDD
        cooling_share: 0.15      # share that follows CDD
        hdd: {2020: [520, 430, 300, 120, 10, 0, 0, 0, 5, 90, 280, 470], ...}
        cdd: {2020: [0, 0, 0, 5, 60, 150, 260, 240, 110, 10, 0, 0], ...}

Only the model lives here (no I/O); `central.comparison` computes with it. Every error names
the field and value, as the rest of the institution file does.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

BaseYearValue = Annotated[int, Field(ge=2000, le=2100)]
Percent = Annotated[float, Field(ge=0, lt=100, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
MonthlyDegreeDays = Annotated[
    list[Annotated[float, Field(ge=0, allow_inf_nan=False)]],
    Field(min_length=12, max_length=12)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetPercents(_Model):
    """Reductions (per cent of the base year's figure) to reach by `target_year`; the
    defaults are the 14th FYP's for public institutions (《"十四五"公共机构节约能源资源工作
    规划》, 国管局 and 国家发展改革委, 1 June 2021: by 2025 against 2020, energy per m² −5 %,
    energy per person −6 %, water per person −6 %, CO₂ per m² −7 %)."""

    kgce_per_m2: Percent = 5.0
    kgce_per_person: Percent = 6.0
    water_m3_per_person: Percent = 6.0
    co2_per_m2: Percent = 7.0


class DegreeDays(_Model):
    """Monthly heating (HDD) and cooling (CDD) degree days per year, as the local weather
    service publishes them, and the shares of consumption that follow each."""

    heating_share: Share = 0.0
    cooling_share: Share = 0.0
    hdd: dict[BaseYearValue, MonthlyDegreeDays] = Field(default_factory=dict)
    cdd: dict[BaseYearValue, MonthlyDegreeDays] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shares(self) -> DegreeDays:
        if self.heating_share + self.cooling_share > 1:
            raise ValueError(f"heating_share + cooling_share must be at most 1 (got "
                             f"{self.heating_share} + {self.cooling_share})")
        if self.heating_share > 0 and not self.hdd:
            raise ValueError("heating_share is set but no hdd values are given")
        if self.cooling_share > 0 and not self.cdd:
            raise ValueError("cooling_share is set but no cdd values are given")
        return self


class Baseline(_Model):
    base_year: BaseYearValue = 2020
    target_year: BaseYearValue = 2025
    targets_pct: TargetPercents = TargetPercents()
    # A comparison needs each side's figure covered on at least this share of its days
    # (metered or billed, per energy type); 1.0: every day.
    min_coverage: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 1.0
    degree_days: DegreeDays | None = None

    @model_validator(mode="after")
    def _order(self) -> Baseline:
        if self.target_year <= self.base_year:
            raise ValueError(f"target_year must be after base_year (got {self.target_year} "
                             f"<= {self.base_year})")
        return self
