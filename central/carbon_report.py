"""CO₂ in the reports (central/reports.py draws the HTML and PDF blocks, central/
report_xlsx.py the workbook): the summary rows, the table of the emission factors used and
the XLSX sheet. Plain strings and cells only, so the report modules stay the only ones that
know their document models. A period without data shows "—", never 0."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from central.carbon import CarbonFigures, FactorUse

Lang = Literal["zh", "en"]

TEXT: dict[str, tuple[str, str]] = {
    "t_co2": ("二氧化碳排放量", "CO₂ emissions"),
    "per_m2": ("单位建筑面积碳排放", "CO₂ per floor area"),
    "per_person": ("人均碳排放", "CO₂ per person"),
    "factors": ("排放因子", "Emission factors"),
    "energy_type": ("能源品种", "Energy type"),
    "region": ("区域", "Region"),
    "factor": ("排放因子", "Factor"),
    "valid": ("有效期", "Valid"),
    "used": ("本报告使用", "Used for"),
    "source": ("来源", "Source"),
    "confidence": ("可信度", "Confidence"),
    "own": ("本单位配置", "institution's own"),
    "missing": ("缺少排放因子、未计入的用量", "Consumption without a factor (not counted)"),
    "sheet": ("碳排放", "CO2"),
    "month": ("月份", "Month"),
    "ytd": ("本年累计", "Year to date"),
    "this_period": ("本期", "This period"),
    "metric": ("指标", "Metric"),
    "unit": ("单位", "Unit"),
    "quantity": ("用量", "Quantity"),
    "kg_co2": ("排放量 (kgCO₂)", "Emissions (kgCO₂)"),
    "method": ("按用量 × 各时段有效的排放因子计算；因子变更后重新读取即按新因子重算。",
               "Quantity × the factor valid in each part of the period; a changed factor "
               "applies at the next read."),
}
ENERGY: dict[str, tuple[str, str]] = {
    "electricity": ("电力", "Electricity"), "natural_gas": ("天然气", "Natural gas"),
    "heat": ("热力", "Heat"), "gasoline": ("汽油", "Gasoline"), "diesel": ("柴油", "Diesel"),
    "raw_coal": ("原煤", "Raw coal"), "lpg": ("液化石油气", "LPG"), "steam": ("蒸汽", "Steam"),
}


def t(key: str, lang: Lang) -> str:
    zh, en = TEXT[key]
    return zh if lang == "zh" else en


def energy_name(energy: str, lang: Lang) -> str:
    zh, en = ENERGY.get(energy, (energy, energy))
    return zh if lang == "zh" else en


def num(x: float | None, digits: int) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _has(c: CarbonFigures | None) -> bool:
    return c is not None and c.t_co2 is not None


def summary_rows(period: CarbonFigures | None, ytd: CarbonFigures | None, lang: Lang
                 ) -> list[tuple[str, str, str, str, str]]:
    """(metric, this period, year to date, unit, source) rows for the disclosure table."""
    person = "kgCO₂/人" if lang == "zh" else "kgCO₂/person"
    note = "" if all(c is None or c.complete for c in (period, ytd)) else (
        "部分用量缺少排放因子" if lang == "zh" else "some consumption has no factor")
    return [
        (t("t_co2", lang), num(period.t_co2 if period else None, 3),
         num(ytd.t_co2 if ytd else None, 3), "tCO₂", note),
        (t("per_m2", lang), num(period.kg_co2_per_m2 if period else None, 4),
         num(ytd.kg_co2_per_m2 if ytd else None, 4), "kgCO₂/m²", ""),
        (t("per_person", lang), num(period.kg_co2_per_person if period else None, 4),
         num(ytd.kg_co2_per_person if ytd else None, 4), person, ""),
    ]


def day(d: date, lang: Lang) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if lang == "zh" else d.isoformat()


def days(a: date, b: date | None, lang: Lang) -> str:
    """Both ends included, as a filed report writes them: 2025年1月1日至2025年6月30日."""
    if b is None:
        return f"{day(a, lang)}起" if lang == "zh" else f"from {day(a, lang)}"
    return (f"{day(a, lang)}至{day(b, lang)}" if lang == "zh"
            else f"{day(a, lang)} to {day(b, lang)}")


def _span(u: FactorUse, lang: Lang) -> str:
    return days(u.valid_from, u.valid_to, lang)


def factor_table(c: CarbonFigures | None, lang: Lang) -> tuple[list[str], list[list[str]]]:
    """The factors a figure used: energy, region, value, validity, days used, source."""
    head = [t(k, lang) for k in ("energy_type", "region", "factor", "valid", "used",
                                 "source")]
    rows = []
    for u in (c.factors if c is not None else []):
        source = u.source + (f" [{t('own', lang)}]" if u.own else "") + f" {u.confidence}"
        region = u.region_zh if lang == "zh" else u.region_en
        rows.append([energy_name(u.energy.value, lang), region,
                     f"{u.kg_co2_per_unit:g} kgCO₂/{u.unit.replace('m3', 'm³')}",
                     _span(u, lang), days(u.used_from, u.used_to, lang),
                     source])
    for m in (c.missing if c is not None else []):
        rows.append([energy_name(m.energy.value, lang), "—", "—", "—",
                     days(m.first_day, m.last_day, lang),
                     f"{t('missing', lang)}: {num(m.quantity, 2)} {m.unit} ({m.reason})"])
    return head, rows


def xlsx_sheet(book: Any, months: Sequence[tuple[str, float | None]],
               period: CarbonFigures | None, ytd: CarbonFigures | None, lang: Lang) -> None:
    """A CO₂ sheet: tCO₂ per month, the period's and the year's figures by energy type,
    and the factors used with their sources (full precision in the cells; "—" for none)."""
    from openpyxl.styles import Font

    bold = Font(bold=True)
    ws = book.create_sheet(t("sheet", lang))

    def head(values: list[str]) -> None:
        ws.append(values)
        for cell in ws[ws.max_row]:
            cell.font = bold

    def cell(x: float | None) -> float | str:
        return "—" if x is None else x

    head([t("month", lang), "tCO₂"])
    for month, value in months:
        ws.append([month, cell(value)])
        ws.cell(ws.max_row, 2).number_format = "#,##0.000"
    ws.append([])
    head([t("metric", lang), t("this_period", lang), t("ytd", lang), t("unit", lang)])
    for metric, _p, _y, unit, _s in summary_rows(period, ytd, lang):
        key = {t("t_co2", lang): "t_co2", t("per_m2", lang): "kg_co2_per_m2",
               t("per_person", lang): "kg_co2_per_person"}[metric]
        ws.append([metric, cell(getattr(period, key) if period else None),
                   cell(getattr(ytd, key) if ytd else None), unit])
    ws.append([])
    head([t("energy_type", lang), t("quantity", lang), t("unit", lang), t("kg_co2", lang)])
    for line in (ytd.by_energy if _has(ytd) and ytd is not None else []):
        ws.append([energy_name(line.energy.value, lang), line.quantity,
                   line.unit.replace("m3", "m³"), line.kg_co2])
    ws.append([])
    fhead, rows = factor_table(ytd, lang)
    head(fhead)
    for r in rows:
        ws.append(r)
    ws.append([t("method", lang)])
    if ytd is not None:
        ws.append([f"{ytd.table_version} · sha256 {ytd.table_hash[:12]}"])
    ws.column_dimensions["A"].width = 22
    for col in "BCDE":
        ws.column_dimensions[col].width = 18
    ws.column_dimensions["F"].width = 60
