"""`GET /metrics` of a running central over real HTTP, fed through a real Mosquitto: the
counters move with what ingest does (stored, deduplicated, dead-lettered, edge online)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from central.config import CentralSettings
from protocols.wire import Birth, Channel, encode, topic
from tests.conftest import Broker
from tests.integration.test_central_ingest import (
    EDGE,
    SITE,
    STREAM,
    batch,
    central,
    edge,
    send,
    settings,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.integration


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


async def until(port: int, name: str, value: float, labels: tuple[tuple[str, str], ...] = ()
                ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with asyncio.timeout(10):
        while True:
            metrics = await scrape(port)
            if metrics.get((name, labels)) == value:
                return metrics
            await asyncio.sleep(0.05)


async def test_metrics_follow_ingest(mosquitto: Broker, settings: CentralSettings) -> None:  # noqa: F811
    settings = settings.model_copy(update={"metrics_edges": True})  # the operator's choice
    port = settings.http_port
    # born=False: this test publishes the birth itself, after the first scrape
    async with central(settings), edge(mosquitto, born=False) as client:
        before = await scrape(port)
        assert before[("greenguard_ingest_records_total", ())] == 0
        assert before[("greenguard_mqtt_connected", ())] == 1
        assert before[("greenguard_store_write_seconds_count", ())] == 0
        assert not any(name == "greenguard_edge_online" for name, _ in before)

        await client.publish(topic(SITE, EDGE, Channel.STATE),
                             encode(Birth(STREAM, 1_750_000_000_000, True, "0.1.0")), qos=1)
        await send(client, batch(0, 1, 2, 3))
        await send(client, batch(0, 1, 2, 3))  # a replay: three dedup hits
        await send(client, b"not json")
        after = await until(port, "greenguard_ingest_dead_letters_total", 1)
        after = await until(port, "greenguard_ingest_duplicates_total", 3)

    edge_labels = (("edge", EDGE), ("site", SITE))
    assert after[("greenguard_ingest_records_total", ())] == 3
    assert after[("greenguard_ingest_messages_total", ())] == 4
    assert after[("greenguard_ingest_store_errors_total", ())] == 0
    assert after[("greenguard_ingest_batches_total", ())] == 2
    assert after[("greenguard_edge_online", edge_labels)] == 1
    assert after[("greenguard_edge_last_seen_timestamp_seconds", edge_labels)] > 1.7e9
    assert after[("greenguard_store_write_seconds_count", ())] >= 1
    assert after[("greenguard_store_write_seconds_bucket", (("le", "+Inf"),))] == \
        after[("greenguard_store_write_seconds_count", ())]
    assert after[("greenguard_ingest_clock_records_total", (("problem", "unsynced"),))] == 0
