"""Grafana against a real InfluxDB 1.x: a simulated week of a whole institution is written
through the central's telemetry adapter (v1 mode) and stored in the SQL store, the
central publishes its figures, then every dashboard panel query and every alert rule query
runs with Grafana's macros expanded, and the compliance dashboard shows the API's figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from central.config import TelemetrySettings
from central.figures_export import (
    ALL,
    FiguresPublisher,
    PublishingTelemetry,
    Tenancy,
    projection_ready,
)
from central.influx import InfluxTelemetry
from central.institution import InstitutionConfig
from central.metrics import compliance_for
from central.profile import CoefficientProfile, load_profile
from central.store import Store
from central.telemetry import TelemetryBatch
from tests.influxd import Influxd
from tests.integration import week

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
    assert row["last_score"] == pytest.approx(report.score)
    assert row["last_coverage_fraction"] == pytest.approx(report.coverage_fraction)
    for item in report.items:
        assert row[f"last_{item.key.value}"] == pytest.approx(item.ytd)
        assert row[f"last_target_{item.key.value}"] == pytest.approx(item.target)
        assert row[f"last_points_{item.key.value}"] == pytest.approx(item.points)
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
