"""PostgreSQL-only behaviour: migrations (fresh, upgrade from version 1, concurrent start,
refusal of a newer schema), concurrent writers of one stream, and text PostgreSQL cannot
hold."""

from __future__ import annotations

import random
import threading

import psycopg
import pytest

from central import migrations
from central.errors import StoreError
from central.institution import MeterKey
from central.pgledger import PgLedger
from central.pgstore import PgStore
from central.rollup import NANO
from protocols.wire import Batch, StreamId
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.unit.central.central_helpers import batch, event, interval, local_ms, sample


def connect(server: PgServer, dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn(dbname), password=APP_PASSWORD, autocommit=True)


def versions(server: PgServer, dbname: str) -> list[tuple[object, ...]]:
    with connect(server, dbname) as conn:
        return conn.execute("SELECT component, version, name FROM schema_version "
                            "ORDER BY component, version").fetchall()


def test_fresh_database_gets_every_migration_once(pg_server: PgServer) -> None:
    db = pg_server.create_database()
    PgStore(pg_server.dsn(db), password=APP_PASSWORD).close()
    PgStore(pg_server.dsn(db), password=APP_PASSWORD).close()  # a restart applies nothing
    # store and ledger share a db
    PgLedger(pg_server.dsn(db), "school", password=APP_PASSWORD).close()
    assert versions(pg_server, db) == [("ledger", 1, "init"), ("ledger", 2, "institution"),
                                       ("store", 1, "init"), ("store", 2, "interval_bound"),
                                       ("store", 3, "central_state"), ("store", 4, "rollups")]
    assert migrations.latest_version("store") == 4


def test_upgrade_from_version_1_keeps_data_and_fills_the_new_table(pg_server: PgServer
                                                                   ) -> None:
    db = pg_server.create_database()
    midnight = local_ms(2025, 3, 1)
    hour = 3_600_000
    with connect(pg_server, db) as conn:
        assert migrations.apply(conn, "store", target=1) == 1
        # Data written by a version-1 greenguard: a 2-hour interval straddling midnight.
        conn.execute("INSERT INTO intervals VALUES ('edge-1', 'm', 'energy_import_kwh', %s, "
                     "7200, 4.0, 'kWh', '', 1, 1, 1)", (midnight - hour,))
        conn.execute("INSERT INTO streams VALUES ('edge-1', 1, 's', 1, 0)")
    with PgStore(pg_server.dsn(db), password=APP_PASSWORD) as store:
        assert ("store", 2, "interval_bound") in versions(pg_server, db)
        key = MeterKey("edge-1", "m", "energy_import_kwh")
        # The straddling interval is found only because the bound came from the old rows.
        assert store.interval_sums(midnight, midnight + hour) == {key: 2.0}
        assert store.watermark(StreamId("edge-1", 1)) == 1
        assert store.store_batch(batch([sample(2)], after=1), "s") == 2


def test_a_schema_newer_than_the_code_is_refused(pg_server: PgServer) -> None:
    db = pg_server.create_database()
    PgStore(pg_server.dsn(db), password=APP_PASSWORD).close()
    with connect(pg_server, db) as conn:
        conn.execute("INSERT INTO schema_version (component, version, name) "
                     "VALUES ('store', 99, 'from_the_future')")
    with pytest.raises(StoreError, match="version 99, newer than this greenguard"):
        PgStore(pg_server.dsn(db), password=APP_PASSWORD)


def test_workers_starting_together_migrate_once(pg_server: PgServer) -> None:
    db = pg_server.create_database()
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        try:
            barrier.wait()
            PgStore(pg_server.dsn(db), password=APP_PASSWORD).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert [v for _, v, _ in versions(pg_server, db)] == list(
        range(1, migrations.latest_version("store") + 1))


def test_wrong_password_is_a_store_error(pg_server: PgServer) -> None:
    db = pg_server.create_database()
    with pytest.raises(StoreError, match="password authentication failed"):
        PgStore(pg_server.dsn(db), password="wrong")


def chain(edge: str, epoch: int, n: int) -> list[Batch]:
    out: list[Batch] = []
    seq = 0
    for i in range(n):
        after = seq
        recs = [sample(seq + 1, ts=i, value=float(i)),
                interval(seq + 2, start=900_000 * (i % 7), quantity=float(i)),
                event(seq + 4)]  # a hole: seq + 3 was dropped by the edge
        seq += 4
        out.append(batch(recs, after=after, edge=edge, epoch=epoch))
    return out


def test_concurrent_workers_on_one_stream_lose_nothing(pg_server: PgServer,
                                                       request: pytest.FixtureRequest) -> None:
    """Four workers store the batches of two epochs of one edge in random order, with
    duplicates, at the same time: the watermark reaches the end, no pending range is left,
    every record is stored once and each interval holds its newest version."""
    db = pg_server.create_database()
    dsn = pg_server.dsn(db)
    streams = {1: chain("edge-1", 1, 40), 2: chain("edge-1", 2, 40)}
    work = [b for c in streams.values() for b in c] * 2
    random.Random(8).shuffle(work)
    stores = [PgStore(dsn, password=APP_PASSWORD) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(i: int, store: PgStore) -> None:
        try:
            barrier.wait()
            for b in work[i::len(stores)]:
                store.store_batch(b, "s", now=1.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for s in stores:
        s.close()
    assert errors == []
    check = PgStore(dsn, password=APP_PASSWORD, readonly=True)
    request.addfinalizer(check.close)
    for epoch, c in streams.items():
        assert check.watermark(StreamId("edge-1", epoch)) == c[-1].seq
        assert check.pending_ranges(StreamId("edge-1", epoch)) == []
    counts = check.counts()
    assert (counts["samples"], counts["events"], counts["pending"]) == (80, 80, 0)
    # Interval start slot k holds the record with the highest (epoch, seq): epoch 2's last.
    newest = {row[3]: (row[9], row[10]) for row in check.rows("intervals")}
    for k in range(7):
        last = max(i for i in range(40) if i % 7 == k)
        assert newest[900_000 * k] == (2, 4 * last + 2)
    # The rollups followed every replacement, whichever worker made it.
    total = sum(round(float(row[5]) * NANO) for row in check.rows("intervals"))
    assert sum(int(r[-1]) for r in check.rollup_rows()["interval_hourly"]) == total


def test_text_with_nul_is_stored_and_acknowledged(pg_server: PgServer) -> None:
    """PostgreSQL text cannot hold U+0000; the batch must still be stored (an unstorable
    batch would never be acknowledged and would block the edge's stream for ever)."""
    with PgStore(pg_server.dsn(pg_server.create_database()), password=APP_PASSWORD) as store:
        assert store.store_batch(batch([sample(1, value="a\x00b", unit="\x00")], after=0),
                                 "s") == 1
        [row] = store.rows("samples")
        assert (row[6], row[8]) == ("a\ufffdb", "\ufffd")


def test_a_lost_connection_is_an_error_then_reopened(pg_server: PgServer) -> None:
    """The server drops the worker's connection (restart, failover): that batch is a
    StoreError (no ack, the edge resends) and the next one reconnects and is stored."""
    db = pg_server.create_database()
    with PgStore(pg_server.dsn(db), password=APP_PASSWORD) as store:
        assert store.store_batch(batch([sample(1)], after=0), "s") == 1
        pg_server.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = '{db}' AND pid <> pg_backend_pid()")
        with pytest.raises(StoreError):
            store.store_batch(batch([sample(2)], after=1), "s")
        assert store.store_batch(batch([sample(2)], after=1), "s") == 2
        assert store.counts()["samples"] == 2
