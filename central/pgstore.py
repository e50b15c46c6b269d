"""The PostgreSQL store: the SQLite `Store`'s ingest and read contract on a shared server.

Several central ingest workers (MQTT shared subscription, docs/scale-out.md) write into one
database, so batches of one stream can be stored concurrently by two workers. The rules of
central/store.py hold unchanged; what differs is how they are kept under concurrency:

- Each batch transaction first takes the row lock of its stream row (`streams`, created if
  absent, then `SELECT ... FOR UPDATE`). Every writer of a stream's watermark and pending
  ranges holds that lock, so the chain merge in `_advance` reads and writes a consistent
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

The schema comes from numbered migrations (central/migrations/store/), applied at start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from central import migrations
from central.config import MeterKey
from central.errors import StoreError
from central.store import (
    MAX_DEAD_LETTER_BYTES,
    BatchWrite,
    CommandResult,
    DeadLetter,
    EdgeState,
    LatestSample,
    Quarantine,
    StoredEvent,
    StoredInterval,
    StoreResult,
    command_result,
    event_data,
    flag_list,
    notice_event_row,
    sums_per_day,
)
from protocols.wire import (
    Batch,
    Birth,
    Death,
    Event,
    IntervalRecord,
    Notice,
    Record,
    Sample,
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

RETRIES = 8  # serialization failures and deadlocks before giving up (no ack; edge resends)

_TABLES = ("streams", "pending", "samples", "latest", "intervals", "events", "edges",
           "dead_letter")
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
_UPSERT_INTERVAL = """INSERT INTO intervals AS i
    (edge, device, point, start, duration_s, quantity, unit, flags, synced, stream_epoch, seq)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (edge, device, point, start) DO UPDATE SET
        duration_s = excluded.duration_s, quantity = excluded.quantity, unit = excluded.unit,
        flags = excluded.flags, synced = excluded.synced,
        stream_epoch = excluded.stream_epoch, seq = excluded.seq
    WHERE (excluded.stream_epoch, excluded.seq) > (i.stream_epoch, i.seq)"""
_OVERLAP_SUM = """SELECT edge, device, point,
        SUM(CASE WHEN start >= %(s)s AND start + duration_s * 1000 <= %(e)s THEN quantity
                 ELSE quantity * (LEAST(start + duration_s * 1000, %(e)s) - GREATEST(start, %(s)s))
                      / (duration_s * 1000.0) END)
    FROM intervals
    WHERE start < %(e)s AND start >= %(lo)s AND start + duration_s * 1000 > %(s)s
    GROUP BY edge, device, point"""


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows to one list per column, for `unnest`."""
    return [list(col) for col in zip(*rows, strict=True)]


def _text(s: str) -> str:
    return s.replace("\x00", "\ufffd") if "\x00" in s else s


def _value(v: float | int | bool | str) -> tuple[float | None, str | None, str]:
    if isinstance(v, bool):
        return float(v), None, "b"
    if isinstance(v, str):
        return None, _text(v), "s"
    return float(v), None, "n"


def _unvalue(num: float | None, txt: str | None, vtype: str) -> float | int | bool | str:
    if vtype == "b":
        return bool(num)
    if vtype == "s":
        return str(txt)
    assert num is not None
    return num


