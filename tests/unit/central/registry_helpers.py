"""A school with everything the registry can hold, for the metrics, ledger and report tests.

Hand-computed denominators for 2025 (365 days; changes at local midnight):
- floor area: A 7,000 m² until 30 June (181 days), 14,300 m² from 1 July (184 days)
  → mean (181 × 7,000 + 184 × 14,300) / 365 = 10,680 m²; B 5,000 m² → 15,680 m².
- 用能人数: 120 staff + 1,500 students until 31 August (243 days), 120 + 1,865 from
  1 September (122 days) → (243 × 1,620 + 122 × 1,985) / 365 = 1,742.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.central.central_helpers import INSTITUTION

SCHOOL: dict[str, Any] = copy.deepcopy(INSTITUTION)
SCHOOL["institution"].update({"region_code": "330302", "climate_zone": "hot_summer_cold_winter"})
SCHOOL["buildings"] = [
    {"id": "A", "name": "教学楼 Teaching", "floor_area_m2": 7000, "quota_class": "A-government",
     "floor_area_changes": [{"since": "2025-07-01", "floor_area_m2": 14300}]},
    {"id": "B", "name": "行政楼 Admin", "floor_area_m2": 5000},
]
SCHOOL["headcount"] = {"staff": 120, "students_daily_avg": 1500, "changes": [
    {"since": "2025-09-01", "staff": 120, "students_daily_avg": 1865}]}
SCHOOL["meters"] = [
    *INSTITUTION["meters"],
    {"edge": "edge-2", "device": "dc-total", "building": "B", "energy": "electricity",
     "role": "sub", "item": "01D10"},
    {"edge": "edge-2", "device": "dc-it", "building": "B", "energy": "electricity",
     "role": "sub", "item": "01D10", "it_load": True},
]
SCHOOL["vehicles"] = [
    {"id": "car-1", "plate": "浙C·12345", "fuel": "gasoline"},
    {"id": "van-1", "plate": "浙C·67890", "fuel": "diesel"},
]
SCHOOL["ac_units"] = [
    {"edge": "edge-1", "device": "ac-101", "building": "A"},
    {"edge": "edge-1", "device": "ac-dc", "building": "B", "exempt": True},
]
SCHOOL["targets"] = {2025: {"kgce_per_m2": 0.25, "kgce_per_person": 2.0,
                            "water_m3_per_person": 5.0}}

YEAR_AREA = 15_680.0
YEAR_USERS = 1_742.0
