"""The energy office's Grafana dashboards, built in Python, querying InfluxDB in InfluxQL
(docs/grafana.md lists every panel, its query and the figure it shows).

InfluxQL because it runs everywhere the energy office may run InfluxDB: 1.8+ natively, 2.x
through a DBRP mapping, 3.x natively (3.x does not run Flux at all). The database is the
datasource's (deploy/grafana/provisioning/datasources/), not a dashboard variable.

Two kinds of data (docs/influxdb.md):

- **The central's figures** (`figure`, `figure_energy`, `figure_item`): everything the
  institution is scored on — kgce, kgce/m², kgce/person, m³/person, targets, points, score,
  coverage, projection, 分项, PUE, AC compliance, after-hours share on the working calendar
  with holidays and 调休. Panels only *select* these; no panel recomputes a figure, so
  Grafana and the central's API and reports cannot disagree.
- **Raw telemetry** (`sample`, `interval`, `event`): live power, setpoints, fill levels,
  alarms and edge activity, for looking, never for scoring.

Conventions: `$timeFilter`, `$__interval` are Grafana's macros; `$institution` (a tag of the
figures) and `$site` (a tag of the telemetry) are multi-value variables matched as regexes;
daily buckets are local days (`tz('Asia/Shanghai')`); live power sums meters *without* a
分项 item tag (main meters), so sub-meters are never added to a building's total.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    StackingConfig,
)
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BigValueColorMode,
    BigValueGraphMode,
    GraphDrawStyle,
    GraphThresholdsStyleMode,
    StackingMode,
)

from central import codes
from central.compliance import LABELS, POINTS, ScoreKey
from central.figures_export import ALL
from central.grafana.carbon import carbon_panels
from central.grafana.sdk import (
    Dashboard,
    DashboardModel,
    InfluxQL,
    QueryVariable,
    Threshold,
    ThresholdsConfig,
    ThresholdsMode,
    bargauge,
    datasource_ref,
    gauge,
    piechart,
    stat,
    table,
    timeseries,
)

TAGS = ["greenguard"]
TZ = "Asia/Shanghai"
POWER_POINT = "power_w"

# -- InfluxQL building blocks ----------------------------------------------------------------

_SITE = """"site" =~ /^$site$/"""
_INST = """"institution" =~ /^$institution$/"""
_LOCAL_DAYS = f"GROUP BY time(1d) fill(none) tz('{TZ}')"


def _figures(period: str, *, building: str | None = ALL) -> str:
    """WHERE clause of the central's figures of `period` (day | ytd); `building=None`: every
    building (not the institution-wide point)."""
    which = f""""building" = '{building}'""" if building else f""""building" != '{ALL}'"""
    return f"""{_INST} AND {which} AND "period" = '{period}' AND $timeFilter"""


def _local_days(*tags: str) -> str:
    """GROUP BY local day (and tags)."""
    extra = "".join(f', "{t}"' for t in tags)
    return f"GROUP BY time(1d){extra} fill(none) tz('{TZ}')"


def _thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=v, color=c) for v, c in steps])


def _last() -> ReduceDataOptions:
    return ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def _sum_all() -> ReduceDataOptions:
    return ReduceDataOptions().calcs(["sum"]).values(False)


# -- variables -------------------------------------------------------------------------------


def _institution_variable() -> QueryVariable:
    return (QueryVariable("institution").label("单位 Institution").datasource(datasource_ref())
            .query('SHOW TAG VALUES FROM "figure" WITH KEY = "institution"')
            .multi(False).include_all(False)
            .description("Institution whose figures the central published"))


def _site_variable() -> QueryVariable:
    return (QueryVariable("site").label("站点 Site").datasource(datasource_ref())
            .query('SHOW TAG VALUES FROM "sample" WITH KEY = "site"')
            .multi(True).include_all(True).all_value(".*")
            .description("Sites to show; All shows every site in the database"))


def _dashboard(uid: str, title: str, description: str, *, time_from: str = "now-24h",
               figures: bool = False, telemetry: bool = False) -> Dashboard:
    dash = (Dashboard(title).uid(uid).description(description).tags(TAGS)
            .timezone("browser").time(time_from, "now").refresh("1m").editable())
    if figures:
        dash = dash.with_variable(_institution_variable())
    if telemetry:
        dash = dash.with_variable(_site_variable())
    return dash


# -- 考核总览: the compliance dashboard ---------------------------------------------------------


def _short(key: ScoreKey) -> str:
    return {ScoreKey.KGCE_PER_M2: "单位面积能耗", ScoreKey.KGCE_PER_PERSON: "人均能耗",
            ScoreKey.WATER_M3_PER_PERSON: "人均用水"}[key]


def compliance() -> DashboardModel:
    ytd = _figures("ytd")
    dash = _dashboard("gg-compliance", "考核总览 Compliance",
                      "The figures the institution is scored on (seed 004 item 1: kgce/m² "
                      "3.5 points, kgce/person 3.5, m³ water/person 3), as the central "
                      "computes them: year to date against the pro-rated target, the score, "
                      "the data coverage and, after 30 days of data, the projection.",
                      time_from="now/y", figures=True)
    for key in ScoreKey:
        k = key.value
        zh, _en, unit = LABELS[key]
        dash = dash.with_panel(
            gauge.Panel().title(f"{zh}（{POINTS[key]:g} 分）").description(
                f"Year-to-date {unit} as a share of the target pro-rated to the covered part "
                f"of the year (100 % = on target; figure.{k} ÷ figure.prorated_target_{k}). "
                "Green: met so far.")
            .with_target(InfluxQL(
                f'SELECT last("{k}") / last("prorated_target_{k}") * 100 AS "{_short(key)}" '
                f'FROM "figure" WHERE {ytd}'))
            .datasource(datasource_ref()).unit("percent").min(0).max(150).decimals(0)
            .reduce_options(_last())
            .thresholds(_thresholds((None, "green"), (90, "orange"), (100, "red")))
            .height(7).span(6))
    dash = (dash
            .with_panel(stat.Panel().title("得分 Score").description(
                "Points of item 1 out of 10: each figure's points when its projection "
                "meets the target; provisional (预计) until year end; no score with "
                "数据不足，暂不预测 until the data covers 30 days (projection_ready = 0).")
                .with_target(InfluxQL(
                    f'SELECT last("projection_ready") AS "可预测", '
                    f'last("score") AS "得分", last("points_kgce_per_m2") AS "单位面积", '
                    f'last("points_kgce_per_person") AS "人均能耗", '
                    f'last("points_water_m3_per_person") AS "人均用水" '
                    f'FROM "figure" WHERE {ytd}'))
                .datasource(datasource_ref()).decimals(1).reduce_options(_last())
                .no_value("数据不足，暂不预测")
                .graph_mode(BigValueGraphMode.NONE).color_mode(BigValueColorMode.VALUE)
                .height(7).span(6))
            .with_panel(stat.Panel().title("年累计 Year to date").description(
                "Year-to-date figures and their annual targets.")
                .with_target(InfluxQL(
                    'SELECT ' + ", ".join(
                        f'last("{key.value}") AS "{_short(key)}", '
                        f'last("target_{key.value}") AS "{_short(key)} 目标"'
                        for key in ScoreKey) + f' FROM "figure" WHERE {ytd}'))
                .datasource(datasource_ref()).decimals(2).reduce_options(_last())
                .graph_mode(BigValueGraphMode.NONE).height(6).span(12))
            .with_panel(stat.Panel().title("数据覆盖 Coverage").description(
                "Days of the year covered by data, and the covered share of the year. No "
                "projection before 30 days (projection_ready = 0).")
                .with_target(InfluxQL(
                    f'SELECT last("coverage_days") AS "覆盖天数", '
                    f'last("coverage_fraction") * 100 AS "覆盖 %", '
                    f'last("projection_ready") AS "可预测" FROM "figure" WHERE {ytd}'))
                .datasource(datasource_ref()).decimals(1).reduce_options(_last())
                .graph_mode(BigValueGraphMode.NONE).height(6).span(6))
            .with_panel(stat.Panel().title("预计年末 Projection").description(
                "Projected year-end figures (预计); empty with 数据不足，暂不预测 until the "
                "data covers 30 days.")
                .with_target(InfluxQL(
                    'SELECT last("projection_ready") AS "可预测", ' + ", ".join(
                        f'last("projected_{key.value}") AS "{_short(key)} 预计"'
                        for key in ScoreKey) + f' FROM "figure" WHERE {ytd}'))
                .datasource(datasource_ref()).decimals(2).reduce_options(_last())
                .no_value("数据不足，暂不预测")
                .graph_mode(BigValueGraphMode.NONE).height(6).span(6)))
    for key in ScoreKey:
        k = key.value
        zh, _en, unit = LABELS[key]
        dash = dash.with_panel(
            timeseries.Panel().title(f"{zh} 年累计趋势").description(
                f"Year to date at the end of each day ({unit}) against the target pro-rated "
                "over the year: a straight line to the annual target.")
            .with_target(InfluxQL(
                f'SELECT last("{k}") AS "年累计", last("prorated_target_{k}") AS "目标进度" '
                f'FROM "figure" WHERE {ytd} {_LOCAL_DAYS}'))
            .datasource(datasource_ref()).decimals(2).fill_opacity(10).height(8).span(8))
    dash = (dash
            .with_panel(table.Panel().title("各建筑 Buildings").description(
                "Year to date per building: kgce, kgce/m², electricity, after-hours share "
                "on the working calendar, AC setpoint compliance, PUE.")
                .with_target(InfluxQL(
                    'SELECT last("kgce") AS "kgce", last("kgce_per_m2") AS "kgce/m²", '
                    'last("electricity_kwh") AS "用电 kWh", '
                    'last("after_hours_share") * 100 AS "非工作时间 %", '
                    'last("ac_compliance") * 100 AS "空调合规 %", last("pue") AS "PUE" '
                    f'FROM "figure" WHERE {_figures("ytd", building=None)} GROUP BY "building"',
                    table=True))
                .datasource(datasource_ref()).decimals(2).height(8).span(16))
            .with_panel(piechart.Panel().title("能源结构 kgce by energy").description(
                "Year-to-date kgce per energy type and source (metered, bill, vehicle).")
                .with_target(InfluxQL(
                    'SELECT last("kgce") FROM "figure_energy" '
                    f'WHERE {ytd} GROUP BY "energy", "source"', alias="$tag_energy $tag_source"))
                .datasource(datasource_ref()).unit("kgce").reduce_options(_last())
                .height(8).span(8)))
    for panel in carbon_panels(ytd):  # CO₂ (central/grafana/carbon.py)
        dash = dash.with_panel(panel)
    return dash.build()


# -- the other dashboards --------------------------------------------------------------------


def overview() -> DashboardModel:
    main_power = f""""point" = '{POWER_POINT}' AND "item" = ''"""
    dash = _dashboard("gg-overview", "总览 Overview",
                      "Energy this year by building (the central's figures) and live power "
                      "(main meters).", figures=True, telemetry=True)
    dash = (dash
            .with_panel(stat.Panel().title("今年累计用电").description(
                "Electricity since 1 January, all main meters, kWh (figure.electricity_kwh, "
                "year to date).")
                .with_target(InfluxQL(f'SELECT last("electricity_kwh") FROM "figure" '
                                      f'WHERE {_figures("ytd")}'))
                .datasource(datasource_ref()).unit("kwatth").decimals(0)
                .reduce_options(_last()).graph_mode(BigValueGraphMode.NONE)
                .color_mode(BigValueColorMode.VALUE).height(6).span(6))
            .with_panel(stat.Panel().title("实时总功率").description(
                "Sum of the newest power_w sample of every main meter in the range, W.")
                .with_target(InfluxQL(
                    'SELECT sum("last") FROM (SELECT last("value") FROM "sample" '
                    f'WHERE {_SITE} AND {main_power} AND $timeFilter GROUP BY "edge", "device")'))
                .datasource(datasource_ref()).unit("watt").decimals(0)
                .reduce_options(_last()).graph_mode(BigValueGraphMode.NONE)
                .height(6).span(6))
            .with_panel(bargauge.Panel().title("今年累计用电（按建筑）").description(
                "Electricity since 1 January per building, kWh (figure, year to date).")
                .with_target(InfluxQL(
                    f'SELECT last("electricity_kwh") FROM "figure" '
                    f'WHERE {_figures("ytd", building=None)} GROUP BY "building"',
                    alias="$tag_building"))
                .datasource(datasource_ref()).unit("kwatth").decimals(0)
                .reduce_options(_last()).display_mode(BarGaugeDisplayMode.GRADIENT)
                .height(6).span(12))
            .with_panel(timeseries.Panel().title("实时功率（按建筑）").description(
                "Live power per building: mean per interval of each main meter, summed, W.")
                .with_target(InfluxQL(
                    'SELECT sum("mean") FROM (SELECT mean("value") FROM "sample" '
                    f'WHERE {_SITE} AND {main_power} AND $timeFilter '
                    'GROUP BY time($__interval), "building", "device") '
                    'WHERE $timeFilter GROUP BY time($__interval), "building" fill(none)',
                    alias="$tag_building"))
                .datasource(datasource_ref()).unit("watt").fill_opacity(10)
                .height(9).span(24)))
    return dash.build()


def energy() -> DashboardModel:
    dash = _dashboard("gg-energy", "能耗分项 Energy by item and building",
                      "Electricity by 分项 item and by building, kgce by energy type and PUE, "
                      "per local day, as the central computes them.", time_from="now-30d",
                      figures=True)
    day_all, day_b = _figures("day"), _figures("day", building=None)
    dash = (dash
            .with_panel(piechart.Panel().title("分项用电").description(
                "Electricity per 分项 item over the range, kWh (figure_item.kwh).")
                .with_target(InfluxQL(f'SELECT sum("kwh") FROM "figure_item" WHERE {day_all} '
                                      'GROUP BY "label"', alias="$tag_label"))
                .datasource(datasource_ref()).unit("kwatth").reduce_options(_sum_all())
                .height(9).span(10))
            .with_panel(timeseries.Panel().title("分项日用电").description(
                "Daily electricity per 分项 item, kWh, stacked.")
                .with_target(InfluxQL(f'SELECT sum("kwh") FROM "figure_item" WHERE {day_all} '
                                      f'{_local_days("label")}', alias="$tag_label"))
                .datasource(datasource_ref()).unit("kwatth")
                .draw_style(GraphDrawStyle.BARS).fill_opacity(80)
                .stacking(StackingConfig().mode(StackingMode.NORMAL)).height(9).span(14))
            .with_panel(bargauge.Panel().title("各建筑用电").description(
                "Electricity per building over the range, kWh (figure.electricity_kwh).")
                .with_target(InfluxQL(f'SELECT sum("electricity_kwh") FROM "figure" '
                                      f'WHERE {day_b} GROUP BY "building"',
                                      alias="$tag_building"))
                .datasource(datasource_ref()).unit("kwatth").decimals(0)
                .reduce_options(_last()).display_mode(BarGaugeDisplayMode.GRADIENT)
                .height(9).span(10))
            .with_panel(timeseries.Panel().title("各建筑日用电").description(
                "Daily electricity per building, kWh.")
                .with_target(InfluxQL(f'SELECT sum("electricity_kwh") FROM "figure" '
                                      f'WHERE {day_b} {_local_days("building")}',
                                      alias="$tag_building"))
                .datasource(datasource_ref()).unit("kwatth")
                .draw_style(GraphDrawStyle.BARS).fill_opacity(80).height(9).span(14))
            .with_panel(timeseries.Panel().title("日综合能耗（按能源）").description(
                "Daily kgce per energy type and source, stacked.")
                .with_target(InfluxQL(f'SELECT sum("kgce") FROM "figure_energy" '
                                      f'WHERE {day_all} {_local_days("energy", "source")}',
                                      alias="$tag_energy $tag_source"))
                .datasource(datasource_ref()).unit("kgce")
                .draw_style(GraphDrawStyle.BARS).fill_opacity(80)
                .stacking(StackingConfig().mode(StackingMode.NORMAL)).height(8).span(12))
            .with_panel(timeseries.Panel().title("数据中心 PUE").description(
                "PUE per day: data-centre electricity ÷ IT load (figure.pue); empty without "
                "a data-centre meter.")
                .with_target(InfluxQL(f'SELECT last("pue") FROM "figure" WHERE {day_b} '
                                      f'{_local_days("building")}', alias="$tag_building"))
                .datasource(datasource_ref()).decimals(2).height(8).span(12)))
    return dash.build()


def ac_compliance() -> DashboardModel:
    ac = codes.policy().ac
    dash = _dashboard("gg-ac", "空调温度合规 AC setpoint compliance",
                      f"AC setpoints against the policy limits (summer ≥ "
                      f"{ac.summer_min_setpoint_c:g} °C when cooling, winter ≤ "
                      f"{ac.winter_max_setpoint_c:g} °C when heating). The compliance "
                      "share is the central's: time running compliant ÷ time running in a "
                      "judged mode.", figures=True, telemetry=True, time_from="now-7d")
    setpoint = f""""point" = 'setpoint_c' AND {_SITE} AND $timeFilter"""
    dash = (dash
            .with_panel(timeseries.Panel().title("空调设定温度").description(
                "setpoint_c samples per AC unit (last per interval); dashed lines at the "
                "winter maximum and the summer minimum.")
                .with_target(InfluxQL(f'SELECT last("value") FROM "sample" WHERE {setpoint} '
                                      'GROUP BY time($__interval), "building", "device" '
                                      "fill(none)", alias="$tag_building $tag_device"))
                .datasource(datasource_ref()).unit("celsius")
                .thresholds(_thresholds((None, "blue"), (ac.winter_max_setpoint_c, "green"),
                                        (ac.summer_min_setpoint_c, "red")))
                .thresholds_style(GraphThresholdsStyleConfig().mode(
                    GraphThresholdsStyleMode.DASHED))
                .height(9).span(16))
            .with_panel(stat.Panel().title("空调合规率（年累计）").description(
                "Share of judged AC running time with a compliant setpoint, year to date, "
                "% (figure.ac_compliance).")
                .with_target(InfluxQL(f'SELECT last("ac_compliance") * 100 FROM "figure" '
                                      f'WHERE {_figures("ytd")}'))
                .datasource(datasource_ref()).unit("percent").decimals(1)
                .reduce_options(_last())
                .thresholds(_thresholds((None, "red"), (80, "orange"), (95, "green")))
                .color_mode(BigValueColorMode.BACKGROUND).height(9).span(8))
            .with_panel(timeseries.Panel().title("每日空调合规率").description(
                "AC setpoint compliance per day and building, %.")
                .with_target(InfluxQL(f'SELECT last("ac_compliance") * 100 FROM "figure" '
                                      f'WHERE {_figures("day", building=None)} '
                                      f'{_local_days("building")}', alias="$tag_building"))
                .datasource(datasource_ref()).unit("percent").min(0).max(100)
                .height(8).span(12))
            .with_panel(table.Panel().title("空调当前状态").description(
                "Newest setpoint and mode per AC unit in the range.")
                .with_target(InfluxQL(f'SELECT last("value") AS "设定温度" FROM "sample" '
                                      f'WHERE {setpoint} GROUP BY "building", "device"',
                                      table=True))
                .with_target(InfluxQL(
                    'SELECT last("text") AS "模式" FROM "sample" WHERE "point" = \'mode\' '
                    f'AND {_SITE} AND $timeFilter GROUP BY "building", "device"', "B",
                    table=True))
                .datasource(datasource_ref()).height(8).span(12)))
    return dash.build()


def after_hours() -> DashboardModel:
    hours = codes.policy().working_hours
    dash = _dashboard("gg-after-hours", "非工作时间能耗 After-hours energy",
                      "Electricity of main meters outside working hours "
                      f"({hours.start}–{hours.end} by default, per institution in its config) "
                      "on the Chinese working calendar: weekends, public holidays and 调休 "
                      "make-up days, as the central computes it.", time_from="now-7d",
                      figures=True)
    day_b = _figures("day", building=None)
    dash = (dash
            .with_panel(timeseries.Panel().title("非工作时间日用电").description(
                "Electricity outside working hours per day and building, kWh "
                "(figure.after_hours_kwh).")
                .with_target(InfluxQL(f'SELECT sum("after_hours_kwh") FROM "figure" '
                                      f'WHERE {day_b} {_local_days("building")}',
                                      alias="$tag_building"))
                .datasource(datasource_ref()).unit("kwatth")
                .draw_style(GraphDrawStyle.BARS).fill_opacity(80)
                .stacking(StackingConfig().mode(StackingMode.NORMAL)).height(9).span(16))
            .with_panel(bargauge.Panel().title("非工作时间占比").description(
                "Share of each building's main-meter electricity used outside working "
                "time over the range, % (Σ after_hours_kwh ÷ Σ electricity_kwh).")
                .with_target(InfluxQL(
                    'SELECT sum("after_hours_kwh") / sum("electricity_kwh") * 100 '
                    f'FROM "figure" WHERE {day_b} GROUP BY "building"',
                    alias="$tag_building"))
                .datasource(datasource_ref()).unit("percent").decimals(1).min(0).max(100)
                .reduce_options(_last())
                .thresholds(_thresholds((None, "green"), (30, "orange"), (50, "red")))
                .display_mode(BarGaugeDisplayMode.GRADIENT).height(9).span(8)))
    return dash.build()


_ALARMS = {"alarm.leak": "漏水告警", "alarm.lights_on": "人走灯未关",
           "alarm.bin_full": "垃圾桶满溢"}
_EVENT_COLUMNS = '"data", "site", "edge", "device", "name", "severity"'


def alarms() -> DashboardModel:
    dash = _dashboard("gg-alarms", "告警 Alarms",
                      "Alarms raised by the edges' rules: water leaks, lights left on, "
                      "full bins (event measurement, names alarm.*).", time_from="now-7d",
                      figures=True, telemetry=True)
    dash = dash.with_panel(
        stat.Panel().title("未关闭漏水告警").description(
            "Leak alarms open now (figure.open_leaks of today, from the central's one "
            "alarm model).")
        .with_target(InfluxQL(f'SELECT last("open_leaks") FROM "figure" '
                              f'WHERE {_figures("day")}'))
        .datasource(datasource_ref()).decimals(0).reduce_options(_last())
        .color_mode(BigValueColorMode.BACKGROUND)
        .thresholds(_thresholds((None, "green"), (1, "red"))).height(5).span(6))
    for name, title in _ALARMS.items():
        dash = dash.with_panel(
            stat.Panel().title(title).description(
                f"Number of {name} events with state raised in the range.")
            .with_target(InfluxQL(
                f'SELECT count("seq") FROM "event" WHERE {_SITE} AND "name" = \'{name}\' '
                'AND "data" =~ /"state": "raised"/ AND $timeFilter'))
            .datasource(datasource_ref()).decimals(0).reduce_options(_last())
            .no_value("0").color_mode(BigValueColorMode.BACKGROUND)
            .thresholds(_thresholds((None, "green"), (1, "red"))).height(5).span(6))
    dash = (dash
            .with_panel(timeseries.Panel().title("每小时告警数").description(
                "alarm.* events per hour and kind (raised and cleared).")
                .with_target(InfluxQL(
                    f'SELECT count("seq") FROM "event" WHERE {_SITE} AND "name" =~ /^alarm\\./ '
                    'AND $timeFilter GROUP BY time(1h), "name" fill(none)', alias="$tag_name"))
                .datasource(datasource_ref()).draw_style(GraphDrawStyle.BARS)
                .fill_opacity(80).stacking(StackingConfig().mode(StackingMode.NORMAL))
                .height(8).span(24))
            .with_panel(table.Panel().title("最近告警").description(
                "The 200 newest alarm events; data holds state, rule and the readings.")
                .with_target(InfluxQL(
                    f'SELECT {_EVENT_COLUMNS} FROM "event" WHERE {_SITE} AND '
                    '"name" =~ /^alarm\\./ AND $timeFilter ORDER BY time DESC LIMIT 200',
                    table=True))
                .datasource(datasource_ref()).height(10).span(24)))
    return dash.build()


def waste() -> DashboardModel:
    fill = f""""point" = 'fill_pct' AND {_SITE} AND $timeFilter"""
    dash = _dashboard("gg-waste", "垃圾分类 Waste fill levels",
                      "Fill level of every bin (fill_pct samples of bin-fill sensors).",
                      telemetry=True)
    fill_thresholds = _thresholds((None, "green"), (80, "orange"), (90, "red"))
    dash = (dash
            .with_panel(bargauge.Panel().title("当前满溢度").description(
                "Newest fill level per bin in the range, %.")
                .with_target(InfluxQL(f'SELECT last("value") FROM "sample" WHERE {fill} '
                                      'GROUP BY "building", "device"',
                                      alias="$tag_building $tag_device"))
                .datasource(datasource_ref()).unit("percent").min(0).max(100).decimals(0)
                .reduce_options(_last()).thresholds(fill_thresholds)
                .display_mode(BarGaugeDisplayMode.LCD).height(10).span(10))
            .with_panel(timeseries.Panel().title("满溢度变化").description(
                "Fill level per bin over time (maximum per interval), %.")
                .with_target(InfluxQL(f'SELECT max("value") FROM "sample" WHERE {fill} '
                                      'GROUP BY time($__interval), "device" fill(none)',
                                      alias="$tag_device"))
                .datasource(datasource_ref()).unit("percent").min(0).max(100)
                .thresholds(fill_thresholds)
                .thresholds_style(GraphThresholdsStyleConfig().mode(
                    GraphThresholdsStyleMode.DASHED)).height(10).span(14)))
    return dash.build()


def edge_health() -> DashboardModel:
    dash = _dashboard("gg-edges", "边缘节点 Edge health",
                      "Is every edge delivering? How long each edge and meter has been "
                      "silent (the central's status), samples per interval, and warning "
                      "events (device offline, outbox, commands).", figures=True,
                      telemetry=True)
    dash = (dash
            .with_panel(table.Panel().title("静默时长").description(
                "Seconds since each edge was last heard and each meter last delivered an "
                "interval, as the central saw it at its last status tick (status.silent_s).")
                .with_target(InfluxQL(
                    f'SELECT last("silent_s") AS "静默 s" FROM "status" WHERE {_INST} '
                    'AND $timeFilter GROUP BY "kind", "edge", "device"', table=True))
                .datasource(datasource_ref()).unit("s")
                .thresholds(_thresholds((None, "green"), (900, "orange"), (3600, "red")))
                .height(8).span(10))
            .with_panel(timeseries.Panel().title("上报速率").description(
                "Samples stored per interval and edge; a gap means nothing arrived.")
                .with_target(InfluxQL(
                    f'SELECT count("value") FROM "sample" WHERE {_SITE} AND $timeFilter '
                    'GROUP BY time($__interval), "edge" fill(0)', alias="$tag_edge"))
                .datasource(datasource_ref()).draw_style(GraphDrawStyle.BARS)
                .fill_opacity(60).height(8).span(14))
            .with_panel(table.Panel().title("设备与节点事件").description(
                "The 200 newest warning events other than alarms.")
                .with_target(InfluxQL(
                    f'SELECT {_EVENT_COLUMNS} FROM "event" WHERE {_SITE} AND '
                    '"severity" != \'info\' AND "name" !~ /^alarm\\./ AND $timeFilter '
                    'ORDER BY time DESC LIMIT 200', table=True))
                .datasource(datasource_ref()).height(10).span(24)))
    return dash.build()


# -- 区域总览: every institution of the central, ranked --------------------------------------

_DISTRICT = ('"institution" =~ /^$institution$/ AND "type" =~ /^$type$/ AND '
             '"district" =~ /^$district$/')


def _tag_variable(name: str, label: str, description: str) -> QueryVariable:
    return (QueryVariable(name).label(label).datasource(datasource_ref())
            .query(f'SHOW TAG VALUES FROM "figure" WITH KEY = "{name}"')
            .multi(True).include_all(True).all_value(".*").description(description))


def district() -> DashboardModel:
    """The bureau's ranking (the API's /api/v1/district, from the published figures)."""
    ytd = f"""{_DISTRICT} AND "building" = '{ALL}' AND "period" = 'ytd' AND $timeFilter"""
    dash = (Dashboard("区域总览 District").uid("gg-district").description(
        "Every institution whose figures the central published, side by side: year-to-date "
        "kgce per m² and per person, water per person, score, coverage and open alarms, "
        "filtered by institution type and district (the figure tags type and district).")
        .tags(TAGS).timezone("browser").time("now/y", "now").refresh("5m").editable()
        .with_variable(_tag_variable("type", "类型 Type", "Institution types to show"))
        .with_variable(_tag_variable("district", "区县 District",
                                     "Districts to show (institution.district, else its "
                                     "region_code; — where the file names neither)"))
        .with_variable(_tag_variable("institution", "单位 Institution",
                                     "Institutions to show; All: every one")))
    dash = (dash
            .with_panel(table.Panel().title("单位排名 Ranking").description(
                "One row per institution: the last year-to-date figures the central "
                "published (figure, building _all, period ytd); sort by any column. The "
                "score is absent until the projection is ready.")
                .with_target(InfluxQL(
                    'SELECT last("kgce_per_m2") AS "kgce/m²", last("kgce_per_person") AS '
                    '"kgce/人", last("water_m3_per_person") AS "水 m³/人", last("score") AS '
                    '"得分", last("coverage_days") AS "覆盖天数", last("open_alarms") AS '
                    f'"告警" FROM "figure" WHERE {ytd} GROUP BY "institution", "type", '
                    '"district"', table=True))
                .datasource(datasource_ref()).height(12).span(24))
            .with_panel(bargauge.Panel().title("单位面积能耗排名").description(
                "Year-to-date kgce per m² of each institution (figure.kgce_per_m2).")
                .with_target(InfluxQL(
                    f'SELECT last("kgce_per_m2") FROM "figure" WHERE {ytd} '
                    'GROUP BY "institution"', alias="$tag_institution"))
                .datasource(datasource_ref()).decimals(2)
                .reduce_options(_last()).display_mode(BarGaugeDisplayMode.GRADIENT)
                .height(10).span(12))
            .with_panel(bargauge.Panel().title("人均能耗排名").description(
                "Year-to-date kgce per energy user of each institution "
                "(figure.kgce_per_person).")
                .with_target(InfluxQL(
                    f'SELECT last("kgce_per_person") FROM "figure" WHERE {ytd} '
                    'GROUP BY "institution"', alias="$tag_institution"))
                .datasource(datasource_ref()).decimals(1)
                .reduce_options(_last()).display_mode(BarGaugeDisplayMode.GRADIENT)
                .height(10).span(12)))
    return dash.build()


@dataclass(frozen=True, slots=True)
class DashboardSpec:
    slug: str  # file name in deploy/grafana/dashboards/
    build: Callable[[], DashboardModel]


DASHBOARDS: tuple[DashboardSpec, ...] = (
    DashboardSpec("compliance", compliance),
    DashboardSpec("overview", overview),
    DashboardSpec("energy", energy),
    DashboardSpec("ac-compliance", ac_compliance),
    DashboardSpec("after-hours", after_hours),
    DashboardSpec("alarms", alarms),
    DashboardSpec("waste", waste),
    DashboardSpec("edge-health", edge_health),
    DashboardSpec("district", district),
)
