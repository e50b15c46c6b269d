"""The 公共机构能源资源消费统计 return (quarterly or annual) as an XLSX workbook.

Counties collect each public institution's energy and water consumption in fixed tables
(国管局 公共机构能源资源消费统计制度; issue 16). Three sheets, after the structure of the
published base tables (基层表) — 1表 单位基本信息 with items 101 单位性质 (the classification
code), 102 建筑面积, 103 用能人数, and 2表 能源资源消费状况 with, per energy or resource, its
unit, quantity and cost (费用, 元):

    基本信息     the institution, the period, items 101-103
    能源消费     one row per energy type: unit, quantity, kgce, cost, source; the total
    水资源消费   water: quantity, per person, cost

The figures are the reports' (`central.reports.gather`), so the return equals the quarterly
or annual report of the same period. 费用 comes from the bills' amounts where they cover every
day of the period, else from the metered quantities priced by the institution's tariff
(central/cost.py), with its source beside it; without either the cell stays empty for the
office to fill in. Row codes of 2表 differ between the
statistical system's revisions and the provinces' forms, so energy rows carry names and
units, not codes (docs/reports.md cites the sources used).
"""

from __future__ import annotations

import io

from central.cost import return_cost
from central.energy import EnergyType
from central.institution import InstitutionConfig, InstitutionType
from central.reports import ReportData

# 单位性质 classification codes of 1表 (01 国家机关, 02 事业单位 with 021 教育, 024 卫生 …,
# 03 社会团体); greenguard's institution types map to the nearest.
INSTITUTION_CLASS: dict[InstitutionType, tuple[str, str]] = {
    InstitutionType.AGENCY: ("01", "国家机关"),
    InstitutionType.SCHOOL: ("021", "教育事业"),
    InstitutionType.UNIVERSITY: ("021", "教育事业"),
    InstitutionType.HOSPITAL: ("024", "卫生事业"),
    InstitutionType.OTHER: ("026", "其他事业"),
}
ENERGY_NAMES: dict[EnergyType, str] = {
    EnergyType.ELECTRICITY: "电", EnergyType.WATER: "水", EnergyType.NATURAL_GAS: "天然气",
    EnergyType.HEAT: "热力", EnergyType.GASOLINE: "汽油", EnergyType.DIESEL: "柴油",
    EnergyType.RAW_COAL: "煤炭", EnergyType.LPG: "液化石油气", EnergyType.STEAM: "蒸汽",
}
UNIT_NAMES = {"kWh": "千瓦时", "m3": "立方米", "L": "升", "kg": "千克", "MJ": "兆焦",
              "GJ": "吉焦", "t": "吨"}
COST_NOTE = ("费用 (元): 账单金额覆盖全期时取账单金额, 否则为计量用量按价目计算; "
             "空白处由填报单位填写")


def _unit(unit: str) -> str:
    return f"{UNIT_NAMES.get(unit, unit)} ({unit})" if unit in UNIT_NAMES else unit


def render_statistics_return(data: ReportData, institution: InstitutionConfig) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bold = Font(bold=True)
    book = Workbook()
    info = book.active
    assert info is not None  # a new workbook always has one sheet
    info.title = "基本信息"
    period = data.period
    code, name = INSTITUTION_CLASS[institution.institution.type]
    info.append(["公共机构能源资源消费统计 — 单位基本信息"])
    info.append(["填报单位", data.institution_name])
    info.append(["组织机构代码", ""])
    info.append(["行政区划代码", institution.institution.region_code or ""])
    info.append(["统计期", data.period_label])
    info.append(["统计截至", data.as_of.isoformat()])
    info.append([])
    info.append(["指标名称", "代码", "计量单位", "数值"])
    info.append(["单位性质", "101", "", f"{code} {name}"])
    info.append(["建筑面积", "102", "平方米", period.floor_area_m2])
    info.append(["用能人数", "103", "人", period.energy_users])

    energy = book.create_sheet("能源消费")
    energy.append([f"能源消费状况 {data.period_label}"])
    energy.append(["能源品种", "计量单位", "消费量", "折标准煤 (千克)", "费用 (元)", "来源",
                   "费用来源"])
    total = 0.0
    costs: list[float] = []
    for energy_type in dict.fromkeys(line.energy for line in period.energy_by_type):
        if energy_type is EnergyType.WATER:
            continue
        lines = [x for x in period.energy_by_type if x.energy is energy_type]
        yuan, cost_source = return_cost(data.cost, energy_type)
        for i, line in enumerate(lines):  # the cost once per energy type, on its first row
            energy.append([ENERGY_NAMES.get(line.energy, line.energy.value), _unit(line.unit),
                           line.quantity, line.kgce, yuan if i == 0 else None,
                           "计量" if line.source == "metered" else "台账",
                           cost_source if i == 0 else ""])
            total += line.kgce
        if yuan is not None:
            costs.append(yuan)
    energy.append(["综合能耗合计", "千克标准煤", None, total, sum(costs) if costs else None,
                   "", ""])
    energy.append([])
    energy.append([COST_NOTE])

    water = book.create_sheet("水资源消费")
    water.append([f"水资源消费状况 {data.period_label}"])
    water.append(["指标名称", "计量单位", "数值", "费用 (元)", "费用来源"])
    water_yuan, water_source = return_cost(data.cost, EnergyType.WATER)
    water.append(["用水量", "立方米 (m3)", period.water_m3, water_yuan, water_source])
    water.append(["人均用水量", "立方米/人", period.water_m3_per_person, None, ""])
    water.append([])
    water.append([COST_NOTE])
    for ws in (info, energy, water):
        ws["A1"].font = bold
        ws.column_dimensions["A"].width = 22
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
