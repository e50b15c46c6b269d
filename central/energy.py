"""What a meter measures: the energy types of the institution's meters and of the code
tables (central/codes/items.yaml maps each to its 能源分类 category). Its own module because
both the institution model and the code tables name it, and the first validates against the
second."""

from __future__ import annotations

import enum


class EnergyType(enum.StrEnum):
    """What a meter measures. Water is metered like energy but is not part of 综合能耗."""

    ELECTRICITY = "electricity"
    WATER = "water"
    NATURAL_GAS = "natural_gas"
    HEAT = "heat"
    GASOLINE = "gasoline"
    DIESEL = "diesel"
    RAW_COAL = "raw_coal"
    LPG = "lpg"
    STEAM = "steam"

    @property
    def is_energy(self) -> bool:
        return self is not EnergyType.WATER
