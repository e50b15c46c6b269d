"""Reports the energy office publishes and files, bilingual (zh-CN default, English):

- monthly public disclosure table (每月公示): the month's consumption and the year so far;
- quarterly and annual energy analysis reports (季度/年度能源分析报告), HTML here with inline
  SVG charts, PDF in `central.report_pdf`;
- the consumption statistics ledger (能源资源消费统计台账) as XLSX in `central.report_xlsx`;
- the scoring sheet: the seed-004 items the data evidences, each with its evidence.

`ReportData` gathers every figure once (from `central.metrics`), so the HTML, the PDF, the
XLSX and the API's JSON show the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Literal

from pydantic import BaseModel, ConfigDict

from central import carbon_report, codes, report_savings
from central.carbon import CarbonFigures
from central.carbon_read import period_carbon, report_carbon
from central.compliance import ComplianceReport, ScoreItem, quantity_of
from central.cost import PeriodCost, period_cost
from central.cost_report import cost_tables
from central.coverage import Coverage, QuantityLine
from central.energy import EnergyType
from central.errors import ReportError
from central.figures import BuildingSummary, HazardousBalance, PeriodMetrics, WasteMonth
from central.formulas import hazardous_balance
from central.institution import InstitutionConfig
from central.ledger import Bill, Clearance, FuelEntry, HazardousMove, Ledger
from central.metrics import (
    building_summary,
    compliance_for,
    coverage_for,
    period_energy,
    period_metrics,
)
from central.period import Period
from central.profile import CoefficientProfile
from central.report_comparison import (
    ReportComparisons,
    analysis_lines,
    comparison_note,
    comparison_tables,
    gather_comparisons,
)
from central.storeport import StoreReader

Lang = Literal["zh", "en"]
Kind = Literal["monthly", "quarterly", "annual"]

# Report vocabulary (not a code table: presentation strings).
TEXT: dict[str, tuple[str, str]] = {
    "monthly": ("能源资源消费月度公示", "Monthly energy and resource disclosure"),
    "quarterly": ("季度能源分析报告", "Quarterly energy analysis report"),
    "annual": ("年度能源分析报告", "Annual energy analysis report"),
    "ledger": ("能源资源消费统计台账", "Consumption statistics ledger"),
    "scoring": ("节约型机关创建评分自评表", "Conservation-oriented agency scoring sheet"),
    "period": ("统计期", "Period"),
    "as_of": ("数据截至", "Data as of"),
    "profile": ("折标系数", "Coefficient profile"),
    "metric": ("指标", "Metric"),
    "value": ("数值", "Value"),
    "unit": ("单位", "Unit"),
    "this_period": ("本期", "This period"),
    "ytd": ("本年累计", "Year to date"),
    "target": ("年度目标", "Annual target"),
    "projected": ("预计全年", "Projected year"),
    "energy_kgce": ("综合能耗", "Total energy"),
    "electricity": ("用电量", "Electricity"),
    "water": ("用水量", "Water"),
    "kgce_per_m2": ("单位建筑面积能耗", "Energy per floor area"),
    "kgce_per_person": ("人均综合能耗", "Energy per person"),
    "water_per_person": ("人均用水量", "Water per person"),
    "floor_area": ("建筑面积", "Floor area"),
    "energy_users": ("用能人数", "Energy users"),
    "by_type": ("分能源品种", "By energy type"),
    "items": ("分项用电", "Electricity by item"),
    "monthly_chart": ("逐月综合能耗", "Energy by month"),
    "data_centre": ("数据中心", "Data centre"),
    "pue": ("PUE", "PUE"),
    "quota": ("能耗定额对标 (GB/T 51161)", "Quota check (GB/T 51161)"),
    "ac": ("空调温度设定达标率", "AC setpoint compliance"),
    "after_hours": ("非工作时间用电占比", "After-hours electricity share"),
    "vehicles": ("公务用车单车油耗", "Official cars: fuel per car"),
    "waste": ("垃圾分类清运量", "Waste clearance volumes"),
    "hazardous": ("有害垃圾暂存", "Hazardous waste store"),
    "standby": ("非工作时间待机能耗", "Standby energy after hours"),
    "open_leaks": ("未解除漏水报警", "Open leak alarms"),
    "volume": ("容量", "Volume"),
    "clearances": ("清运次数", "Clearances"),
    "score": ("考核得分", "Score"),
    "item": ("项目", "Item"),
    "points": ("分值", "Points"),
    "status": ("状态", "Status"),
    "evidence": ("佐证", "Evidence"),
    "evidenced": ("有数据佐证", "Evidenced"),
    "not_evidenced": ("无数据佐证", "Not evidenced"),
    "met": ("达标", "Met"),
    "not_met": ("未达标", "Not met"),
    "provisional": ("（年度未结束，为预计值）", "(year not over: provisional)"),
    "estimate": ("预计", "Provisional"),
    "insufficient": ("数据不足，暂不预测", "Not enough data to project yet"),
    "coverage": ("数据覆盖", "Data coverage"),
    "scoring_item": ("考核项目", "Item"),
    "actual": ("实际值", "Actual"),
    "target_value": ("目标值", "Target"),
    "awarded": ("得分", "Awarded"),
    "quantity": ("用量", "Quantity"),
    "kgce_col": ("折标准煤", "Standard coal"),
    "share": ("占比", "Share"),
    "energy_type": ("能源品种", "Energy type"),
    "analysis": ("分析", "Analysis"),
    "other_figures": ("其他指标", "Other figures"),
    "bills_sheet": ("账单与加油记录", "Bills and fuel log"),
    "kind": ("类型", "Kind"),
    "ref": ("编号", "Reference"),
    "period_start": ("起始日", "From"),
    "period_end": ("截止日", "To"),
    "day": ("日期", "Day"),
    "note": ("备注", "Note"),
    "supplier": ("供应方", "Supplier"),
    "total": ("合计", "Total"),
    "kwh_per_m2_a": ("单位面积年用电量", "Electricity per m² and year"),
    "constraint": ("约束值", "Constraint value"),
    "guide": ("引导值", "Guide value"),
    "not_metered": ("未计量", "not metered"),
    "fuel_log": ("加油记录", "fuel log"),
    "it_load": ("IT 负载", "IT load"),
    "month": ("月份", "Month"),
    "category": ("类别", "Category"),
    "weight": ("重量", "Weight"),
    "source": ("来源", "Source"),
    "metered": ("计量", "metered"),
    "bill": ("账单", "bill"),
    "vehicle": ("车辆", "vehicle"),
    "plate": ("车牌", "Plate"),
    "litres": ("油量", "Fuel"),
    "distance": ("里程", "Distance"),
    "l_per_100km": ("百公里油耗", "Fuel per 100 km"),
    "building": ("建筑", "Building"),
    "verdict": ("结论", "Verdict"),
    "within_guide": ("优于引导值", "within guide value"),
    "within_constraint": ("优于约束值", "within constraint value"),
    "over_constraint": ("超过约束值", "over constraint value"),
}


def t(key: str, lang: Lang) -> str:
    zh, en = TEXT[key]
    return zh if lang == "zh" else en


def label(key: str, lang: Lang) -> str:
    """A heading in the document's one language: Chinese in Chinese mode, English in
    English mode (a filed report is not bilingual)."""
    return t(key, lang)


# Units as a Chinese report writes them; English mode keeps the international forms.
UNITS: dict[str, tuple[str, str]] = {
    "kgce/person": ("kgce/人", "kgce/person"),
    "m³/person": ("m³/人", "m³/person"),
    "person": ("人", "persons"),
    "m3": ("m³", "m³"),
}
ENERGY_NAMES: dict[EnergyType, tuple[str, str]] = {
    EnergyType.ELECTRICITY: ("用电量", "Electricity"),
    EnergyType.WATER: ("用水量", "Water"),
    EnergyType.NATURAL_GAS: ("天然气", "Natural gas"),
    EnergyType.HEAT: ("集中供热", "District heating"),
    EnergyType.GASOLINE: ("汽油", "Gasoline"),
    EnergyType.DIESEL: ("柴油", "Diesel"),
    EnergyType.RAW_COAL: ("原煤", "Raw coal"),
    EnergyType.LPG: ("液化石油气", "LPG"),
    EnergyType.STEAM: ("蒸汽", "Steam"),
}
SOURCES: dict[str, tuple[str, str]] = {
    "metered": ("计量", "metered"), "bill": ("账单", "bill"), "vehicle": ("加油记录", "fuel log"),
}
STATUS: dict[str, tuple[str, str]] = {
    "met": ("达标", "Met"), "not_met": ("未达标", "Not met"),
    "provisional_met": ("预计：达标", "Provisional: met"),
    "provisional_not_met": ("预计：未达标", "Provisional: not met"),
    "insufficient": ("数据不足，暂不预测", "Not enough data to project yet"),
    "evidenced": ("有数据佐证", "Evidenced"), "not_evidenced": ("无数据佐证", "Not evidenced"),
    "no_target": ("未设目标", "No target"),
}
# Display rounding (full precision stays in the JSON and the XLSX cells).
KGCE_DIGITS, RATIO_DIGITS, QUANTITY_DIGITS = 2, 4, 2


def unit(u: str, lang: Lang) -> str:
    zh, en = UNITS.get(u, (u.replace("m3", "m³"), u.replace("m3", "m³")))
    return zh if lang == "zh" else en


TYPE_NAMES: dict[EnergyType, tuple[str, str]] = {
    EnergyType.ELECTRICITY: ("电力", "Electricity"), EnergyType.WATER: ("水", "Water"),
}


def energy_name(energy: EnergyType, lang: Lang, *, as_type: bool = False) -> str:
    """用电量 for a quantity row; 电力 where energy types are listed (`as_type`)."""
    names = TYPE_NAMES if as_type and energy in TYPE_NAMES else ENERGY_NAMES
    zh, en = names.get(energy, (energy.value, energy.value))
    return zh if lang == "zh" else en


def source_text(sources: Sequence[str], lang: Lang) -> str:
    i = 0 if lang == "zh" else 1
    return " + ".join(SOURCES[s][i] for s in sources) or "—"


def status_text(status: str, lang: Lang) -> str:
    zh, en = STATUS[status]
    return zh if lang == "zh" else en


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class MonthPoint(_Data):
    """One month of a report. Without any record, bill or fuel entry (`has_data` false)
    its figures are None and every format shows "—", never 0."""

    month: str
    has_data: bool = True
    energy_kgce: float | None
    electricity_kwh: float | None
    water_m3: float | None
    quantities: list[QuantityLine] = []
    coverage: Coverage | None = None
    t_co2: float | None = None  # None ("—"): no data (central/carbon.py)

    def quantity(self, energy: EnergyType) -> float | None:
        if not self.has_data:
            return None
        found = [q.total for q in self.quantities if q.energy is energy]
        return math.fsum(found) if found else None


class ScoringLine(_Data):
    """One row of the scoring sheet: 考核项目 · 分值 · 实际值 · 目标值 · 得分 · 状态."""

    id: str
    label_zh: str
    label_en: str
    points: float
    evidenced: bool
    met: bool | None  # None: the data alone cannot decide (a document is needed as well)
    evidence: str
    evidence_zh: str = ""
    actual_zh: str = "—"
    actual_en: str = "—"
    target_zh: str = "—"
    target_en: str = "—"
    awarded: float | None = None  # None: not decided by the data (or not enough data)
    status: str = "not_evidenced"  # a key of STATUS
    sub: bool = False  # a part of the item above (item 1's three figures)


class BuildingSheet(_Data):
    id: str
    name: str
    months: list[BuildingSummary]
    total: BuildingSummary  # the whole period at once: the API's /metrics?building= figures


class ReportData(_Data):
    kind: Kind
    year: int
    period_label: str  # short: 2025, 2025 Q1, 2025-03 (file names)
    period_text_zh: str = ""  # as filed: 2025年1月1日至2025年12月31日
    period_text_en: str = ""
    institution_id: str
    institution_name: str
    start: datetime
    end: datetime
    as_of: datetime
    period: PeriodMetrics
    ytd: ComplianceReport
    months: list[MonthPoint]
    waste: list[WasteMonth]
    hazardous: list[HazardousBalance]
    clearances: list[Clearance]
    hazardous_moves: list[HazardousMove]
    scoring: list[ScoringLine]
    buildings: list[BuildingSheet] = []
    bills: list[Bill] = []  # every bill behind the figures (the year up to as_of)
    fuel: list[FuelEntry] = []
    previous: ComplianceReport | None = None  # last year up to the same day, when it has data
    comparisons: ReportComparisons | None = None  # 同比, 环比, 14th FYP (report_comparison)
    analysis_zh: list[str] = []
    analysis_en: list[str] = []
    cost: PeriodCost | None = None  # the period's cost (central/cost.py)
    carbon_ytd: CarbonFigures | None = None  # CO₂ of the year to as_of
    savings: report_savings.SavingsSection | None = None  # 规则节约（估算）


def period_bounds(institution: InstitutionConfig, kind: Kind, year: int,
                  number: int | None) -> tuple[float, float, str, list[int]]:
    """[start, end) of a month, quarter or year, its label and its months."""
    if kind == "monthly":
        if number is None or not 1 <= number <= 12:
            raise ReportError(f"month: must be 1..12 (got {number!r})")
        months = [number]
        text = f"{year}-{number:02d}"
    elif kind == "quarterly":
        if number is None or not 1 <= number <= 4:
            raise ReportError(f"quarter: must be 1..4 (got {number!r})")
        months = [3 * (number - 1) + i for i in (1, 2, 3)]
        text = f"{year} Q{number}"
    else:
        months = list(range(1, 13))
        text = str(year)
    span = Period.months(year, months[0], months[-1], institution.institution.tz)
    return span.start, span.end, text, months


def _score_item_line(i: ScoreItem, ytd: ComplianceReport) -> ScoringLine:
    unit_zh, unit_en = unit(i.unit, "zh"), unit(i.unit, "en")
    if i.status == "insufficient" or i.projected is None:
        actual_zh, actual_en = STATUS["insufficient"]
        status = "insufficient" if i.target is not None else "no_target"
    else:
        mark = "（预计）" if i.status == "provisional" else ""
        actual_zh = f"{num(i.projected, RATIO_DIGITS)} {unit_zh}{mark}"
        actual_en = (f"{num(i.projected, RATIO_DIGITS)} {unit_en}"
                     + (" (provisional)" if i.status == "provisional" else ""))
        if i.met is None:
            status = "no_target"
        elif i.status == "provisional":
            status = "provisional_met" if i.met else "provisional_not_met"
        else:
            status = "met" if i.met else "not_met"
    awarded = None if i.met is None else i.points
    return ScoringLine(
        id=f"1-{list(ytd.items).index(i) + 1}", label_zh=i.label_zh, label_en=i.label_en,
        points=i.max_points, evidenced=i.projected is not None, met=i.met,
        evidence=actual_en, evidence_zh=actual_zh, actual_zh=actual_zh, actual_en=actual_en,
        target_zh="—" if i.target is None else f"≤ {num(i.target, RATIO_DIGITS)} {unit_zh}",
        target_en="—" if i.target is None else f"≤ {num(i.target, RATIO_DIGITS)} {unit_en}",
        awarded=awarded, status=status, sub=True)


def scoring_lines(ytd: ComplianceReport, period: PeriodMetrics,
                  institution: InstitutionConfig, clearances: list[Clearance],
                  waste: list[WasteMonth], hazardous: list[HazardousMove],
                  months: list[MonthPoint]) -> list[ScoringLine]:
    out: list[ScoringLine] = []
    buildings = {m.building for m in institution.main_meters()}
    items = {m.item for m in institution.meters if m.item}
    zones = {m.zone for m in institution.meters if m.zone}
    for item in codes.scoring().items:
        met: bool | None = None
        actual_zh = actual_en = target_zh = target_en = "—"
        awarded: float | None = None
        evidence_zh = ""
        subs: list[ScoringLine] = []
        if item.evidence == "targets":
            evidenced = ytd.targets is not None and ytd.score is not None
            met = ytd.score >= ytd.max_score if ytd.score is not None and evidenced else None
            parts = []
            for i in ytd.items:
                line = _score_item_line(i, ytd)
                subs.append(line)
                parts.append(f"{i.key.value} {line.actual_en}, target {line.target_en}: "
                              f"{status_text(line.status, 'en')}")
            score_en = "—" if ytd.score is None else f"{num(ytd.score, 1)} / {ytd.max_score:g}"
            evidence = f"score {score_en}; " + "; ".join(parts)
            evidence_zh = (STATUS["insufficient"][0] if ytd.score is None else
                           f"预计得分 {num(ytd.score, 1)} / {ytd.max_score:g}"
                           if ytd.provisional else f"得分 {num(ytd.score, 1)}")
            actual_zh, actual_en = evidence_zh, (STATUS["insufficient"][1] if ytd.score is None
                                                 else f"score {score_en}")
            target_zh = "三项年度指标均达标"
            target_en = "all three annual targets met"
            awarded = ytd.score
        elif item.evidence == "metering":
            evidenced = bool(institution.meters)
            evidence = (f"{len(institution.meters)} meters, {len(buildings)} buildings with a "
                        f"main meter, {len(zones)} zones, 分项 items: "
                        f"{', '.join(sorted(items)) or '—'}")
            evidence_zh = (f"{len(institution.meters)} 块表，{len(buildings)} 栋建筑有总表，"
                           f"{len(zones)} 个区域，分项：{'、'.join(sorted(items)) or '—'}")
            target_zh, target_en = "分户、分区、分项计量", "metering per building, zone and item"
        elif item.evidence == "statistics_ledger":
            with_data = [m.month for m in months if m.has_data]
            evidenced = bool(with_data)
            evidence = f"{len(with_data)} months with figures: {', '.join(with_data) or '—'}"
            evidence_zh = f"{len(with_data)} 个月有统计数据：{'、'.join(with_data) or '—'}"
            target_zh, target_en = "逐月统计、报送、公示", "monthly statistics kept and published"
        elif item.evidence == "ac_setpoint":
            ac = period.ac
            evidenced = ac.share is not None
            met = ac.share >= 1.0 if ac.share is not None else None
            evidence = (f"{ac.units} units ({ac.exempt_units} exempt); compliant "
                        + ("—" if ac.share is None else f"{ac.share * 100:.1f}%")
                        + f" of {ac.judged_s / 3600:.1f} h judged")
            evidence_zh = (f"{ac.units} 台空调（{ac.exempt_units} 台豁免），判定运行 "
                           f"{ac.judged_s / 3600:.1f} 小时，达标 "
                           + ("—" if ac.share is None else f"{ac.share * 100:.1f}%"))
            target_zh = (f"100%（夏季 ≥ {ac.summer_min_setpoint_c:g} ℃，冬季 ≤ "
                         f"{ac.winter_max_setpoint_c:g} ℃，全部运行时间）")
            target_en = (f"100 % (summer ≥ {ac.summer_min_setpoint_c:g} °C, winter ≤ "
                         f"{ac.winter_max_setpoint_c:g} °C, all running time)")
            awarded = None if met is None else (item.points if met else 0.0)
        elif item.evidence == "data_centre":
            dc = period.data_centre
            evidenced = dc.metered
            met = dc.metered or None
            evidence = (f"01D10 metered: {dc.kwh:,.1f} kWh"
                        + (f", PUE {dc.pue:.2f}" if dc.pue else "") if dc.metered
                        else "no meter with item 01D10")
            evidence_zh = (f"01D10 已单独计量：{dc.kwh:,.1f} kWh"
                           + (f"，PUE {dc.pue:.2f}" if dc.pue else "") if dc.metered
                           else "无 01D10 数据中心计量")
            target_zh, target_en = "数据中心单独计量", "data centre metered separately"
            awarded = item.points if met else None
        elif item.evidence == "vehicle_fuel":
            accounted = [v for v in period.vehicles if v.entries]
            evidenced = bool(accounted)
            met = (len(accounted) == len(period.vehicles)) if period.vehicles else None
            evidence = "; ".join(
                f"{v.plate} {v.litres:,.1f} L / {v.km:,.0f} km"
                + (f" = {v.l_per_100km:.2f} L/100km" if v.l_per_100km else "")
                for v in period.vehicles) or "no vehicle configured"
            evidence_zh = "；".join(
                f"{v.plate} {v.litres:,.1f} L / {v.km:,.0f} km"
                + (f"，百公里 {v.l_per_100km:.2f} L" if v.l_per_100km else "")
                for v in period.vehicles) or "未配置公务用车"
            target_zh = f"每车核算（{len(accounted)} / {len(period.vehicles)} 辆有加油记录）"
            target_en = (f"every car accounted ({len(accounted)} / {len(period.vehicles)} "
                         "with fuel entries)")
            awarded = None if met is None else (item.points if met else 0.0)
        elif item.evidence == "water_management":
            water = [m for m in institution.main_meters() if m.energy is EnergyType.WATER]
            leak = next((k for k in period.alarms.summary if k.kind == "leak"), None)
            evidenced = bool(water)
            evidence = (f"{len(water)} water meters; leak alarms raised "
                        f"{leak.raised if leak else 0}, cleared {leak.cleared if leak else 0}, "
                        f"open {len(period.alarms.open_leaks)}")
            evidence_zh = (f"{len(water)} 块水表；漏水报警 {leak.raised if leak else 0} 次，"
                           f"已解除 {leak.cleared if leak else 0} 次，"
                           f"未解除 {len(period.alarms.open_leaks)} 次")
            target_zh, target_en = "有效节水管理措施", "effective water-saving management"
        elif item.evidence == "sorting_bins":
            table = codes.waste().categories
            per = {c: sum(1 for b in institution.bins if b.category == c) for c in table}
            covered = [c for c, n in per.items() if n]
            evidenced = bool(covered)
            met = True if len(covered) == len(table) else None
            evidence = (", ".join(f"{table[c].zh} {per[c]}" for c in table)
                        + f" ({len(covered)} of {len(table)} categories with a sensor bin)")
            evidence_zh = ("，".join(f"{table[c].zh} {per[c]}" for c in table)
                           + f"（{len(covered)} / {len(table)} 类有传感器垃圾桶）")
            target_zh = f"四类垃圾容器齐全（{len(table)} 类）"
            target_en = f"bins for every category ({len(table)})"
            awarded = item.points if met else None
        elif item.evidence == "hazardous_store":
            evidenced = bool(hazardous)
            evidence = f"{len(hazardous)} store-log entries"
            evidence_zh = f"暂存台账 {len(hazardous)} 条"
            target_zh, target_en = "有害垃圾单独存放", "hazardous waste stored separately"
        elif item.evidence == "clearance_ledger":
            evidenced = bool(clearances)
            sensed = sum(1 for c in clearances if c.source == "sensor")
            evidence = f"{len(clearances)} clearance records" + (
                f" ({sensed} from bin-fill sensors)" if sensed else "")
            evidence_zh = f"清运记录 {len(clearances)} 条" + (
                f"（其中 {sensed} 条来自满溢传感器）" if sensed else "")
            target_zh, target_en = "建立清运台账", "clearance ledger kept"
        else:  # clearance_published
            months_with = sorted({w.month for w in waste})
            evidenced = bool(months_with)
            evidence = f"monthly volumes for {', '.join(months_with) or '—'}"
            evidence_zh = f"已统计清运量的月份：{'、'.join(months_with) or '—'}"
            target_zh, target_en = "定期公示清运量", "volumes published regularly"
        if item.evidence != "targets":
            actual_zh, actual_en = evidence_zh, evidence
        if item.evidence == "targets":
            status = ("insufficient" if ytd.score is None and ytd.targets is not None else
                      "no_target" if ytd.targets is None else
                      ("provisional_met" if met else "provisional_not_met") if ytd.provisional
                      else "met" if met else "not_met")
        elif met is not None:
            status = "met" if met else "not_met"
        else:
            status = "evidenced" if evidenced else "not_evidenced"
        out.append(ScoringLine(id=item.id, label_zh=item.zh, label_en=item.en,
                               points=item.points, evidenced=evidenced, met=met,
                               evidence=evidence, evidence_zh=evidence_zh, actual_zh=actual_zh,
                               actual_en=actual_en, target_zh=target_zh, target_en=target_en,
                               awarded=awarded, status=status))
        out.extend(subs)
    return out


def _month_point(store: StoreReader, ledger: Ledger, institution: InstitutionConfig,
                 profile: CoefficientProfile, mp: Period) -> MonthPoint:
    """One month's row: its energy and coverage as `period_metrics` has them, without the
    month's AC, standby or waste sample reads (a row shows none of them)."""
    energy = period_energy(store, ledger, institution, profile, start=mp.start, end=mp.end)
    coverage = coverage_for(store, institution, start=mp.start, end=mp.end, sums=energy.sums,
                            bills=energy.bills, cuts=energy.cuts, lines=energy.energy_by_type)
    has = coverage.has_data
    return MonthPoint(month=f"{mp.first_day:%Y-%m}", has_data=has,
                      energy_kgce=energy.energy_kgce if has else None,
                      electricity_kwh=quantity_of(energy.quantities, EnergyType.ELECTRICITY)
                      if has else None,
                      water_m3=energy.water_m3 if has else None,
                      quantities=energy.quantities, coverage=coverage,
                      t_co2=period_carbon(store, ledger, institution, profile, start=mp.start,
                                          end=mp.end, energy=energy, coverage=coverage).t_co2)


