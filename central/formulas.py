"""Pure formulas behind the figures (STANDARDS.md §2–§6): no store, no ledger, no clock.
Each takes plain inputs (per-meter sums, ledger entries, a `Period`) and returns a view model
of `central.figures`; `central.metrics` reads the ports and calls them. Golden-tested by
hand in tests/unit/central.

    bills               pro-rated over their own days (each local day an equal part)
    分项 breakdown       sub-meters by item code, rolled up to 01A00…01D00
    data centre / PUE   meters of item 01D10; PUE = data-centre total ÷ IT load (it_load)
    GB/T 51161 quota    electricity kWh ÷ m² per year, annualised; never mixed with kgce
    vehicles            L/100 km = litres ÷ km × 100, per car
    waste               clearances per month and category; the hazardous store balance
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from central import codes
from central.compliance import ManualQuantity
from central.energy import EnergyType
from central.figures import (
    DataCentre,
    HazardousBalance,
    ItemLine,
    QuotaCheck,
    VehicleLine,
    WasteMonth,
)
from central.institution import InstitutionConfig, MeterKey
from central.ledger import Bill, Clearance, FuelEntry, HazardousMove
from central.period import Period, local_midnight
from central.profile import CoefficientProfile
from central.registry import mean_floor_area


def bill_share(bill: Bill, start: float, end: float, tz: ZoneInfo) -> float:
    """The share of a bill's quantity that falls in [start, end): its days are equal parts,
    each day counted by the share of its seconds inside the window (DST-proof)."""
    return Period(start, max(start, end), tz).fraction_of(Period.days(bill.period_start,
                                                          bill.period_end, tz))


def manual_quantities(bills: Iterable[Bill], fuel: Iterable[FuelEntry],
                      institution: InstitutionConfig, start: float, end: float, *,
                      building: str | None = None,
                      metered_from: Mapping[str, float] | None = None) -> list[ManualQuantity]:
    """Bills pro-rated to [start, end), vehicle fuel of the days in it (institution only).

    `metered_from` maps a bill's ref to when a main meter of the same energy type (and
    building) began recording within the bill's period: the bill counts only before it, so
    metered and billed energy of one period are never added (docs/compliance.md)."""
    tz = institution.institution.tz
    cuts = metered_from or {}
    out: list[ManualQuantity] = []
    for bill in bills:
        if building is not None and bill.building != building:
            continue
        share = bill_share(bill, start, min(end, cuts.get(bill.ref, end)), tz)
        if share > 0:
            out.append(ManualQuantity(energy=bill.energy, unit=bill.unit,
                                      quantity=bill.quantity * share, source="bill"))
    if building is None:
        fuels = {v.id: EnergyType(v.fuel.value) for v in institution.vehicles}
        for entry in fuel:
            day_start = local_midnight(entry.day, tz)
            if start <= day_start < end and entry.vehicle in fuels:
                out.append(ManualQuantity(energy=fuels[entry.vehicle], unit="L",
                                          quantity=entry.litres, source="vehicle"))
    return out


def item_breakdown(institution: InstitutionConfig, sums: Mapping[MeterKey, float],
                   main_kwh: float, building: str | None = None) -> list[ItemLine]:
    """Electricity per level-0 分项 item from meters carrying an item code."""
    table = codes.items()
    totals: dict[str, float] = defaultdict(float)
    for m in institution.meters:
        if (m.energy is EnergyType.ELECTRICITY and m.item is not None and not m.it_load
                and (building is None or m.building == building)):
            totals[table.top_item(m.item)] += sums.get(m.key, 0.0)
    out = []
    for code in sorted(totals):
        label = table.electricity_items.get(code)
        out.append(ItemLine(code=code, label_zh=label.zh if label else code,
                            label_en=label.en if label else code, kwh=totals[code],
                            share=totals[code] / main_kwh if main_kwh > 0 else None))
    return out


def data_centre(institution: InstitutionConfig, sums: Mapping[MeterKey, float],
                building: str | None = None) -> DataCentre:
    item = codes.items().data_centre_item
    total = [m for m in institution.meters if m.item == item and not m.it_load
             and (building is None or m.building == building)]
    it = [m for m in institution.meters if m.it_load
          and (building is None or m.building == building)]
    kwh = math.fsum(sums.get(m.key, 0.0) for m in total)
    it_kwh = math.fsum(sums.get(m.key, 0.0) for m in it) if it else None
    pue = kwh / it_kwh if total and it_kwh else None
    return DataCentre(metered=bool(total), meters=len(total) + len(it), kwh=kwh,
                      it_kwh=it_kwh, pue=pue)


def quota_check(institution: InstitutionConfig, sums: Mapping[MeterKey, float],
                start: float, end: float, building: str | None = None) -> list[QuotaCheck]:
    """GB/T 51161 per building with a quota class, in kWh/(m²·a): electricity of its main
    meters ÷ mean floor area, scaled to a year when the period is shorter."""
    zone = institution.institution.climate_zone
    table = codes.quotas()
    if zone is None or end <= start:
        return []
    tz = institution.institution.tz
    year_s = Period.year(datetime.fromtimestamp(start, tz).year, tz).seconds
    out: list[QuotaCheck] = []
    for b in institution.buildings:
        if b.quota_class is None or (building is not None and b.id != building):
            continue
        kwh = math.fsum(sums.get(m.key, 0.0) for m in institution.main_meters()
                        if m.building == b.id and m.energy is EnergyType.ELECTRICITY)
        area = mean_floor_area(institution, start, end, b.id)
        if area <= 0:
            continue
        annualised = not math.isclose(end - start, year_s)
        per = kwh / area * (year_s / (end - start))
        q = table.classes[b.quota_class].values[zone]
        verdict: Literal["within_guide", "within_constraint", "over_constraint"] = (
            "within_guide" if per <= q.guide else
            "within_constraint" if per <= q.constraint else "over_constraint")
        out.append(QuotaCheck(building=b.id, quota_class=b.quota_class, climate_zone=zone,
                              standard=table.version, kwh=kwh, floor_area_m2=area,
                              kwh_per_m2_a=per, constraint=q.constraint, guide=q.guide,
                              verdict=verdict, annualised=annualised))
    return out


def vehicle_lines(institution: InstitutionConfig, profile: CoefficientProfile,
                  fuel: Iterable[FuelEntry], start: float, end: float) -> list[VehicleLine]:
    tz = institution.institution.tz
    per: dict[str, list[FuelEntry]] = defaultdict(list)
    for e in fuel:
        if start <= local_midnight(e.day, tz) < end:
            per[e.vehicle].append(e)
    out = []
    for v in institution.vehicles:
        entries = per.get(v.id, [])
        litres = math.fsum(e.litres for e in entries)
        km = math.fsum(e.km for e in entries)
        energy = EnergyType(v.fuel.value)
        out.append(VehicleLine(id=v.id, plate=v.plate, fuel=energy, litres=litres, km=km,
                               l_per_100km=litres / km * 100 if km > 0 else None,
                               kgce=litres * profile.kgce_per_unit(energy, "L"),
                               entries=len(entries)))
    return out


def waste_monthly(clearances: Iterable[Clearance], tz: ZoneInfo) -> list[WasteMonth]:
    """Published clearance volume: per local month and category (STANDARDS.md §6)."""
    table = codes.waste().categories
    acc: dict[tuple[str, str], list[float]] = {}
    for c in clearances:
        month = c.time.astimezone(tz).strftime("%Y-%m")
        row = acc.setdefault((month, c.category), [0.0, 0.0, 0, 0])
        row[0] += c.weight_kg or 0.0
        row[1] += c.volume_l or 0.0
        row[2] += c.bins or 0
        row[3] += 1
    out = []
    for (month, cat), (kg, litres, bins, n) in sorted(acc.items()):
        label = table.get(cat)
        out.append(WasteMonth(month=month, category=cat, label_zh=label.zh if label else cat,
                              label_en=label.en if label else cat, weight_kg=kg,
                              volume_l=litres, bins=int(bins), clearances=int(n)))
    return out


def hazardous_balance(moves: Iterable[HazardousMove]) -> list[HazardousBalance]:
    acc: dict[tuple[str, str], list[float]] = {}
    for m in moves:
        row = acc.setdefault((m.item, m.unit), [0.0, 0.0])
        row[0 if m.direction == "in" else 1] += m.quantity
    return [HazardousBalance(item=i, unit=u, stored_in=a, taken_out=b, balance=a - b)
            for (i, u), (a, b) in sorted(acc.items())]
