"""Scale-out (docs/scale-out.md): two central ingest workers share one edge's uplink through
an MQTT 5 shared subscription on a real Mosquitto and store into one real PostgreSQL; one
worker is killed with SIGKILL mid-stream and the counting oracle shows nothing lost or
duplicated.

    sim ◄── edge ──► proxy ──► mosquitto ──$share/central──► worker 0 ─┐
                                         └───────────────────► worker 1 ─┴─► PostgreSQL

Both workers receive batches of the same stream, so watermark updates race for real; both
publish acks, which reach the edge in any order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psycopg
import pytest
import yaml

from tests.conftest import free_port, wait_for_port
from tests.contracts.pg import APP_PASSWORD, PgServer, postgres_server
from tests.faults.harness import BIN, Institution, Process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with postgres_server() as server:
        yield server


class ScaledInstitution(Institution):
    """The harness's school with its single central replaced by N workers on PostgreSQL."""

    def __init__(self, workdir: Path, pg: PgServer, workers: int = 2) -> None:
        # resend_after_s 5: under a loaded CI machine fewer spurious resends before acks.
        super().__init__(workdir, resend_after_s=5.0)
        self.dsn = pg.dsn(pg.create_database("scaleout"))
        secret = workdir / "pg.secret"
        secret.write_text(APP_PASSWORD + "\n", encoding="utf-8")
        secret.chmod(0o600)
        self.worker_ports = [free_port() for _ in range(workers)]
        self.workers = [
            Process(f"worker-{i}", [
                str(BIN / "greenguard"), "central", "--config", str(workdir / "institution.yaml"),
                "--store", "postgres", "--postgres-dsn", self.dsn,
                "--postgres-password-file", str(secret), "--share-group", "central",
                "--client-id", f"central-{i}", "--mqtt-port", str(self.broker_port),
                "--http-port", str(port), "--db", str(workdir / "central.sqlite"),
                "--auth-secret-file", str(workdir / "auth.secret")], workdir / f"worker-{i}.log")
            for i, port in enumerate(self.worker_ports)]
        self.central = self.workers[0]
        self._token: str | None = None

    async def start(self) -> None:
        await super().start()  # broker, meters, proxy, worker 0, edge
        for w in self.workers[1:]:
            w.start()
        for port in self.worker_ports:
            await asyncio.to_thread(wait_for_port, port, 60)

    async def stop(self) -> None:
        for w in self.workers[1:]:
            w.stop()
        await super().stop()

    def central_query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """The harness's SQLite queries, in PostgreSQL's dialect (placeholders, and the
        alias PostgreSQL 15 wants on a subquery in FROM,
        no output alias in HAVING)."""
        sql = sql.replace("?", "%s").replace("HAVING n > 1)", "HAVING count(*) > 1) AS dup")
        with psycopg.connect(self.dsn, password=APP_PASSWORD, autocommit=True) as conn:
            return conn.execute(sql.encode(), params).fetchall()

    def token(self) -> str:
        """An admin token of the workers' shared token table (minted once)."""
        if self._token is None:
            from central.auth import Authenticator, Role
            from central.pgstate import PgTokenStore

            secret = (self.dir / "auth.secret").read_text(encoding="utf-8").strip()
            tokens = PgTokenStore(self.dsn, password=APP_PASSWORD)
            try:
                _, self._token = Authenticator(secret, tokens).issue("scaleout", Role.ADMIN,
                                                                     None)
            finally:
                tokens.close()
        return self._token

    def institution_id(self) -> str:
        config = yaml.safe_load((self.dir / "institution.yaml").read_text(encoding="utf-8"))
        return str(config["institution"]["id"])

    def worker_stats(self, i: int) -> dict[str, Any]:
        r = httpx.get(f"http://127.0.0.1:{self.worker_ports[i]}"
                      f"/api/v1/institutions/{self.institution_id()}/overview", timeout=30,
                      headers={"Authorization": f"Bearer {self.token()}"})
        r.raise_for_status()
        ingest: dict[str, Any] = r.json()["ingest"]
        return ingest

    async def wait_for(self, predicate: Any, *, within_s: float, what: str) -> None:
        deadline = time.monotonic() + within_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within_s}s waiting for {what}")
            await asyncio.sleep(0.3)


class UplinkObserver:
    """Counts uplink messages (telemetry, events, state) through a plain subscription."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen = 0
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port,
                                  identifier="scaleout-observer") as client:
            await client.subscribe("gg/v1/+/+/+", qos=1)
            self.subscribed.set()
            async for message in client.messages:
                if message.topic.value.rsplit("/", 1)[-1] in ("telemetry", "events", "state"):
                    self.seen += 1


@pytest.fixture
async def district(tmp_path: Path, mosquitto_binary: str,
                   pg: PgServer) -> AsyncIterator[ScaledInstitution]:
    inst = ScaledInstitution(tmp_path, pg)
    await inst.start()
    try:
        yield inst
    finally:
        await inst.stop()


async def test_two_workers_share_the_stream_and_survive_a_kill_9(
        district: ScaledInstitution) -> None:
    # Both workers take a share of the same stream before the kill.
    await district.wait_for(lambda: all(district.worker_stats(i)["batches"] >= 5
                                        for i in (0, 1)),
                            within_s=90, what="both workers to store batches")
    await district.stored_at_least(200, within_s=60)
    # Shared, not copied: over a window, the workers together handle about as many uplink
    # messages as a plain observer sees; one plain subscription per worker would make that
    # twice as many.
    observer = UplinkObserver(district.broker_port)
    watching = asyncio.create_task(observer.run())
    try:
        await asyncio.wait_for(observer.subscribed.wait(), 30)
        handled_before = sum(district.worker_stats(i)["received"] for i in (0, 1))
        await district.wait_for(lambda: observer.seen >= 12, within_s=90,
                                what="12 uplink messages")
        handled = sum(district.worker_stats(i)["received"] for i in (0, 1)) - handled_before
        seen = observer.seen
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    assert handled < 1.4 * seen + 2, (handled, seen)
    before = [district.worker_stats(i) for i in (0, 1)]
    district.workers[0].kill()  # SIGKILL, no clean-up, messages in flight to it are lost
    killed_at = district.central_query("SELECT count(*) FROM samples")[0][0]
    # The survivor carries on alone: the stream keeps advancing.
    await district.stored_at_least(killed_at + 300, within_s=90)
    await district.quiesce_and_drain(within_s=120)
    after = district.worker_stats(1)
    assert after["batches"] > before[1]["batches"]
    assert after["store_errors"] == 0
    oracle = district.oracle("scale-out", "2 workers ($share), worker kill -9 mid-stream, "
                                          "PostgreSQL")
    oracle.record()
    assert oracle.expected > 500
    assert (oracle.missing, oracle.duplicated, oracle.unexpected) == (0, 0, 0), oracle
    assert oracle.matched == oracle.expected, oracle
    # The watermark the workers computed concurrently is the edge's last seq, no gap left.
    meta = district.edge_outbox()
    [(w,)] = district.central_query("SELECT watermark FROM streams WHERE epoch = ?",
                                    (meta["epoch"],))
    assert w == meta["next_seq"] - 1
    assert district.central_query("SELECT count(*) FROM pending")[0][0] == 0
    print(f"\nscale-out oracle: {oracle}\nworker 0 before kill: {before[0]['batches']} batches"
          f", worker 1: {before[1]['batches']} before, {after['batches']} at the end")

