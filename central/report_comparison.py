"""The reports' 同比 / 环比 section and 14th Five-Year progress (central/baseyear.py), as
tables the HTML and PDF draw and as the XLSX sheet 同比与目标.

Comparisons run over whole local days: a report produced during a day compares the days
before it. Every change is "—" where either side lacks coverage (docs/comparisons.md).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from central.baseyear import Comparisons, co2_factor_for, comparisons_for, figure_set, span_for
from central.comparison import (
    Change,
    DaySpan,
    FigureSet,
    PeriodComparison,
    compare_all,
    year_earlier,
)
from central.institution import InstitutionConfig
from central.ledger import Ledger
from central.profile import CoefficientProfile
from central.storeport import StoreReader
from central.view import View

if TYPE_CHECKING:
    from openpyxl import Workbook

Lang = Literal["zh", "en"]
DIGITS = {"kgce_per_m2": 4, "kgce_per_person": 4, "water_m3_per_person": 4,
          "co2_per_m2": 4}


class MonthComparison(View):
    month: str  # YYYY-MM
    current: FigureSet
    year_on_year: PeriodComparison


class ReportComparisons(View):
    period: Comparisons
    months: list[MonthComparison]


def gather_comparisons(store: StoreReader, ledger: Ledger, institution: InstitutionConfig,
                       profile: CoefficientProfile, *, kind: str, year: int,
                       number: int | None, until: float) -> ReportComparisons:
    """The report period's comparisons and each of its months' 同比, up to the last whole
    day before `until`."""
    today = datetime.fromtimestamp(until, institution.institution.tz).date()
    period_kind: Literal["month", "quarter", "year"] = (
        "month" if kind == "monthly" else "quarter" if kind == "quarterly" else "year")
    span = span_for(period_kind, year, number, today)
    co2 = co2_factor_for(institution)
    period = comparisons_for(store, ledger, institution, profile, span, period_kind,
                             today=today, co2=co2)
    months: list[MonthComparison] = []
    first = span.first
    while first < span.end:
        nxt = date(first.year + 1, 1, 1) if first.month == 12 else date(
            first.year, first.month + 1, 1)
        m = DaySpan(first, min(nxt, span.end))
        current = (period.current if m == span
                   else figure_set(store, ledger, institution, profile, m, co2=co2))
        before = figure_set(store, ledger, institution, profile, year_earlier(m), co2=co2)
        months.append(MonthComparison(
            month=f"{first:%Y-%m}", current=current,
            year_on_year=compare_all("year_on_year", current, before, institution.baseline)))
        first = nxt
    return ReportComparisons(period=period, months=months)


def _label(line: Change, lang: Lang) -> str:
    return line.label_zh if lang == "zh" else line.label_en


def _unit(u: str, lang: Lang) -> str:
    return u if lang == "zh" else u.replace("/人", "/person")


def days_text(first: date, last: date, lang: Lang) -> str:
    """Both ends included, as a filed report writes it: 2025年1月1日至2025年3月31日."""
    if lang == "zh":
        return (f"{first.year}年{first.month}月{first.day}日至"
                f"{last.year}年{last.month}月{last.day}日")
    return f"{first:%d %b %Y} – {last:%d %b %Y}"


def _num(x: float | None, digits: int) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def change_text(c: Change | None) -> str:
    """+3.3 % ↑ / −4.6 % ↓ / — (with the weather-adjusted change where there is one)."""
    if c is None or c.change is None:
        return "—"
    text = f"{c.change * 100:+.1f}% {c.arrow}"
    if c.change_weather_adjusted is not None:
        text += f" ({c.change_weather_adjusted * 100:+.1f}%*)"
    return text


TEXT = {
    "zh": {"head": "同比与环比", "figure": "指标", "current": "本期", "yoy_base": "上年同期",
           "yoy": "同比", "pop_base": "上期", "pop": "环比",
           "note": "“—”：对比期数据不全或缺失，不作比较；*：按度日数气候修正。",
           "fyp": "“十四五”目标进度（{year} 年累计对比 {base} 年同期）",
           "target": "{ty} 年目标", "base": "基准年同期", "this": "本年累计",
           "change": "变化", "required": "本年应降", "status": "状态",
           "months": "各月同比", "month": "月份",
           "on_track": "进度达标", "behind": "进度落后", "no_data": "基准年数据缺失",
           "incomplete": "数据不全", "zero_base": "基准为零",
           "awaiting_emission_factors": "待配置排放因子"},
    "en": {"head": "Year on year and period on period", "figure": "Figure",
           "current": "This period", "yoy_base": "A year earlier", "yoy": "Year on year",
           "pop_base": "Previous period", "pop": "Period on period",
           "note": "“—”: the compared period lacks data, no comparison; *: weather-adjusted "
                   "by degree days.",
           "fyp": "14th Five-Year targets ({year} to date against the same days of {base})",
           "target": "{ty} target", "base": "Base year, same days", "this": "Year to date",
           "change": "Change", "required": "Required this year", "status": "Status",
           "months": "Year on year by month", "month": "Month",
           "on_track": "on track", "behind": "behind", "no_data": "no base-year data",
           "incomplete": "incomplete data", "zero_base": "base is zero",
           "awaiting_emission_factors": "awaiting emission factors"},
}


def comparison_tables(rc: ReportComparisons | None, lang: Lang, *, monthly_rows: bool
                      ) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, header, rows) of the report's comparison tables: the period's 同比 and
    环比, the 14th FYP progress, and (`monthly_rows`) each month's 同比."""
    if rc is None:
        return []
    tx = TEXT[lang]
    c = rc.period
    out: list[tuple[str, list[str], list[list[str]]]] = []
    rows = []
    for line in c.year_on_year.lines:
        pop = c.period_on_period.line(line.figure)
        n = DIGITS.get(line.figure, 2)
        rows.append([f"{_label(line, lang)} ({_unit(line.unit, lang)})",
                     _num(line.current, n), _num(line.previous, n), change_text(line),
                     _num(pop.previous, n), change_text(pop)])
    span = days_text(c.current.first_day, c.current.last_day, lang)
    out.append((f"{tx['head']}（{span}）" if lang == "zh" else f"{tx['head']} ({span})",
                [tx["figure"], tx["current"], tx["yoy_base"], tx["yoy"], tx["pop_base"],
                 tx["pop"]], rows))
    if c.targets is not None:
        f = c.targets
        rows = [[f"{x.label_zh if lang == 'zh' else x.label_en} ({_unit(x.unit, lang)})",
                 f"−{x.target_pct:g}%", _num(x.base_value, 4), _num(x.current_value, 4),
                 change_text(Change(figure=x.figure, label_zh="", label_en="", unit="",
                                    current=x.current_value, previous=x.base_value,
                                    change=x.change,
                                    change_weather_adjusted=x.change_weather_adjusted,
                                    status="ok")),
                 f"{x.required_change * 100:.1f}%", tx[x.status]] for x in f.lines]
        out.append((tx["fyp"].format(year=f.year, base=f.base_year),
                    [tx["figure"], tx["target"].format(ty=f.target_year), tx["base"],
                     tx["this"], tx["change"], tx["required"], tx["status"]], rows))
    if monthly_rows and len(rc.months) > 1:
        keys = ("energy_kgce", "electricity_kwh", "water_m3")
        head = [tx["month"]] + [f"{_label(c.year_on_year.line(k), lang)} {tx['yoy']}"
                                for k in keys]
        out.append((tx["months"], head, [
            [m.month, *(change_text(m.year_on_year.line(k)) for k in keys)]
            for m in rc.months]))
    return out


