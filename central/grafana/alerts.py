"""Grafana alert rules as code: what must wake someone (docs/grafana.md "Alert rules").

Written by `greenguard grafana export` as a Grafana file-provisioning document
(deploy/grafana/provisioning/alerting/greenguard.yaml) beside the dashboards; `--check`
guards it like the dashboards' JSON. Each rule is one InfluxQL query (refId A) over the
central's published figures and status (docs/influxdb.md), reduced to its last value (B)
and compared with a threshold (C), one alert instance per series (institution, edge,
meter). The queries use `$timeFilter`, which Grafana fills from the rule's relative time
range, so a test can run them against a real InfluxDB like the panels'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from central.figures_export import ALL
from central.grafana.push import FOLDER_TITLE
from central.grafana.sdk import DATASOURCE_UID

EDGE_OFFLINE_S = 900  # an edge silent for 15 minutes is offline
METER_SILENT_S = 86_400  # a meter without an interval for a day


@dataclass(frozen=True, slots=True)
class AlertRule:
    uid: str
    title: str
    query: str
    range_s: int  # the relative time range the query reads
    above: float  # fires when the last value is above this
    for_: str  # how long it must hold before firing
    no_data: str  # NoData, Alerting or OK when the query returns nothing
    severity: str
    summary: str


RULES: tuple[AlertRule, ...] = (
    AlertRule(
        "gg-leak-open", "漏水告警未关闭 Leak alarm open",
        'SELECT last("open_leaks") FROM "figure" WHERE "building" = \'' + ALL + '\' '
        'AND "period" = \'day\' AND $timeFilter GROUP BY "institution"',
        2 * 86_400, 0, "0s", "OK", "critical",
        "{{ $labels.institution }}: a water leak alarm is open (alarm.leak raised, not "
        "cleared)."),
    AlertRule(
        "gg-edge-offline", "边缘节点离线 Edge offline",
        'SELECT last("silent_s") FROM "status" WHERE "kind" = \'edge\' AND $timeFilter '
        'GROUP BY "institution", "edge"',
        600, EDGE_OFFLINE_S, "5m", "Alerting", "warning",
        "{{ $labels.institution }} / {{ $labels.edge }}: nothing heard for more than "
        f"{EDGE_OFFLINE_S // 60} minutes (no status at all: the central is not publishing)."),
    AlertRule(
        "gg-meter-silent", "表计一天无数据 Meter without data for a day",
        'SELECT last("silent_s") FROM "status" WHERE "kind" = \'meter\' AND $timeFilter '
        'GROUP BY "institution", "edge", "device"',
        600, METER_SILENT_S, "0s", "NoData", "warning",
        "{{ $labels.institution }} / {{ $labels.edge }} / {{ $labels.device }}: no "
        "interval for more than a day."),
    AlertRule(
        "gg-projection-over-target", "预计超出年度目标 Projection over target",
        'SELECT last("projected_kgce_per_m2") / last("target_kgce_per_m2") AS "kgce_per_m2", '
        'last("projected_kgce_per_person") / last("target_kgce_per_person") '
        'AS "kgce_per_person", last("projected_water_m3_per_person") / '
        'last("target_water_m3_per_person") AS "water_m3_per_person" FROM "figure" '
        'WHERE "building" = \'' + ALL + '\' AND "period" = \'ytd\' AND $timeFilter '
        'GROUP BY "institution"',
        2 * 86_400, 1.0, "1h", "OK", "warning",
        "{{ $labels.institution }}: a year-end projection is over its annual target "
        "(ratio {{ $values.B }}). No projection, so no alert, before 30 days of data."),
)


def _rule(rule: AlertRule) -> dict[str, Any]:
    return {
        "uid": rule.uid, "title": rule.title, "condition": "C",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": rule.range_s, "to": 0},
             "datasourceUid": DATASOURCE_UID,
             "model": {"refId": "A", "query": rule.query, "rawQuery": True,
                       "resultFormat": "time_series", "intervalMs": 60_000,
                       "maxDataPoints": 43_200}},
            {"refId": "B", "datasourceUid": "__expr__",
             "model": {"refId": "B", "type": "reduce", "expression": "A",
                       "reducer": "last", "settings": {"mode": "dropNN"}}},
            {"refId": "C", "datasourceUid": "__expr__",
             "model": {"refId": "C", "type": "threshold", "expression": "B",
                       "conditions": [{"evaluator": {"type": "gt",
                                                     "params": [rule.above]}}]}},
        ],
        "noDataState": rule.no_data, "execErrState": "Error", "for": rule.for_,
        "annotations": {"summary": rule.summary},
        "labels": {"severity": rule.severity, "service": "greenguard"},
    }


def provisioning() -> dict[str, Any]:
    """The alert rules as Grafana's alerting provisioning document."""
    return {"apiVersion": 1, "groups": [{
        "orgId": 1, "name": "greenguard", "folder": FOLDER_TITLE, "interval": "1m",
        "rules": [_rule(r) for r in RULES]}]}
