"""The institution's `carbon:` section (docs/institution-config.md, docs/carbon.md): which
grid region's electricity factors apply, and factors of its own that take precedence over
the shipped table (a provincial factor, a heat supplier's own figure, a newly published
year before the shipped table has it). Checked at start-up like the rest of the file."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from central.carbon_factors import NATIONAL, EmissionFactor, check_factors, shipped_table


class CarbonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # A key of the factor table's `regions` (national, north, northeast, east, central,
    # northwest, south, southwest); where the region has no factor for a day, the national
    # factor of that day is used and the figure names it.
    grid_region: Annotated[str, Field(min_length=1, max_length=32)] = NATIONAL
    factors: list[EmissionFactor] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> CarbonConfig:
        table = shipped_table()
        regions = list(table.regions)
        problems = []
        if self.grid_region not in table.regions:
            problems.append(("carbon.grid_region", self.grid_region,
                             f"unknown grid region (known: {', '.join(regions)})"))
        units = {f.energy: f.unit for f in table.factors}
        problems.extend(check_factors(self.factors, regions, prefix="carbon.factors",
                                      units=units))
        if problems:
            summary = "; ".join(f"{f}: {r} (got {v!r})" for f, v, r in problems)
            raise PydanticCustomError("cross_field", "{summary}",
                                      {"summary": summary, "problems": problems})
        return self