def comparison_note(lang: Lang) -> str:
    return TEXT[lang]["note"]


def add_comparison_sheet(book: Workbook, rc: ReportComparisons | None, lang: Lang) -> None:
    """The sheet 同比与目标: per month the figures, a year earlier and 同比 as numbers
    (ratios, "—" without a comparison), then the 14th FYP progress."""
    if rc is None:
        return
    from openpyxl.styles import Font

    tx = TEXT[lang]
    ws = book.create_sheet("同比与目标" if lang == "zh" else "YoY and targets")
    bold = Font(bold=True)

    def put(values: list[Any], formats: list[str | None] | None = None, *,
            strong: bool = False) -> None:
        ws.append(values)
        for i, cell in enumerate(ws[ws.max_row]):
            fmt = formats[i] if formats is not None and i < len(formats) else None
            if fmt and isinstance(cell.value, int | float):
                cell.number_format = fmt
            if strong:
                cell.font = bold

    keys = ("energy_kgce", "kgce_per_m2", "kgce_per_person", "electricity_kwh", "water_m3",
            "water_m3_per_person")
    head = [tx["month"]]
    formats: list[str | None] = [None]
    for k in keys:
        line = rc.period.year_on_year.line(k)
        name = f"{_label(line, lang)} ({_unit(line.unit, lang)})"
        head += [name, f"{name} {tx['yoy_base']}", f"{_label(line, lang)} {tx['yoy']}"]
        fmt = "0.0000" if k in DIGITS else "#,##0.00"
        formats += [fmt, fmt, "0.0%"]
    put(head, strong=True)
    for m in rc.months:
        values: list[Any] = [m.month]
        for k in keys:
            line = m.year_on_year.line(k)
            values += [line.current if line.current is not None else "—",
                       line.previous if line.previous is not None else "—",
                       line.change if line.change is not None else "—"]
        put(values, formats)
    ws.append([comparison_note(lang)])
    targets = rc.period.targets
    if targets is None:
        return
    ws.append([])
    put([tx["fyp"].format(year=targets.year, base=targets.base_year)], strong=True)
    put([tx["figure"], tx["target"].format(ty=targets.target_year), tx["base"], tx["this"],
         tx["change"], tx["required"], tx["status"]], strong=True)
    for x in targets.lines:
        put([f"{x.label_zh if lang == 'zh' else x.label_en} ({_unit(x.unit, lang)})",
             -x.target_pct / 100,
             x.base_value if x.base_value is not None else "—",
             x.current_value if x.current_value is not None else "—",
             x.change if x.change is not None else "—", x.required_change, tx[x.status]],
            [None, "0.0%", "0.0000", "0.0000", "0.0%", "0.0%", None])


