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

from central import codes
from central.compliance import ComplianceReport, year_window
from central.config import EnergyType, InstitutionConfig
from central.errors import ReportError
from central.ledger import Clearance, HazardousMove, Ledger
from central.metrics import (
    BuildingSummary,
    HazardousBalance,
    PeriodMetrics,
    WasteMonth,
    building_summary,
    compliance_for,
    hazardous_balance,
    period_energy,
    period_metrics,
)
from central.profile import CoefficientProfile
from central.store import Store

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
    """`中文 English` for tables read by both audiences; one language for titles."""
    zh, en = TEXT[key]
    return f"{zh} {en}" if lang == "zh" else en


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class MonthPoint(_Data):
    month: str
    energy_kgce: float
    electricity_kwh: float
    water_m3: float


class ScoringLine(_Data):
    id: str
    label_zh: str
    label_en: str
    points: float
    evidenced: bool
    met: bool | None  # None: the data alone cannot decide (a document is needed as well)
    evidence: str


class BuildingSheet(_Data):
    id: str
    name: str
    months: list[BuildingSummary]
    total: BuildingSummary  # the whole period at once: the API's /metrics?building= figures


class ReportData(_Data):
    kind: Kind
    year: int
    period_label: str
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


def _month_start(tz_year: int, month: int, institution: InstitutionConfig) -> float:
    tz = institution.institution.tz
    if month == 13:
        return datetime(tz_year + 1, 1, 1, tzinfo=tz).timestamp()
    return datetime(tz_year, month, 1, tzinfo=tz).timestamp()


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
    return (_month_start(year, months[0], institution),
            _month_start(year, months[-1] + 1, institution), text, months)


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
        if item.evidence == "targets":
            evidenced = ytd.targets is not None and bool(ytd.energy_by_type)
            met = ytd.score >= ytd.max_score if evidenced else None
            evidence = (f"score {ytd.score:g} / {ytd.max_score:g}; "
                        + "; ".join(f"{i.key.value} {i.projected or 0:.4g} ≤ {i.target}"
                                    f" {'✓' if i.met else '✗'}" for i in ytd.items))
        elif item.evidence == "metering":
            evidenced = bool(institution.meters)
            evidence = (f"{len(institution.meters)} meters, {len(buildings)} buildings with a "
                        f"main meter, {len(zones)} zones, 分项 items: "
                        f"{', '.join(sorted(items)) or '—'}")
        elif item.evidence == "statistics_ledger":
            with_data = [m.month for m in months if m.energy_kgce > 0 or m.water_m3 > 0]
            evidenced = bool(with_data)
            evidence = f"{len(with_data)} months with figures: {', '.join(with_data) or '—'}"
        elif item.evidence == "ac_setpoint":
            ac = period.ac
            evidenced = ac.share is not None
            met = ac.share >= 1.0 if ac.share is not None else None
            evidence = (f"{ac.units} units ({ac.exempt_units} exempt); compliant "
                        f"{(ac.share or 0) * 100:.1f}% of {ac.judged_s / 3600:.1f} h judged")
        elif item.evidence == "data_centre":
            dc = period.data_centre
            evidenced = dc.metered
            met = dc.metered or None
            evidence = (f"01D10 metered: {dc.kwh:,.1f} kWh"
                        + (f", PUE {dc.pue:.2f}" if dc.pue else "") if dc.metered
                        else "no meter with item 01D10")
        elif item.evidence == "vehicle_fuel":
            accounted = [v for v in period.vehicles if v.entries]
            evidenced = bool(accounted)
            met = (len(accounted) == len(period.vehicles)) if period.vehicles else None
            evidence = "; ".join(
                f"{v.plate} {v.litres:,.1f} L / {v.km:,.0f} km"
                + (f" = {v.l_per_100km:.2f} L/100km" if v.l_per_100km else "")
                for v in period.vehicles) or "no vehicle configured"
        elif item.evidence == "water_management":
            water = [m for m in institution.main_meters() if m.energy is EnergyType.WATER]
            leak = next((k for k in period.alarms.summary if k.kind == "leak"), None)
            evidenced = bool(water)
            evidence = (f"{len(water)} water meters; leak alarms raised "
                        f"{leak.raised if leak else 0}, cleared {leak.cleared if leak else 0}, "
                        f"open {len(period.alarms.open_leaks)}")
        elif item.evidence == "sorting_bins":
            table = codes.waste().categories
            per = {c: sum(1 for b in institution.bins if b.category == c) for c in table}
            covered = [c for c, n in per.items() if n]
            evidenced = bool(covered)
            met = True if len(covered) == len(table) else None
            evidence = (", ".join(f"{table[c].zh} {per[c]}" for c in table)
                        + f" ({len(covered)} of {len(table)} categories with a sensor bin)")
        elif item.evidence == "hazardous_store":
            evidenced = bool(hazardous)
            evidence = f"{len(hazardous)} store-log entries"
        elif item.evidence == "clearance_ledger":
            evidenced = bool(clearances)
            sensed = sum(1 for c in clearances if c.source == "sensor")
            evidence = f"{len(clearances)} clearance records" + (
                f" ({sensed} from bin-fill sensors)" if sensed else "")
        else:  # clearance_published
            months_with = sorted({w.month for w in waste})
            evidenced = bool(months_with)
            evidence = f"monthly volumes for {', '.join(months_with) or '—'}"
        out.append(ScoringLine(id=item.id, label_zh=item.zh, label_en=item.en,
                               points=item.points, evidenced=evidenced, met=met,
                               evidence=evidence))
    return out


