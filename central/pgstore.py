"""The PostgreSQL store: the SQLite `Store`'s ingest and read contract on a shared server.

Several central ingest workers (MQTT shared subscription, docs/scale-out.md) write into one
database, so batches of one stream can be stored concurrently by two workers. The rules of
central/store.py hold unchanged; what differs is how they are kept under concurrency:

- Each batch transaction first takes the row lock of its stream row (`streams`, created if
  absent, then `SELECT ... FOR UPDATE`). Every writer of a stream's watermark and pending
  ranges holds that lock, so the chain merge (`Writes.advance`) reads and writes a consistent
  set, in READ COMMITTED, and batches of different streams never wait for each other.
- Taking the stream lock before inserting any record also orders the record inserts of one
  stream; the remaining cross-stream contention (two epochs of one edge touching the same
  `latest` and `edges` rows) can deadlock, which PostgreSQL breaks by aborting one side:
  deadlocks and serialization failures are retried a few times, then reported as a
  `StoreError` (no ack, the edge resends).
- Samples and events are deduplicated by their primary key (stream edge, epoch, seq) with
  `ON CONFLICT DO NOTHING`; intervals are upserted in record order with the same (epoch, seq)
  guard as SQLite, so replays and late data are idempotent whichever worker sees them.
- PostgreSQL text cannot hold NUL characters; a string value or unit containing one is
  stored with U+FFFD in its place rather than refusing (and never acknowledging) the batch.
- A lost connection (server restart, network) is reported as a `StoreError` and reopened on
  the next call; nothing is acknowledged in between.

The statements that are the same on SQLite live once in central/storesql.py, spelt for
PostgreSQL by `POSTGRES` (placeholders, GREATEST/LEAST, `COLLATE "C"`, `FOR UPDATE`, arrays,
num/txt values). What is here is PostgreSQL's own: the connection, server-side `unnest`
bulk inserts (COPY for samples the watermark proves new, central/pgcopy.py), the
`interval_bound` row and reads tuned to it, and the hooks of the daily and hourly rollups
(central/pgrollup.py) and the AC day cache (central/pgaccache.py). The schema comes from
numbered migrations (central/migrations/store/), applied at start.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from central import migrations, pgaccache, pgrollup
from central.errors import StoreError, overflow_is_a_store_error
from central.institution import MeterKey
from central.pgaccache import PgAcDayCache
from central.pgcopy import copy_new_samples
from central.samplerows import pg_columns
from central.storeport import (
    BatchWrite,
    FullStore,
    Quarantine,
    StoreResult,
    notice_event_row,
)
from central.storesql import TABLES, UPSERT_INTERVAL, Dialect, SqlReads, Writes, no_nul
from central.sumsdays import SumsAndDays
from central.sweeps import AcPoints, AcRule
from protocols.wire import (
    Batch,
    Birth,
    Death,
    Event,
    IntervalRecord,
    Notice,
    Record,
    Sample,
    SampleColumns,
    StreamId,
)

T = TypeVar("T")


def connect(dsn: str, password: str | None, timeout_s: int, application: str, *,
            readonly: bool = False, what: str) -> Conn:
    """An autocommit connection of the store or the ledger; `StoreError(what)` if refused.
    The password is passed apart from the DSN, which never holds one."""
    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": timeout_s,
                              "application_name": application}
    if password is not None:
        kwargs["password"] = password
    if readonly:
        kwargs["options"] = "-c default_transaction_read_only=on"
    try:
        return psycopg.connect(dsn, **kwargs)
    except psycopg.Error as exc:
        raise StoreError(what, f"postgres: {exc}") from exc
Conn = psycopg.Connection[tuple[Any, ...]]


class PgConnection:
    """The one connection of the store or the ledger: opened on first use, used under one
    lock, and dropped after a failure that broke it, so the next call reconnects (a server
    restart costs one refused call, nothing is acknowledged in between)."""

    def __init__(self, dsn: str, password: str | None, timeout_s: int, application: str, *,
                 readonly: bool = False, what: str) -> None:
        self.dsn = dsn
        self.readonly = readonly
        self._password = password
        self._timeout_s = timeout_s
        self._application = application
        self._what = what  # names a refused connection in its StoreError
        self.lock = threading.RLock()
        self._conn: Conn | None = None

    def get(self) -> Conn:
        """The open connection (opened now if needed); call with `lock` held."""
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self._password, self._timeout_s,
                                 self._application, readonly=self.readonly, what=self._what)
        return self._conn

    def drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self.lock:
            self.drop()

    @contextlib.contextmanager
    def use(self, operation: str) -> Iterator[Conn]:
        """The connection under the lock; a database error becomes `StoreError(operation)`
        and drops the connection if it broke."""
        with self.lock:
            conn = self.get()
            try:
                yield conn
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    self.drop()
                raise StoreError(operation, str(exc)) from exc

RETRIES = 8  # serialization failures and deadlocks before giving up (no ack; edge resends)

# Column lists for `rows()`, in the SQLite store's order; `value` is rebuilt from num/txt.
_ROW_COLUMNS: dict[str, str] = {
    "streams": "edge, epoch, site, watermark, updated",
    "pending": "edge, epoch, after, upto",
    "samples": "stream_edge, stream_epoch, seq, ts, device, point, num, txt, vtype, unit, "
               "synced",
    "latest": "edge, device, point, ts, num, txt, vtype, unit, stream_epoch, seq",
    "intervals": "edge, device, point, start, duration_s, quantity, unit, flags, synced, "
                 "stream_epoch, seq",
    "events": "stream_edge, stream_epoch, seq, ts, name, severity, device, data, synced",
    "edges": "edge, site, epoch, online, software, devices, birth_ts, synced, last_seen, "
             "changed",
    "dead_letter": "id, digest, topic, payload, size, error, first_seen, last_seen, count",
}

# Samples, events and the latest value per point go in as one statement each (arrays
# unnested server-side): two round trips per batch instead of two per record.
_INSERT_SAMPLES = """INSERT INTO samples
    (stream_edge, stream_epoch, seq, ts, device, point, num, txt, vtype, unit, synced)
    SELECT %s, %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[],
                                 %s::float8[], %s::text[], %s::text[], %s::text[],
                                 %s::smallint[])
    ON CONFLICT (stream_edge, stream_epoch, seq) DO NOTHING"""
# One row per point (the newest of the batch), so no row is updated twice in one statement.
_UPSERT_LATEST = """INSERT INTO latest AS l
    (edge, device, point, ts, num, txt, vtype, unit, stream_epoch, seq)
    SELECT %s, device, point, ts, num, txt, vtype, unit, %s, seq
    FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::float8[], %s::text[], %s::text[],
                %s::text[], %s::bigint[]) AS b(device, point, ts, num, txt, vtype, unit, seq)
    ON CONFLICT (edge, device, point) DO UPDATE SET
        ts = excluded.ts, num = excluded.num, txt = excluded.txt, vtype = excluded.vtype,
        unit = excluded.unit, stream_epoch = excluded.stream_epoch, seq = excluded.seq
    WHERE (excluded.ts, excluded.stream_epoch, excluded.seq) > (l.ts, l.stream_epoch, l.seq)"""
_INSERT_EVENTS = """INSERT INTO events
    (stream_edge, stream_epoch, seq, ts, name, severity, device, data, synced)
    SELECT %s, %s, * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[],
                                 %s::text[], %s::text[], %s::smallint[])
    ON CONFLICT (stream_edge, stream_epoch, seq) DO NOTHING"""


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows to one list per column, for `unnest`."""
    return [list(col) for col in zip(*rows, strict=True)]