ANALYSED = ("energy_kgce", "electricity_kwh", "water_m3")


def analysis_lines(rc: ReportComparisons, lang: Lang) -> list[str]:
    """The annual analysis' sentences on 同比 and the 14th FYP: changes only where both
    sides are covered, and what is missing where they are not."""
    zh = lang == "zh"
    yoy = rc.period.year_on_year
    lines = [yoy.line(k) for k in ANALYSED]
    if all(x.status == "no_data" and not x.previous for x in lines):
        return ["上年同期无数据，不作同比分析。" if zh else
                "No data for the same period last year: no year-on-year comparison."]
    words, missing = [], []
    for x in lines:
        if x.change is not None:
            words.append(f"{x.label_zh}{'上升' if x.change > 0 else '下降'} "
                         f"{abs(x.change) * 100:.1f}%" if zh else
                         f"{x.label_en} {'up' if x.change > 0 else 'down'} "
                         f"{abs(x.change) * 100:.1f} %")
        else:
            missing.append(f"{x.label_zh}（{x.reason_zh}）" if zh else
                           f"{x.label_en.lower()} ({x.reason})")
    out = []
    if words:
        out.append(("与上年同期相比，" + "，".join(words) + "。") if zh else
                   ("Compared with the same period last year: " + ", ".join(words) + "."))
    if missing:
        out.append(("不作同比：" + "；".join(missing) + "。") if zh else
                   ("No year-on-year comparison for " + "; ".join(missing) + "."))
    f = rc.period.targets
    if f is not None:
        tx = TEXT[lang]
        parts = []
        for target in f.lines:
            if target.change is None:
                continue
            need, c = target.required_change * 100, target.change
            if zh:
                parts.append(f"{target.label_zh}{'上升' if c > 0 else '下降'} "
                             f"{abs(c) * 100:.1f}%（本年应降 {-need:.1f}%，"
                             f"{tx[target.status]}）")
            else:
                parts.append(f"{target.label_en.lower()} {c * 100:+.1f} % (required "
                             f"{need:.1f} %, {tx[target.status]})")
        if parts:
            out.append((f"对比 {f.base_year} 年同期（“十四五”基准年）：" + "，".join(parts) + "。")
                       if zh else (f"Against the same days of {f.base_year} (the 14th FYP "
                                   "base year): " + ", ".join(parts) + "."))
    return out
