"""Grafana against a real InfluxDB 1.x: a simulated week of a whole institution is written
through the central's telemetry adapter (v1 mode) and stored in the SQL store, the
central publishes its figures, then every dashboard panel query and every alert rule query
runs with Grafana's macros expanded, and the compliance dashboard shows the API's figures.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from central.api import Tenant, create_app
from central.config import TelemetrySettings
from central.figures_export import (
    ALL,
    FiguresPublisher,
    PublishingTelemetry,
    Tenancy,
    projection_ready,
    status_points,
)
from central.grafana.alerts import RULES, AlertRule
from central.grafana.export import dashboards
from central.influx import InfluxTelemetry
from central.institution import InstitutionConfig
from central.metrics import building_summary, compliance_for
from central.period import Period
from central.profile import CoefficientProfile, load_profile
from central.store import Store
from central.telemetry import TelemetryBatch
from protocols.clock import VirtualClock
from tests.grafana_macros import expand
from tests.influxd import Influxd
from tests.integration import week
from tests.unit.central.central_helpers import authenticator, bearer

DB = "greenguard"
NOW = week.END_MS / 1000 - 1800  # half an hour before the week's end


@dataclass
class Loaded:
    server: Influxd
    store: Store
    institution: InstitutionConfig
    profile: CoefficientProfile
    publisher: FiguresPublisher

    def select(self, q: str) -> list[dict[str, Any]]:
        results = self.server.query(q, db=DB)
        for r in results:
            assert "error" not in r, f"{r['error']} in {q}"
        return [s for r in results for s in r.get("series", [])]


@pytest.fixture(scope="module")
def loaded(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    influxd.create_database(DB)
    config = week.institution()
    profile = load_profile(config.institution.coefficient_profile)
    store = Store(tmp_path_factory.mktemp("week") / "central.sqlite")
    influx = InfluxTelemetry(TelemetrySettings(url=influxd.url, org="-", bucket=DB,
                                               api="v1"), "")
    publisher = FiguresPublisher(store, [Tenancy(config, profile)], influx)
    telemetry = PublishingTelemetry(influx, publisher)
    for b in week.batches(config):  # as ingest does: telemetry first, then the SQL store
        telemetry.write(TelemetryBatch(week.SITE, b.stream, b.after, b.seq, b.records))
        store.store_batch(b, week.SITE, now=NOW)
    publisher.publish(NOW)
    try:
        yield Loaded(influxd, store, config, profile, publisher)
    finally:
        influx.close()
        store.close()


def test_published_ytd_figures_are_the_compliance_report(loaded: Loaded) -> None:
    report = compliance_for(loaded.store, loaded.institution, loaded.profile, now=NOW,
                            year=2026)
    [series] = loaded.select(
        f"SELECT last(*) FROM figure WHERE building = '{ALL}' AND period = 'ytd'")
    row = dict(zip(series["columns"], series["values"][0], strict=True))
    assert report.score is None  # a week of data: too little to score (数据不足)
    assert "last_score" not in row
    assert row["last_coverage_fraction"] == pytest.approx(report.coverage_fraction)
    for item in report.items:
        assert row[f"last_{item.key.value}"] == pytest.approx(item.ytd)
        assert row[f"last_target_{item.key.value}"] == pytest.approx(item.target)
        assert f"last_points_{item.key.value}" not in row  # no points without a projection
    assert not projection_ready(report)  # a week of data: no projection
    assert row["last_projection_ready"] == 0.0
    assert "last_projected_kgce_per_m2" not in row


def test_republishing_rewrites_the_same_points(loaded: Loaded) -> None:
    def count() -> int:
        [s] = loaded.select("SELECT count(kgce) FROM figure")
        return int(s["values"][0][1])

    before = count()
    loaded.publisher.touch("edge-a", [week.START_MS])  # a late batch for the first day
    assert loaded.publisher.publish(NOW) > 0
    assert count() == before == 7 * 3 * 2  # 7 local days × 3 scopes (all, A, B) × day/ytd


# -- every panel query, with Grafana's macros expanded ----------------------------------------

VARIABLES = {"institution": ["week-school"], "site": [week.SITE], "type": ["school"],
             "district": ["—"]}
NOW_MS = int(NOW * 1000)


def _range(dashboard: dict[str, Any]) -> tuple[int, int]:
    """The dashboard's default time range, ending at NOW."""
    start = dashboard["time"]["from"]
    if start == "now/y":
        return int(Period.year(2026, week.TZ).start * 1000), NOW_MS
    m = re.fullmatch(r"now-(\d+)([hd])", start)
    assert m, start
    span = int(m.group(1)) * (3_600_000 if m.group(2) == "h" else 86_400_000)
    return NOW_MS - span, NOW_MS


