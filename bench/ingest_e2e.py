"""End-to-end ingest rate and backlog drain on SQLite and PostgreSQL, beside the raw
ceilings of the same run.

    python -m bench.ingest_e2e [--backlog 360000] [--batch 500] [--live-rate 1000]
                               [--edges 2] [--runs sqlite,pg1,pg2]

Pipeline measured: edge outboxes (SQLite) → uplink (aiomqtt) → Mosquitto → `greenguard
central` (separate processes: ingest → store → ack) → the edges delete acknowledged rows.
`--edges` edges (one process, one stream each) start with `--backlog` readings between them
(an outage's worth: one hour of 1,000 points/s is 3,600,000) while live readings keep
arriving at `--live-rate` on the first edge. Runs:

- `sqlite`: one central on its embedded SQLite store;
- `pg1`, `pg2`: 1 and 2 central ingest workers on a shared subscription (`--share-group`)
  writing into one PostgreSQL (a throwaway server started for the run, as the tests start
  it: fsync off, so the figure is the software's, not a disk's).

Each run reports sustained readings/s while draining, CPU per reading of each process
(from /proc: what the load of a shared machine does not distort), and live latency append →
stored. The ceilings, measured in the same run with the same payloads:

- Mosquitto relaying the batches between its own clients (mosquitto_pub → mosquitto_sub),
- aiomqtt receiving them, and the wire decoder (`protocols.wire.decode`) on one core,
- the store insert: prepared sample rows inserted into the store's own `samples` table
  (same indexes and dedup key), 8 batches per transaction — SQLite executemany, and
  PostgreSQL COPY on the run's server — plus a bare SQLite table (one transaction per
  batch, the earlier ceiling) for reference.

The ratio printed for each run is to the slowest ceiling on its path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import yaml

from bench.store_ingest import raw_sqlite
from edge.config import parse_edge_config
from edge.outbox import Outbox
from edge.uplink import Uplink
from protocols.clock import SystemClock
from protocols.wire import Sample, StreamId, decode, encode_batch_raw, encode_record
from simulators.broker import free_port, wait_for_port

BIN = Path(sys.executable).parent
TS0 = 1_790_000_000_000


def batch_payload(batch: int, first: int = 0, edge: str = "bench") -> bytes:
    rows = [encode_record(Sample(i + 1, TS0 + i, f"m{i % 100}", "power_w", float(i), "W"))
            for i in range(first, first + batch)]
    return encode_batch_raw(StreamId(edge, 1), after=first, seq=first + batch, sent=0,
                            synced=True, records_json=rows)


def mosquitto_relay(port: int, payload: bytes, messages: int) -> float:
    """Messages/s relayed by Mosquitto between its own clients, QoS 1."""
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-t", "bench/relay", "-q", "1",
                            "-C", str(messages)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    lines = (payload.decode() + "\n") * messages
    t0 = time.perf_counter()
    subprocess.run(["mosquitto_pub", "-p", str(port), "-t", "bench/relay", "-q", "1", "-l"],
                   input=lines.encode(), check=True)
    sub.wait(120)
    return messages / (time.perf_counter() - t0)


async def aiomqtt_receive(port: int, payload: bytes, messages: int) -> float:
    """Messages/s an aiomqtt subscriber takes in, fed by mosquitto_pub."""
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-recv") as client:
        await client.subscribe("bench/recv", qos=1)
        lines = (payload.decode() + "\n") * messages
        pub = await asyncio.create_subprocess_exec(
            "mosquitto_pub", "-p", str(port), "-t", "bench/recv", "-q", "1", "-l",
            stdin=asyncio.subprocess.PIPE)
        t0 = time.perf_counter()
        feeder = asyncio.create_task(pub.communicate(lines.encode()))
        got = 0
        async for _ in client.messages:
            got += 1
            if got == messages:
                break
        elapsed = time.perf_counter() - t0
        await feeder
    return messages / elapsed


def decode_ceiling(batch: int, records: int) -> float:
    """Readings/s `protocols.wire.decode` takes on one core (CPU time), distinct batches."""
    payloads = [batch_payload(batch, first) for first in range(0, records, batch)]
    t0 = time.process_time()
    for p in payloads:
        decode(p)
    return len(payloads) * batch / (time.process_time() - t0)


def _sample_rows(records: int, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    for first in range(0, records, batch):
        yield [("edge-1", 1, s + 1, TS0 + s, f"m{s % 100}", "power_w", float(s), "n", "W", 1)
               for s in range(first, min(first + batch, records))]


GROUP = 8  # batches per transaction in the store ceilings: a group commit's size under load


def sqlite_store_insert(path: Path, records: int, batch: int) -> float:
    """Rows/s into the SQLite store's own `samples` table: prepared rows, executemany, one
    transaction per `GROUP` batches (the central commits what queued up meanwhile), the
    store's journal settings (WAL, synchronous=FULL)."""
    from central.store import _INSERT_SAMPLE, _SCHEMA

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)
    batches = list(_sample_rows(records, batch))
    t0 = time.perf_counter()
    for g in range(0, len(batches), GROUP):
        db.execute("BEGIN")
        for rows in batches[g:g + GROUP]:
            db.executemany(_INSERT_SAMPLE, rows)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    db.close()
    return records / elapsed


