"""The weekly digest for the energy liaison (节能周报): the year-to-date compliance figures
against the year's targets, the projection's status and the data coverage.

The figures are `central.metrics.compliance_for` up to local midnight of the digest's day
(whole days, like the daily digest's "yesterday"), for the year of the day before: the one
projection every page, report and export uses. While the projection is insufficient the
message says "数据不足，暂不预测" and names no projected figure, as the dashboard does.

`weekly_message` is pure; the notifier enqueues one message per institution, ISO week and
recipient (key `weekly|iid|YYYY-Www|recipient`) in the durable queue, on the first working
day on or after the configured weekday, at the configured time.
"""

from __future__ import annotations

import datetime as dt

from central.compliance import ComplianceReport, ScoreItem
from central.notify.channels import Message
from central.projection import INSUFFICIENT_ZH

UNIT_ZH = {"kgce/m²": "kgce/m²", "kgce/person": "kgce/人", "m³/person": "m³/人"}


def week_label(day: dt.date) -> str:
    """The ISO week of `day`: 2026-W23."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _num(x: float) -> str:
    return f"{x:.3f}"


def _item_line(item: ScoreItem) -> str:
    unit = UNIT_ZH.get(item.unit, item.unit)
    head = f"· {item.label_zh}：累计 {_num(item.ytd)} {unit}"
    if item.target is None:
        head += "（本年无目标）"
    else:
        progress = (f"，按期目标 {_num(item.prorated_target)}"
                    if item.prorated_target is not None else "")
        head += f"（年度目标 ≤ {_num(item.target)}{progress}）"
    if item.status == "insufficient" or item.projected is None:
        return f"{head}；预计全年：{INSUFFICIENT_ZH}"
    verdict = "" if item.met is None else ("，达标" if item.met else "，超标")
    word = "全年实际" if item.status == "final" else "预计全年"
    return f"{head}；{word} {_num(item.projected)}{verdict}"


def weekly_message(*, institution: str, report: ComplianceReport, day: dt.date, key: str,
                   dashboard_url: str) -> Message:
    """The weekly digest in Chinese: the three scored figures year to date against their
    targets, the projection (or "数据不足，暂不预测"), the score, the coverage line."""
    first = report.period_start.date()
    last = (report.as_of - dt.timedelta(microseconds=1)).date()
    lines = [f"统计期：{first:%Y-%m-%d} 至 {max(first, last):%Y-%m-%d}（本年累计）"]
    lines += [_item_line(item) for item in report.items]
    insufficient = report.projection.status == "insufficient"
    lines.append(f"预测：{INSUFFICIENT_ZH}" if insufficient
                 else f"预测：{report.projection.note_zh}")
    if report.score is not None and not insufficient:
        word = "考核得分" if report.projection.status == "final" else "考核得分（预计）"
        lines.append(f"{word}：{report.score:.1f} / {report.max_score:.1f}")
    lines.append(report.coverage.text_zh if report.coverage is not None
                 else "数据覆盖：无")
    items = [{"key": i.key.value, "ytd": i.ytd, "target": i.target,
              "projected": None if insufficient or i.status == "insufficient"
              else i.projected,
              "met": i.met, "status": i.status} for i in report.items]
    return Message(key=key, title=f"【节能周报】{report.year} 年度 · {week_label(day)}",
                   lines=tuple(lines),
                   link=f"{dashboard_url.rstrip('/')}/#{institution}", severity="info",
                   data={"institution": institution, "week": week_label(day),
                         "year": report.year, "as_of": report.as_of.isoformat(),
                         "status": report.projection.status,
                         "score": None if insufficient else report.score, "items": items,
                         "coverage": report.coverage.text_zh
                         if report.coverage is not None else None})