def analysis(data: ReportData, lang: Lang) -> list[str]:
    """A short written analysis of the year (annual report): the total and its make-up, the
    ratios, the year-on-year change where both years cover the span, and the score."""
    y = data.ytd
    zh = lang == "zh"
    period = data.period_text_zh if zh else data.period_text_en
    out: list[str] = []
    if not (y.coverage.has_data if y.coverage is not None else bool(y.energy_by_type)):
        return ["本期无计量数据、账单或加油记录。" if zh else
                "No metering, bill or fuel entry in the period."]
    parts = []
    for e, kgce in _kgce_by_energy(y):
        share = kgce / y.energy_kgce if y.energy_kgce > 0 else 0.0
        name = energy_name(e, lang, as_type=True)
        parts.append(f"{name} {num(kgce, KGCE_DIGITS)} kgce（{share * 100:.1f}%）" if zh
                     else f"{name} {num(kgce, KGCE_DIGITS)} kgce ({share * 100:.1f} %)")
    if zh:
        out.append(f"{period}，综合能耗 {num(y.energy_kgce, KGCE_DIGITS)} kgce，其中"
                   + "、".join(parts) + f"；用水量 {num(y.water_m3, QUANTITY_DIGITS)} m³。")
        out.append(f"单位建筑面积能耗 {num(y.kgce_per_m2, RATIO_DIGITS)} kgce/m²，人均综合能耗 "
                   f"{num(y.kgce_per_person, RATIO_DIGITS)} kgce/人，人均用水量 "
                   f"{num(y.water_m3_per_person, RATIO_DIGITS)} m³/人。")
    else:
        out.append(f"{period}: total energy {num(y.energy_kgce, KGCE_DIGITS)} kgce, of which "
                   + ", ".join(parts) + f"; water {num(y.water_m3, QUANTITY_DIGITS)} m³.")
        out.append(f"Energy per floor area {num(y.kgce_per_m2, RATIO_DIGITS)} kgce/m², per "
                   f"person {num(y.kgce_per_person, RATIO_DIGITS)} kgce/person, water per "
                   f"person {num(y.water_m3_per_person, RATIO_DIGITS)} m³/person.")
    # 同比 only where both sides are covered (central/report_comparison.py)
    out.extend(analysis_lines(data.comparisons, lang) if data.comparisons is not None
               else [])
    if y.score is None:
        out.append(f"年度考核：{y.projection.note_zh}。" if zh else
                   f"Annual targets: {y.projection.note_en}.")
    else:
        verdicts = "，".join(
            f"{i.label_zh}{'达标' if i.met else '未达标' if i.met is False else '未设目标'}"
            for i in y.items) if zh else ", ".join(
            f"{i.label_en} {'met' if i.met else 'not met' if i.met is False else 'no target'}"
            for i in y.items)
        if zh:
            out.append(f"年度考核{'预计' if y.provisional else ''}得分 {num(y.score, 1)} / "
                       f"{y.max_score:g}：{verdicts}。")
        else:
            out.append(f"Annual targets{' (provisional)' if y.provisional else ''}: score "
                       f"{num(y.score, 1)} / {y.max_score:g}: {verdicts}.")
    if y.coverage is not None:
        out.append((y.coverage.text_zh + "。") if zh else (y.coverage.text_en + "."))
    return out


