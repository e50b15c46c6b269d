"""The energy office's Grafana dashboards, built in Python against the InfluxDB schema of
docs/influxdb.md (measurements `sample`, `interval`, `event`).

Every figure here is a view for people; the figures the institution is scored on come from
the central's compliance engine on the SQL store (the built-in page and the reports). Where
a dashboard approximates (after-hours energy knows weekdays and working hours but not the
调休 calendar) its description says so.

Conventions in the Flux below:

- building totals sum the meters *without* a 分项 item code (main meters); the 分项 views sum
  the meters *with* one, so sub-meters are never added to a building's total;
- `${bucket}` and `${site:regex}` are dashboard variables; limits and working hours are
  constant variables generated from central/codes/policy.yaml, so the dashboards and the
  compliance engine start from the same numbers.
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
from central.grafana.sdk import (
    ConstantVariable,
    Dashboard,
    DashboardModel,
    Flux,
    QueryVariable,
    TextBoxVariable,
    Threshold,
    ThresholdsConfig,
    ThresholdsMode,
    bargauge,
    datasource_ref,
    piechart,
    stat,
    table,
    timeseries,
)

DEFAULT_BUCKET = "greenguard"
TAGS = ["greenguard"]
ENERGY_POINT = "energy_import_kwh"
POWER_POINT = "power_w"

# -- Flux building blocks --------------------------------------------------------------------

_RANGE = "range(start: v.timeRangeStart, stop: v.timeRangeStop)"
_SITE = "filter(fn: (r) => r.site =~ /^${site:regex}$/)"


def _from(range_: str = _RANGE) -> str:
    return f'from(bucket: "${{bucket}}")\n  |> {range_}\n  |> {_SITE}'


def _energy(main: bool, range_: str = _RANGE) -> str:
    which = "not exists r.item" if main else "exists r.item"
    return (f"{_from(range_)}\n"
            f'  |> filter(fn: (r) => r._measurement == "interval" and r._field == "delta" '
            f'and r.point == "{ENERGY_POINT}" and {which})')


def _item_labels() -> str:
    """A Flux dictionary code → "code 中文名" from central/codes/items.yaml."""
    pairs = ", ".join(f'"{code}": "{code} {label.zh}"'
                      for code, label in codes.items().electricity_items.items())
    return f"labels = [{pairs}]"


_LOCAL_TIME = ('import "date"\nimport "timezone"\n\n'
               'option location = timezone.location(name: "${tz}")\n')


def _thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=v, color=c) for v, c in steps])


def _sum_all() -> ReduceDataOptions:
    return ReduceDataOptions().calcs(["sum"]).values(False)


def _last() -> ReduceDataOptions:
    return ReduceDataOptions().calcs(["lastNotNull"]).values(False)


# -- variables -------------------------------------------------------------------------------


def _variables(dash: Dashboard, bucket: str, *, local_time: bool = False) -> Dashboard:
    policy = codes.policy()
    dash = dash.with_variable(
        TextBoxVariable("bucket").label("Bucket").default_value(bucket)
        .description("InfluxDB bucket the central writes telemetry to"))
    dash = dash.with_variable(
        QueryVariable("site").label("站点 Site").datasource(datasource_ref())
        .query('import "influxdata/influxdb/schema"\n\n'
               'schema.tagValues(bucket: "${bucket}", tag: "site")')
        .multi(True).include_all(True).all_value(".*")
        .description("Sites (institutions) to show; All shows every site in the bucket"))
    if local_time:
        h0, h1 = (int(t.split(":")[0]) for t in (policy.working_hours.start,
                                                  policy.working_hours.end))
        dash = dash.with_variable(ConstantVariable("tz").value("Asia/Shanghai"))
        dash = dash.with_variable(ConstantVariable("work_start_h").value(str(h0)))
        dash = dash.with_variable(ConstantVariable("work_end_h").value(str(h1)))
    return dash


def _dashboard(uid: str, title: str, description: str, bucket: str, *,
               time_from: str = "now-24h", local_time: bool = False) -> Dashboard:
    dash = (Dashboard(title).uid(uid).description(description).tags(TAGS)
            .timezone("browser").time(time_from, "now").refresh("1m").editable())
    return _variables(dash, bucket, local_time=local_time)


# -- dashboards ------------------------------------------------------------------------------


def overview(bucket: str = DEFAULT_BUCKET) -> DashboardModel:
    ytd = 'range(start: date.truncate(t: now(), unit: 1y, location: location))'
    ytd_prelude = _LOCAL_TIME + "\n"
    ytd_by_building = (f"{ytd_prelude}{_energy(True, ytd)}\n"
                       '  |> group(columns: ["building"])\n  |> sum()\n'
                       '  |> map(fn: (r) => ({_value: r._value, building: r.building}))')
    ytd_total = (f"{ytd_prelude}{_energy(True, ytd)}\n"
                 "  |> group()\n  |> sum()")
    power_now = (f"{_from('range(start: -15m)')}\n"
                 f'  |> filter(fn: (r) => r._measurement == "sample" and r._field == "value" '
                 f'and r.point == "{POWER_POINT}" and not exists r.item)\n'
                 "  |> last()\n  |> group()\n  |> sum()")
    power_by_building = (
        f"{_from()}\n"
        f'  |> filter(fn: (r) => r._measurement == "sample" and r._field == "value" '
        f'and r.point == "{POWER_POINT}" and not exists r.item)\n'
        "  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n"
        '  |> group(columns: ["building", "_time"])\n  |> sum()\n'
        '  |> group(columns: ["building"])\n'
        '  |> map(fn: (r) => ({_time: r._time, _value: r._value, building: r.building}))')
    dash = _dashboard("gg-overview", "总览 Overview",
                      "Energy this year by building and live power (main meters).", bucket,
                      local_time=True)
    dash = (dash
            .with_panel(stat.Panel().title("今年累计用电").description(
                "Electricity used since 1 January (local time), all main meters, kWh.")
                .with_target(Flux(ytd_total)).datasource(datasource_ref()).unit("kwatth")
                .decimals(0).reduce_options(_last()).graph_mode(BigValueGraphMode.NONE)
                .color_mode(BigValueColorMode.VALUE).height(6).span(6))
            .with_panel(stat.Panel().title("实时总功率").description(
                "Sum of the newest power_w sample of every main meter (last 15 minutes).")
                .with_target(Flux(power_now)).datasource(datasource_ref()).unit("watt")
                .decimals(0).reduce_options(_last()).graph_mode(BigValueGraphMode.NONE)
                .height(6).span(6))
            .with_panel(bargauge.Panel().title("今年累计用电（按建筑）").description(
                "Electricity since 1 January per building, kWh (meters without an item code).")
                .with_target(Flux(ytd_by_building)).datasource(datasource_ref())
                .unit("kwatth").decimals(0).reduce_options(_last())
                .display_mode(BarGaugeDisplayMode.GRADIENT).height(6).span(12))
            .with_panel(timeseries.Panel().title("实时功率（按建筑）").description(
                "Live power per building: mean per window of each main meter, summed.")
                .with_target(Flux(power_by_building)).datasource(datasource_ref())
                .unit("watt").fill_opacity(10).height(9).span(24)))
    return dash.build()


def energy(bucket: str = DEFAULT_BUCKET) -> DashboardModel:
    by_item = (f'import "dict"\n\n{_item_labels()}\n\n{_energy(False)}\n'
               '  |> group(columns: ["item"])\n  |> sum()\n'
               '  |> map(fn: (r) => ({_value: r._value, '
               'item: dict.get(dict: labels, key: r.item, default: r.item)}))')
    by_item_daily = (f'import "dict"\n{_LOCAL_TIME}\n{_item_labels()}\n\n{_energy(False)}\n'
                     '  |> map(fn: (r) => ({r with '
                     'item: dict.get(dict: labels, key: r.item, default: r.item)}))\n'
                     '  |> group(columns: ["item"])\n'
                     "  |> aggregateWindow(every: 1d, fn: sum, createEmpty: false, "
                     "location: location)")
    by_building = (f"{_energy(True)}\n"
                   '  |> group(columns: ["building"])\n  |> sum()\n'
                   '  |> map(fn: (r) => ({_value: r._value, building: r.building}))')
    by_building_daily = (f"{_LOCAL_TIME}\n{_energy(True)}\n"
                         '  |> group(columns: ["building"])\n'
                         "  |> aggregateWindow(every: 1d, fn: sum, createEmpty: false, "
                         "location: location)")
    dash = _dashboard("gg-energy", "能耗分项 Energy by item and building",
                      "Electricity by 分项 item code (sub-meters) and by building (main "
                      "meters), from interval records; days are local days.", bucket,
                      time_from="now-30d", local_time=True)
    dash = (dash
            .with_panel(piechart.Panel().title("分项用电").description(
                "Electricity per 分项 item code over the selected range, kWh.")
                .with_target(Flux(by_item)).datasource(datasource_ref()).unit("kwatth")
                .reduce_options(_sum_all()).height(9).span(10))
            .with_panel(timeseries.Panel().title("分项日用电").description(
                "Daily electricity per 分项 item, kWh, stacked.")
                .with_target(Flux(by_item_daily)).datasource(datasource_ref())
                .unit("kwatth").draw_style(GraphDrawStyle.BARS).fill_opacity(80)
                .stacking(StackingConfig().mode(StackingMode.NORMAL)).height(9).span(14))
            .with_panel(bargauge.Panel().title("各建筑用电").description(
                "Electricity per building over the selected range, kWh.")
                .with_target(Flux(by_building)).datasource(datasource_ref())
                .unit("kwatth").decimals(0).reduce_options(_last())
                .display_mode(BarGaugeDisplayMode.GRADIENT).height(9).span(10))
            .with_panel(timeseries.Panel().title("各建筑日用电").description(
                "Daily electricity per building, kWh.")
                .with_target(Flux(by_building_daily)).datasource(datasource_ref())
                .unit("kwatth").draw_style(GraphDrawStyle.BARS).fill_opacity(80)
                .height(9).span(14)))
    return dash.build()


def ac_compliance(bucket: str = DEFAULT_BUCKET) -> DashboardModel:
    ac = codes.policy().ac
    cool = " or ".join(f'r.mode == "{m}"' for m in ac.cooling_modes) or "false"
    heat = " or ".join(f'r.mode == "{m}"' for m in ac.heating_modes) or "false"
    setpoints = (f"{_from()}\n"
                 '  |> filter(fn: (r) => r._measurement == "sample" and r._field == "value" '
                 'and r.point == "setpoint_c")\n'
                 '  |> group(columns: ["building", "device"])\n'
                 "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)")
    state = (f"{_from()}\n"
             '  |> filter(fn: (r) => r._measurement == "sample" and '
             '(r.point == "setpoint_c" and r._field == "value" or '
             'r.point == "mode" and r._field == "text"))\n'
             '  |> group(columns: ["building", "device", "point"])\n  |> last()\n'
             '  |> map(fn: (r) => ({building: r.building, device: r.device, point: r.point, '
             "_time: r._time, _value: string(v: r._value)}))\n"
             '  |> group(columns: ["device"])\n'
             '  |> pivot(rowKey: ["device", "building"], columnKey: ["point"], '
             'valueColumn: "_value")\n'
             "  |> map(fn: (r) => ({r with status: if not exists r.mode or not exists "
             'r.setpoint_c then "未判定 unknown"\n'
             f"    else if {cool} then (if float(v: r.setpoint_c) >= float(v: "
             '"${summer_min}") then "合规 ok" else "违规 too cold")\n'
             f"    else if {heat} then (if float(v: r.setpoint_c) <= float(v: "
             '"${winter_max}") then "合规 ok" else "违规 too warm")\n'
             '    else "不判定 not judged"}))\n'
             "  |> group()")
    too_cold = (f"{_from()}\n"
                '  |> filter(fn: (r) => r._measurement == "sample" and r._field == "value" '
                'and r.point == "setpoint_c")\n'
                "  |> group()\n"
                '  |> map(fn: (r) => ({_time: r._time, _value: if r._value < float(v: '
                '"${summer_min}") then 1.0 else 0.0}))\n'
                "  |> mean()\n  |> map(fn: (r) => ({_value: r._value * 100.0}))")
    dash = _dashboard("gg-ac", "空调温度合规 AC setpoint compliance",
                      f"AC setpoints against the policy limits (summer ≥ "
                      f"{ac.summer_min_setpoint_c:g} °C when cooling, winter ≤ "
                      f"{ac.winter_max_setpoint_c:g} °C when heating). The compliance "
                      "share the institution is scored on is computed by the central.",
                      bucket)
    dash = (dash
            .with_variable(ConstantVariable("summer_min").value(f"{ac.summer_min_setpoint_c:g}"))
            .with_variable(ConstantVariable("winter_max").value(f"{ac.winter_max_setpoint_c:g}"))
            .with_panel(timeseries.Panel().title("空调设定温度").description(
                "setpoint_c samples per AC unit; dashed lines at the winter maximum and the "
                "summer minimum.")
                .with_target(Flux(setpoints)).datasource(datasource_ref()).unit("celsius")
                .thresholds(_thresholds((None, "blue"), (ac.winter_max_setpoint_c, "green"),
                                        (ac.summer_min_setpoint_c, "red")))
                .thresholds_style(GraphThresholdsStyleConfig().mode(
                    GraphThresholdsStyleMode.DASHED))
                .height(9).span(16))
            .with_panel(stat.Panel().title("低于夏季下限的样本").description(
                "Share of setpoint samples below the summer minimum, any mode, %.")
                .with_target(Flux(too_cold)).datasource(datasource_ref()).unit("percent")
                .decimals(1).reduce_options(_last())
                .thresholds(_thresholds((None, "green"), (5, "orange"), (20, "red")))
                .color_mode(BigValueColorMode.BACKGROUND).height(9).span(8))
            .with_panel(table.Panel().title("空调当前状态").description(
                "Newest setpoint and mode per AC unit and whether that state complies.")
                .with_target(Flux(state)).datasource(datasource_ref()).height(9).span(24)))
    return dash.build()


def after_hours(bucket: str = DEFAULT_BUCKET) -> DashboardModel:
    off = ("  |> filter(fn: (r) => date.weekDay(t: r._time) == 0 or "
           "date.weekDay(t: r._time) == 6 or\n"
           '    date.hour(t: r._time) < int(v: "${work_start_h}") or '
           'date.hour(t: r._time) >= int(v: "${work_end_h}"))')
    daily = (f"{_LOCAL_TIME}\n{_energy(True)}\n{off}\n"
             '  |> group(columns: ["building"])\n'
             "  |> aggregateWindow(every: 1d, fn: sum, createEmpty: false, "
             "location: location)")
    share = (f"{_LOCAL_TIME}\n{_energy(True)}\n"
             '  |> map(fn: (r) => ({building: r.building, _value: r._value, off: '
             'if date.weekDay(t: r._time) == 0 or date.weekDay(t: r._time) == 6 or '
             'date.hour(t: r._time) < int(v: "${work_start_h}") or '
             'date.hour(t: r._time) >= int(v: "${work_end_h}") then r._value else 0.0}))\n'
             '  |> group(columns: ["building"])\n'
             '  |> reduce(identity: {total: 0.0, off: 0.0}, fn: (r, accumulator) => '
             "({total: accumulator.total + r._value, off: accumulator.off + r.off}))\n"
             '  |> map(fn: (r) => ({building: r.building, _value: if r.total > 0.0 then '
             "r.off / r.total * 100.0 else 0.0}))")
    dash = _dashboard("gg-after-hours", "非工作时间能耗 After-hours energy",
                      "Electricity of main meters outside working hours "
                      "(${work_start_h}:00–${work_end_h}:00, Monday to Friday, local time). "
                      "Approximation: public holidays and 调休 make-up days are not known "
                      "here; the central's after-hours share uses the working calendar.",
                      bucket, time_from="now-7d", local_time=True)
    dash = (dash
            .with_panel(timeseries.Panel().title("非工作时间日用电").description(
                "Electricity outside working hours per day and building, kWh.")
                .with_target(Flux(daily)).datasource(datasource_ref()).unit("kwatth")
                .draw_style(GraphDrawStyle.BARS).fill_opacity(80)
                .stacking(StackingConfig().mode(StackingMode.NORMAL)).height(9).span(16))
            .with_panel(bargauge.Panel().title("非工作时间占比").description(
                "Share of each building's electricity used outside working hours, %.")
                .with_target(Flux(share)).datasource(datasource_ref()).unit("percent")
                .decimals(1).min(0).max(100).reduce_options(_last())
                .thresholds(_thresholds((None, "green"), (30, "orange"), (50, "red")))
                .display_mode(BarGaugeDisplayMode.GRADIENT).height(9).span(8)))
    return dash.build()


_ALARMS = {"alarm.leak": "漏水告警", "alarm.lights_on": "人走灯未关",
           "alarm.bin_full": "垃圾桶满溢"}


def alarms(bucket: str = DEFAULT_BUCKET) -> DashboardModel:
    def raised(name: str) -> str:
        return (f'import "strings"\n\n{_from()}\n'
                f'  |> filter(fn: (r) => r._measurement == "event" and r._field == "data" '
                f'and r.name == "{name}")\n'
                '  |> filter(fn: (r) => strings.containsStr(v: r._value, '
                'substr: "\\"state\\": \\"raised\\""))\n'
                "  |> group()\n  |> count()")

    recent = (f"{_from()}\n"
              '  |> filter(fn: (r) => r._measurement == "event" and r._field == "data" '
              "and r.name =~ /^alarm\\./)\n"
              "  |> group()\n"
              '  |> sort(columns: ["_time"], desc: true)\n  |> limit(n: 200)\n'
              '  |> keep(columns: ["_time", "site", "edge", "device", "name", "severity", '
              '"_value"])\n'
              '  |> rename(columns: {_value: "data"})')
    per_hour = (f"{_from()}\n"
                '  |> filter(fn: (r) => r._measurement == "event" and r._field == "seq" '
                "and r.name =~ /^alarm\\./)\n"
                '  |> group(columns: ["name"])\n'
                "  |> aggregateWindow(every: 1h, fn: count, createEmpty: false)")
    dash = _dashboard("gg-alarms", "告警 Alarms",
                      "Alarms raised by the edges' rules: water leaks, lights left on, "
                      "full bins (event measurement, names alarm.*).", bucket,
                      time_from="now-7d")
    for name, title in _ALARMS.items():
        dash = dash.with_panel(
            stat.Panel().title(title).description(
                f"Number of {name} events with state raised in the selected range.")
            .with_target(Flux(raised(name))).datasource(datasource_ref()).decimals(0)
            .reduce_options(_last()).color_mode(BigValueColorMode.BACKGROUND)
            .thresholds(_thresholds((None, "green"), (1, "red"))).height(5).span(8))
    dash = (dash
            .with_panel(timeseries.Panel().title("每小时告警数").description(
                "alarm.* events per hour and kind (raised and cleared).")
                .with_target(Flux(per_hour)).datasource(datasource_ref())
                .draw_style(GraphDrawStyle.BARS).fill_opacity(80)
                .stacking(StackingConfig().mode(StackingMode.NORMAL)).height(8).span(24))
            .with_panel(table.Panel().title("最近告警").description(
                "The 200 newest alarm events; data holds state, rule and the readings.")
                .with_target(Flux(recent)).datasource(datasource_ref()).height(10).span(24)))
    return dash.build()


def waste(bucket: str = DEFAULT_BUCKET) -> DashboardModel:
    fill_now = (f"{_from()}\n"
                '  |> filter(fn: (r) => r._measurement == "sample" and r._field == "value" '
                'and r.point == "fill_pct")\n'
                '  |> group(columns: ["building", "device"])\n  |> last()\n'
                '  |> map(fn: (r) => ({_value: r._value, device: r.device, '
                'building: r.building}))')
    fill_series = (f"{_from()}\n"
                   '  |> filter(fn: (r) => r._measurement == "sample" and r._field == "value" '
                   'and r.point == "fill_pct")\n'
                   '  |> group(columns: ["device"])\n'
                   "  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)")
    dash = _dashboard("gg-waste", "垃圾分类 Waste fill levels",
                      "Fill level of every bin (fill_pct samples of bin-fill sensors).",
                      bucket)
    fill_thresholds = _thresholds((None, "green"), (80, "orange"), (90, "red"))
    dash = (dash
            .with_panel(bargauge.Panel().title("当前满溢度").description(
                "Newest fill level per bin, %.")
                .with_target(Flux(fill_now)).datasource(datasource_ref()).unit("percent")
                .min(0).max(100).decimals(0).reduce_options(_last())
                .thresholds(fill_thresholds).display_mode(BarGaugeDisplayMode.LCD)
                .height(10).span(10))
            .with_panel(timeseries.Panel().title("满溢度变化").description(
                "Fill level per bin over time (maximum per window), %.")
                .with_target(Flux(fill_series)).datasource(datasource_ref()).unit("percent")
                .min(0).max(100).thresholds(fill_thresholds)
                .thresholds_style(GraphThresholdsStyleConfig().mode(
                    GraphThresholdsStyleMode.DASHED)).height(10).span(14)))
    return dash.build()


def edge_health(bucket: str = DEFAULT_BUCKET) -> DashboardModel:
    last_seen = (f"{_from()}\n"
                 '  |> filter(fn: (r) => r._measurement == "sample")\n'
                 '  |> keep(columns: ["_time", "site", "edge"])\n'
                 '  |> group(columns: ["site", "edge"])\n'
                 '  |> max(column: "_time")\n'
                 '  |> map(fn: (r) => ({site: r.site, edge: r.edge, last_seen: r._time, '
                 "minutes_ago: float(v: int(v: now()) - int(v: r._time)) / 60000000000.0}))\n"
                 "  |> group()")
    rate = (f"{_from()}\n"
            '  |> filter(fn: (r) => r._measurement == "sample")\n'
            '  |> group(columns: ["edge"])\n'
            "  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: true)")
    problems = (f"{_from()}\n"
                '  |> filter(fn: (r) => r._measurement == "event" and r._field == "data" '
                'and r.severity != "info" and r.name !~ /^alarm\\./)\n'
                "  |> group()\n"
                '  |> sort(columns: ["_time"], desc: true)\n  |> limit(n: 200)\n'
                '  |> keep(columns: ["_time", "site", "edge", "device", "name", "severity", '
                '"_value"])\n'
                '  |> rename(columns: {_value: "data"})')
    dash = _dashboard("gg-edges", "边缘节点 Edge health",
                      "Is every edge delivering? Newest sample per edge, samples per "
                      "window, and warning events (device offline, outbox, commands).",
                      bucket)
    dash = (dash
            .with_panel(table.Panel().title("最近上报").description(
                "Newest sample per edge and how many minutes ago it was taken.")
                .with_target(Flux(last_seen)).datasource(datasource_ref())
                .thresholds(_thresholds((None, "green"), (15, "orange"), (60, "red")))
                .height(8).span(10))
            .with_panel(timeseries.Panel().title("上报速率").description(
                "Samples stored per window and edge; a gap means nothing arrived.")
                .with_target(Flux(rate)).datasource(datasource_ref())
                .draw_style(GraphDrawStyle.BARS).fill_opacity(60).height(8).span(14))
            .with_panel(table.Panel().title("设备与节点事件").description(
                "The 200 newest warning events other than alarms.")
                .with_target(Flux(problems)).datasource(datasource_ref()).height(10)
                .span(24)))
    return dash.build()


@dataclass(frozen=True, slots=True)
class DashboardSpec:
    slug: str  # file name in deploy/grafana/dashboards/
    build: Callable[[str], DashboardModel]


DASHBOARDS: tuple[DashboardSpec, ...] = (
    DashboardSpec("overview", overview),
    DashboardSpec("energy", energy),
    DashboardSpec("ac-compliance", ac_compliance),
    DashboardSpec("after-hours", after_hours),
    DashboardSpec("alarms", alarms),
    DashboardSpec("waste", waste),
    DashboardSpec("edge-health", edge_health),
)