def _panel_queries() -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for slug, data in dashboards().items():
        for panel in data["panels"]:
            for target in panel.get("targets", []):
                out.append((slug, panel["title"], target["query"], data))
    return out


PANEL_QUERIES = _panel_queries()


def _values(series: list[dict[str, Any]]) -> list[Any]:
    return [v for s in series for row in s["values"] for v in row[1:] if v is not None]


@pytest.mark.parametrize(("slug", "title", "query", "dashboard"), PANEL_QUERIES,
                         ids=[f"{s}:{t}" for s, t, _q, _d in PANEL_QUERIES])
def test_every_panel_query_returns_rows(loaded: Loaded, slug: str, title: str, query: str,
                                        dashboard: dict[str, Any]) -> None:
    start, end = _range(dashboard)
    expanded = expand(query, from_ms=start, to_ms=end, variables=VARIABLES)
    assert _values(loaded.select(expanded)), f"{slug} / {title}: no rows for {expanded}"


def test_every_variable_query_lists_its_values(loaded: Loaded) -> None:
    for data in dashboards().values():
        for var in data["templating"]["list"]:
            [series] = loaded.select(var["query"])
            assert [v[1] for v in series["values"]] == VARIABLES[var["name"]]


def _panel(slug: str, title: str) -> tuple[list[dict[str, Any]], list[str]]:
    data = dashboards()[slug]
    [panel] = [p for p in data["panels"] if p["title"] == title]
    start, end = _range(data)
    out = [expand(t["query"], from_ms=start, to_ms=end, variables=VARIABLES)
           for t in panel["targets"]]
    return panel["targets"], out


@pytest.fixture(scope="module")
def api_compliance(loaded: Loaded) -> dict[str, Any]:
    """GET /compliance of the central's API at NOW."""
    auth = authenticator()
    app = create_app(loaded.store, [Tenant(loaded.institution, loaded.profile)],
                     VirtualClock(NOW), auth)

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://test") as client:
            return await client.get("/api/v1/institutions/week-school/compliance",
                                    headers=bearer(auth))

    answer = asyncio.run(get())
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _last_row(loaded: Loaded, slug: str, title: str) -> dict[str, Any]:
    _targets, queries = _panel(slug, title)
    [series] = loaded.select(queries[0])
    return dict(zip(series["columns"], series["values"][-1], strict=True))


def test_the_compliance_dashboard_shows_the_api_figures(loaded: Loaded,
                                                        api_compliance: dict[str, Any]
                                                        ) -> None:
    items = {i["key"]: i for i in api_compliance["items"]}
    score = _last_row(loaded, "compliance", "得分 Score")
    # A week of data: the API has no score (数据不足) and Grafana shows none either.
    assert api_compliance["score"] is None
    assert api_compliance["projection"]["status"] == "insufficient"
    assert score["可预测"] == 0
    assert (score["得分"], score["单位面积"], score["人均用水"]) == (None, None, None)
    gauge_row = _last_row(loaded, "compliance", "单位建筑面积能耗（3.5 分）")
    item = items["kgce_per_m2"]
    assert gauge_row["单位面积能耗"] == pytest.approx(
        item["ytd"] / item["prorated_target"] * 100)
    ytd = _last_row(loaded, "compliance", "年累计 Year to date")
    assert ytd["人均能耗"] == pytest.approx(items["kgce_per_person"]["ytd"])
    assert ytd["人均用水 目标"] == pytest.approx(items["water_m3_per_person"]["target"])
    coverage = _last_row(loaded, "compliance", "数据覆盖 Coverage")
    assert coverage["覆盖 %"] == pytest.approx(api_compliance["coverage_fraction"] * 100)
    trend = _last_row(loaded, "compliance", "人均用水量 年累计趋势")
    assert trend["年累计"] == pytest.approx(items["water_m3_per_person"]["ytd"])
    projection = _last_row(loaded, "compliance", "预计年末 Projection")
    assert projection["可预测"] == 0.0
    assert projection["单位面积能耗 预计"] is None  # a week of data: 数据不足，暂不预测
    _t, [buildings] = _panel("compliance", "各建筑 Buildings")
    rows = {s["tags"]["building"]: dict(zip(s["columns"], s["values"][0], strict=True))
            for s in loaded.select(buildings)}
    for b in ("A", "B"):
        summary = building_summary(loaded.store, None, loaded.institution, loaded.profile,
                                   start=Period.year(2026, week.TZ).start, end=NOW, building=b)
        assert rows[b]["kgce/m²"] == pytest.approx(summary.kgce_per_m2)
        assert rows[b]["kgce"] == pytest.approx(summary.energy_kgce)