def _kgce_by_energy(y: ComplianceReport) -> list[tuple[EnergyType, float]]:
    acc: dict[EnergyType, float] = {}
    for line in y.energy_by_type:
        acc[line.energy] = acc.get(line.energy, 0.0) + line.kgce
    return sorted(acc.items(), key=lambda kv: -kv[1])


def gather(store: StoreReader, ledger: Ledger, institution: InstitutionConfig,
           profile: CoefficientProfile, *, kind: Kind, year: int, number: int | None,
           now: float) -> ReportData:
    """Every figure of one report. Periods reaching past `now` stop at `now`."""
    tz = institution.institution.tz
    start, end, text, _months = period_bounds(institution, kind, year, number)
    if start >= now:
        raise ReportError(f"period {text} has not started yet")
    until = min(end, now)
    whole = Period(start, end, tz)
    period = period_metrics(store, ledger, institution, profile, start=start, end=until)
    ytd = compliance_for(store, institution, profile, now=until, year=year, ledger=ledger)
    month_periods = whole.until(until).month_periods()
    points = [_month_point(store, ledger, institution, profile, mp) for mp in month_periods]
    clearances = period.waste.clearances  # manual entries merged with sensor fill drops
    year_p = Period.year(year, tz)
    moves = ledger.hazardous(year_p.start, until)
    waste = period.waste.monthly
    sheets = []
    for b in institution.buildings:
        per_month = [building_summary(store, ledger, institution, profile, start=mp.start,
                                      end=mp.end, building=b.id) for mp in month_periods]
        sheets.append(BuildingSheet(
            id=b.id, name=b.name, months=per_month,
            total=building_summary(store, ledger, institution, profile, start=start,
                                   end=until, building=b.id)))
    last_day = year_p.until(until).last_day
    bills = ledger.bills(year_p.first_day, last_day)
    fuel = ledger.fuel(year_p.first_day, last_day)
    previous = None
    if kind == "annual":
        prev_until = Period.year(year - 1, tz).start + (until - year_p.start)
        previous = compliance_for(store, institution, profile, now=prev_until,
                                  year=year - 1, ledger=ledger)
    data = ReportData(
        kind=kind, year=year, period_label=text,
        period_text_zh=whole.label("zh"), period_text_en=whole.label("en"),
        institution_id=institution.institution.id,
        institution_name=institution.institution.name,
        start=datetime.fromtimestamp(start, tz), end=datetime.fromtimestamp(end, tz),
        as_of=datetime.fromtimestamp(until, tz), period=period, ytd=ytd, months=points,
        waste=waste, hazardous=hazardous_balance(moves), clearances=clearances,
        hazardous_moves=moves,
        scoring=scoring_lines(ytd, period, institution, clearances, waste, moves, points),
        buildings=sheets, bills=bills, fuel=fuel, previous=previous,
        cost=period_cost(store, ledger, institution, profile, start=start, end=until),
        carbon_ytd=report_carbon(store, ledger, institution, profile, ytd),
        savings=report_savings.savings_section(store, institution, profile,
                                               Period(start, until, tz)),
        comparisons=gather_comparisons(store, ledger, institution, profile, kind=kind,
                                       year=year, number=number, until=until))
    if kind == "annual":
        data = data.model_copy(update={"analysis_zh": analysis(data, "zh"),
                                       "analysis_en": analysis(data, "en")})
    return data


