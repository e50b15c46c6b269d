"""The consumption statistics ledger (能源资源消费统计台账) as an XLSX workbook.

Sheets: 月度汇总 Monthly (one row per month and a total row whose figures equal the API's
year-to-date compliance), one sheet per building (months and a total row equal to the API's
`/metrics?building=` figures for the period), 能源品种 By type, 公务用车 Vehicles,
垃圾清运 Clearances, 有害垃圾 Hazardous store. Numbers are written as numbers (not text) so
the office can sum and chart them; the total row holds values, not formulas, so a reader
without a calculation engine (openpyxl, the platform's importer) sees the same totals.
"""

from __future__ import annotations

import io
import math

from central.reports import Lang, ReportData, label, t

_SHEET_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))


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

    book = Workbook()
    bold = Font(bold=True)
    ws = book.active
    assert ws is not None  # a new workbook always has one sheet
    ws.title = "月度汇总 Monthly"
    ws.append([f"{data.institution_name} {t('ledger', lang)} {data.period_label}"])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append([f"{label('as_of', lang)}: {data.as_of:%Y-%m-%d %H:%M}",
               f"{label('profile', lang)}: {data.ytd.profile_id} {data.ytd.profile_version}"])
    head = [label("month", lang), label("electricity", lang) + " kWh",
            label("water", lang) + " m³", label("energy_kgce", lang) + " kgce"]
    ws.append(head)
    for cell in ws[3]:
        cell.font = bold
    for m in data.months:
        ws.append([m.month, m.electricity_kwh, m.water_m3, m.energy_kgce])
    ws.append(["合计 Total" if lang == "zh" else "Total",
               math.fsum(m.electricity_kwh for m in data.months),
               math.fsum(m.water_m3 for m in data.months),
               math.fsum(m.energy_kgce for m in data.months)])
    for cell in ws[ws.max_row]:
        cell.font = bold
    ws.append([])
    y = data.ytd
    for key, value in (("kgce_per_m2", y.kgce_per_m2), ("kgce_per_person", y.kgce_per_person),
                       ("water_per_person", y.water_m3_per_person),
                       ("floor_area", y.floor_area_m2), ("energy_users", y.energy_users),
                       ("score", y.score)):
        ws.append([label(key, lang), value])
    ws.column_dimensions["A"].width = 34
    for col in "BCD":
        ws.column_dimensions[col].width = 18

    for b in data.buildings:
        sheet = book.create_sheet(sheet_title(f"{b.id} {b.name}", book.sheetnames))
        sheet.append([f"{b.name} ({b.id}) {data.period_label}"])
        sheet["A1"].font = Font(bold=True, size=13)
        sheet.append([label("month", lang), label("electricity", lang) + " kWh",
                      label("water", lang) + " m³", label("energy_kgce", lang) + " kgce",
                      label("floor_area", lang), label("kgce_per_m2", lang)])
        for cell in sheet[2]:
            cell.font = bold
        for bm in b.months:
            sheet.append([bm.start.strftime("%Y-%m"), bm.electricity_kwh, bm.water_m3,
                          bm.energy_kgce, bm.floor_area_m2, bm.kgce_per_m2])
        tot = b.total
        sheet.append(["合计 Total" if lang == "zh" else "Total", tot.electricity_kwh,
                      tot.water_m3, tot.energy_kgce, tot.floor_area_m2, tot.kgce_per_m2])
        for cell in sheet[sheet.max_row]:
            cell.font = bold
        sheet.column_dimensions["A"].width = 16
        for col in "BCDEF":
            sheet.column_dimensions[col].width = 18

    types = book.create_sheet("能源品种 By type")
    types.append(["energy", label("source", lang), label("unit", lang), "quantity",
                  "kgce/unit", "kgce"])
    for line in y.energy_by_type:
        types.append([line.energy.value, line.source, line.unit, line.quantity,
                      line.kgce_per_unit, line.kgce])
    types.append(["合计 Total", "", "", None, None, y.energy_kgce])

    cars = book.create_sheet("公务用车 Vehicles")
    cars.append(["id", label("plate", lang), "fuel", "L", "km", "L/100km", "kgce"])
    for v in data.period.vehicles:
        cars.append([v.id, v.plate, v.fuel.value, v.litres, v.km, v.l_per_100km, v.kgce])

    waste = book.create_sheet("垃圾清运 Clearances")
    waste.append(["ref", "time", "category", "subcategory", "building", "point", "weight_kg",
                  "volume_l", "bins", "hauler", "vehicle_plate", "destination", "handover",
                  "manifest_no", "source"])
    for c in data.clearances:
        waste.append([c.ref, c.time.strftime("%Y-%m-%d %H:%M"), c.category, c.subcategory,
                      c.building, c.point, c.weight_kg, c.volume_l, c.bins, c.hauler,
                      c.vehicle_plate, c.destination, c.handover, c.manifest_no, c.source])
    waste.append([])
    waste.append([label("month", lang), label("category", lang), "kg", "L", "bins"])
    for w in data.waste:
        waste.append([w.month, w.category, w.weight_kg, w.volume_l, w.bins])

    haz = book.create_sheet("有害垃圾 Hazardous")
    haz.append(["ref", "time", "direction", "item", "quantity", "unit", "manifest_no",
                "handler"])
    for h in data.hazardous_moves:
        haz.append([h.ref, h.time.strftime("%Y-%m-%d %H:%M"), h.direction, h.item,
                    h.quantity, h.unit, h.manifest_no, h.handler])

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
