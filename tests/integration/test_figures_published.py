"""The running central publishes its figures: MQTT ingest with an InfluxDB 1.x telemetry
store (`api: v1`) recomputes the figures of the days a batch touched and writes them next
to the telemetry, where the dashboards read them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiomqtt
import pytest
import yaml

from central.config import CentralSettings, TelemetrySettings
from central.ingest import IngestStats
from central.service import run_central
from central.store import Store
from protocols.clock import SystemClock
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    Channel,
    IntervalRecord,
    Signed,
    StreamId,
    decode,
    encode,
    topic,
)
from simulators.cli import main
from tests.conftest import Broker, free_port
from tests.influxd import Influxd
from tests.integration import week
from tests.unit.central.central_helpers import TEST_SECRET


@pytest.mark.slow
async def test_a_batch_arriving_is_published_as_figures(
        tmp_path: Path, mosquitto: Broker, influxd: Influxd,
        monkeypatch: pytest.MonkeyPatch) -> None:
    influxd.create_database("published")
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump({
        "institution": {"id": "live", "name": "示范中学", "type": "school"},
        "buildings": [{"id": "A", "name": "教学楼", "floor_area_m2": 1000}],
        "headcount": {"staff": 100},
        "meters": [{"edge": "edge-1", "device": "m1", "building": "A",
                    "energy": "electricity", "role": "main"}],
    }, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("GG_TEST_INFLUX_TOKEN", "-")
    settings = CentralSettings(
        institution_config=config, database=tmp_path / "central.sqlite",
        mqtt_host=mosquitto.host, mqtt_port=mosquitto.port, mqtt_client_id="central-figures",
        http_port=free_port(), auth_secret=TEST_SECRET,
        telemetry=TelemetrySettings(url=influxd.url, org="-", bucket="published", api="v1",
                                    token_env="GG_TEST_INFLUX_TOKEN", figures_every_s=0.2))
    hour_ago = (int(time.time()) - 3600) // 900 * 900 * 1000
    records = tuple(IntervalRecord(i + 1, "m1", "energy_import_kwh", hour_ago + i * 900_000,
                                   900, 10.0, "kWh") for i in range(2))
    ready = asyncio.Event()
    task = asyncio.create_task(run_central(settings, SystemClock(), ready=ready,
                                           stats=IngestStats()))
    try:
        async with asyncio.timeout(30):
            await ready.wait()
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="edge") as c:
            await c.subscribe(topic("school", "edge-1", Channel.ACK), qos=1)
            # Like a real edge, announce the epoch with a birth first (admission.py).
            await c.publish(topic("school", "edge-1", Channel.STATE),
                            encode(Birth(StreamId("edge-1", 1), hour_ago, True, "test")), qos=1)
            await c.publish(topic("school", "edge-1", Channel.TELEMETRY), encode(Batch(
                StreamId("edge-1", 1), 0, hour_ago, True, records)), qos=1)
            async with asyncio.timeout(30):
                envelope = decode((await anext(aiter(c.messages))).payload)
            assert isinstance(envelope, Signed)  # the central signs every ack
            ack = decode(envelope.msg.encode())
            assert isinstance(ack, Ack)
            assert ack.upto == 2
        query = ("SELECT sum(\"kgce\") FROM \"figure\" WHERE \"building\" = '_all' "
                 "AND \"period\" = 'day' AND time > now() - 3d")
        kgce = None
        async with asyncio.timeout(60):
            while kgce is None or kgce == 0:
                await asyncio.sleep(0.2)
                series = influxd.query(query, db="published")[0].get("series", [])
                kgce = series[0]["values"][0][1] if series else None
        # 20 kWh of electricity at the national profile's 0.1229 kgce/kWh
        assert kgce == pytest.approx(20 * 0.1229, rel=1e-6)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_publish_backfills_every_day_since(tmp_path: Path, influxd: Influxd,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    influxd.create_database("backfill")
    config = tmp_path / "institution.yaml"
    config.write_text(yaml.safe_dump(week.INSTITUTION, allow_unicode=True), encoding="utf-8")
    db = tmp_path / "central.sqlite"
    with Store(db) as store:
        for b in week.batches(week.institution()):
            store.store_batch(b, week.SITE, now=0)
    for name, value in {"URL": influxd.url, "ORG": "-", "BUCKET": "backfill", "API": "v1",
                        "TOKEN_ENV": "GG_TEST_INFLUX_TOKEN"}.items():
        monkeypatch.setenv(f"GREENGUARD_TELEMETRY__{name}", value)
    monkeypatch.setenv("GG_TEST_INFLUX_TOKEN", "-")
    monkeypatch.setenv("GREENGUARD_AUTH_SECRET", TEST_SECRET)
    assert main(["grafana", "publish", "--config", str(config), "--db", str(db),
                 "--since", "2026-04-02", "--as-of", "2026-04-07T23:30:00+08:00"]) == 0
    [result] = influxd.query("SELECT count(\"kgce\") FROM \"figure\"", db="backfill")
    assert result["series"][0]["values"][0][1] == 6 * 3 * 2  # 2–7 April × (all, A, B) × 2
    monkeypatch.delenv("GREENGUARD_TELEMETRY__URL")
    assert main(["grafana", "publish", "--config", str(config), "--db", str(db)]) == 2