# -- formatting --------------------------------------------------------------------


def num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:,.{digits}f}"


def pct(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x * 100:,.{digits}f} %"


def title(data: ReportData, lang: Lang, kind: str | None = None) -> str:
    return f"{data.institution_name} {t(kind or data.kind, lang)} {data.period_label}"


def period_line(data: ReportData, lang: Lang) -> str:
    """统计期：2025年1月1日至2025年12月31日；数据截至 …; 折标系数 …"""
    text = data.period_text_zh if lang == "zh" else data.period_text_en
    sep = "：" if lang == "zh" else ": "
    out = f"{t('period', lang)}{sep}{text or data.period_label}"
    if data.as_of < data.end:
        out += ("；" if lang == "zh" else "; ") + (
            f"{t('as_of', lang)}{sep}{data.as_of:%Y-%m-%d %H:%M}")
    out += ("；" if lang == "zh" else "; ") + (
        f"{t('profile', lang)}{sep}{data.ytd.profile_id} {data.ytd.profile_version}")
    return out


def coverage_line(c: Coverage | None, lang: Lang) -> str:
    if c is None:
        return "—"
    return c.text_zh if lang == "zh" else c.text_en


def _quantity(lines: Sequence[QuantityLine], energy: EnergyType) -> QuantityLine | None:
    return next((q for q in lines if q.energy is energy), None)