def gather(store: Store, ledger: Ledger, institution: InstitutionConfig,
           profile: CoefficientProfile, *, kind: Kind, year: int, number: int | None,
           now: float) -> ReportData:
    """Every figure of one report. Periods reaching past `now` stop at `now`."""
    tz = institution.institution.tz
    start, end, text, months = period_bounds(institution, kind, year, number)
    if start >= now:
        raise ReportError(f"period {text} has not started yet")
    until = min(end, now)
    period = period_metrics(store, ledger, institution, profile, start=start, end=until)
    ytd = compliance_for(store, institution, profile, now=until, year=year, ledger=ledger)
    points: list[MonthPoint] = []
    for m in months:
        s, e = _month_start(year, m, institution), min(_month_start(year, m + 1, institution),
                                                        until)
        if s >= until:
            break
        pm = period_energy(store, ledger, institution, profile, start=s, end=e)
        points.append(MonthPoint(month=f"{year}-{m:02d}", energy_kgce=pm.energy_kgce,
                                 electricity_kwh=pm.electricity_kwh, water_m3=pm.water_m3))
    clearances = period.waste.clearances  # manual entries merged with sensor fill drops
    ystart = year_window(tz, year)[0]
    moves = ledger.hazardous(ystart, until)
    waste = period.waste.monthly
    sheets = []
    for b in institution.buildings:
        per_month = []
        for m in months:
            s, e = _month_start(year, m, institution), min(
                _month_start(year, m + 1, institution), until)
            if s >= until:
                break
            per_month.append(building_summary(store, ledger, institution, profile, start=s,
                                              end=e, building=b.id))
        sheets.append(BuildingSheet(
            id=b.id, name=b.name, months=per_month,
            total=building_summary(store, ledger, institution, profile, start=start,
                                   end=until, building=b.id)))
    return ReportData(
        kind=kind, year=year, period_label=text, institution_id=institution.institution.id,
        institution_name=institution.institution.name,
        start=datetime.fromtimestamp(start, tz), end=datetime.fromtimestamp(end, tz),
        as_of=datetime.fromtimestamp(until, tz), period=period, ytd=ytd, months=points,
        waste=waste, hazardous=hazardous_balance(moves), clearances=clearances,
        hazardous_moves=moves,
        scoring=scoring_lines(ytd, period, institution, clearances, waste, moves, points),
        buildings=sheets)