# -- alert rules --------------------------------------------------------------------------------


def _alert_values(loaded: Loaded, rule: AlertRule) -> dict[str, float | None]:
    """The rule's query as Grafana runs it at NOW: series (tags) → last value."""
    query = expand(rule.query, from_ms=NOW_MS - rule.range_s * 1000, to_ms=NOW_MS,
                   variables={})
    out: dict[str, float | None] = {}
    for s in loaded.select(query):
        for i, column in enumerate(s["columns"][1:], start=1):
            key = ",".join([*s.get("tags", {}).values(), column])
            out[key] = s["values"][-1][i]
    return out


def test_alert_rules_query_the_real_influxdb(loaded: Loaded) -> None:
    rules = {r.uid: r for r in RULES}
    leak = _alert_values(loaded, rules["gg-leak-open"])
    assert leak == {"week-school,last": 1.0}  # the leak raised on day 4 is still open
    edges = _alert_values(loaded, rules["gg-edge-offline"])
    assert set(edges) == {"edge-a,week-school,last", "edge-b,week-school,last"}
    assert all(v is not None and v < rules["gg-edge-offline"].above for v in edges.values())
    meters = _alert_values(loaded, rules["gg-meter-silent"])
    assert len(meters) == len(loaded.institution.meters)
    assert all(v is not None and v < rules["gg-meter-silent"].above for v in meters.values())
    # A week of data: no projection, so nothing to compare with the targets (no alert).
    projection = _alert_values(loaded, rules["gg-projection-over-target"])
    assert all(v is None for v in projection.values())


def test_a_silent_meter_crosses_the_alert_threshold(loaded: Loaded) -> None:
    """Status a day and a half after the week's end: every meter and edge is silent."""
    later = NOW + 1.5 * 86_400
    loaded.publisher.sink.write_lines([p.line() for p in status_points(
        loaded.store, loaded.institution, now=later)])
    rule = next(r for r in RULES if r.uid == "gg-meter-silent")
    query = expand(rule.query, from_ms=int(later * 1000) - 600_000, to_ms=int(later * 1000),
                   variables={})
    values = [v for s in loaded.select(query) for v in (s["values"][-1][1],)]
    assert len(values) == len(loaded.institution.meters)
    assert all(v > rule.above for v in values)


def test_after_hours_panels_follow_the_working_calendar(loaded: Loaded) -> None:
    """Monday 6 April 2026 is 清明 (a day off): all of its electricity is after hours, though
    a weekday; Tuesday 7 April is a working day."""
    series = loaded.select(
        f"SELECT last(\"after_hours_share\") FROM \"figure\" WHERE \"building\" = '{ALL}' "
        f"AND \"period\" = 'day' AND time >= {week.START_MS + 5 * 86_400_000}ms "
        "GROUP BY time(1d) fill(none) tz('Asia/Shanghai')")
    [[_, monday], [_, tuesday]] = series[0]["values"]
    assert monday == pytest.approx(1.0)
    assert 0 < tuesday < 0.9
