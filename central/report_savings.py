"""规则节约（估算）in the reports: the estimated savings of the period's audited rule writes
(central/savings.py, docs/savings.md) as one section of the HTML/PDF blocks and one XLSX
sheet. Its own module so the report modules only call it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from central.savings import EmissionFactors, TariffBook, Totals, savings_for

if TYPE_CHECKING:
    from openpyxl import Workbook

    from central.institution import InstitutionConfig
    from central.period import Period
    from central.profile import CoefficientProfile
    from central.storeport import StoreReader

Lang = Literal["zh", "en"]
NO_DATA = "—"


class SavingsLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # rule id, building, or "total"
    writes: int
    without_load: int
    kwh: float | None
    kgce: float | None
    cost: float | None
    co2_kg: float | None

    @classmethod
    def of(cls, name: str, t: Totals) -> SavingsLine:
        some = t.estimated > 0
        return cls(name=name, writes=t.writes, without_load=t.without_load,
                   kwh=t.kwh if some else None, kgce=t.kgce if some else None,
                   cost=t.cost, co2_kg=t.co2_kg)


class SavingsSection(BaseModel):
    model_config = ConfigDict(frozen=True)

    per_rule: list[SavingsLine]
    per_building: list[SavingsLine]
    total: SavingsLine
    dry_run_writes: int


def savings_section(store: StoreReader, institution: InstitutionConfig,
                    profile: CoefficientProfile, period: Period, *,
                    tariff: TariffBook | None = None,
                    carbon: EmissionFactors | None = None) -> SavingsSection:
    r = savings_for(store, institution, profile, period, tariff=tariff, carbon=carbon)
    return SavingsSection(
        per_rule=[SavingsLine.of(k, v) for k, v in sorted(r.per_rule.items())],
        per_building=[SavingsLine.of(k, v) for k, v in sorted(r.per_building.items())],
        total=SavingsLine.of("total", r.total), dry_run_writes=r.dry_run.writes)


TEXT = {
    "zh": {"title": "规则节约（估算）", "rule": "规则", "building": "建筑", "writes": "写入次数",
           "cost": "费用 (元)", "co2": "CO₂ (kg)", "total": "合计",
           "note": "估算：每次规则关断或限温前的负荷保持到下一个上班时间（有上限），不是计量值；"
                   "方法见 docs/savings.md。", "none": "本期无规则关断或限温写入。",
           "dry": "另有 {n} 次试运行（dry_run）写入未计入。"},
    "en": {"title": "Rule savings (estimate)", "rule": "Rule", "building": "Building",
           "writes": "Writes", "cost": "Cost (CNY)", "co2": "CO₂ (kg)", "total": "Total",
           "note": "Estimate: the load before each rule switch-off or clamp held until the "
                   "next working start (capped), not a metered figure; method in "
                   "docs/savings.md.",
           "none": "No rule switch-offs or clamps in this period.",
           "dry": "{n} dry-run writes are not counted."},
}


def _n(x: float | None, digits: int) -> str:
    return NO_DATA if x is None else f"{x:,.{digits}f}"


def table(section: SavingsSection, lang: Lang) -> tuple[list[str], list[list[str]]]:
    tx = TEXT[lang]
    head = [tx["rule"], tx["writes"], "kWh", "kgce", tx["cost"], tx["co2"]]
    rows = [[line.name if line.name != "total" else tx["total"], str(line.writes),
             _n(line.kwh, 1), _n(line.kgce, 2), _n(line.cost, 2), _n(line.co2_kg, 1)]
            for line in [*section.per_rule, section.total]]
    return head, rows


def notes(section: SavingsSection, lang: Lang) -> list[str]:
    tx = TEXT[lang]
    out = [tx["note"]]
    if section.dry_run_writes:
        out.append(tx["dry"].format(n=section.dry_run_writes))
    return out


def blocks(section: SavingsSection | None, lang: Lang) -> list[dict[str, Any]]:
    """The section as `central.reports.Block` fields (h2, table or p, notes)."""
    if section is None:
        return []
    tx = TEXT[lang]
    out: list[dict[str, Any]] = [{"kind": "h2", "text": tx["title"]}]
    if not section.per_rule:
        out.append({"kind": "p", "text": tx["none"]})
        return out
    head, rows = table(section, lang)
    out.append({"kind": "table", "head": head, "rows": rows})
    out += [{"kind": "p", "text": n} for n in notes(section, lang)]
    return out


def add_sheet(book: Workbook, section: SavingsSection | None, lang: Lang, title: str) -> None:
    """One sheet: per rule and per building, numbers as numbers ("—" where unknown)."""
    if section is None:
        return
    tx = TEXT[lang]
    ws = book.create_sheet(title)
    ws.append([tx["title"]])
    for n in notes(section, lang):
        ws.append([n])
    for key, lines in (("rule", [*section.per_rule, section.total]),
                       ("building", section.per_building)):
        ws.append([])
        ws.append([tx[key], tx["writes"], "kWh", "kgce", tx["cost"], tx["co2"]])
        for line in lines:
            ws.append([tx["total"] if line.name == "total" else line.name, line.writes,
                       *(NO_DATA if v is None else round(v, 3)
                         for v in (line.kwh, line.kgce, line.cost, line.co2_kg))])
    ws.column_dimensions["A"].width = 18
