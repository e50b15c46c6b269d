"""The cost figures (central/cost.py) as report tables and an XLSX sheet: one place that
words them, so the HTML, the PDF, the XLSX and the statistics return agree.

`cost_tables` returns (heading, header, rows) triples that `central.reports.blocks` draws
as its own blocks; `cost_sheet` adds the 费用 sheet to the ledger workbook. Missing figures
are "—", never 0.
"""

from __future__ import annotations

from typing import Any, Literal

from central.cost import PeriodCost, TypeCost
from central.energy import EnergyType

Lang = Literal["zh", "en"]
Table = tuple[str, list[str], list[list[str]]]
NO_DATA = "—"
YUAN_FORMAT = "#,##0.00"
QUANTITY_FORMAT = "#,##0.00"

_TEXT: dict[str, tuple[str, str]] = {
    "cost": ("能源费用", "Energy cost"),
    "cost_months": ("逐月费用", "Cost by month"),
    "cost_buildings": ("分建筑费用", "Cost by building"),
    "cost_items": ("分项用电费用", "Electricity cost by item"),
    "bill_check": ("计量费用与账单核对", "Metered cost against the bills"),
    "energy_type": ("能源品种", "Energy type"),
    "quantity": ("用量", "Quantity"),
    "unit": ("单位", "Unit"),
    "yuan": ("费用 (元)", "Cost (yuan)"),
    "source": ("来源", "Source"),
    "period": ("时段", "Period"),
    "price": ("均价 (元/kWh)", "Average (yuan/kWh)"),
    "fixed": ("固定费用", "Fixed charges"),
    "total": ("合计", "Total"),
    "month": ("月份", "Month"),
    "electricity": ("电费", "Electricity"),
    "water": ("水费", "Water"),
    "gas": ("燃气费", "Gas"),
    "billed": ("账单", "Bills"),
    "building": ("建筑", "Building"),
    "item": ("分项", "Item"),
    "ref": ("账单编号", "Bill"),
    "days": ("账期", "Period"),
    "bill_yuan": ("账单金额 (元)", "Bill (yuan)"),
    "metered_yuan": ("计量费用 (元)", "Metered (yuan)"),
    "difference": ("差额 (元)", "Difference (yuan)"),
    "difference_pct": ("差额 %", "Difference %"),
    "verdict": ("结论", "Verdict"),
    "flagged": ("超出容差", "beyond tolerance"),
    "ok": ("一致", "agrees"),
    "not_compared": ("未核对", "not compared"),
    "no_tariff": ("未配置价目，不计费用", "No tariff configured: no cost figures"),
    "tariff": ("价目", "Tariff"),
    "coverage": ("数据覆盖", "Data coverage"),
    "incomplete": ("部分用量无价目，合计不完整", "some quantities have no price: total incomplete"),
}
SOURCE: dict[str, tuple[str, str]] = {
    "tariff": ("计量×价目", "metered × tariff"), "bill": ("账单", "bill"),
    "tariff+bill": ("计量×价目 + 账单", "metered × tariff + bill"),
}
ENERGY: dict[EnergyType, tuple[str, str]] = {
    EnergyType.ELECTRICITY: ("电力", "Electricity"), EnergyType.WATER: ("水", "Water"),
    EnergyType.NATURAL_GAS: ("天然气", "Natural gas"), EnergyType.HEAT: ("集中供热", "Heat"),
    EnergyType.GASOLINE: ("汽油", "Gasoline"), EnergyType.DIESEL: ("柴油", "Diesel"),
    EnergyType.RAW_COAL: ("原煤", "Raw coal"), EnergyType.LPG: ("液化石油气", "LPG"),
    EnergyType.STEAM: ("蒸汽", "Steam"),
}
PERIOD_EN = {"sharp": "sharp", "peak": "peak", "flat": "flat", "valley": "valley",
             "deep_valley": "deep valley"}


def _t(key: str, lang: Lang) -> str:
    zh, en = _TEXT[key]
    return zh if lang == "zh" else en


def money(x: float | None) -> str:
    return NO_DATA if x is None else f"{x:,.2f}"


def _q(x: float | None) -> str:
    return NO_DATA if x is None else f"{x:,.2f}"


def energy_label(e: EnergyType, lang: Lang) -> str:
    zh, en = ENERGY.get(e, (e.value, e.value))
    return zh if lang == "zh" else en


def source_label(line: TypeCost, lang: Lang) -> str:
    if line.source is None:
        return NO_DATA
    zh, en = SOURCE[line.source]
    return zh if lang == "zh" else en


