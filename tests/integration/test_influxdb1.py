"""The telemetry adapter's v1 mode (`api: v1`) against a real InfluxDB 1.x: Debian's
influxdb has no /api/v2/write, so line protocol goes to /write and reads are InfluxQL."""

from __future__ import annotations

import pytest

from central.config import TelemetrySettings
from central.errors import StoreError
from central.influx import InfluxTelemetry
from central.institution import MeterKey
from central.telemetry import SeriesPoint, TelemetryBatch
from protocols.wire import IntervalRecord, Sample, StreamId
from tests.influxd import Influxd

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _adapter(server: Influxd, db: str) -> InfluxTelemetry:
    return InfluxTelemetry(TelemetrySettings(url=server.url, org="-", bucket=db, api="v1",
                                             attempts=1, cooldown_s=0), "")


def _batch() -> TelemetryBatch:
    records = (
        Sample(1, T0, "m1", "power_w", 100.0, "W"),
        Sample(2, T0 + 30_000, "m1", "power_w", 300.0, "W"),
        Sample(3, T0 + 60_000, "ac1", "mode", "cool", ""),
        IntervalRecord(4, "m1", "energy_import_kwh", T0, 900, 0.5, "kWh"),
    )
    return TelemetryBatch("site-中", StreamId("edge-1", 1), 0, 4, records)


def test_v1_write_is_read_back_and_a_rewrite_changes_nothing(influxd: Influxd) -> None:
    influxd.create_database("v1w")
    store = _adapter(influxd, "v1w")
    try:
        store.write(_batch())
        store.write(_batch())  # a resent batch rewrites its own points
        assert store.series(MeterKey("edge-1", "m1", "power_w"), T0, T0 + 120_000,
                            60_000) == [SeriesPoint(T0, 200.0)]
        latest = store.latest(["power_w", "mode"])
        assert latest[MeterKey("edge-1", "m1", "power_w")].value == 300.0
        assert latest[MeterKey("edge-1", "ac1", "mode")].value == "cool"
        rows = influxd.query("SELECT count(delta) FROM interval", db="v1w")
        assert rows[0]["series"][0]["values"][0][1] == 1
        store.ping()
    finally:
        store.close()


def test_v1_write_to_a_missing_database_raises_without_retrying(influxd: Influxd) -> None:
    store = _adapter(influxd, "no_such_db")
    try:
        with pytest.raises(StoreError, match="HTTP 404"):
            store.write(_batch())
        assert store.write_errors == 1
    finally:
        store.close()
