"""Analysis reports as PDF (reportlab, pure Python) with a bar chart of energy by month.

Chinese text needs a CJK TrueType font on the machine: `GREENGUARD_CJK_FONT` if set,
else the first of the known Debian paths (fonts-wqy-microhei, fonts-noto-cjk), else what
fontconfig's `fc-match` finds. Without one the report is refused with a clear error instead
of a PDF full of empty boxes.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

from central.errors import ReportError
from central.reports import Lang, ReportData, label, num, summary_rows, t, title

KNOWN_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
FONT_NAME = "GreenguardCJK"


def find_cjk_font() -> Path:
    env = os.environ.get("GREENGUARD_CJK_FONT")
    if env:
        if not Path(env).is_file():
            raise ReportError(f"GREENGUARD_CJK_FONT: no such font file (got {env!r})")
        return Path(env)
    for known in KNOWN_FONTS:
        if Path(known).is_file():
            return Path(known)
    fc = shutil.which("fc-match")
    if fc:
        try:
            found = subprocess.run([fc, "-f", "%{file}", ":lang=zh-cn"], capture_output=True,
                                   text=True, timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found.lower().endswith((".ttf", ".ttc")) and Path(found).is_file():
            return Path(found)
    raise ReportError("no CJK font for the PDF: install Debian fonts-wqy-microhei "
                      "(or fonts-noto-cjk), or set GREENGUARD_CJK_FONT to a .ttf/.ttc file")


def _register_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
        path = find_cjk_font()
        try:
            pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
        except Exception as exc:  # reportlab raises TTFError and plain Exceptions
            raise ReportError(f"cannot use font {path}: {exc}") from exc
    return FONT_NAME


def render_pdf(data: ReportData, lang: Lang = "zh") -> bytes:
    """The quarterly or annual analysis report as PDF bytes."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _register_font()
    h1 = ParagraphStyle("h1", fontName=font, fontSize=16, leading=22, spaceAfter=6)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=12, leading=16, spaceBefore=8,
                        spaceAfter=4)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12)
    style = TableStyle([("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
                        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8f5e9")),
                        ("ALIGN", (1, 0), (-1, -1), "RIGHT")])

    def table(head: list[str], rows: list[list[str]]) -> Table:
        tb = Table([head, *rows], repeatRows=1)
        tb.setStyle(style)
        return tb

    doc_title = title(data, lang)
    y = data.ytd
    p = data.period
    story: list[object] = [
        Paragraph(doc_title, h1),
        Paragraph(f"{label('period', lang)}: {data.start:%Y-%m-%d} – {data.end:%Y-%m-%d}; "
                  f"{label('as_of', lang)}: {data.as_of:%Y-%m-%d %H:%M}; "
                  f"{label('profile', lang)}: {y.profile_id} {y.profile_version}", body),
        Spacer(1, 4 * mm),
        table([label("metric", lang), label("this_period", lang), label("ytd", lang),
               label("unit", lang)], [list(r) for r in summary_rows(data, lang)]),
        Paragraph(f"{label('score', lang)} {num(y.score, 1)} / {num(y.max_score, 0)} "
                  f"{t('provisional', lang) if y.provisional else ''}", h2),
        table([label("metric", lang), label("ytd", lang), label("projected", lang),
               label("target", lang), label("points", lang)],
              [[i.label_zh if lang == "zh" else i.label_en, num(i.ytd, 4), num(i.projected, 4),
                num(i.target, 4), f"{num(i.points, 1)} / {num(i.max_points, 1)}"]
               for i in y.items]),
        Paragraph(label("monthly_chart", lang) + " (kgce)", h2),
    ]
    drawing = Drawing(170 * mm, 65 * mm)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 15 * mm, 10 * mm, 150 * mm, 50 * mm
    chart.data = [[m.energy_kgce for m in data.months] or [0.0]]
    chart.categoryAxis.categoryNames = [m.month[-2:] for m in data.months] or ["—"]
    chart.categoryAxis.labels.fontName = font
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.valueMin = 0
    chart.bars[0].fillColor = colors.HexColor("#2e7d32")
    drawing.add(chart)
    drawing.add(String(0, 62 * mm, "kgce", fontName=font, fontSize=8))
    story.append(drawing)
    if p.items:
        story += [Paragraph(label("items", lang), h2),
                  table([label("item", lang), "kWh", "%"],
                        [[f"{i.code} {i.label_zh if lang == 'zh' else i.label_en}",
                          num(i.kwh, 1), num((i.share or 0) * 100, 1)] for i in p.items])]
    story += [Paragraph(label("value", lang), h2), table([label("metric", lang),
                                                         label("value", lang)], [
        [label("after_hours", lang), num((p.after_hours.share or 0) * 100, 1) + " %"],
        [label("ac", lang), "—" if p.ac.share is None else num(p.ac.share * 100, 1) + " %"],
        [label("data_centre", lang), num(p.data_centre.kwh, 1) + " kWh"],
        [label("pue", lang), num(p.data_centre.pue, 2)]])]
    if p.quotas:
        story += [Paragraph(label("quota", lang), h2),
                  table([label("building", lang), "kWh/(m²·a)", "约束值", "引导值",
                         label("verdict", lang)],
                        [[q.building, num(q.kwh_per_m2_a, 1), num(q.constraint, 0),
                          num(q.guide, 0), label(q.verdict, lang)] for q in p.quotas])]
    if p.vehicles:
        story += [Paragraph(label("vehicles", lang), h2),
                  table([label("plate", lang), "L", "km", "L/100km"],
                        [[v.plate, num(v.litres, 1), num(v.km, 0), num(v.l_per_100km, 2)]
                         for v in p.vehicles])]
    if data.waste:
        story += [Paragraph(label("waste", lang), h2),
                  table([label("month", lang), label("category", lang), "kg"],
                        [[w.month, w.label_zh if lang == "zh" else w.label_en,
                          num(w.weight_kg, 1)] for w in data.waste])]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=doc_title, author="greenguard",
                            leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm)
    doc.build(story)
    return out.getvalue()