def summary_rows(data: ReportData, lang: Lang) -> list[tuple[str, str, str, str, str]]:
    """(metric, this period, year to date, unit, source): the disclosure table's body.
    Quantities of every energy type (billed ones too) appear as quantities with their
    source; a period without data shows "—"."""
    p, y = data.period, data.ytd
    has_p = p.coverage.has_data if p.coverage is not None else True
    has_y = y.coverage.has_data if y.coverage is not None else True

    def v(x: float | None, has: bool, digits: int) -> str:
        return num(x, digits) if has else "—"

    kgce_sources = [s for s in ("metered", "bill", "vehicle")
                    if any(line.source == s for line in y.energy_by_type)]
    rows = [(label("energy_kgce", lang), v(p.energy_kgce, has_p, KGCE_DIGITS),
             v(y.energy_kgce, has_y, KGCE_DIGITS), "kgce", source_text(kgce_sources, lang))]
    energies = [EnergyType.ELECTRICITY, EnergyType.WATER]
    energies += [q.energy for q in [*y.quantities, *p.quantities] if q.energy not in energies]
    for energy in dict.fromkeys(energies):
        qp, qy = _quantity(p.quantities, energy), _quantity(y.quantities, energy)
        ref = qy or qp
        u = ref.unit if ref is not None else ("kWh" if energy.is_energy else "m³")
        rows.append((energy_name(energy, lang),
                     v(qp.total if qp and has_p else None, has_p, QUANTITY_DIGITS),
                     v(qy.total if qy and has_y else None, has_y, QUANTITY_DIGITS),
                     unit(u, lang), source_text(ref.sources if ref else [], lang)))
    rows += [
        (label("kgce_per_m2", lang), v(p.kgce_per_m2, has_p, RATIO_DIGITS),
         v(y.kgce_per_m2, has_y, RATIO_DIGITS), "kgce/m²", ""),
        (label("kgce_per_person", lang), v(p.kgce_per_person, has_p, RATIO_DIGITS),
         v(y.kgce_per_person, has_y, RATIO_DIGITS), unit("kgce/person", lang), ""),
        (label("water_per_person", lang), v(p.water_m3_per_person, has_p, RATIO_DIGITS),
         v(y.water_m3_per_person, has_y, RATIO_DIGITS), unit("m³/person", lang), ""),
        (label("floor_area", lang), num(p.floor_area_m2, 0), num(y.floor_area_m2, 0), "m²",
         ""),
        (label("energy_users", lang), num(p.energy_users, 0), num(y.energy_users, 0),
         unit("person", lang), ""),
    ]
    rows += carbon_report.summary_rows(p.carbon, data.carbon_ytd, lang)  # CO₂
    return rows


