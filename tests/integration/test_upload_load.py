"""Hostile uploads against a real central process while a simulated edge streams over a
real Mosquitto (issue 20, item 4): the 1,000,000-row XLSX zip bomb, an 84 MB body without
a token, and a 50 MB CSV. Throughout, the edge's batches must keep being acknowledged and
`/healthz` must answer; the central's RSS is sampled with psutil.

Figures (ack latency percentiles, /healthz worst case, peak RSS) are printed and appended
to test-artifacts/uploads.jsonl. The bounds asserted are generous (a loaded CI machine
must not fail the test); docs/security.md has the figures of a quiet run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psutil
import pytest
import yaml

from central.auth import Authenticator, Role, TokenStore
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    Channel,
    Sample,
    Signed,
    StreamId,
    decode,
    encode,
    topic,
)
from tests.conftest import Broker, free_port, wait_for_port
from tests.unit.central.central_helpers import TEST_SECRET
from tests.unit.central.registry_helpers import SCHOOL
from tests.uploadfiles import big_csv, many_rows_xlsx

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent
ARTIFACTS = Path(os.environ.get("GREENGUARD_ARTIFACTS", "test-artifacts"))
SITE, EDGE = "school", "edge-1"
IID = SCHOOL["institution"]["id"]
RSS_BOUND_MB = 400  # documented in docs/security.md
ACK_P99_BOUND_S = 5.0  # the goal is < 1 s (measured well under it); generous for CI load


@dataclass
class Edge:
    """A simulated edge: a batch of 20 samples every 100 ms, acks timed by seq."""

    port: int
    stream: StreamId = field(default_factory=lambda: StreamId(EDGE, int(time.time() * 1000)))
    sent: dict[int, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    acked: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier="upload-load-edge",
                                  protocol=aiomqtt.ProtocolVersion.V5) as client:
            await client.subscribe(topic(SITE, EDGE, Channel.ACK), qos=1)
            receiver = asyncio.create_task(self._acks(client))
            # Like a real edge, announce the epoch with a birth first (admission.py).
            await client.publish(topic(SITE, EDGE, Channel.STATE), encode(Birth(
                self.stream, int(time.time() * 1000), True, "upload-load")), qos=1)
            seq = 0
            try:
                while not stop.is_set():
                    now = time.time()
                    records = tuple(Sample(seq + i + 1, int(now * 1000), "m1", "power_w",
                                           1000.0 + i, "W") for i in range(20))
                    batch = Batch(self.stream, seq, int(now * 1000), True, records)
                    self.sent[seq + 20] = time.monotonic()
                    await client.publish(topic(SITE, EDGE, Channel.TELEMETRY), encode(batch),
                                         qos=1)
                    seq += 20
                    await asyncio.sleep(0.1)
                deadline = time.monotonic() + 30
                while self.acked < seq and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver

    async def _acks(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            assert isinstance(payload, bytes | bytearray)
            envelope = decode(bytes(payload))
            assert isinstance(envelope, Signed)  # the central signs every ack
            ack = decode(envelope.msg.encode())
            assert isinstance(ack, Ack)
            now = time.monotonic()
            for seq in [s for s in self.sent if s <= ack.upto]:
                self.latencies.append(now - self.sent.pop(seq))
            self.acked = max(self.acked, ack.upto)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


@pytest.fixture
def central(tmp_path: Path, mosquitto: Broker) -> Iterator[dict[str, Any]]:
    config = tmp_path / "institution.yaml"
    school = {**SCHOOL, "meters": [{"edge": EDGE, "device": "m1", "building": "A",
                                    "energy": "electricity", "role": "main"}]}
    school.pop("ac_units", None)
    config.write_text(yaml.safe_dump(school, allow_unicode=True), encoding="utf-8")
    secret = tmp_path / "auth.secret"
    secret.write_text(TEST_SECRET, encoding="utf-8")
    secret.chmod(0o600)
    db = tmp_path / "central.sqlite"
    tokens = TokenStore(db.with_name("central.auth.sqlite"))
    _, raw = Authenticator(TEST_SECRET, tokens).issue("uploader", Role.ENGINEER)
    tokens.close()
    port = free_port()
    log = (tmp_path / "central.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "greenguard"), "central", "--config", str(config), "--db", str(db),
         "--mqtt-port", str(mosquitto.port), "--http-port", str(port),
         "--auth-secret-file", str(secret)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "GREENGUARD_HTTP_MAX_IMPORT_BYTES": str(64 << 20)})
    try:
        wait_for_port(port, 30)
        yield {"port": port, "token": raw, "pid": proc.pid, "broker": mosquitto.port}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def headers_only_post(port: int, path: str, length: int, token: str | None) -> tuple[int, str]:
    """Send the request line and headers of a `length`-byte body plus its first 64 KiB, and
    read the answer: the central must answer without waiting for the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json"
                      f"\r\nContent-Length: {length}\r\n{auth}\r\n").encode())
        with contextlib.suppress(OSError):
            sock.sendall(b"[" + b" " * 65535)
        answer = b""
        while True:
            head, sep, body = answer.partition(b"\r\n\r\n")
            if sep:
                fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
                if len(body) >= int(fields.get(b"content-length", b"0")):
                    break
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["detail"]