# -- formatting --------------------------------------------------------------------


def num(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:,.{digits}f}"


def title(data: ReportData, lang: Lang, kind: str | None = None) -> str:
    return f"{data.institution_name} {t(kind or data.kind, lang)} {data.period_label}"


def summary_rows(data: ReportData, lang: Lang) -> list[tuple[str, str, str, str]]:
    """(metric, this period, year to date, unit) — the disclosure table's body."""
    p, y = data.period, data.ytd
    ytd_kwh = math.fsum(x.quantity for x in y.energy_by_type
                        if x.energy.value == "electricity" and x.source == "metered")
    rows = [
        (label("energy_kgce", lang), num(p.energy_kgce), num(y.energy_kgce), "kgce"),
        (label("electricity", lang), num(p.electricity_kwh), num(ytd_kwh), "kWh"),
        (label("water", lang), num(p.water_m3), num(y.water_m3), "m³"),
    ]
    for line in p.energy_by_type:
        if line.energy.value == "electricity" and line.source == "metered":
            continue
        ytd_q = math.fsum(x.quantity for x in y.energy_by_type
                          if x.energy == line.energy and x.source == line.source
                          and x.unit == line.unit)
        energy = codes.items().energy_type_categories.get(line.energy)
        name = codes.items().energy_categories[energy] if energy else None
        shown = (name.zh + " " + name.en if lang == "zh" else name.en) if name else line.energy
        rows.append((f"{shown} ({t(line.source, lang)})", num(line.quantity),
                     num(ytd_q), line.unit))
    rows += [
        (label("kgce_per_m2", lang), num(p.kgce_per_m2, 4), num(y.kgce_per_m2, 4), "kgce/m²"),
        (label("kgce_per_person", lang), num(p.kgce_per_person, 4), num(y.kgce_per_person, 4),
         "kgce/person"),
        (label("water_per_person", lang), num(p.water_m3_per_person, 4),
         num(y.water_m3_per_person, 4), "m³/person"),
        (label("floor_area", lang), num(p.floor_area_m2, 0), num(y.floor_area_m2, 0), "m²"),
        (label("energy_users", lang), num(p.energy_users, 0), num(y.energy_users, 0),
         "person"),
    ]
    return rows