class PgStore:
    """One connection (thread-safe through a lock), reopened after a failure."""

    def __init__(self, dsn: str, *, password: str | None = None, readonly: bool = False,
                 migrate: bool = True, connect_timeout_s: int = 10) -> None:
        self.dsn = dsn
        self.readonly = readonly
        self._password = password
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.RLock()
        self._conn: Conn | None = None
        self.conflict_retries = 0  # serialization failures / deadlocks retried (diagnostics)
        if migrate and not readonly:
            try:
                migrations.apply(self._connection(), "store")
            except BaseException:
                self._drop()
                raise

    # -- connection -----------------------------------------------------------------

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self._password, self._connect_timeout_s,
                                 "greenguard-central", readonly=self.readonly, what="open")
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, operation: str, work: Callable[[Conn], T]) -> T:
        """Run `work` in one transaction; retry it on serialization failure or deadlock."""
        if self.readonly:
            raise StoreError(operation, "store opened read-only")
        for attempt in range(RETRIES):
            with self._lock:
                conn = self._connection()
                try:
                    with conn.transaction():
                        return work(conn)
                except (pgerrors.SerializationFailure, pgerrors.DeadlockDetected) as exc:
                    self.conflict_retries += 1
                    if attempt == RETRIES - 1:
                        raise StoreError(operation, f"gave up after {RETRIES} conflicts: "
                                                    f"{exc}") from exc
                except psycopg.Error as exc:
                    if conn.closed or conn.broken:
                        self._drop()
                    raise StoreError(operation, str(exc)) from exc
            time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def _query(self, query: str | sql.Composed, params: Sequence[Any] | dict[str, Any] = ()
               ) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(query if isinstance(query, sql.Composed)
                                    else query.encode(), params).fetchall()
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    self._drop()
                raise StoreError("query", str(exc)) from exc

    # -- writes -------------------------------------------------------------------------

    def store_batch(self, batch: Batch, site: str, *, now: float = 0.0) -> int:
        return self.store_records(batch.stream, batch.after, batch.seq, batch.records,
                                  site=site, now=now).watermark

    def store_many(self, writes: Sequence[BatchWrite], *, now: float) -> list[StoreResult]:
        """The batches one after the other, each in its own transaction with its stream's
        row lock (the SQLite store commits them as one group). A failure raises before any
        ack is sent; batches committed before it are absorbed as duplicates on resend."""
        return [self.store_records(w.stream, w.after, w.upto, w.records, site=w.site, now=now,
                                   quarantine=w.quarantine) for w in writes]

    def store_records(self, stream: StreamId, after: int, upto: int,
                      records: Sequence[Record], *, site: str, now: float,
                      quarantine: Sequence[Quarantine] = ()) -> StoreResult:
        if upto <= after:
            raise ValueError(f"upto {upto} must be greater than after {after}")
        edge, epoch = stream.edge, stream.epoch
        samples: list[tuple[Any, ...]] = []
        latest: dict[tuple[str, str], tuple[Any, ...]] = {}
        events: list[tuple[Any, ...]] = []
        intervals: list[tuple[Any, ...]] = []
        for r in records:
            if isinstance(r, Sample):
                num, txt, vtype = _value(r.value)
                unit = _text(r.unit)
                samples.append((r.seq, r.ts, r.device, r.point, num, txt, vtype, unit,
                                int(r.synced)))
                key = (r.device, r.point)
                newest = latest.get(key)
                if newest is None or (r.ts, r.seq) > (newest[2], newest[7]):
                    latest[key] = (r.device, r.point, r.ts, num, txt, vtype, unit, r.seq)
            elif isinstance(r, IntervalRecord):
                intervals.append((edge, r.device, r.point, r.start, r.duration_s, r.quantity,
                                  _text(r.unit), ",".join(sorted(f.value for f in r.flags)),
                                  int(r.synced), epoch, r.seq))
            elif isinstance(r, Event):
                events.append((r.seq, r.ts, r.name, r.severity.value, r.device,
                               json.dumps(r.data, ensure_ascii=False, sort_keys=True),
                               int(r.synced)))

        def work(conn: Conn) -> StoreResult:
            # The stream's row lock first: it serialises every writer of this stream.
            conn.execute("INSERT INTO streams (edge, epoch, site, watermark, updated) "
                         "VALUES (%s, %s, %s, 0, %s) ON CONFLICT (edge, epoch) DO NOTHING",
                         (edge, epoch, site, now))
            row = conn.execute("SELECT watermark FROM streams WHERE edge = %s AND epoch = %s "
                               "FOR UPDATE", (edge, epoch)).fetchone()
            assert row is not None
            inserted = 0
            with conn.cursor() as cur:
                if samples:
                    cur.execute(_INSERT_SAMPLES, (edge, epoch, *_columns(samples)))
                    inserted += max(cur.rowcount, 0)
                if events:
                    cur.execute(_INSERT_EVENTS, (edge, epoch, *_columns(events)))
                    inserted += max(cur.rowcount, 0)
                if intervals:  # in record order: a later version in the batch wins
                    cur.executemany(_UPSERT_INTERVAL, intervals)
                    inserted += max(cur.rowcount, 0)
                if latest:
                    cur.execute(_UPSERT_LATEST,
                                (edge, epoch, *_columns(list(latest.values()))))
                if intervals:
                    longest = max(r[4] for r in intervals)
                    cur.execute("UPDATE interval_bound SET seconds = %s WHERE id = 1 "
                                "AND seconds < %s", (longest, longest))
                for q in quarantine:
                    self._dead_letter(cur, q, now)
            watermark = self._advance(conn, stream, int(row[0]), after, upto, site, now)
            self._touch(conn, edge, site, now)
            return StoreResult(watermark, inserted, len(records) - inserted, len(quarantine))

        return self._write("store_batch", work)

    @staticmethod
    def _advance(conn: Conn, stream: StreamId, w: int, after: int, upto: int, site: str,
                 now: float) -> int:
        key = (stream.edge, stream.epoch)
        if after <= w:
            w = max(w, upto)
        else:
            conn.execute("INSERT INTO pending (edge, epoch, after, upto) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT DO NOTHING", (*key, after, upto))
        while True:  # merge every pending range the watermark now reaches
            row = conn.execute("DELETE FROM pending WHERE edge = %s AND epoch = %s AND "
                               "after <= %s RETURNING upto", (*key, w)).fetchall()
            top = max((int(u) for (u,) in row), default=None)
            if top is None or top <= w:
                break
            w = top
        conn.execute("UPDATE streams SET site = %s, watermark = %s, updated = %s "
                     "WHERE edge = %s AND epoch = %s", (site, w, now, *key))
        return w

    @staticmethod
    def _touch(conn: Conn, edge: str, site: str, now: float) -> None:
        conn.execute(
            "INSERT INTO edges AS x (edge, site, last_seen) VALUES (%s, %s, %s) "
            "ON CONFLICT (edge) DO UPDATE SET site = excluded.site, "
            "last_seen = GREATEST(COALESCE(x.last_seen, excluded.last_seen), excluded.last_seen)",
            (edge, site, now))

    @staticmethod
    def _dead_letter(cur: psycopg.Cursor[tuple[Any, ...]], q: Quarantine, now: float) -> None:
        digest = hashlib.sha256(q.topic.encode() + b"\0" + q.payload).hexdigest()
        cur.execute(
            "INSERT INTO dead_letter AS d (digest, topic, payload, size, error, first_seen, "
            "last_seen, count) VALUES (%s, %s, %s, %s, %s, %s, %s, 1) "
            "ON CONFLICT (digest) DO UPDATE SET count = d.count + 1, "
            "last_seen = GREATEST(d.last_seen, excluded.last_seen)",
            (digest, _text(q.topic), q.payload[:MAX_DEAD_LETTER_BYTES], len(q.payload),
             _text(q.error), now, now))

    def dead_letter(self, quarantine: Quarantine, *, now: float) -> None:
        def work(conn: Conn) -> None:
            with conn.cursor() as cur:
                self._dead_letter(cur, quarantine, now)

        self._write("dead_letter", work)

    def record_birth(self, site: str, birth: Birth, *, now: float) -> None:
        devices = json.dumps([{"id": d.id, "kind": d.kind, "model": d.model,
                               "points": list(d.points)} for d in birth.devices],
                             ensure_ascii=False)

        def work(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO edges AS x (edge, site, epoch, online, software, devices, "
                "birth_ts, synced, last_seen, changed) "
                "VALUES (%s, %s, %s, 1, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (edge) DO UPDATE SET site = excluded.site, epoch = excluded.epoch, "
                "online = 1, software = excluded.software, devices = excluded.devices, "
                "birth_ts = excluded.birth_ts, synced = excluded.synced, "
                "last_seen = excluded.last_seen, changed = excluded.changed "
                "WHERE x.epoch IS NULL OR excluded.epoch >= x.epoch",
                (birth.stream.edge, site, birth.stream.epoch, _text(birth.software), devices,
                 birth.ts, int(birth.synced), now, now))

        self._write("record_birth", work)

    def record_notice(self, stream: StreamId, notice: Notice, *, now: float) -> None:
        row = notice_event_row(stream, notice)

        def work(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO events (stream_edge, stream_epoch, seq, ts, name, severity, "
                "device, data, synced) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (stream_edge, stream_epoch, seq) DO NOTHING", row)

        self._write("record_notice", work)

    def record_death(self, site: str, death: Death, *, now: float) -> None:
        def work(conn: Conn) -> None:
            conn.execute(
                "INSERT INTO edges AS x (edge, site, epoch, online, changed) "
                "VALUES (%s, %s, %s, 0, %s) "
                "ON CONFLICT (edge) DO UPDATE SET online = 0, changed = excluded.changed "
                "WHERE x.epoch IS NULL OR x.epoch <= excluded.epoch",
                (death.stream.edge, site, death.stream.epoch, now))

        self._write("record_death", work)

    # -- reads --------------------------------------------------------------------------

    def watermark(self, stream: StreamId) -> int:
        rows = self._query("SELECT watermark FROM streams WHERE edge = %s AND epoch = %s",
                           (stream.edge, stream.epoch))
        return int(rows[0][0]) if rows else 0

    def pending_ranges(self, stream: StreamId) -> list[tuple[int, int]]:
        rows = self._query("SELECT after, upto FROM pending WHERE edge = %s AND epoch = %s "
                           "ORDER BY after, upto", (stream.edge, stream.epoch))
        return [(int(a), int(u)) for a, u in rows]

    def _lower_bound(self, start_ms: int) -> int:
        rows = self._query("SELECT seconds FROM interval_bound WHERE id = 1")
        return start_ms - (int(rows[0][0]) * 1000 if rows else 0)

    def interval_sums(self, start_ms: int, end_ms: int,
                      keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        if end_ms <= start_ms:
            return {}
        rows = self._query(_OVERLAP_SUM, {"s": start_ms, "e": end_ms,
                                          "lo": self._lower_bound(start_ms)})
        sums = {MeterKey(e, d, p): float(q) for e, d, p, q in rows}
        if keys is None:
            return sums
        return {k: sums.get(k, 0.0) for k in keys}

    def first_interval_start(self, start_ms: int, end_ms: int,
                             keys: Iterable[MeterKey] | None = None) -> int | None:
        rows = self._query("SELECT edge, device, point, MIN(start) FROM intervals "
                           "WHERE start >= %s AND start < %s GROUP BY edge, device, point",
                           (start_ms, end_ms))
        wanted = None if keys is None else set(keys)
        starts = [int(m) for e, d, p, m in rows if wanted is None or MeterKey(e, d, p) in wanted]
        return min(starts) if starts else None

    def daily_sums(self, first: date, last: date, tz: ZoneInfo,
                   keys: Iterable[MeterKey] | None = None) -> dict[date, dict[MeterKey, float]]:
        return sums_per_day(self.interval_sums, first, last, tz, keys)

    def latest_samples(self, points: Iterable[str] | None = None
                       ) -> dict[MeterKey, LatestSample]:
        rows = self._query("SELECT edge, device, point, ts, num, txt, vtype, unit FROM latest")
        wanted = set(points) if points is not None else None
        return {MeterKey(e, d, p): LatestSample(int(ts), _unvalue(n, t, vt), u)
                for e, d, p, ts, n, t, vt, u in rows if wanted is None or p in wanted}

    def edges(self) -> list[EdgeState]:
        rows = self._query("SELECT edge, site, epoch, online, software, devices, birth_ts, "
                           "last_seen, changed, synced FROM edges ORDER BY edge")
        return [EdgeState(edge=e, site=s, epoch=None if ep is None else int(ep),
                          online=None if on is None else bool(on), software=sw,
                          devices=json.loads(dv) if dv else [],
                          birth_ts=None if bt is None else int(bt), last_seen=ls, changed=ch,
                          synced=None if sy is None else bool(sy))
                for e, s, ep, on, sw, dv, bt, ls, ch, sy in rows]

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._query("SELECT id, topic, payload, size, error, first_seen, last_seen, "
                           "count FROM dead_letter ORDER BY last_seen DESC, id DESC LIMIT %s",
                           (limit,))
        return [DeadLetter(int(i), t, bytes(p), int(sz), e, f, ls, int(c))
                for i, t, p, sz, e, f, ls, c in rows]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in _TABLES:
            out[table] = int(self._query(
                sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(table)))[0][0])
        out["dead_letter_refusals"] = int(
            self._query("SELECT COALESCE(SUM(count), 0) FROM dead_letter")[0][0])
        return out

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of one table in a stable order, in the SQLite store's column layout."""
        if table not in _TABLES:
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

    def ping(self) -> None:
        self._query("SELECT 1")

    # -- API and dashboard reads (see central/store.py for the contract) ----------------
    # Text columns are ordered with COLLATE "C": byte order, as SQLite's, whatever the
    # database's collation.

    def events(self, edges: Iterable[str] | None, *, names: Iterable[str] | None = None,
               prefix: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None, limit: int, newest_first: bool = True
               ) -> list[StoredEvent]:
        where: list[str] = []
        params: list[Any] = []
        if edges is not None:
            wanted = sorted(set(edges))
            if not wanted:
                return []
            where.append("stream_edge = ANY(%s)")
            params.append(wanted)
        if names is not None:
            named = sorted(set(names))
            if not named:
                return []
            where.append("name = ANY(%s)")
            params.append(named)
        if prefix:
            where.append("left(name, %s::integer) = %s")
            params += [len(prefix), prefix]
        if start_ms is not None:
            where.append("ts >= %s")
            params.append(start_ms)
        if end_ms is not None:
            where.append("ts < %s")
            params.append(end_ms)
        order = "DESC" if newest_first else "ASC"
        rows = self._query(
            "SELECT stream_edge, stream_epoch, seq, ts, name, severity, device, data, synced "
            f"FROM events WHERE {' AND '.join(where) or 'TRUE'} ORDER BY ts {order}, "
            f'stream_epoch {order}, seq {order}, stream_edge COLLATE "C" {order} LIMIT %s',
            [*params, limit])
        return [StoredEvent(str(e), int(ep), int(sq), int(ts), str(n), str(sv), dv, str(d),
                            bool(sy)) for e, ep, sq, ts, n, sv, dv, d, sy in rows]

    def interval_records(self, edges: Iterable[str], start_ms: int, end_ms: int, *,
                         device: str | None = None, point: str | None = None, limit: int
                         ) -> list[StoredInterval]:
        wanted = sorted(set(edges))
        if not wanted:
            return []
        where, params = "", list[Any]()
        if device is not None:
            where, params = " AND device = %s", [device]
        if point is not None:
            where += " AND point = %s"
            params.append(point)
        rows = self._query(
            "SELECT edge, device, point, start, duration_s, quantity, unit, flags, synced "
            f"FROM intervals WHERE edge = ANY(%s) AND start >= %s AND start < %s{where} "
            'ORDER BY start, edge COLLATE "C", device COLLATE "C", point COLLATE "C" '
            "LIMIT %s", [wanted, start_ms, end_ms, *params, limit])
        return [StoredInterval(e, d, p, int(st), int(du), float(q), u, flag_list(f), bool(sy))
                for e, d, p, st, du, q, u, f, sy in rows]

    def latest_event_with(self, edge: str, key: str) -> dict[str, Any] | None:
        """Read in pages: usually the first candidate (the text mentions `key`) has it."""
        needle = json.dumps(key, ensure_ascii=False)
        offset, page = 0, 8
        while True:
            rows = self._query(
                "SELECT data FROM events WHERE stream_edge = %s AND strpos(data, %s) > 0 "
                "ORDER BY ts DESC, stream_epoch DESC, seq DESC LIMIT %s OFFSET %s",
                (edge, needle, page, offset))
            for (raw,) in rows:
                data = event_data(str(raw))
                if data is not None and key in data:
                    return data
            if len(rows) < page:
                return None
            offset += page
            page = min(page * 4, 4096)

    def command_results(self, edge: str, ids: Iterable[str]) -> list[CommandResult]:
        wanted = frozenset(ids)
        if not wanted:
            return []
        rows = self._query("SELECT data, ts FROM events WHERE stream_edge = %s AND "
                           "name = 'command.result' ORDER BY ts, stream_epoch, seq", (edge,))
        return [r for r in (command_result(str(d), int(ts), wanted) for d, ts in rows)
                if r is not None]

    # -- compliance reads ---------------------------------------------------------------

    def first_start_of(self, start_ms: int, end_ms: int,
                       keys: Iterable[MeterKey]) -> int | None:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return None
        rows = self._query(
            "SELECT MIN(i.start) FROM intervals i JOIN unnest(%s::text[], %s::text[], "
            "%s::text[]) AS k(e, d, p) ON i.edge = k.e AND i.device = k.d AND i.point = k.p "
            "WHERE i.start >= %s AND i.start < %s",
            ([k.edge for k in wanted], [k.device for k in wanted], [k.point for k in wanted],
             start_ms, end_ms))
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def interval_rows(self, start_ms: int, end_ms: int, keys: Iterable[MeterKey]
                      ) -> list[tuple[MeterKey, int, int, float]]:
        lo = self._lower_bound(start_ms)
        out: list[tuple[MeterKey, int, int, float]] = []
        for key in dict.fromkeys(keys):
            rows = self._query(
                "SELECT start, duration_s, quantity FROM intervals WHERE edge = %s AND "
                "device = %s AND point = %s AND start >= %s AND start < %s "
                "AND start + duration_s * 1000 > %s ORDER BY start",
                (key.edge, key.device, key.point, lo, end_ms, start_ms))
            out.extend((key, int(st), int(du), float(q)) for st, du, q in rows)
        return out

    def period_sums(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                    keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        """`interval_sums`: PostgreSQL keeps no daily/hourly rollups yet (the SQLite store
        does, central/rollup.py), so compliance reads the raw intervals here."""
        del tz
        return self.interval_sums(start_ms, end_ms, keys)

    def hour_totals(self, keys: Iterable[MeterKey], h0: int, h1: int
                    ) -> dict[int, float] | None:
        """None: no hourly rollup here; callers read `interval_rows` instead."""
        del keys, h0, h1
        return None

    def alarm_events(self, until_ms: int) -> list[tuple[str, str | None, int, str, str]]:
        """(edge, device, ts, name, data JSON) of every `alarm.*` event before `until_ms`,
        in time order. The prefix test is `left()`, not a range: a range of text follows the
        database's collation, which may order '.' and '/' otherwise than bytes do."""
        rows = self._query(
            "SELECT stream_edge, device, ts, name, data FROM events WHERE "
            "left(name, 6) = 'alarm.' AND ts < %s ORDER BY ts, stream_epoch, seq", (until_ms,))
        return [(str(e), d, int(ts), str(n), str(data)) for e, d, ts, n, data in rows]

    def sample_series(self, key: MeterKey, start_ms: int, end_ms: int
                      ) -> list[tuple[int, float | int | bool | str]]:
        before = self._query(
            "SELECT ts, num, txt, vtype FROM samples WHERE stream_edge = %s AND device = %s "
            "AND point = %s AND ts < %s ORDER BY ts DESC LIMIT 1",
            (key.edge, key.device, key.point, start_ms))
        rows = self._query(
            "SELECT ts, num, txt, vtype FROM samples WHERE stream_edge = %s AND device = %s "
            "AND point = %s AND ts >= %s AND ts < %s ORDER BY ts",
            (key.edge, key.device, key.point, start_ms, end_ms))
        return [(int(ts), _unvalue(n, t, vt)) for ts, n, t, vt in [*before, *rows]]
