"""The consumption statistics ledger (能源资源消费统计台账) as an XLSX workbook.

Sheets (Chinese names and headers in Chinese mode, English in English mode): 月度汇总 (one
row per month with every energy type's quantity, kgce and coverage, and a total row whose
figures equal the API's year-to-date compliance), one sheet per building (months and a
total row equal to the API's `/metrics?building=` figures for the period), 能源品种,
账单与加油记录 (every bill and fuel entry behind the figures), 公务用车, 垃圾清运, 有害垃圾,
费用 (the cost tables of central/cost_report.py).

Numbers are written as numbers at full precision with a display format (kgce and
quantities 2 decimals, ratios 4), so the office can sum and chart them; the total row holds
values, not formulas, so a reader without a calculation engine (openpyxl, the platform's
importer) sees the same totals. A month without data shows "—", never 0.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from central import carbon_report, codes, report_savings
from central.cost_report import cost_sheet
from central.energy import EnergyType
from central.report_comparison import add_comparison_sheet
from central.reports import (
    Lang,
    ReportData,
    coverage_line,
    energy_name,
    label,
    period_line,
    score_heading,
    source_text,
    t,
    unit,
)

_SHEET_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))
KGCE_FORMAT = "#,##0.00"
QUANTITY_FORMAT = "#,##0.00"
RATIO_FORMAT = "0.0000"
COUNT_FORMAT = "#,##0"
NO_DATA = "—"

SHEETS: dict[str, tuple[str, str]] = {
    "monthly": ("月度汇总", "Monthly"), "by_type": ("能源品种", "By type"),
    "entries": ("账单与加油记录", "Bills and fuel"), "vehicles": ("公务用车", "Vehicles"),
    "clearances": ("垃圾清运", "Clearances"), "hazardous": ("有害垃圾", "Hazardous"),
}


def sheet_name(key: str, lang: Lang) -> str:
    zh, en = SHEETS[key]
    return zh if lang == "zh" else en


def sheet_title(text: str, taken: list[str]) -> str:
    """A valid, unused sheet title: at most 31 characters, none of []:*?/\\."""
    base = text.translate(_SHEET_FORBIDDEN)[:31]
    title, n = base, 2
    while title in taken:
        suffix = f" ({n})"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    return title


def render_xlsx(data: ReportData, lang: Lang = "zh") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.worksheet import Worksheet

    book = Workbook()
    bold = Font(bold=True)
    zh = lang == "zh"

    def row(ws: Worksheet, values: list[Any], formats: Sequence[str | None] | None = None,
            *, strong: bool = False) -> None:
        ws.append(values)
        for i, cell in enumerate(ws[ws.max_row]):
            fmt = formats[i] if formats is not None and i < len(formats) else None
            if fmt and isinstance(cell.value, int | float) and not isinstance(cell.value, bool):
                cell.number_format = fmt
            if strong:
                cell.font = bold

    def head(ws: Worksheet, values: list[str]) -> None:
        row(ws, list(values), strong=True)

    ws = book.active
    assert ws is not None  # a new workbook always has one sheet
    ws.title = sheet_name("monthly", lang)
    ws.append([f"{data.institution_name} {t('ledger', lang)} {data.period_label}"])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append([period_line(data, lang)])
    ws.append([f"{t('coverage', lang)}{'：' if zh else ': '}"
               f"{coverage_line(data.ytd.coverage, lang)}"])
    energies = [EnergyType.ELECTRICITY, EnergyType.WATER]
    for m in data.months:
        energies += [q.energy for q in m.quantities if q.energy not in energies]
    energies = list(dict.fromkeys(energies))
    units = {q.energy: q.unit for m in data.months for q in m.quantities}
    head(ws, [label("month", lang)]
         + [f"{energy_name(e, lang)} ({unit(units.get(e, 'kWh' if e.is_energy else 'm³'), lang)})"
            for e in energies]
         + [f"{label('energy_kgce', lang)} (kgce)", t("coverage", lang) + (" (天)" if zh else
                                                                        " (days)"),
            label("source", lang)])
    fmts: list[str | None] = [None] + [QUANTITY_FORMAT] * len(energies) + [KGCE_FORMAT]
    for m in data.months:
        cov = m.coverage
        sources = sorted({s for q in m.quantities for s in q.sources if m.has_data},
                         key=["metered", "bill", "vehicle"].index)
        days = NO_DATA if cov is None else f"{cov.days_with_data} / {cov.days}"
        row(ws, [m.month] + [NO_DATA if m.quantity(e) is None else m.quantity(e)
                             for e in energies]
            + [NO_DATA if m.energy_kgce is None else m.energy_kgce, days,
               source_text(sources, lang)], fmts)

    def total(e: EnergyType) -> float:
        return math.fsum(m.quantity(e) or 0.0 for m in data.months)

    row(ws, [label("total", lang)] + [total(e) for e in energies]
        + [math.fsum(m.energy_kgce or 0.0 for m in data.months)], fmts, strong=True)
    ws.append([])
    y = data.ytd
    for key, value, fmt, u in (
            ("kgce_per_m2", y.kgce_per_m2, RATIO_FORMAT, "kgce/m²"),
            ("kgce_per_person", y.kgce_per_person, RATIO_FORMAT, unit("kgce/person", lang)),
            ("water_per_person", y.water_m3_per_person, RATIO_FORMAT, unit("m³/person", lang)),
            ("floor_area", y.floor_area_m2, COUNT_FORMAT, "m²"),
            ("energy_users", y.energy_users, COUNT_FORMAT, unit("person", lang))):
        row(ws, [label(key, lang), value, u], [None, fmt])
    row(ws, [label("score", lang), y.score if y.score is not None else score_heading(data, lang),
             f"/ {y.max_score:g}" + ((" 预计" if zh else " provisional") if y.provisional
                                     and y.score is not None else "")], [None, "0.0"])
    ws.column_dimensions["A"].width = 26
    for col in "BCDEFGHIJ":
        ws.column_dimensions[col].width = 18

    for b in data.buildings:
        sheet = book.create_sheet(sheet_title(f"{b.id} {b.name}", book.sheetnames))
        sheet.append([f"{b.name} ({b.id}) {data.period_label}"])
        sheet["A1"].font = Font(bold=True, size=13)
        head(sheet, [label("month", lang), f"{label('electricity', lang)} (kWh)",
                     f"{label('water', lang)} (m³)", f"{label('energy_kgce', lang)} (kgce)",
                     f"{label('floor_area', lang)} (m²)", f"{label('kgce_per_m2', lang)} "
                     "(kgce/m²)"])
        bfmt: list[str | None] = [None, QUANTITY_FORMAT, QUANTITY_FORMAT, KGCE_FORMAT,
                                  COUNT_FORMAT, RATIO_FORMAT]
        for bm in b.months:
            has = bm.coverage.has_data if bm.coverage is not None else True
            row(sheet, [bm.start.strftime("%Y-%m")] + (
                [bm.electricity_kwh, bm.water_m3, bm.energy_kgce, bm.floor_area_m2,
                 bm.kgce_per_m2] if has else [NO_DATA, NO_DATA, NO_DATA, bm.floor_area_m2,
                                              NO_DATA]), bfmt)
        tot = b.total
        row(sheet, [label("total", lang), tot.electricity_kwh, tot.water_m3, tot.energy_kgce,
                    tot.floor_area_m2, tot.kgce_per_m2], bfmt, strong=True)
        sheet.column_dimensions["A"].width = 16
        for col in "BCDEF":
            sheet.column_dimensions[col].width = 20

    types = book.create_sheet(sheet_name("by_type", lang))
    head(types, [label("energy_type", lang), label("source", lang), label("unit", lang),
                 label("quantity", lang), "kgce / " + (label("unit", lang)),
                 f"{label('kgce_col', lang)} (kgce)", label("share", lang)])
    tfmt: list[str | None] = [None, None, None, QUANTITY_FORMAT, "0.0000", KGCE_FORMAT, "0.00%"]
    for line in y.energy_by_type:
        row(types, [energy_name(line.energy, lang, as_type=True),
                    source_text([line.source], lang),
                    unit(line.unit, lang), line.quantity, line.kgce_per_unit, line.kgce,
                    line.kgce / y.energy_kgce if y.energy_kgce > 0 else None], tfmt)
    row(types, [label("total", lang), "", "", None, None, y.energy_kgce], tfmt, strong=True)
    for col in "ABCDEFG":
        types.column_dimensions[col].width = 16

    entries = book.create_sheet(sheet_name("entries", lang))
    head(entries, [label("kind", lang), label("ref", lang), label("energy_type", lang),
                   label("building", lang), label("period_start", lang),
                   label("period_end", lang), label("quantity", lang), label("unit", lang),
                   f"{label('distance', lang)} (km)", label("supplier", lang),
                   label("note", lang)])
    efmt: list[str | None] = [None, None, None, None, None, None, QUANTITY_FORMAT, None,
                              COUNT_FORMAT]
    for bill in data.bills:
        note = " ".join(x for x in (bill.note or "", f"replaces {bill.replaces}"
                                    if bill.replaces else "", "supplement" if bill.supplement
                                    else "") if x)
        row(entries, [t("bill", lang), bill.ref, energy_name(bill.energy, lang),
                      bill.building or "", bill.period_start.isoformat(),
                      bill.period_end.isoformat(), bill.quantity,
                      unit(bill.unit or ("kWh" if bill.energy is EnergyType.ELECTRICITY
                                         else "m3"), lang), None, bill.supplier or "", note],
            efmt)
    plates = {v.id: (v.plate, v.fuel) for v in data.period.vehicles}
    for f in data.fuel:
        plate, fuel = plates.get(f.vehicle, (f.vehicle, None))
        row(entries, [t("fuel_log", lang), f.ref,
                      energy_name(EnergyType(fuel.value), lang) if fuel else "", plate,
                      f.day.isoformat(), f.day.isoformat(), f.litres, "L", f.km, "",
                      f.note or ""], efmt)
    for col in "ABCDEFGHIJK":
        entries.column_dimensions[col].width = 14

    cars = book.create_sheet(sheet_name("vehicles", lang))
    head(cars, [label("ref", lang), label("plate", lang), label("energy_type", lang),
                f"{label('litres', lang)} (L)", f"{label('distance', lang)} (km)",
                f"{label('l_per_100km', lang)} (L/100km)", f"{label('kgce_col', lang)} (kgce)"])
    for v in data.period.vehicles:
        row(cars, [v.id, v.plate, energy_name(v.fuel, lang), v.litres, v.km, v.l_per_100km,
                   v.kgce], [None, None, None, QUANTITY_FORMAT, COUNT_FORMAT, "0.00",
                             KGCE_FORMAT])

    waste = book.create_sheet(sheet_name("clearances", lang))
    head(waste, ["编号", "时间", "类别", "子类", "建筑", "清运点", "重量 (kg)", "容量 (L)",
                 "桶数", "清运单位", "车牌", "去向", "交接人", "联单号", "来源"] if zh else
         ["Reference", "Time", "Category", "Subcategory", "Building", "Point", "Weight (kg)",
          "Volume (L)", "Bins", "Hauler", "Vehicle plate", "Destination", "Handover",
          "Manifest no.", "Source"])
    categories = codes.waste().categories
    for c in data.clearances:
        cat = categories.get(c.category)
        row(waste, [c.ref, c.time.strftime("%Y-%m-%d %H:%M"),
                    (cat.zh if zh else cat.en) if cat else c.category, c.subcategory,
                    c.building, c.point, c.weight_kg, c.volume_l, c.bins, c.hauler,
                    c.vehicle_plate, c.destination, c.handover, c.manifest_no,
                    ("人工" if c.source == "manual" else "传感器") if zh else c.source],
            [None] * 6 + ["#,##0.0", "#,##0", "0"])
    waste.append([])
    head(waste, [label("month", lang), label("category", lang),
                 f"{label('weight', lang)} (kg)", f"{label('volume', lang)} (L)",
                 "桶数" if zh else "Bins"])
    for w in data.waste:
        row(waste, [w.month, w.label_zh if zh else w.label_en, w.weight_kg, w.volume_l,
                    w.bins], [None, None, "#,##0.0", "#,##0", "0"])

    haz = book.create_sheet(sheet_name("hazardous", lang))
    head(haz, ["编号", "时间", "方向", "物品", "数量", "单位", "联单号", "经办人"] if zh else
         ["Reference", "Time", "Direction", "Item", "Quantity", "Unit", "Manifest no.",
          "Handler"])
    for h in data.hazardous_moves:
        row(haz, [h.ref, h.time.strftime("%Y-%m-%d %H:%M"),
                  ("入库" if h.direction == "in" else "出库") if zh else h.direction, h.item,
                  h.quantity, h.unit, h.manifest_no, h.handler], [None] * 4 + ["#,##0.00"])

    cost_sheet(book, data.cost, lang)
    carbon_report.xlsx_sheet(book, [(m.month, m.t_co2) for m in data.months],
                             data.period.carbon, data.carbon_ytd, lang)  # the CO₂ sheet
    report_savings.add_sheet(book, data.savings, lang, sheet_title(
        report_savings.TEXT[lang]["title"], book.sheetnames))
    add_comparison_sheet(book, data.comparisons, lang)  # 同比与目标 (central/report_comparison)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