def _value(v: float | int | bool | str) -> tuple[float | None, str | None, str]:
    if isinstance(v, bool):
        return float(v), None, "b"
    if isinstance(v, str):
        return None, no_nul(v), "s"
    return float(v), None, "n"


def _writes(conn: Conn) -> Writes:
    return Writes(POSTGRES, lambda statement, params: conn.execute(statement.encode(), params))


def _unvalue(num: float | None, txt: str | None, vtype: str) -> float | int | bool | str:
    if vtype == "b":
        return bool(num)
    if vtype == "s":
        return str(txt)
    assert num is not None
    return num


POSTGRES = Dialect(name="postgres", placeholder="%s", greatest="GREATEST", least="LEAST",
                   collate=' COLLATE "C"', find="strpos", for_update=" FOR UPDATE",
                   value_columns="num, txt, vtype", decode=_unvalue, text=no_nul,
                   array_lists=True)
_UPSERT_INTERVAL_PG = POSTGRES.sql(UPSERT_INTERVAL)


class PgStore(SqlReads):
    """One connection (thread-safe through a lock), reopened after a failure."""

    dialect = POSTGRES

    def __init__(self, dsn: str, *, password: str | None = None, readonly: bool = False,
                 migrate: bool = True, connect_timeout_s: int = 10) -> None:
        self.dsn = dsn
        self.readonly = readonly
        self._db = PgConnection(dsn, password, connect_timeout_s, "greenguard-central",
                                readonly=readonly, what="open")
        self.conflict_retries = 0  # serialization failures / deadlocks retried (diagnostics)
        self.ac_days = PgAcDayCache(self._db.use, writable=not readonly)  # central/pgaccache.py
        if migrate and not readonly:
            try:
                migrations.apply(self._db.get(), "store")
            except BaseException:
                self._db.drop()
                raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, operation: str, work: Callable[[Conn], T]) -> T:
        """Run `work` in one transaction; retry it on serialization failure or deadlock."""
        if self.readonly:
            raise StoreError(operation, "store opened read-only")
        for attempt in range(RETRIES):
            with self._db.use(operation) as conn:
                try:
                    with conn.transaction():
                        return work(conn)
                except (pgerrors.SerializationFailure, pgerrors.DeadlockDetected) as exc:
                    self.conflict_retries += 1
                    if attempt == RETRIES - 1:
                        raise StoreError(operation, f"gave up after {RETRIES} conflicts: "
                                                    f"{exc}") from exc
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def _query(self, query: str | sql.Composed, params: Sequence[Any] | dict[str, Any] = ()
               ) -> list[tuple[Any, ...]]:
        with self._db.use("query") as conn:
            return conn.execute(query if isinstance(query, sql.Composed)
                                else query.encode(), params).fetchall()

    # -- writes -------------------------------------------------------------------------

    def store_batch(self, batch: Batch, site: str, *, now: float = 0.0) -> int:
        return self.store_records(batch.stream, batch.after, batch.seq, batch.records,
                                  site=site, now=now).watermark

    def store_many(self, writes: Sequence[BatchWrite], *, now: float) -> list[StoreResult]:
        """The batches in ONE transaction (group commit, as the SQLite store does): the
        round trips of a commit and of the locks are paid once per group, not per batch.
        The groups' stream row locks are taken first, in sorted order, so two workers'
        groups never wait for each other in a cycle; then each batch is written as
        `store_records` writes it (its own lock_stream re-reads the watermark the batches
        before it in the group moved). All or nothing: a failure acknowledges none."""
        with overflow_is_a_store_error("store_batch"):  # a number beyond a double
            works = [self._batch(w.stream, w.after, w.upto, w.records, site=w.site, now=now,
                                 quarantine=w.quarantine) for w in writes]

        def group(conn: Conn) -> list[StoreResult]:
            tx = _writes(conn)
            for stream, site in sorted(dict.fromkeys((w.stream, w.site) for w in writes)):
                tx.lock_stream(stream, site, now)
            return [work(conn) for work in works]

        if len(works) == 1:
            return [self._write("store_batch", works[0])]
        return self._write("store_batch", group)

    def store_records(self, stream: StreamId, after: int, upto: int,
                      records: Sequence[Record], *, site: str, now: float,
                      quarantine: Sequence[Quarantine] = ()) -> StoreResult:
        with overflow_is_a_store_error("store_batch"):  # a number beyond a double
            work = self._batch(stream, after, upto, records, site=site, now=now,
                               quarantine=quarantine)
        return self._write("store_batch", work)

    def _batch(self, stream: StreamId, after: int, upto: int, records: Sequence[Record], *,
               site: str, now: float, quarantine: Sequence[Quarantine] = ()
               ) -> Callable[[Conn], StoreResult]:
        """One batch's write, to run inside a transaction: rows prepared now, statements
        run by the returned function (again, on a retry)."""
        if upto <= after:
            raise ValueError(f"upto {upto} must be greater than after {after}")
        edge, epoch = stream.edge, stream.epoch
        samples: list[tuple[Any, ...]] = []
        latest: dict[tuple[str, str], tuple[Any, ...]] = {}
        events: list[tuple[Any, ...]] = []
        intervals: list[tuple[Any, ...]] = []
        columns = (pg_columns(records, no_nul) if isinstance(records, SampleColumns)
                   else None)  # central/samplerows.py: arrays without a loop per reading
        for r in records if columns is None else ():
            if isinstance(r, Sample):
                num, txt, vtype = _value(r.value)
                unit = no_nul(r.unit)
                samples.append((r.seq, r.ts, r.device, r.point, num, txt, vtype, unit,
                                int(r.synced)))
                key = (r.device, r.point)
                newest = latest.get(key)
                if newest is None or (r.ts, r.seq) > (newest[2], newest[7]):
                    latest[key] = (r.device, r.point, r.ts, num, txt, vtype, unit, r.seq)
            elif isinstance(r, IntervalRecord):
                intervals.append((edge, r.device, r.point, r.start, r.duration_s, r.quantity,
                                  no_nul(r.unit), ",".join(sorted(f.value for f in r.flags)),
                                  int(r.synced), epoch, r.seq))
            elif isinstance(r, Event):
                events.append((r.seq, r.ts, r.name, r.severity.value, r.device,
                               json.dumps(r.data, ensure_ascii=False, sort_keys=True),
                               int(r.synced)))

        def work(conn: Conn) -> StoreResult:
            tx = _writes(conn)
            # The stream's row lock first: it serialises every writer of this stream.
            locked = tx.lock_stream(stream, site, now)
            inserted = 0
            with conn.cursor() as cur:
                if samples or columns:
                    arrays = _columns(samples) if columns is None else columns[0]
                    # the AC day cache's generations: rows (seq, ts, device, point, …)
                    pgaccache.bump(conn, edge, samples if columns is None
                                   else list(zip(*arrays[:4], strict=True)))
                    # COPY when the watermark proves the batch new (central/pgcopy.py)
                    copied = (copy_new_samples(conn, edge, epoch, arrays) if after >= locked
                              else None)
                    if copied is None:
                        cur.execute(_INSERT_SAMPLES, (edge, epoch, *arrays))
                        copied = max(cur.rowcount, 0)
                    inserted += copied
                if events:
                    cur.execute(_INSERT_EVENTS, (edge, epoch, *_columns(events)))
                    inserted += max(cur.rowcount, 0)
                if intervals:  # in record order: a later version in the batch wins
                    pgrollup.roll_up(conn, intervals)  # first: it reads what is replaced
                    cur.executemany(_UPSERT_INTERVAL_PG, intervals)
                    inserted += max(cur.rowcount, 0)
                if latest or columns:
                    cur.execute(_UPSERT_LATEST, (edge, epoch, *(
                        _columns(list(latest.values())) if columns is None else columns[1])))
                if intervals:
                    longest = max(r[4] for r in intervals)
                    cur.execute("UPDATE interval_bound SET seconds = %s WHERE id = 1 "
                                "AND seconds < %s", (longest, longest))
            for q in quarantine:
                tx.dead_letter(q, now)
            watermark = tx.advance(stream, locked, after, upto, site, now)
            tx.touch(edge, site, now)
            return StoreResult(watermark, inserted, len(records) - inserted, len(quarantine))

        return work

    def dead_letter(self, quarantine: Quarantine, *, now: float) -> None:
        self._write("dead_letter", lambda conn: _writes(conn).dead_letter(quarantine, now))

    def record_birth(self, site: str, birth: Birth, *, now: float) -> None:
        self._write("record_birth", lambda conn: _writes(conn).record_birth(site, birth, now))

    def record_notice(self, stream: StreamId, notice: Notice, *, now: float) -> None:
        row = notice_event_row(stream, notice)

        def work(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO events (stream_edge, stream_epoch, seq, ts, name, severity, "
                "device, data, synced) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (stream_edge, stream_epoch, seq) DO NOTHING", row)

        self._write("record_notice", work)

    def record_death(self, site: str, death: Death, *, now: float) -> None:
        self._write("record_death", lambda conn: _writes(conn).record_death(site, death, now))

    # -- reads (the shared ones are central/storesql.py's SqlReads) ----------------------

    def _lower_bound(self, start_ms: int) -> int:
        rows = self._query("SELECT seconds FROM interval_bound WHERE id = 1")
        return start_ms - (int(rows[0][0]) * 1000 if rows else 0)

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of one table in a stable order, in the SQLite store's column layout."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        query = sql.SQL("SELECT {} FROM {} ORDER BY 1, 2, 3, 4").format(
            sql.SQL(_ROW_COLUMNS[table]), sql.Identifier(table))
        out = []
        for r in self._query(query):
            if table == "samples":
                r = (*r[:6], _unvalue(r[6], r[7], r[8]), *r[8:])
            elif table == "latest":
                r = (*r[:4], _unvalue(r[4], r[5], r[6]), *r[6:])
            elif table == "dead_letter":
                r = (*r[:3], bytes(r[3]), *r[4:])
            out.append(tuple(r))
        return out

    # -- API and dashboard reads (see central/store.py for the contract) ----------------
    # Text columns are ordered with COLLATE "C": byte order, as SQLite's, whatever the
    # database's collation.

    # -- compliance reads ---------------------------------------------------------------

    def first_start_of(self, start_ms: int, end_ms: int,
                       keys: Iterable[MeterKey]) -> int | None:
        with self._db.use("query") as conn:
            return pgrollup.first_start(conn, [(k.edge, k.device, k.point) for k in keys],
                                        start_ms, end_ms)

    def period_sums(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                    keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        """`interval_sums` from the rollups (central/pgrollup.py), in one statement."""
        del tz  # UTC day buckets serve a period in any zone
        wanted = None if keys is None else list(dict.fromkeys(keys))
        if end_ms <= start_ms or wanted == []:
            return {}
        with self._db.use("query") as conn:
            raw = pgrollup.period_sums(conn, start_ms, end_ms, wanted)
        if wanted is None:
            return {MeterKey(*k): v for k, v in raw.items()}
        return {k: raw.get(k, 0.0) for k in wanted}  # a MeterKey is its (e, d, p) tuple

    def sums_and_day_totals(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                            keys: Sequence[MeterKey], groups: Sequence[int]
                            ) -> SumsAndDays | None:
        """`period_sums` and per-group `day_totals` reading the daily rollup rows once
        (central/sumsdays.py, central/pgrollup.py)."""
        with self._db.use("query") as conn:
            both = pgrollup.sums_and_days(conn, start_ms, end_ms, tz, keys, groups)
        if both is None:
            return None
        sums, totals = both
        return {k: sums.get(k, 0.0) for k in keys}, totals

    def hour_totals(self, keys: Iterable[MeterKey], h0: int, h1: int
                    ) -> dict[int, float] | None:
        """Consumption of `keys` together per epoch hour h0 ≤ h < h1, from the hourly rollup."""
        with self._db.use("query") as conn:
            return pgrollup.hour_totals(conn, [(k.edge, k.device, k.point) for k in keys], h0, h1)

    def day_totals(self, keys: Iterable[MeterKey], h0: int, h1: int, tz: ZoneInfo
                   ) -> dict[date, float] | None:
        """`hour_totals` grouped by local date, whole days from the daily rollup."""
        with self._db.use("query") as conn:
            return pgrollup.day_totals(conn, [(k.edge, k.device, k.point) for k in keys],
                                       h0, h1, tz)

    def ac_seconds(self, units: Sequence[AcPoints], start_ms: int, end_ms: int,
                   rule: AcRule, tz: ZoneInfo) -> tuple[int, int]:
        """The port's AC sweep, whole local days from the per-day cache (central/pgaccache.py)."""
        return self.ac_days.seconds(self.sample_series, units, start_ms, end_ms, rule, tz)

    def rollup_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Both rollup tables, for tests and diagnostics."""
        with self._db.use("query") as conn:
            return pgrollup.rollup_rows(conn)


if TYPE_CHECKING:  # mypy checks that the adapter satisfies the whole port

    def _is_a_full_store(store: PgStore) -> FullStore:
        return store
