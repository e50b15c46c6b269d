"""A whole institution as real processes, for the reliability suite.

    greenguard sim  (Modbus TCP meters, real time)
          ▲ poll every 0.5 s
    greenguard edge ──► FaultProxy ──► mosquitto ◄── greenguard central ──► central.sqlite
          │
      outbox.sqlite

Every process can be killed with SIGKILL and restarted on the same files and ports; the
proxy cuts or blackholes the edge's link. `oracle()` counts, once everything has drained,
what the edge produced against what the central stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulators.netfault import FaultProxy
from tests.conftest import free_port, wait_for_port

BIN = Path(sys.executable).parent
ARTIFACTS = Path(os.environ.get("GREENGUARD_ARTIFACTS", "test-artifacts"))


@dataclass
class Oracle:
    scenario: str
    fault: str
    expected: int  # records the edge produced and did not drop by documented policy
    matched: int  # of those, stored at the central
    missing: int
    duplicated: int  # the same reading stored twice (under different seqs)
    dropped_by_policy: int = 0
    dead_letters: int = 0
    stored_despite_drop: int = 0  # dropped from the outbox after the central had stored them
    unexpected: int = 0  # stored seqs the edge never produced (must be 0)

    def record(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with (ARTIFACTS / "reliability.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(self), ensure_ascii=False) + "\n")


class Process:
    def __init__(self, name: str, argv: list[str], log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.env = env
        self.name = name
        self.argv = argv
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     env=None if self.env is None else {**os.environ,
                                                                        **self.env})
        out.close()

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Institution:
    """The demo school as four processes plus a fault proxy, in `workdir`."""

    def __init__(self, workdir: Path, *, outbox_max_rows: int = 1_000_000,
                 keepalive_s: int = 30, resend_after_s: float = 2.0,
                 outbox_path: str = "outbox.sqlite",
                 central_db: str = "central.sqlite",
                 edge_env: dict[str, str] | None = None,
                 edge_metrics: bool = False,
                 outbox_settings: dict[str, Any] | None = None) -> None:
        self.dir = workdir
        self.outbox_settings = outbox_settings or {}
        self.edge_env = edge_env
        self.edge_metrics_port = free_port() if edge_metrics else None
        self.outbox_path = outbox_path
        self.central_db = central_db
        self.broker_port = free_port()
        self.modbus_port = free_port()
        self.http_port = free_port()
        self.proxy: FaultProxy | None = None
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        (workdir / "mosquitto.conf").write_text(
            f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\n"
            "persistence false\nmax_queued_messages 1000000\nmax_inflight_messages 100\n",
            encoding="utf-8")
        self.broker = Process("mosquitto", [mosquitto, "-c", str(workdir / "mosquitto.conf")],
                              workdir / "mosquitto.log")
        self.sim = Process("sim", [str(BIN / "greenguard"), "sim", "--port",
                                   str(self.modbus_port), "--write-edge-config",
                                   str(workdir / "sim-edge.yaml")], workdir / "sim.log")
        self.outbox_max_rows = outbox_max_rows
        self.keepalive_s = keepalive_s
        self.resend_after_s = resend_after_s
        self.edge: Process | None = None
        self.central = Process(
            "central", [str(BIN / "greenguard"), "central", "--config",
                        str(workdir / "institution.yaml"), "--db", str(workdir / central_db),
                        "--mqtt-port", str(self.broker_port), "--http-port", str(self.http_port),
                        "--auth-secret-file", str(workdir / "auth.secret"), "--metrics-edges"],
            workdir / "central.log")

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        from central.auth import generate_secret
        from simulators.configs import institution_config
        from simulators.scenario import load_scenario

        (self.dir / "auth.secret").write_text(generate_secret(), encoding="utf-8")
        (self.dir / "auth.secret").chmod(0o600)  # the central refuses a readable secret
        # edge-9: the second edge scenario 7's poison batch comes from (configured, so the
        # central's admission lets it through to the poison-record handling)
        (self.dir / "institution.yaml").write_text(
            yaml.safe_dump({**institution_config(load_scenario("school")), "edges": ["edge-9"]},
                           allow_unicode=True),
            encoding="utf-8")
        self.broker.start()
        self.sim.start()
        await asyncio.to_thread(wait_for_port, self.broker_port)
        await asyncio.to_thread(wait_for_port, self.modbus_port)
        self.proxy = FaultProxy("127.0.0.1", self.broker_port)
        await self.proxy.start()
        self._write_edge_config()
        self.central.start()
        self.edge = Process("edge", [str(BIN / "greenguard"), "edge", "--config",
                                     str(self.dir / "edge.yaml")], self.dir / "edge.log",
                            env=self.edge_env)
        self.edge.start()

    def _write_edge_config(self) -> None:
        deadline = time.monotonic() + 10
        while not (self.dir / "sim-edge.yaml").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("greenguard sim wrote no edge config")
            time.sleep(0.05)
        doc: dict[str, Any] = yaml.safe_load((self.dir / "sim-edge.yaml").read_text("utf-8"))
        doc["interval_s"] = 60
        assert self.proxy is not None
        doc["mqtt"] = {"host": "127.0.0.1", "port": self.proxy.port,
                       "keepalive_s": self.keepalive_s}
        doc["uplink"] = {"batch_max_records": 200, "resend_after_s": self.resend_after_s}
        doc["outbox"] = {"path": self.outbox_path, "max_rows": self.outbox_max_rows,
                         **self.outbox_settings}
        if self.edge_metrics_port is not None:
            doc["metrics"] = {"host": "127.0.0.1", "port": self.edge_metrics_port}
        for dev in doc["devices"]:
            dev["poll_interval_s"] = 0.5
            dev["timeout_s"] = 0.4
        (self.dir / "edge.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")

    async def stop(self) -> None:
        for p in (self.edge, self.central, self.sim, self.broker):
            if p is not None:
                p.stop()
        if self.proxy is not None:
            await self.proxy.stop()

    # -- observation --------------------------------------------------------------------

    def edge_outbox(self) -> dict[str, int]:
        db = sqlite3.connect(f"file:{self.dir / self.outbox_path}?mode=ro", uri=True)
        try:
            meta = {k: int(v) for k, v in db.execute("SELECT key, value FROM meta")
                    if k != "edge_id"}
            (meta["depth"],) = db.execute("SELECT count(*) FROM rows").fetchone()
            return meta
        finally:
            db.close()

    def log_text(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def edge_integrity(self) -> str:
        return integrity_check(self.dir / self.outbox_path)

    def central_query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        db = sqlite3.connect(f"file:{self.dir / self.central_db}?mode=ro", uri=True)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    async def wait_until(self, predicate: Any, *, within_s: float, what: str) -> None:
        deadline = time.monotonic() + within_s
        while True:
            try:
                if predicate():
                    return
            except sqlite3.Error:
                pass  # a database not created yet
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within_s}s waiting for {what}")
            await asyncio.sleep(0.2)

    async def stored_at_least(self, n: int, within_s: float = 30) -> None:
        await self.wait_until(lambda: self.central_query(
            "SELECT count(*) FROM samples")[0][0] >= n, within_s=within_s,
            what=f"{n} samples stored")

    async def quiesce_and_drain(self, within_s: float = 60) -> None:
        """Stop producing (meters go silent), then wait until the central has acked all."""
        self.sim.stop()
        await asyncio.sleep(1.5)  # the edge notices, records its offline events

        def drained() -> bool:
            meta = self.edge_outbox()
            return meta["depth"] == 0 and meta["acked_upto"] == meta["next_seq"] - 1

        await self.wait_until(drained, within_s=within_s, what="the edge outbox to drain")

    def oracle(self, scenario: str, fault: str) -> Oracle:
        """Count by seq: what the edge produced, minus what it dropped by documented policy
        (the seq ranges its overflow and disk-full markers name), against what the central
        stored. Out-of-band edge events (negative seqs) are not part of the stream."""
        meta = self.edge_outbox()
        epoch = meta["epoch"]
        produced = meta["next_seq"] - 1
        stored: set[int] = set()
        for table, col in (("samples", "stream_epoch"), ("events", "stream_epoch"),
                           ("intervals", "stream_epoch")):
            stored.update(q for (q,) in self.central_query(
                f"SELECT seq FROM {table} WHERE {col} = ? AND seq > 0", (epoch,)))
        dropped: set[int] = set()
        for (data,) in self.central_query(
                "SELECT data FROM events WHERE name IN ('outbox.overflow', 'outbox.disk_full') "
                "AND stream_epoch = ? AND seq > 0", (epoch,)):
            for first, last in json.loads(data)["dropped_seqs"]:
                dropped.update(range(first, last + 1))
        expected = set(range(1, produced + 1)) - dropped
        dup = self.central_query(
            "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT count(*) AS n FROM samples "
            "GROUP BY stream_edge, device, point, ts HAVING n > 1)")[0][0]
        dead = self.central_query("SELECT COALESCE(SUM(count), 0) FROM dead_letter")[0][0]
        # Records quarantined (stamped beyond the central's clock tolerance) are kept as dead
        # letters naming their stream and seq: accounted for, not lost.
        for (payload,) in self.central_query("SELECT payload FROM dead_letter"):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                held = json.loads(payload)
                if held["stream"]["epoch"] == epoch and "index" not in held:
                    stored.add(int(held["seq"]))
        matched = len(expected & stored)
        return Oracle(scenario=scenario, fault=fault, expected=len(expected), matched=matched,
                      missing=len(expected) - matched, duplicated=int(dup),
                      dropped_by_policy=len(dropped), dead_letters=int(dead),
                      stored_despite_drop=len(dropped & stored),
                      unexpected=len(stored - set(range(1, produced + 1))))


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs: a disk that really fills up."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs for the disk-full scenario: {result.stderr}")
        pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(port: int) -> Metrics:
    """GET /metrics over real HTTP; {(name, sorted labels): value}."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.get("/metrics")
    response.raise_for_status()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def integrity_check(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()
