"""Server-side rendering of the built-in page (central/web/index.html).

The page's script re-renders the same sections every 2 s from /api/v1/overview; rendering
them on the server as well means the figures are visible without JavaScript, on a slow
phone before the first poll, and to a plain HTTP test. The markup here mirrors the
script's functions of the same names.
"""

from __future__ import annotations

import re
from html import escape
from importlib import resources

from central.compliance import ComplianceReport, ScoreItem
from central.config import MeterRole
from central.overview import MeterView, Overview

_SLOT = re.compile(r"\{\{(\w+)\}\}")
_DIGITS = {"kgce_per_m2": 3, "kgce_per_person": 3, "water_m3_per_person": 3}


def load_template() -> str:
    return resources.files("central").joinpath("web", "index.html").read_text(encoding="utf-8")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(x: float | None, digits: int) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def _ago(s: float | None) -> str:
    if s is None:
        return "—"
    if s < 90:
        return f"{round(s)} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{round(s / 3600)} h"


def _kw(watts: float | None) -> str:
    return _num(None if watts is None else watts / 1000, 1)


def summary(o: Overview) -> str:
    c = o.compliance
    return (
        '<div class="cards">'
        f'<div class="card"><div class="label">实时功率 Live power</div><div class="big">'
        f'{_kw(o.power_w)} <small>kW</small></div></div>'
        f'<div class="card"><div class="label">今日用电 Electricity today</div><div class="big">'
        f'{_num(o.energy_kwh_today, 1)} <small>kWh</small></div></div>'
        f'<div class="card"><div class="label">今日用水 Water today</div><div class="big">'
        f'{_num(o.water_m3_today, 2)} <small>m³</small></div></div>'
        f'<div class="card"><div class="label">考核得分 Score {_e(c.year)}</div><div class="big">'
        f'{_num(c.score, 1)} <small>/ {_num(c.max_score, 0)}</small></div>'
        f'<div class="note">{"预估 provisional" if c.provisional else "全年 final"}</div></div>'
        '</div>')


def _verdict(it: ScoreItem) -> str:
    of = f"{_num(it.points, 1)} / {_num(it.max_points, 1)}"
    if it.met is None:
        return f'<td class="unknown">— 0 / {_num(it.max_points, 1)}</td>'
    return f'<td class="ok">✓ {of}</td>' if it.met else f'<td class="bad">✗ {of}</td>'


def compliance(o: Overview) -> str:
    c = o.compliance
    rows = ""
    for it in c.items:
        d = _DIGITS.get(it.key.value, 3)
        rows += (f"<tr><td>{_e(it.label_zh)}<br><small>{_e(it.label_en)} ({_e(it.unit)})"
                 f"</small></td><td>{_num(it.ytd, d)}</td><td>{_num(it.prorated_target, d)}</td>"
                 f"<td>{_num(it.projected, d)}</td><td>{_num(it.target, d)}</td>"
                 f"{_verdict(it)}</tr>")
    return (
        f'<h2>年度指标 Annual targets {_e(c.year)}</h2><div class="scroll"><table>'
        "<thead><tr><th>指标 Metric</th><th>累计 YTD</th><th>按期目标 Pro-rated</th>"
        "<th>年末预计 Projected</th><th>年度目标 Target</th><th>得分 Points</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
        f'<p class="note">综合能耗 Total energy {_num(c.energy_kgce, 1)} kgce · 用水 Water '
        f"{_num(c.water_m3, 1)} m³ · 建筑面积 Floor area {_num(c.floor_area_m2, 0)} m² · "
        f"用能人数 Energy users {_num(c.energy_users, 0)} · 已过 Year elapsed "
        f"{_num(c.fraction_elapsed * 100, 1)}%{_coverage(c)} · 折标系数 Profile {_e(c.profile_id)}@"
        f"{_e(c.profile_version)}</p>")


def _coverage(c: ComplianceReport) -> str:
    if c.data_since is None:
        return ""
    return (f" · 数据始于 Data since {_e(c.data_since.date().isoformat())} "
            f"({_num(c.coverage_fraction * 100, 1)}% of year)")


def _live(m: MeterView) -> str:
    if m.live is None:
        return "—"
    v = m.live.value
    shown = _num(v, 1) if isinstance(v, int | float) and not isinstance(v, bool) else _e(v)
    text = f"{shown} {_e(m.live.unit)}"
    if m.live.stale:
        return f'<span class="stale" title="{_ago(m.live.age_s)}">{text} ⚠</span>'
    return text


def buildings(o: Overview) -> str:
    rows = ""
    for b in o.buildings:
        rows += (f"<tr><td><b>{_e(b.name)}</b> <small>{_e(b.id)}</small></td>"
                 f"<td>{_kw(b.power_w)}</td><td>{_num(b.energy_kwh_today, 1)}</td>"
                 f"<td>{_num(b.water_m3_today, 2)}</td></tr>")
        for m in b.meters:
            role = "总表 main" if m.role is MeterRole.MAIN else "分项 sub"
            item = f" {_e(m.item)}" if m.item else ""
            rows += (f'<tr class="meter"><td>{_e(m.edge)}/{_e(m.device)} · {_e(m.energy.value)}'
                     f" · {role}{item}</td><td>{_live(m)}</td><td colspan=\"2\">"
                     f"{_num(m.today, 2)} {_e(m.unit)}</td></tr>")
    return ('<h2>建筑 Buildings</h2><div class="scroll"><table><thead><tr><th>建筑 Building</th>'
            "<th>实时功率 Power kW</th><th>今日用电 kWh today</th><th>今日用水 m³ today</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></div>")


def edges(o: Overview) -> str:
    if not o.edges:
        return '<h2>采集终端 Edges</h2><p class="note">尚无 none yet</p>'
    items = ""
    for e in o.edges:
        cls = "on" if e.online is True else ("off" if e.online is False else "")
        state = ("在线 online" if e.online is True
                 else "离线 offline" if e.online is False else "未知 unknown")
        items += (f'<li><span class="dot {cls}"></span>{_e(e.edge)} · {state} · '
                  f"{_ago(e.age_s)}</li>")
    return f'<h2>采集终端 Edges</h2><ul class="edges">{items}</ul>'


def ingest(o: Overview) -> str:
    i = o.ingest
    if not i:
        return ""
    state = "已连接 connected" if i.get("connected") else "未连接 disconnected"
    return (f'<p class="note">MQTT {state} · 已接收 received {i.get("received", 0):,} · '
            f'已存储 stored {i.get("stored_records", 0):,} · 重复 duplicates '
            f'{i.get("duplicates", 0):,} · 死信 dead letters {i.get("dead_letters", 0):,} · '
            f'存储错误 store errors {i.get("store_errors", 0):,} · 确认 acks '
            f'{i.get("acks_sent", 0):,}</p>')


def render_page(template: str, o: Overview) -> str:
    data = o.model_dump_json().replace("<", "\\u003c").replace(">", "\\u003e")
    data = data.replace("&", "\\u0026")
    values = {
        "title": _e(f"{o.institution.name} · 节能监测 Energy monitor"),
        "name": _e(o.institution.name),
        "clock": _e(o.local_time.strftime("%Y-%m-%d %H:%M:%S")),
        "summary": summary(o),
        "compliance": compliance(o),
        "buildings": buildings(o),
        "edges": edges(o),
        "ingest": ingest(o),
        "json": data,
    }
    # One pass, so rendered content that happens to contain "{{name}}" is left alone.
    return _SLOT.sub(lambda m: values.get(m.group(1), m.group(0)), template)
