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
from html import escape
from pathlib import Path

from central.errors import ReportError
from central.reports import Lang, ReportData, blocks, title

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
    """The quarterly or annual analysis report as PDF bytes: the blocks of
    `central.reports.blocks` (the same content as the HTML). A heading is kept with what
    follows it (keepWithNext, and KeepTogether with a short table), so none is left alone
    at the foot of a page."""
    from reportlab.graphics.charts.barcharts import VerticalBarChart
    from reportlab.graphics.shapes import Drawing, String
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        Flowable,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    font = _register_font()
    h1 = ParagraphStyle("h1", fontName=font, fontSize=16, leading=22, spaceAfter=6)
    h2 = ParagraphStyle("h2", fontName=font, fontSize=12, leading=16, spaceBefore=8,
                        spaceAfter=4, keepWithNext=1)
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=13, spaceAfter=3)
    cell = ParagraphStyle("cell", fontName=font, fontSize=8, leading=10)
    style = TableStyle([("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 8),
                        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8f5e9")),
                        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                        ("ALIGN", (1, 0), (-1, -1), "RIGHT")])
    width = A4[0] - 36 * mm

    def table(head: list[str], rows: list[list[str]]) -> Table:
        wide = len(head) >= 6 or any(len(c) > 28 for r in rows for c in r)
        content: list[list[object]] = [
            [Paragraph(escape(c), cell) if wide else c for c in r] for r in [head, *rows]]
        tb = Table(content, repeatRows=1, colWidths=[width / len(head)] * len(head)
                   if wide else None)
        tb.setStyle(style)
        return tb

    def chart(values: list[tuple[str, float | None]], unit_text: str) -> Drawing:
        drawing = Drawing(170 * mm, 65 * mm)
        bars = VerticalBarChart()
        bars.x, bars.y, bars.width, bars.height = 15 * mm, 10 * mm, 150 * mm, 50 * mm
        bars.data = [[v or 0.0 for _, v in values] or [0.0]]
        bars.categoryAxis.categoryNames = [m[-2:] for m, _ in values] or ["—"]
        bars.categoryAxis.labels.fontName = font
        bars.valueAxis.labels.fontName = font
        bars.valueAxis.valueMin = 0
        bars.bars[0].fillColor = colors.HexColor("#2e7d32")
        drawing.add(bars)
        drawing.add(String(0, 62 * mm, unit_text, fontName=font, fontSize=8))
        return drawing

    doc_title = title(data, lang)
    story: list[Flowable] = [Paragraph(escape(doc_title), h1)]
    pending: list[Flowable] = []  # a heading waiting for what it heads
    for b in blocks(data, lang):
        if b.kind == "h2":
            story.extend(pending)
            pending = [Paragraph(escape(b.text), h2)]
            continue
        if b.kind == "p":
            item: Flowable = Paragraph(escape(b.text), body)
        elif b.kind == "table":
            item = table(b.head, b.rows)
        else:
            item = chart(b.values, b.text)
        if pending:
            story.append(KeepTogether([*pending, item]) if b.kind != "table"
                         or len(b.rows) <= 25 else pending[0])
            if b.kind == "table" and len(b.rows) > 25:
                story.append(item)
            pending = []
        else:
            story.append(item)
        if b.kind == "table":
            story.append(Spacer(1, 2 * mm))
    story.extend(pending)
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title=doc_title, author="greenguard",
                            leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=16 * mm)
    doc.build(story)
    return out.getvalue()
