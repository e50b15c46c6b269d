"""Scenario 12 (clock at 1970, two days ahead, one hour back) and the Prometheus metrics of
both processes, scraped over real HTTP from the running school.

The edge's wall clock is shifted through the test-only offset file that `SystemClock`
honours when GREENGUARD_TEST_CLOCK_OFFSET_FILE is set (protocols/clock.py); its monotonic
clock, the central's clock and everything else stay real.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from protocols.clock import TEST_CLOCK_OFFSET_FILE
from tests.faults.harness import Institution, Metrics, scrape
from tests.faults.test_scenarios import check

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY = 86_400.0


def set_offset(path: Path, seconds: float) -> None:
    """Atomically, so the edge never reads a half-written file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(repr(seconds), encoding="utf-8")
    tmp.replace(path)


def total(metrics: Metrics, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in metrics.items()
               if n == name and set(labels.items()) <= set(ls))


async def until(port: int, predicate: Callable[[Metrics], bool], what: str,
                within_s: float = 60) -> Metrics:
    deadline = time.monotonic() + within_s
    while True:
        metrics = await scrape(port)
        if predicate(metrics):
            return metrics
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what}: "
                                 f"{sorted((k, v) for k, v in metrics.items() if 'clock' in k[0])}")
        await asyncio.sleep(0.3)


async def test_12_clock_at_1970_two_days_ahead_and_one_hour_back(
        tmp_path: Path, mosquitto_binary: str) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("0", encoding="utf-8")
    school = Institution(tmp_path, edge_env={TEST_CLOCK_OFFSET_FILE: str(offset)},
                         edge_metrics=True)
    await school.start()
    try:
        central = school.http_port
        assert school.edge_metrics_port is not None
        await school.stored_at_least(100)
        before = await scrape(central)
        assert total(before, "greenguard_ingest_clock_records_total") == 0

        set_offset(offset, 1_000 - time.time())  # a Pi at 1970
        await until(central, lambda m: total(
            m, "greenguard_ingest_clock_records_total", problem="far_past") >= 20 and total(
            m, "greenguard_ingest_clock_records_total", problem="unsynced") >= 20,
            "far-past and unsynced records counted")

        set_offset(offset, 2 * DAY)  # two days ahead
        await until(central, lambda m: total(
            m, "greenguard_ingest_clock_records_total", problem="future") >= 20,
            "future records counted")

        set_offset(offset, 2 * DAY - 3600)  # one hour back
        await asyncio.sleep(3)
        set_offset(offset, 0)  # NTP puts it right
        stored = school.central_query("SELECT count(*) FROM samples")[0][0]
        await school.stored_at_least(stored + 100)  # polling goes on after every step
        await school.quiesce_and_drain()
        check(school.oracle("12", "edge clock to 1970, +2 days, 1 h back, then right"))

        jumps = [json.loads(d)["jump_s"] for (d,) in school.central_query(
            "SELECT data FROM events WHERE name = 'clock.jump' ORDER BY seq")]
        assert len(jumps) == 4, jumps
        assert jumps[0] < -50 * 365 * DAY  # to 1970
        assert jumps[1] > 50 * 365 * DAY  # to two days ahead
        assert jumps[2] == pytest.approx(-3600, abs=5)
        assert jumps[3] == pytest.approx(-2 * DAY + 3600, abs=5)
        edge = await scrape(school.edge_metrics_port)
        assert total(edge, "greenguard_edge_clock_jumps_total") == 4
        assert total(edge, "greenguard_edge_clock_synced") == 1
        after = await scrape(central)
        for problem in ("unsynced", "future", "far_past"):
            assert total(after, "greenguard_ingest_clock_records_total", problem=problem) > 0
        # Flagged in the store as well. The counters count records as received, so a
        # replayed batch counts again: the stored rows are at most that many.
        unsynced = sum(school.central_query(f"SELECT count(*) FROM {table} WHERE synced = 0")
                       [0][0] for table in ("samples", "events", "intervals"))
        assert 0 < unsynced <= total(after, "greenguard_ingest_clock_records_total",
                                     problem="unsynced")
        far_past = school.central_query("SELECT count(*) FROM samples WHERE ts < ?",
                                        (946_684_800_000,))[0][0]
        assert far_past >= 20
    finally:
        await school.stop()


async def test_metrics_of_both_processes_follow_a_broker_outage(
        tmp_path: Path, mosquitto_binary: str) -> None:
    school = Institution(tmp_path, edge_metrics=True)
    await school.start()
    try:
        edge_port, central = school.edge_metrics_port, school.http_port
        assert edge_port is not None
        await school.stored_at_least(50)
        live = await until(edge_port, lambda m: total(
            m, "greenguard_edge_uplink_connected") == 1 and total(
            m, "greenguard_edge_outbox_acked_seq") > 0, "edge connected and acked")
        devices = {dict(ls)["device"]: v for (n, ls), v in live.items()
                   if n == "greenguard_edge_device_online"}
        assert devices
        assert set(devices.values()) == {1.0}, devices
        assert total(live, "greenguard_edge_poll_seconds_count") >= len(devices)
        assert total(live, "greenguard_edge_poll_seconds_bucket", le="+Inf") == total(
            live, "greenguard_edge_poll_seconds_count")
        assert total(live, "greenguard_edge_uplink_refused_publishes_total") == 0
        first = await until(central, lambda m: total(
            m, "greenguard_edge_online", edge="edge-1") == 1, "the central sees edge-1 online")
        assert total(first, "greenguard_ingest_records_total") >= 50
        assert total(first, "greenguard_store_write_seconds_count") >= 1

        school.broker.kill()
        down = await until(edge_port, lambda m: total(
            m, "greenguard_edge_uplink_connected") == 0 and total(
            m, "greenguard_edge_outbox_depth") >= 3 * len(devices) and total(
            m, "greenguard_edge_outbox_oldest_age_seconds") >= 1,
            "the edge disconnected, its outbox growing")
        school.broker.start()
        backlog_end = total(down, "greenguard_edge_outbox_last_seq")
        await until(edge_port, lambda m: total(
            m, "greenguard_edge_outbox_acked_seq") >= backlog_end, "the backlog acknowledged")
        await until(central, lambda m: total(m, "greenguard_ingest_records_total") > total(
            first, "greenguard_ingest_records_total") and total(
            m, "greenguard_mqtt_connects_total") >= 2, "the central stored the backlog")

        school.sim.stop()  # every meter goes silent
        await until(edge_port, lambda m: {v for (n, _), v in m.items()
                                          if n == "greenguard_edge_device_online"} == {0.0},
                    "every device offline")
    finally:
        await school.stop()