def svg_bars(values: list[tuple[str, float]], unit: str, *, width: int = 640,
             height: int = 220) -> str:
    """A dependency-free bar chart (inline SVG, nothing fetched from the internet)."""
    top = max((v for _, v in values), default=0.0) or 1.0
    n = max(len(values), 1)
    bar_w = (width - 60) / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(unit)}">',
             f'<text x="4" y="14" font-size="11">{escape(unit)}</text>']
    for i, (name, v) in enumerate(values):
        h = (height - 50) * v / top
        x = 50 + i * bar_w
        y = height - 30 - h
        parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" '
                     f'height="{h:.1f}" fill="#2e7d32"><title>{escape(name)}: '
                     f'{v:,.2f}</title></rect>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 14}" font-size="10" '
                     f'text-anchor="middle">{escape(name[-2:])}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="9" '
                     f'text-anchor="middle">{v:,.0f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(head: list[str], rows: Sequence[Sequence[str]]) -> str:
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
           f"<h1>{escape(title(data, lang, shown))}</h1>",
           f'<p class="meta">{escape(label("period", lang))}: {data.start:%Y-%m-%d} – '
           f'{data.end:%Y-%m-%d}; {escape(label("as_of", lang))}: {data.as_of:%Y-%m-%d %H:%M}; '
           f'{escape(label("profile", lang))}: {escape(data.ytd.profile_id)} '
           f"{escape(data.ytd.profile_version)}</p>"]
    if shown == "scoring":
        out.append(_table([label("item", lang), label("points", lang), label("status", lang),
                           label("evidence", lang)],
                          [[f"{s.id} {s.label_zh if lang == 'zh' else s.label_en}",
                            num(s.points, 1),
                            (label("met", lang) if s.met else label("not_met", lang)
                             if s.met is False else label("evidenced", lang) if s.evidenced
                             else label("not_evidenced", lang)), s.evidence]
                           for s in data.scoring]))
        out.append("</body></html>")
        return "".join(out)
    out.append(_table([label("metric", lang), label("this_period", lang), label("ytd", lang),
                       label("unit", lang)], summary_rows(data, lang)))
    y = data.ytd
    out.append(f"<h2>{escape(label('score', lang))} {num(y.score, 1)} / {num(y.max_score, 0)}"
               f"{escape(t('provisional', lang)) if y.provisional else ''}</h2>")
    out.append(_table([label("metric", lang), label("ytd", lang), label("projected", lang),
                       label("target", lang), label("points", lang)],
                      [[f"{i.label_zh} {i.label_en}" if lang == "zh" else i.label_en,
                        num(i.ytd, 4), num(i.projected, 4), num(i.target, 4),
                        f"{num(i.points, 1)} / {num(i.max_points, 1)}"] for i in y.items]))
    if data.waste:
        out.append(f"<h2>{escape(label('waste', lang))}</h2>")
        out.append(_table([label("month", lang), label("category", lang),
                           label("weight", lang) + " kg", label("volume", lang) + " L",
                           label("clearances", lang)],
                          [[w.month, w.label_zh if lang == "zh" else w.label_en,
                            num(w.weight_kg, 1), num(w.volume_l, 0), str(w.clearances)]
                           for w in data.waste]))
    if shown != "monthly":
        p = data.period
        out.append(f"<h2>{escape(label('monthly_chart', lang))}</h2>")
        out.append(svg_bars([(m.month, m.energy_kgce) for m in data.months], "kgce"))
        if p.items:
            out.append(f"<h2>{escape(label('items', lang))}</h2>")
            out.append(_table([label("item", lang), "kWh", "%"],
                              [[f"{i.code} {i.label_zh if lang == 'zh' else i.label_en}",
                                num(i.kwh, 1), num((i.share or 0) * 100, 1)]
                               for i in p.items]))
        facts = [
            [label("after_hours", lang), num((p.after_hours.share or 0) * 100, 1) + " %"],
            [label("ac", lang), "—" if p.ac.share is None else num(p.ac.share * 100, 1) + " %"],
            [label("data_centre", lang), num(p.data_centre.kwh, 1) + " kWh"],
            [label("pue", lang), num(p.data_centre.pue, 2)],
            [label("standby", lang), num(p.standby.after_hours_standby_kwh, 2) + " kWh"],
            [label("open_leaks", lang), str(len(p.alarms.open_leaks))],
        ]
        out.append(_table([label("metric", lang), label("value", lang)], facts))
        if p.quotas:
            out.append(f"<h2>{escape(label('quota', lang))}</h2>")
            out.append(_table([label("building", lang), "kWh/(m²·a)", "约束值 constraint",
                               "引导值 guide", label("verdict", lang)],
                              [[q.building, num(q.kwh_per_m2_a, 1), num(q.constraint, 0),
                                num(q.guide, 0), label(q.verdict, lang)] for q in p.quotas]))
        if p.vehicles:
            out.append(f"<h2>{escape(label('vehicles', lang))}</h2>")
            out.append(_table([label("plate", lang), label("litres", lang) + " L",
                               label("distance", lang) + " km", "L/100km"],
                              [[v.plate, num(v.litres, 1), num(v.km, 0),
                                num(v.l_per_100km, 2)] for v in p.vehicles]))
    out.append("</body></html>")
    return "".join(out)