def score_heading(data: ReportData, lang: Lang) -> str:
    y = data.ytd
    if y.score is None:
        note = y.projection.note_zh if lang == "zh" else y.projection.note_en
        return f"{t('score', lang)}{'：' if lang == 'zh' else ': '}{note}"
    mark = (("（预计）" if lang == "zh" else " (provisional)") if y.provisional else "")
    return f"{t('score', lang)} {num(y.score, 1)} / {num(y.max_score, 0)}{mark}"


SCORING_HEAD = ("scoring_item", "points", "actual", "target_value", "awarded", "status")


def scoring_rows(lines: Sequence[ScoringLine], lang: Lang) -> list[list[str]]:
    zh = lang == "zh"
    return [[("　" if s.sub else "") + f"{s.id} {s.label_zh if zh else s.label_en}",
             num(s.points, 1), s.actual_zh if zh else s.actual_en,
             s.target_zh if zh else s.target_en, num(s.awarded, 1),
             status_text(s.status, lang)] for s in lines]


def month_rows(data: ReportData, lang: Lang) -> tuple[list[str], list[list[str]]]:
    """The monthly table: electricity, water, every other energy type, kgce, coverage."""
    energies = [EnergyType.ELECTRICITY, EnergyType.WATER]
    for m in data.months:
        energies += [q.energy for q in m.quantities if q.energy not in energies]
    energies = list(dict.fromkeys(energies))
    units = {q.energy: q.unit for m in data.months for q in m.quantities}
    head = [label("month", lang)] + [
        f"{energy_name(e, lang)} ({unit(units.get(e, 'kWh' if e.is_energy else 'm³'), lang)})"
        for e in energies] + [f"{label('energy_kgce', lang)} (kgce)", "CO₂ (t)",
                              label("coverage", lang)]
    rows = []
    for m in data.months:
        cov = m.coverage
        days = "—" if cov is None else (
            f"{cov.days_with_data} / {cov.days}" + (
                f" · {t('bill', lang)} {cov.billed_days}" if cov.billed_days else ""))
        rows.append([m.month] + [num(m.quantity(e), QUANTITY_DIGITS) for e in energies]
                    + [num(m.energy_kgce, KGCE_DIGITS), num(m.t_co2, 3), days])
    return head, rows