def pg_store_insert(dsn: str, password: str, records: int, batch: int) -> float:
    """Rows/s into PostgreSQL's `samples` table (schema from the store's migrations):
    prepared rows written with COPY, the fastest way in, one COPY per batch and one
    transaction per `GROUP` batches."""
    from central.pgstore import PgStore

    PgStore(dsn, password=password).close()  # migrations
    import psycopg

    batches = [[(*r[:6], r[6], None, *r[7:]) for r in rows]  # value → num, txt
               for rows in _sample_rows(records, batch)]
    with psycopg.connect(dsn, password=password, autocommit=True) as conn:
        t0 = time.perf_counter()
        for g in range(0, len(batches), GROUP):
            with conn.transaction(), conn.cursor() as cur:
                for rows in batches[g:g + GROUP]:
                    with cur.copy("COPY samples (stream_edge, stream_epoch, seq, ts, device, "
                                  "point, num, txt, vtype, unit, synced) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        elapsed = time.perf_counter() - t0
    return records / elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(parent: int) -> float:
    """CPU seconds of `parent` and its direct children (a PostgreSQL server's backends)."""
    total = cpu_seconds(parent)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@contextlib.contextmanager
def centrals(work: Path, port: int, run: str, dsn: str | None
             ) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The central processes of one run: one on SQLite, or N workers on PostgreSQL."""
    argv = [str(BIN / "greenguard"), "central", "--config", str(work / "institution.yaml"),
            "--mqtt-port", str(port), "--auth-secret-file", str(work / "auth.secret")]
    if run == "sqlite":
        commands = [[*argv, "--db", str(work / "central.sqlite"),
                     "--http-port", str(free_port())]]
    else:
        from tests.contracts.pg import APP_PASSWORD

        secret = work / "pg.secret"
        secret.write_text(APP_PASSWORD + "\n", encoding="utf-8")
        secret.chmod(0o600)
        assert dsn is not None
        commands = [[*argv, "--db", str(work / f"{run}-{i}.sqlite"), "--store", "postgres",
                     "--postgres-dsn", dsn, "--postgres-password-file", str(secret),
                     "--share-group", "central", "--client-id", f"central-{i}",
                     "--http-port", str(free_port())] for i in range(int(run[2:]))]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for c in commands]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def live_reader(work: Path, dsn: str | None) -> Callable[[int], list[tuple[int, int]]]:
    """(ts, seq) of the live readings stored at the central after a ts."""
    # by ts (the live readings' ts grow with their seq): a range of samples_by_point
    statement = ("SELECT ts, seq FROM samples WHERE stream_edge = 'edge-1' AND device = 'live' "
                 "AND point = 'power_w' AND ts > ? ORDER BY ts")
    if dsn is None:
        db = sqlite3.connect(f"file:{work / 'central.sqlite'}?mode=ro", uri=True)

        def read_sqlite(seen: int) -> list[tuple[int, int]]:
            try:
                return db.execute(statement, (seen,)).fetchall()
            except sqlite3.Error:
                return []
        return read_sqlite
    import psycopg

    from tests.contracts.pg import APP_PASSWORD

    conn: list[Any] = []

    def read_pg(seen: int) -> list[tuple[int, int]]:
        try:
            if not conn:
                conn.append(psycopg.connect(dsn, password=APP_PASSWORD, autocommit=True))
            return list(conn[0].execute(statement.replace("?", "%s"), (seen,)).fetchall())
        except psycopg.Error:
            conn.clear()
            return []
    return read_pg


async def end_to_end(work: Path, port: int, args: argparse.Namespace, run: str,
                     broker_pid: int, pg: Any) -> dict[str, float]:
    per_edge = args.backlog // args.edges
    edges = [f"edge-{i + 1}" for i in range(args.edges)]
    dsn = None if run == "sqlite" else pg.dsn(pg.create_database(f"bench_{run}"))
    with centrals(work, port, run, dsn) as procs:
        outboxes = []
        for edge in edges:
            outbox = Outbox(work / f"{run}-{edge}.outbox", edge_id=edge, max_rows=10_000_000)
            for first in range(0, per_edge, 10_000):
                outbox.append([Sample(0, TS0 + i, f"m{i % 100}", "power_w", float(i), "W")
                               for i in range(first, min(first + 10_000, per_edge))])
            outboxes.append(outbox)
        uplinks = [Uplink(parse_edge_config({
            "edge_id": edge, "site": "demo-school",
            "mqtt": {"host": "127.0.0.1", "port": port},
            "uplink": {"batch_max_records": args.batch, "max_in_flight_batches": args.in_flight,
                       "replay_records_per_s": 1_000_000, "resend_after_s": 30},
            "devices": [{"id": "m1", "host": "127.0.0.1", "model": "eastron-sdm120"}]}),
            outbox, SystemClock()) for edge, outbox in zip(edges, outboxes, strict=True)]
        await asyncio.sleep(2.0 if run == "sqlite" else 4.0)  # the centrals subscribe
        live_times: dict[int, float] = {}

        async def live() -> None:
            i = 0
            while True:
                (seq,) = outboxes[0].append([Sample(0, TS0 + per_edge + i, "live", "power_w",
                                                    1.0, "W")])
                live_times[seq] = time.perf_counter()
                i += 1
                await asyncio.sleep(1 / args.live_rate)

        latencies: list[float] = []
        read = live_reader(work, dsn)

        async def watch_live() -> None:
            seen = 0
            while True:
                await asyncio.sleep(0.05)
                rows = read(seen)
                now = time.perf_counter()
                for ts, seq in rows:
                    if seq in live_times:
                        latencies.append(now - live_times.pop(seq))
                    seen = max(seen, ts)

        def cpu() -> tuple[float, float, float, float]:
            return (sum(cpu_seconds(p.pid) for p in procs), time.process_time(),
                    cpu_seconds(broker_pid), children_cpu(pg.postmaster()) if pg else 0.0)

        t0 = time.perf_counter()
        cpu0 = cpu()
        tasks = [*(asyncio.create_task(u.run()) for u in uplinks),
                 asyncio.create_task(live()), asyncio.create_task(watch_live())]
        while any(o.acked_upto < per_edge for o in outboxes):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu1 = cpu()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for outbox in outboxes:
            outbox.close()
    lat = sorted(latencies) or [float("nan")]
    total = per_edge * args.edges
    return {"elapsed": elapsed, "rate": total / elapsed, "records": total + len(latencies),
            "cpu_central": cpu1[0] - cpu0[0], "cpu_edge": cpu1[1] - cpu0[1],
            "cpu_broker": cpu1[2] - cpu0[2], "cpu_postgres": cpu1[3] - cpu0[3],
            "live_p50": statistics.median(lat), "live_p99": lat[int(len(lat) * 0.99)],
            "live_max": lat[-1], "live_n": float(len(latencies))}


def write_institution(work: Path, edges: int) -> None:
    from central.auth import generate_secret
    from simulators.configs import institution_config
    from simulators.scenario import load_scenario

    config = institution_config(load_scenario("school"))
    config["edges"] = [f"edge-{i + 1}" for i in range(edges)]
    (work / "institution.yaml").write_text(yaml.safe_dump(config, allow_unicode=True),
                                           encoding="utf-8")
    (work / "auth.secret").write_text(generate_secret(), encoding="utf-8")
    (work / "auth.secret").chmod(0o600)


@contextlib.contextmanager
def postgres(needed: bool) -> Iterator[Any]:
    if not needed:
        yield None
        return
    from tests.contracts.pg import postgres_server

    with postgres_server() as server:
        server.postmaster = lambda: int(  # type: ignore[attr-defined]
            (server.data / "postmaster.pid").read_text().split()[0])
        yield server


async def main_async(args: argparse.Namespace) -> None:
    if shutil.which("mosquitto_pub") is None:
        sys.exit("needs Debian's mosquitto-clients (mosquitto_pub, mosquitto_sub)")
    runs = [r for r in args.runs.split(",") if r]
    if any(r not in ("sqlite", "pg1", "pg2") for r in runs):
        sys.exit(f"--runs: sqlite, pg1 or pg2, not {args.runs!r}")
    from tests.contracts.pg import server_binaries

    if any(r.startswith("pg") for r in runs) and server_binaries() is None:
        print("PostgreSQL server binaries not found: the pg1 and pg2 runs are left out")
        runs = [r for r in runs if not r.startswith("pg")]
    work = Path(tempfile.mkdtemp(prefix="gg-bench-"))
    port = free_port()
    (work / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                                 "max_queued_messages 0\nmax_inflight_messages 0\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                               str(work / "m.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    results: dict[str, dict[str, float]] = {}
    ceilings: dict[str, float] = {}
    try:
        await wait_for_port("127.0.0.1", port)
        write_institution(work, args.edges)
        payload = batch_payload(args.batch)
        messages = max(200, args.backlog // args.batch // 4)
        ceiling_rows = min(args.backlog, 200_000)
        ceilings["relay"] = mosquitto_relay(port, payload, messages) * args.batch
        ceilings["receive"] = await aiomqtt_receive(port, payload, messages) * args.batch
        ceilings["decode"] = decode_ceiling(args.batch, ceiling_rows)
        ceilings["sqlite_bare"] = raw_sqlite(work / "raw.sqlite", ceiling_rows, args.batch)
        ceilings["sqlite_store"] = sqlite_store_insert(work / "store.sqlite", ceiling_rows,
                                                       args.batch)
        with postgres(any(r.startswith("pg") for r in runs)) as pg:
            if pg is not None:
                from tests.contracts.pg import APP_PASSWORD

                ceilings["pg_store"] = pg_store_insert(
                    pg.dsn(pg.create_database("bench_ceiling")), APP_PASSWORD, ceiling_rows,
                    args.batch)
            for run in runs:
                results[run] = await end_to_end(work, port, args, run, broker.pid, pg)
    finally:
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    report(args, payload, ceilings, results)


_CEILINGS = {
    "relay": "Mosquitto relay (mosquitto_pub → mosquitto_sub)",
    "receive": "aiomqtt receive",
    "decode": "wire decode, one core",
    "sqlite_bare": "SQLite insert, bare table (reference)",
    "sqlite_store": "SQLite insert into the store's samples table",
    "pg_store": "PostgreSQL COPY into the store's samples table",
}
_PATH = {"sqlite": ("relay", "receive", "decode", "sqlite_store"),
         "pg1": ("relay", "receive", "decode", "pg_store"),
         "pg2": ("relay", "receive", "decode", "pg_store")}
_NAMES = {"sqlite": "SQLite, 1 central", "pg1": "PostgreSQL, 1 worker",
          "pg2": "PostgreSQL, 2 workers"}


def report(args: argparse.Namespace, payload: bytes, ceilings: dict[str, float],
           results: dict[str, dict[str, float]]) -> None:
    print(f"backlog={args.backlog} readings over {args.edges} edge(s), batch={args.batch}, "
          f"live={args.live_rate:g}/s, payload={len(payload)} bytes/batch, "
          f"load average {os.getloadavg()[0]:.1f}")
    for key, name in _CEILINGS.items():
        if key in ceilings:
            print(f"ceiling  {name:<50} {ceilings[key]:12,.0f} readings/s")
    for run, e2e in results.items():
        path = [k for k in _PATH[run] if k in ceilings]
        slowest = min(path, key=ceilings.__getitem__)
        print(f"end to end, {_NAMES[run]:<22} {e2e['rate']:12,.0f} readings/s = "
              f"{e2e['rate'] / ceilings[slowest]:.2f} × the slowest ceiling ({slowest}), "
              f"{e2e['rate'] / min(ceilings[k] for k in ('relay', 'receive', 'sqlite_bare')):.2f}"
              f" × the slowest of relay, receive, bare SQLite; drained in {e2e['elapsed']:.1f} s")
        parts = ["central", "edge", "broker"] + (["postgres"] if run != "sqlite" else [])
        print("    CPU per reading: " + ", ".join(
            f"{name} {e2e['cpu_' + name] / e2e['records'] * 1e6:.1f} µs" for name in parts)
            + f"; live latency (append → stored) n={e2e['live_n']:.0f}: "
              f"p50 {e2e['live_p50'] * 1000:.0f} ms, p99 {e2e['live_p99'] * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--backlog", type=int, default=360_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--live-rate", type=float, default=1000.0)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--edges", type=int, default=2)
    parser.add_argument("--runs", default="sqlite,pg1,pg2")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