async def test_uploads_do_not_freeze_ingest_or_exhaust_memory(
        central: dict[str, Any]) -> None:
    port, token = central["port"], central["token"]
    proc = psutil.Process(central["pid"])
    edge = Edge(port=central["broker"])
    stop = asyncio.Event()
    rss: list[float] = []
    health: list[float] = []

    async def sample_rss() -> None:
        while not stop.is_set():
            rss.append(proc.memory_info().rss / 1e6)
            await asyncio.sleep(0.1)

    async def poll_health(http: httpx.AsyncClient) -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            r = await http.get("/healthz")
            assert r.status_code == 200
            health.append(time.monotonic() - t0)
            await asyncio.sleep(0.25)

    bomb, csv_50mb = many_rows_xlsx(1_000_000), big_csv(50_000_000)  # before the edge runs
    base = f"/api/v1/institutions/{IID}/ledger/fuel"
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
        edge_task = asyncio.create_task(edge.run(stop))
        tasks = [asyncio.create_task(sample_rss()), asyncio.create_task(poll_health(http))]
        deadline = time.monotonic() + 30
        while not edge.latencies and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert edge.latencies, "the central never acknowledged the simulated edge"
        baseline_rss = max(rss)

        r = await http.post(base + "/import", params={"format": "xlsx"}, headers=auth,
                            content=bomb)
        assert r.status_code == 422, r.text
        assert "possible zip bomb" in r.json()["detail"]

        status, detail = await asyncio.to_thread(headers_only_post, port, base,
                                                 84 * 1024 * 1024, None)
        assert (status, detail) == (401, "unauthorised: missing bearer token")
        status, detail = await asyncio.to_thread(headers_only_post, port, base,
                                                 84 * 1024 * 1024, token)
        assert status == 413
        assert "at most 2097152 bytes" in detail

        r = await http.post(base + "/import", params={"format": "csv"}, headers=auth,
                            content=csv_50mb)
        assert r.status_code == 422, r.text
        assert "more than 100000 rows" in r.json()["detail"]

        await asyncio.sleep(1)
        stop.set()
        await edge_task
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    figures = {"acks": len(edge.latencies), "ack_p50_s": percentile(edge.latencies, 0.5),
               "ack_p99_s": percentile(edge.latencies, 0.99),
               "ack_max_s": max(edge.latencies), "healthz_max_s": max(health),
               "rss_baseline_mb": baseline_rss, "rss_peak_mb": max(rss)}
    print(figures)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "uploads.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(figures) + "\n")
    assert edge.acked >= max(edge.sent, default=0)
    assert not edge.sent, "batches never acknowledged"
    assert figures["ack_p99_s"] < ACK_P99_BOUND_S, figures
    assert figures["rss_peak_mb"] < RSS_BOUND_MB, figures