def by_type_rows(data: ReportData, lang: Lang) -> tuple[list[str], list[list[str]]]:
    y = data.ytd
    head = [label("energy_type", lang), label("source", lang), label("quantity", lang),
            label("unit", lang), f"{label('kgce_col', lang)} (kgce)", label("share", lang)]
    rows = [[energy_name(line.energy, lang, as_type=True), t(line.source, lang)
             if line.source != "vehicle" else t("fuel_log", lang),
             num(line.quantity, QUANTITY_DIGITS), unit(line.unit, lang),
             num(line.kgce, KGCE_DIGITS),
             pct(line.kgce / y.energy_kgce if y.energy_kgce > 0 else None)]
            for line in y.energy_by_type if line.quantity or line.kgce]
    rows.append([label("total", lang), "", "", "", num(y.energy_kgce, KGCE_DIGITS),
                 pct(1.0) if y.energy_kgce > 0 else "—"])
    return head, rows


def other_rows(data: ReportData, lang: Lang) -> list[list[str]]:
    p = data.period
    ah = p.after_hours
    return [
        [label("after_hours", lang), pct(ah.share) if ah.kwh > 0 else "—"],
        [label("ac", lang), pct(p.ac.share)],
        [label("data_centre", lang),
         f"{num(p.data_centre.kwh, 1)} kWh" if p.data_centre.metered else t("not_metered", lang)],
        ["PUE", num(p.data_centre.pue, 2)],
        [label("standby", lang), f"{num(p.standby.after_hours_standby_kwh, 2)} kWh"],
        [label("open_leaks", lang), str(len(p.alarms.open_leaks))],
    ]


# -- one document model, drawn as HTML and as PDF -------------------------------------


class Block(_Data):
    kind: Literal["h2", "p", "table", "chart"]
    text: str = ""
    head: list[str] = []
    rows: list[list[str]] = []
    values: list[tuple[str, float | None]] = []