def cost_tables(cost: PeriodCost | None, lang: Lang, *, detail: bool = True) -> list[Table]:
    """The cost section of a report: by energy type with the time-of-use periods and the
    fixed charges, and the bill check; with `detail` (analysis reports, the XLSX) by month,
    building and item as well."""
    if cost is None:
        return []
    zh = lang == "zh"
    if not cost.configured:
        return [(_t("cost", lang), [_t("tariff", lang)], [[_t("no_tariff", lang)]])]
    has = cost.coverage.has_data if cost.coverage is not None else True
    head = [_t("energy_type", lang), _t("quantity", lang), _t("unit", lang),
            _t("yuan", lang), _t("source", lang)]
    rows: list[list[str]] = []
    for line in cost.by_type:
        rows.append([energy_label(line.energy, lang),
                     _q(line.metered_quantity + line.billed_quantity) if has else NO_DATA,
                     line.unit.replace("m3", "m³"), money(line.yuan if has else None),
                     source_label(line, lang)])
        if line.energy is EnergyType.ELECTRICITY:
            for p in cost.electricity.by_period:
                name = p.label_zh if zh else PERIOD_EN[p.period.value]
                rows.append([f"　{name}", _q(p.kwh), "kWh", money(p.yuan),
                             f"{p.yuan_per_kwh:.4f} 元/kWh" if zh and p.yuan_per_kwh
                             else f"{p.yuan_per_kwh:.4f} yuan/kWh" if p.yuan_per_kwh
                             else NO_DATA])
            if cost.electricity.fixed_yuan or cost.electricity.fixed_not_applied:
                missing = ", ".join(cost.electricity.fixed_not_applied)
                rows.append([f"　{_t('fixed', lang)}", "", "",
                             money(cost.electricity.fixed_yuan),
                             (f"未计: {missing} (无 capacity_kva)" if zh else
                              f"not applied: {missing} (no capacity_kva)") if missing else ""])
    note = "" if cost.complete else _t("incomplete", lang)
    rows.append([_t("total", lang), "", "", money(cost.total_yuan), note])
    tables: list[Table] = [(f"{_t('cost', lang)} ({cost.tariff_id or '—'})", head, rows)]
    if detail and len(cost.months) > 1:
        tables.append((_t("cost_months", lang),
                       [_t("month", lang), _t("electricity", lang), _t("water", lang),
                        _t("gas", lang), _t("billed", lang), _t("total", lang)],
                       [[m.month, money(m.electricity_yuan), money(m.water_yuan),
                         money(m.gas_yuan), money(m.billed_yuan), money(m.yuan)]
                        for m in cost.months]))
    if detail and cost.building is None and cost.buildings:
        tables.append((_t("cost_buildings", lang),
                       [_t("building", lang), "kWh", _t("yuan", lang)],
                       [[f"{b.key} {b.label_zh if zh else b.label_en}",
                         _q(b.quantity) if has else NO_DATA, money(b.yuan if has else None)]
                        for b in cost.buildings]))
    if detail and cost.items:
        tables.append((_t("cost_items", lang), [_t("item", lang), "kWh", _t("yuan", lang)],
                       [[f"{i.key} {i.label_zh if zh else i.label_en}",
                         _q(i.quantity or None), money(i.yuan if i.quantity else None)]
                        for i in cost.items]))
    if cost.bill_checks:
        tables.append((_t("bill_check", lang), bill_check_head(lang),
                       bill_check_rows(cost, lang)))
    return tables


def bill_check_head(lang: Lang) -> list[str]:
    return [_t(k, lang) for k in ("ref", "energy_type", "days", "bill_yuan", "metered_yuan",
                                  "difference", "difference_pct", "verdict")]


def bill_check_rows(cost: PeriodCost, lang: Lang) -> list[list[str]]:
    out = []
    for c in cost.bill_checks:
        verdict = (_t("not_compared", lang) + (f" ({c.note})" if c.note else "")
                   if c.difference_pct is None or c.note else
                   f"{_t('flagged', lang)} (±{c.tolerance_pct:g}%)" if c.flagged
                   else _t("ok", lang))
        out.append([c.ref, energy_label(c.energy, lang),
                    f"{c.period_start.isoformat()}…{c.period_end.isoformat()}",
                    money(c.bill_yuan), money(c.metered_yuan), money(c.difference_yuan),
                    NO_DATA if c.difference_pct is None else f"{c.difference_pct:+.1f}%",
                    verdict])
    return out


def cost_sheet(book: Any, cost: PeriodCost | None, lang: Lang) -> None:
    """The 费用 sheet of the ledger workbook: the report's cost tables, amounts and
    quantities as numbers to the fen (0.01), so the office can sum them."""
    if cost is None:
        return
    ws = book.create_sheet("费用" if lang == "zh" else "Cost")
    for heading, head, rows in cost_tables(cost, lang):
        ws.append([heading])
        ws.append(head)
        for r in rows:
            ws.append([_number(c) for c in r])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, float):
                    cell.number_format = YUAN_FORMAT
        ws.append([])
    ws.column_dimensions["A"].width = 28
    for col in "BCDEFGH":
        ws.column_dimensions[col].width = 18


def _number(text: str) -> str | float:
    """A formatted amount back as a number ("1,234.50" → 1234.5); other text unchanged."""
    try:
        return float(text.replace(",", "")) if text and text[0] in "-0123456789" else text
    except ValueError:
        return text
