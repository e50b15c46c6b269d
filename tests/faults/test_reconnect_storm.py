"""Shared RELIABILITY.md scenario 22: a reconnect storm. 200 edges stream through a real
Mosquitto to a real `greenguard central`; the broker is killed with SIGKILL and restarted,
and all 200 reconnect at once.

The edges are the real `edge.uplink.Uplink` over real SQLite outboxes, 200 of them in this
one process (lightweight: no Modbus, a producer task appends two samples per edge every
half second). The oracle counts, per edge, every seq the outbox produced against the rows
the central stored: nothing may be missing or stored twice. Alongside, it records when each
edge reconnected (the jittered backoff spreads them out), polls the central's `/healthz`
through the storm, and writes the figures to test-artifacts/reliability.jsonl.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edge.config import parse_edge_config
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.clock import SystemClock
from protocols.wire import Sample
from tests.conftest import free_port, wait_for_port
from tests.faults.harness import ARTIFACTS, Process
from tests.unit.central.central_helpers import TEST_SECRET

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
N_EDGES = 200
SITE = "storm"


def institution(n: int) -> dict[str, Any]:
    return {
        "institution": {"id": "storm-school", "name": "重连风暴", "type": "school"},
        "buildings": [{"id": "A", "name": "教学楼", "floor_area_m2": 10000}],
        "headcount": {"staff": 100, "students_daily_avg": 1000},
        "targets": {2025: {"kgce_per_m2": 5, "kgce_per_person": 50,
                           "water_m3_per_person": 40}},
        "meters": [{"edge": f"e-{i:03d}", "device": "m1", "building": "A",
                    "energy": "electricity", "role": "main" if i == 0 else "sub"}
                   for i in range(n)],
    }


def make_uplink(i: int, port: int, workdir: Path) -> Uplink:
    edge = f"e-{i:03d}"
    config = parse_edge_config({
        "edge_id": edge, "site": SITE,
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 10},
        "uplink": {"batch_max_records": 100, "resend_after_s": 3, "linger_s": 0.25},
        "devices": [{"id": "m1", "host": "127.0.0.1", "model": "eastron-sdm120"}],
    })
    outbox = Outbox(workdir / f"{edge}.sqlite", edge_id=edge, reserve_bytes=0,
                    min_free_bytes=64 * 1024)
    return Uplink(config, outbox, SystemClock())


async def test_22_reconnect_storm_of_200_edges(tmp_path: Path, mosquitto_binary: str) -> None:
    broker_port, http_port = free_port(), free_port()
    (tmp_path / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\n", encoding="utf-8")
    broker = Process("mosquitto", [shutil.which("mosquitto") or mosquitto_binary, "-c",
                                   str(tmp_path / "mosquitto.conf")], tmp_path / "mosquitto.log")
    (tmp_path / "institution.yaml").write_text(
        yaml.safe_dump(institution(N_EDGES), allow_unicode=True), encoding="utf-8")
    secret = tmp_path / "auth.secret"
    secret.write_text(TEST_SECRET, encoding="utf-8")
    secret.chmod(0o600)
    central = Process("central", [
        str(BIN / "greenguard"), "central", "--config", str(tmp_path / "institution.yaml"),
        "--db", str(tmp_path / "central.sqlite"), "--mqtt-port", str(broker_port),
        "--http-port", str(http_port), "--auth-secret-file", str(secret)],
        tmp_path / "central.log")
    edges_dir = tmp_path / "edges"
    edges_dir.mkdir()
    uplinks = [make_uplink(i, broker_port, edges_dir) for i in range(N_EDGES)]
    tasks: list[asyncio.Task[None]] = []
    stop_producing = asyncio.Event()
    health: list[float] = []

    async def produce() -> None:
        n = 0
        while not stop_producing.is_set():
            now = time.time()
            for up in uplinks:
                up.outbox.append([Sample(0, int(now * 1000) + k, "m1", "power_w",
                                         float(n + k), "W") for k in range(2)], now=now)
            n += 2
            await asyncio.sleep(0.5)

    async def poll_health(http: httpx.AsyncClient) -> None:
        while True:
            t0 = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                r = await http.get("/healthz")
                if r.status_code == 200:
                    health.append(time.monotonic() - t0)
            await asyncio.sleep(0.5)

    def stored() -> tuple[dict[str, set[int]], int, int]:
        """Seqs stored per edge, readings stored twice under different seqs, dead letters."""
        db = sqlite3.connect(f"file:{tmp_path / 'central.sqlite'}?mode=ro", uri=True)
        try:
            out: dict[str, set[int]] = {}
            for edge, epoch, seq in db.execute(
                    "SELECT stream_edge, stream_epoch, seq FROM samples WHERE seq > 0"):
                up = uplinks[int(edge[2:])]
                if epoch == up.outbox.stream.epoch:
                    out.setdefault(edge, set()).add(seq)
            (dup,) = db.execute(
                "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT count(*) AS n FROM samples "
                "GROUP BY stream_edge, device, point, ts HAVING n > 1)").fetchone()
            (dead,) = db.execute(
                "SELECT COALESCE(SUM(count), 0) FROM dead_letter").fetchone()
            return out, int(dup), int(dead)
        finally:
            db.close()

    broker.start()
    central.start()
    try:
        await asyncio.to_thread(wait_for_port, broker_port)
        await asyncio.to_thread(wait_for_port, http_port, 30)
        tasks = [asyncio.create_task(up.run()) for up in uplinks]
        tasks.append(asyncio.create_task(produce()))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}",
                                     timeout=10) as http:
            tasks.append(asyncio.create_task(poll_health(http)))
            deadline = time.monotonic() + 90
            while not all(up.stats.connected and up.outbox.acked_upto > 0 for up in uplinks):
                assert time.monotonic() < deadline, "not every edge delivered before the storm"
                await asyncio.sleep(0.2)

            broker.kill()  # SIGKILL: every edge loses its connection at the same moment
            killed = time.monotonic()
            await asyncio.sleep(3)
            broker.start()
            restarted = time.monotonic()
            reconnected: dict[int, float] = {}
            deadline = time.monotonic() + 120
            while len(reconnected) < N_EDGES:
                assert time.monotonic() < deadline, f"{N_EDGES - len(reconnected)} edges " \
                                                    "never reconnected"
                now = time.monotonic()
                for i, up in enumerate(uplinks):
                    if i not in reconnected and up.stats.connects >= 2:
                        reconnected[i] = now - restarted
                await asyncio.sleep(0.02)
            health_during = list(health)
            # Live latency right after the storm: from append to the central's ack.
            appended = time.monotonic()
            marks = [up.outbox.append([Sample(0, int(time.time() * 1000), "m1", "live_probe",
                                              1.0, "")])[0] for up in uplinks]
            deadline = time.monotonic() + 60
            while not all(up.outbox.acked_upto >= q for up, q in zip(uplinks, marks,
                                                                     strict=True)):
                assert time.monotonic() < deadline, "live data not acknowledged"
                await asyncio.sleep(0.05)
            live_s = time.monotonic() - appended
            await asyncio.sleep(5)  # live data flows again
            stop_producing.set()
            drained_from = time.monotonic()
            deadline = time.monotonic() + 180
            while not all(up.outbox.acked_upto == up.outbox.last_seq for up in uplinks):
                assert time.monotonic() < deadline, "outboxes never drained"
                await asyncio.sleep(0.5)
            drained_s = time.monotonic() - drained_from
            assert central.alive, "the central died in the storm"
            assert broker.alive
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        central.stop()
        broker.stop()
        for up in uplinks:
            up.outbox.close()

    got, duplicated, dead = stored()
    expected = sum(up.outbox.last_seq for up in uplinks)
    unexpected = sum(len(got.get(f"e-{i:03d}", set()) - set(range(1, up.outbox.last_seq + 1)))
                     for i, up in enumerate(uplinks))
    missing = sum(len(set(range(1, up.outbox.last_seq + 1)) - got.get(f"e-{i:03d}", set()))
                  for i, up in enumerate(uplinks))
    matched = expected - missing
    times = sorted(reconnected.values())
    figures = {
        "scenario": "22", "fault": f"reconnect storm: {N_EDGES} edges, broker kill -9 for "
                                   f"3 s and restart",
        "expected": expected, "matched": matched, "missing": missing,
        "duplicated": duplicated, "dropped_by_policy": 0, "dead_letters": dead,
        "unexpected": unexpected, "live_ack_after_storm_s": round(live_s, 2),
        "reconnect_first_s": round(times[0], 2), "reconnect_median_s":
            round(times[len(times) // 2], 2), "reconnect_last_s": round(times[-1], 2),
        "healthz_max_s": round(max(health_during), 3), "drain_s": round(drained_s, 1),
        "down_s": round(restarted - killed, 1)}
    print(figures)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "reliability.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(figures, ensure_ascii=False) + "\n")
    assert (missing, duplicated, unexpected, dead) == (0, 0, 0, 0), figures
    # Jittered backoff: the reconnects are spread out, not one thundering instant.
    assert times[-1] - times[0] > 0.2, figures
    assert matched == expected == sum(len(v) for v in got.values())