def blocks(data: ReportData, lang: Lang, kind: str | None = None) -> list[Block]:
    """The report's content in order: what the HTML and the PDF both draw."""
    shown = kind or data.kind
    out = [Block(kind="p", text=period_line(data, lang)),
           Block(kind="p", text=f"{t('coverage', lang)}（{t('ytd', lang)}）："
                 f"{coverage_line(data.ytd.coverage, lang)}" if lang == "zh" else
                 f"{t('coverage', lang)} ({t('ytd', lang).lower()}): "
                 f"{coverage_line(data.ytd.coverage, lang)}")]
    if shown == "scoring":
        out.append(Block(kind="h2", text=score_heading(data, lang)))
        out.append(Block(kind="table", head=[label(k, lang) for k in SCORING_HEAD],
                         rows=scoring_rows(data.scoring, lang)))
        return out
    out.append(Block(kind="table", head=[label("metric", lang), label("this_period", lang),
                                         label("ytd", lang), label("unit", lang),
                                         label("source", lang)],
                     rows=[list(r) for r in summary_rows(data, lang)]))
    for heading, head, rows in cost_tables(data.cost, lang, detail=shown != "monthly"):
        out += [Block(kind="h2", text=heading), Block(kind="table", head=head, rows=rows)]
    head, rows = carbon_report.factor_table(data.carbon_ytd, lang)  # the CO₂ factors used
    out += [Block(kind="h2", text=carbon_report.t("factors", lang)),
            Block(kind="table", head=head, rows=rows)] if rows else []
    out.append(Block(kind="h2", text=score_heading(data, lang)))
    item1 = [s for s in data.scoring if s.sub]
    out.append(Block(kind="table", head=[label(k, lang) for k in SCORING_HEAD],
                     rows=scoring_rows(item1, lang)))
    if shown != "monthly":
        head, rows = month_rows(data, lang)
        out.append(Block(kind="h2", text=label("monthly_chart", lang)))
        out.append(Block(kind="table", head=head, rows=rows))
        out.append(Block(kind="chart", text="kgce",
                         values=[(m.month, m.energy_kgce) for m in data.months]))
        head, rows = by_type_rows(data, lang)
        out.append(Block(kind="h2", text=f"{label('by_type', lang)}（{t('ytd', lang)}）"
                         if lang == "zh" else f"{label('by_type', lang)} (year to date)"))
        out.append(Block(kind="table", head=head, rows=rows))
        p = data.period
        if p.items:
            out.append(Block(kind="h2", text=label("items", lang)))
            out.append(Block(kind="table", head=[label("item", lang), "kWh", label("share", lang)],
                             rows=[[f"{i.code} {i.label_zh if lang == 'zh' else i.label_en}",
                                    num(i.kwh or None, 1), pct(i.share or None)]
                                   for i in p.items]))  # a sub-meter without data: "—"
        out.append(Block(kind="h2", text=label("other_figures", lang)))
        out.append(Block(kind="table", head=[label("metric", lang), label("this_period", lang)],
                         rows=other_rows(data, lang)))
        if p.quotas:
            out.append(Block(kind="h2", text=label("quota", lang)))
            out.append(Block(kind="table", head=[
                label("building", lang), f"{label('kwh_per_m2_a', lang)} (kWh/(m²·a))",
                label("constraint", lang), label("guide", lang), label("verdict", lang)],
                rows=[[q.building, num(q.kwh_per_m2_a, 1), num(q.constraint, 0),
                       num(q.guide, 0), label(q.verdict, lang)] for q in p.quotas]))
        if p.vehicles:
            out.append(Block(kind="h2", text=label("vehicles", lang)))
            out.append(Block(kind="table", head=[
                label("plate", lang), f"{label('litres', lang)} (L)",
                f"{label('distance', lang)} (km)", f"{label('l_per_100km', lang)} (L/100km)"],
                rows=[[v.plate, num(v.litres, 1), num(v.km, 0), num(v.l_per_100km, 2)]
                      for v in p.vehicles]))
    if data.waste:
        out.append(Block(kind="h2", text=label("waste", lang)))
        out.append(Block(kind="table", head=[
            label("month", lang), label("category", lang), f"{label('weight', lang)} (kg)",
            f"{label('volume', lang)} (L)", label("clearances", lang)],
            rows=[[w.month, w.label_zh if lang == "zh" else w.label_en, num(w.weight_kg, 1),
                   num(w.volume_l, 0), str(w.clearances)] for w in data.waste]))
    out.extend(Block(**b) for b in report_savings.blocks(data.savings, lang))
    for heading, head, rows in comparison_tables(data.comparisons, lang,
                                                 monthly_rows=shown != "monthly"):
        out += [Block(kind="h2", text=heading), Block(kind="table", head=head, rows=rows)]
    if data.comparisons is not None:
        out.append(Block(kind="p", text=comparison_note(lang)))
    text = data.analysis_zh if lang == "zh" else data.analysis_en
    if text:
        out.append(Block(kind="h2", text=label("analysis", lang)))
        out.extend(Block(kind="p", text=x) for x in text)
    return out


def svg_bars(values: Sequence[tuple[str, float | None]], unit_text: str, *, width: int = 640,
             height: int = 220) -> str:
    """A dependency-free bar chart (inline SVG, nothing fetched from the internet); a month
    without data has no bar and shows "—"."""
    top = max((v for _, v in values if v is not None), default=0.0) or 1.0
    n = max(len(values), 1)
    bar_w = (width - 60) / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(unit_text)}">',
             f'<text x="4" y="14" font-size="11">{escape(unit_text)}</text>']
    for i, (name, v) in enumerate(values):
        h = (height - 50) * (v or 0.0) / top
        x = 50 + i * bar_w
        y = height - 30 - h
        if v is not None:
            parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" '
                         f'height="{h:.1f}" fill="#2e7d32"><title>{escape(name)}: '
                         f'{v:,.2f}</title></rect>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 14}" font-size="10" '
                     f'text-anchor="middle">{escape(name[-2:])}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="9" '
                     f'text-anchor="middle">{"—" if v is None else f"{v:,.0f}"}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:'WenQuanYi Micro Hei','Noto Sans CJK SC',sans-serif;margin:2em;"
        "color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid "
        "#999;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}.meta{color:#555}")


def render_html(data: ReportData, lang: Lang = "zh", *, kind: str | None = None) -> str:
    """The monthly disclosure, the analysis report or the scoring sheet as one HTML page."""
    shown = kind or data.kind
    out = [f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head>'
           f'<meta charset="utf-8"><title>{escape(title(data, lang, shown))}</title>'
           f"<style>{_CSS}</style></head><body>",
           f"<h1>{escape(title(data, lang, shown))}</h1>"]
    for i, b in enumerate(blocks(data, lang, kind)):
        if b.kind == "h2":
            out.append(f"<h2>{escape(b.text)}</h2>")
        elif b.kind == "p":
            cls = ' class="meta"' if i < 2 else ""
            out.append(f"<p{cls}>{escape(b.text)}</p>")
        elif b.kind == "table":
            out.append(_table(b.head, b.rows))
        else:
            out.append(svg_bars(b.values, b.text))
    out.append("</body></html>")
    return "".join(out)
