"""The embedded SQLite store: telemetry, events, edge state, stream watermarks, dead letters.

Why it looks like this:

- Exactly-once delivery rests on one rule: a batch's records and the stream's watermark are
  written in ONE transaction, and the ack is published only after it commits. A crash
  between commit and ack makes the edge resend; the resend is absorbed by
  UNIQUE(stream_edge, stream_epoch, seq) for samples and events and by the upsert on
  (edge, device, point, start) for interval records.
- The watermark W is the highest seq up to which the stream's `after` chain is unbroken.
  A batch whose predecessor has not arrived is stored but kept as a pending range
  (after, seq]; when the gap fills, pending ranges are merged. Seqs may have holes (the
  edge drops rows on overflow), so only the chain counts, never seq arithmetic.
- Interval upserts are ordered by (epoch, seq): a newer record of the same interval
  replaces an older one, an older one arriving late changes nothing, and a replay is a
  no-op. The result therefore does not depend on arrival order.
- WAL with `synchronous=FULL`, because an ack makes the edge delete its copy: a committed
  batch must survive power loss, not only a process crash. Readers (the API) open their own
  read-only connections and never wait for the writer.

The statements that are the same on PostgreSQL (central/pgstore.py) live once in
central/storesql.py, spelt for SQLite by `SQLITE`; what is here is SQLite's own: the
connection and its group commit, executemany bulk inserts, the daily/hourly rollups
(central/rollup.py) and the longest-interval bound in `meta`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from central.accache import AcDayCache, bump, open_ac_days
from central.errors import StoreError
from central.institution import MeterKey
from central.rollup import NANO, Rollup, open_rollup
from central.samplerows import sqlite_rows
from central.storeport import (
    BatchWrite,
    FullStore,
    Quarantine,
    StoreResult,
    notice_event_row,
)
from central.storesql import TABLES, UPSERT_INTERVAL, Dialect, SqlReads, Writes, same_text
from central.sweeps import AcPoints, AcRule
from protocols.wire import (
    Batch,
    Birth,
    Death,
    IntervalRecord,
    Notice,
    Record,
    Sample,
    SampleColumns,
    StreamId,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS streams (
    edge TEXT NOT NULL, epoch INTEGER NOT NULL, site TEXT NOT NULL,
    watermark INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL,
    PRIMARY KEY (edge, epoch)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    edge TEXT NOT NULL, epoch INTEGER NOT NULL, after INTEGER NOT NULL, upto INTEGER NOT NULL,
    PRIMARY KEY (edge, epoch, after, upto)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS samples (
    stream_edge TEXT NOT NULL, stream_epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
    ts INTEGER NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL,
    value, vtype TEXT NOT NULL, unit TEXT NOT NULL, synced INTEGER NOT NULL,
    UNIQUE (stream_edge, stream_epoch, seq));
CREATE INDEX IF NOT EXISTS samples_by_point ON samples (stream_edge, device, point, ts);
CREATE TABLE IF NOT EXISTS latest (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, ts INTEGER NOT NULL,
    value, vtype TEXT NOT NULL, unit TEXT NOT NULL, stream_epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (edge, device, point)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS intervals (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, start INTEGER NOT NULL,
    duration_s INTEGER NOT NULL, quantity REAL NOT NULL, unit TEXT NOT NULL,
    flags TEXT NOT NULL, synced INTEGER NOT NULL, stream_epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (edge, device, point, start));
CREATE INDEX IF NOT EXISTS intervals_by_start ON intervals (start);
CREATE TABLE IF NOT EXISTS events (
    stream_edge TEXT NOT NULL, stream_epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
    ts INTEGER NOT NULL, name TEXT NOT NULL, severity TEXT NOT NULL, device TEXT,
    data TEXT NOT NULL, synced INTEGER NOT NULL,
    UNIQUE (stream_edge, stream_epoch, seq));
CREATE INDEX IF NOT EXISTS events_by_ts ON events (ts);
CREATE TABLE IF NOT EXISTS edges (
    edge TEXT PRIMARY KEY, site TEXT NOT NULL, epoch INTEGER, online INTEGER,
    software TEXT, devices TEXT, birth_ts INTEGER, synced INTEGER,
    last_seen REAL, changed REAL);
CREATE TABLE IF NOT EXISTS dead_letter (
    id INTEGER PRIMARY KEY, digest TEXT NOT NULL UNIQUE, topic TEXT NOT NULL,
    payload BLOB NOT NULL, size INTEGER NOT NULL, error TEXT NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, count INTEGER NOT NULL);
"""

_INSERT_SAMPLE = """INSERT OR IGNORE INTO samples
    (stream_edge, stream_epoch, seq, ts, device, point, value, vtype, unit, synced)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_UPSERT_LATEST = """INSERT INTO latest
    (edge, device, point, ts, value, vtype, unit, stream_epoch, seq)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (edge, device, point) DO UPDATE SET
        ts = excluded.ts, value = excluded.value, vtype = excluded.vtype, unit = excluded.unit,
        stream_epoch = excluded.stream_epoch, seq = excluded.seq
    WHERE (excluded.ts, excluded.stream_epoch, excluded.seq)
        > (latest.ts, latest.stream_epoch, latest.seq)"""
_INSERT_EVENT = """INSERT OR IGNORE INTO events
    (stream_edge, stream_epoch, seq, ts, name, severity, device, data, synced)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# The longest interval ever stored bounds how far before a period a straddling interval can
# start, which keeps the range scan on `intervals_by_start` short.
_BUMP_MAX_DURATION = """INSERT INTO meta (key, value) VALUES ('max_interval_s', ?)
    ON CONFLICT (key) DO UPDATE SET
        value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))"""
# (Both sides cast: `value` is a TEXT column, and SQLite orders any text above any integer,
# so MAX(90000, '900') was '900' and a long interval fell out of every later period sum.)


@dataclass(slots=True)
class _BatchRows:
    samples: list[tuple[Any, ...]]
    latest: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    intervals: list[tuple[Any, ...]]


def _rows(w: BatchWrite) -> _BatchRows:
    """SQL parameter tuples of one batch, built before the transaction opens."""
    edge, epoch = w.stream.edge, w.stream.epoch
    if isinstance(w.records, SampleColumns):  # decoded as columns: rows without a loop
        return _BatchRows(*sqlite_rows(edge, epoch, w.records), [], [])
    samples: list[tuple[Any, ...]] = []
    latest: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    intervals: list[tuple[Any, ...]] = []
    add_sample, add_latest = samples.append, latest.append
    for r in w.records:
        if isinstance(r, Sample):
            value = r.value
            tv = type(value)
            if tv is bool:
                value, vtype = int(value), "b"
            elif tv is str:
                vtype = "s"
            else:
                vtype = "n"
            add_sample((edge, epoch, r.seq, r.ts, r.device, r.point, value, vtype, r.unit,
                        1 if r.synced else 0))
            add_latest((edge, r.device, r.point, r.ts, value, vtype, r.unit, epoch, r.seq))
        elif isinstance(r, IntervalRecord):
            intervals.append((edge, r.device, r.point, r.start, r.duration_s, r.quantity,
                              r.unit, ",".join(sorted(f.value for f in r.flags)),
                              int(r.synced), epoch, r.seq))
        else:
            events.append((edge, epoch, r.seq, r.ts, r.name, r.severity.value, r.device,
                           json.dumps(r.data, ensure_ascii=False, sort_keys=True),
                           int(r.synced)))
    return _BatchRows(samples, latest, events, intervals)


def _unvalue(v: Any, vtype: str) -> float | int | bool | str:
    if vtype == "b":
        return bool(v)
    if vtype == "s":
        return str(v)
    return v  # type: ignore[no-any-return]


SQLITE = Dialect(name="sqlite", placeholder="?", greatest="MAX", least="MIN", collate="",
                 find="instr", for_update="", value_columns="value, vtype", decode=_unvalue,
                 text=same_text, array_lists=False)


class Store(SqlReads):
    """One writer connection (thread-safe through a lock) or a read-only reader."""

    dialect = SQLITE

    def __init__(self, path: str | Path, *, readonly: bool = False,
                 rollup_timezone: str | None = None) -> None:
        """`rollup_timezone` is the zone of the daily rollup's calendar days (default: the
        one stored, else Asia/Shanghai); opening for writing with another zone rebuilds it."""
        self.path = str(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        try:
            if readonly:
                uri = Path(self.path).resolve().as_uri() + "?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                             check_same_thread=False)
            else:
                self._conn = sqlite3.connect(self.path, isolation_level=None,
                                             check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError("open", f"{self.path}: {exc}") from exc
        try:
            self._conn.execute("PRAGMA busy_timeout = 5000")
            if not readonly:
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = FULL")
                self._conn.executescript(_SCHEMA)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),))
            self._rollup: Rollup | None = open_rollup(self._conn, rollup_timezone,
                                                      readonly=readonly)
            self.ac_days: AcDayCache | None = open_ac_days(self._conn, self._lock, self.path,
                                                           readonly=readonly)
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError("open", f"{self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self, operation: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise StoreError(operation, str(exc)) from exc
            except OverflowError as exc:  # an integer beyond 64 bits: a failed write
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise StoreError(operation, f"a value too large to store: {exc}") from exc
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError("query", str(exc)) from exc

    # -- writes -------------------------------------------------------------------

    def store_batch(self, batch: Batch, site: str, *, now: float = 0.0) -> int:
        """Store a batch and advance the watermark in one transaction; returns the new W."""
        return self.store_records(batch.stream, batch.after, batch.seq, batch.records,
                                  site=site, now=now).watermark

    def store_records(
        self,
        stream: StreamId,
        after: int,
        upto: int,
        records: Sequence[Record],
        *,
        site: str,
        now: float,
        quarantine: Sequence[Quarantine] = (),
    ) -> StoreResult:
        """The ack contract's store half. `upto` is the envelope seq, which may be above the
        last stored record when poison records of the batch were quarantined instead."""
        return self.store_many([BatchWrite(stream, after, upto, records, site, quarantine)],
                               now=now)[0]

    def store_many(self, writes: Sequence[BatchWrite], *, now: float) -> list[StoreResult]:
        """Several batches (of one or more streams) in ONE transaction: group commit.

        Ingest hands over every batch that queued up while the previous commit ran, so under
        load one fsync and one pass over the indexes' hot pages serve thousands of records.
        All or nothing: on a `StoreError` none of them is stored and none may be acked.
        """
        for w in writes:
            if w.upto <= w.after:
                raise ValueError(f"upto {w.upto} must be greater than after {w.after}")
        prepared = [_rows(w) for w in writes]
        latest: dict[tuple[str, str, str], tuple[Any, ...]] = {}
        for rows in prepared:
            for row in rows.latest:  # only the newest value per point needs the upsert
                key = (row[0], row[1], row[2])
                old = latest.get(key)
                if old is None or (row[3], row[7], row[8]) > (old[3], old[7], old[8]):
                    latest[key] = row
        results = []
        with self._transaction("store_batch") as conn:
            tx = Writes(SQLITE, conn.execute)
            for w, rows in zip(writes, prepared, strict=True):
                locked = tx.lock_stream(w.stream, w.site, now)
                inserted = self._write_records(conn, rows)
                for q in w.quarantine:
                    tx.dead_letter(q, now)
                watermark = tx.advance(w.stream, locked, w.after, w.upto, w.site, now)
                results.append(StoreResult(watermark, inserted, len(w.records) - inserted,
                                           len(w.quarantine)))
            if latest:
                conn.executemany(_UPSERT_LATEST, list(latest.values()))
            for edge, site in dict.fromkeys((w.stream.edge, w.site) for w in writes):
                tx.touch(edge, site, now)
        return results

    def _write_records(self, conn: sqlite3.Connection, rows: _BatchRows) -> int:
        """Insert one batch's rows; returns how many were new (or newer interval versions).
        The rollups are brought up to date first: they read what the upsert will replace,
        and a batch sees the batches of the same transaction before it."""
        if rows.intervals and self._rollup is not None:
            self._rollup.roll_up(conn, rows.intervals)
        if rows.samples and self.ac_days is not None:
            bump(conn, rows.samples)  # central/accache.py: closed days' fingerprints
        before = conn.total_changes
        if rows.samples:
            conn.executemany(_INSERT_SAMPLE, rows.samples)
        if rows.events:
            conn.executemany(_INSERT_EVENT, rows.events)
        if rows.intervals:
            conn.executemany(UPSERT_INTERVAL, rows.intervals)
        inserted = conn.total_changes - before
        if rows.intervals:
            conn.execute(_BUMP_MAX_DURATION, (max(row[4] for row in rows.intervals),))
        return inserted

    def dead_letter(self, quarantine: Quarantine, *, now: float) -> None:
        """Keep a refused payload. Identical payloads on the same topic are counted, not
        stored again, so an edge resending garbage cannot fill the disk."""
        with self._transaction("dead_letter") as conn:
            Writes(SQLITE, conn.execute).dead_letter(quarantine, now)

    def record_birth(self, site: str, birth: Birth, *, now: float) -> None:
        with self._transaction("record_birth") as conn:
            Writes(SQLITE, conn.execute).record_birth(site, birth, now)

    def record_notice(self, stream: StreamId, notice: Notice, *, now: float) -> None:
        """Keep an out-of-band edge event (a birth's notice, no stream seq) among the edge's
        events, under the negative seq -ts so it never meets a stream seq; a repeat (the
        same notice in a later birth) is stored once."""
        with self._transaction("record_notice") as conn:
            conn.execute(_INSERT_EVENT, notice_event_row(stream, notice))

    def record_death(self, site: str, death: Death, *, now: float) -> None:
        with self._transaction("record_death") as conn:
            Writes(SQLITE, conn.execute).record_death(site, death, now)

    # -- reads (the shared ones are central/storesql.py's SqlReads) --------------------

    def _lower_bound(self, start_ms: int) -> int:
        """The longest interval ever stored bounds how far before a period's start an
        interval overlapping it can begin."""
        longest = self._query("SELECT value FROM meta WHERE key = 'max_interval_s'")
        return start_ms - (int(longest[0][0]) * 1000 if longest else 0)

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of one table in a stable order; for contract tests and diagnostics."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        return [tuple(r) for r in self._query(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")]

    # -- compliance reads (central/metrics.py; read-only, owned by the compliance side) ----

    def first_start_of(self, start_ms: int, end_ms: int,
                       keys: Iterable[MeterKey]) -> int | None:
        """Start of the earliest interval in [start_ms, end_ms) of the given meters, walking
        `intervals_by_start` and stopping at the first match (no scan of the whole range)."""
        wanted = set(keys)
        with self._lock:
            try:
                cursor = self._conn.execute(
                    "SELECT edge, device, point, start FROM intervals "
                    "WHERE start >= ? AND start < ? ORDER BY start", (start_ms, end_ms))
                for e, d, p, st in cursor:
                    if MeterKey(e, d, p) in wanted:
                        cursor.close()
                        return int(st)
            except sqlite3.Error as exc:
                raise StoreError("query", str(exc)) from exc
        return None

    def bucket_means(self, key: MeterKey, start_ms: int, end_ms: int, step_ms: int
                     ) -> list[tuple[int, float]]:
        """(bucket start, mean) of the point's numeric samples (vtype n, or b as 0/1) in
        [start_ms, end_ms), per `step_ms` bucket aligned to the epoch, buckets without
        samples left out; the bucket arithmetic and the mean run inside SQLite. The read of
        `SqliteTelemetry.series` (central/telemetry.py), not part of the store port."""
        rows = self._query(
            "SELECT (ts / :step) * :step AS bucket, AVG(CAST(value AS REAL)) FROM samples "
            "WHERE stream_edge = :edge AND device = :device AND point = :point "
            "AND ts >= :start AND ts < :end AND vtype IN ('n', 'b') "
            "GROUP BY bucket ORDER BY bucket",
            {"step": step_ms, "edge": key.edge, "device": key.device, "point": key.point,
             "start": start_ms, "end": end_ms})
        return [(int(b), float(v)) for b, v in rows]

    def period_sums(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                    keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        """`interval_sums` from the rollups (central/rollup.py): whole local days of `tz`
        and whole hours from them, raw intervals only for partial hours. Equal to
        `interval_sums` within the rollups' 1e-9 rounding per interval."""
        if self._rollup is None or end_ms <= start_ms:
            return self.interval_sums(start_ms, end_ms, keys)
        wanted = None if keys is None else list(dict.fromkeys(keys))
        with self._lock:
            try:
                # One read transaction: days, hours and raw edges from the same snapshot,
                # even while the writer commits batches.
                self._conn.execute("BEGIN")
                try:
                    longest = self._conn.execute(
                        "SELECT value FROM meta WHERE key = 'max_interval_s'").fetchall()
                    raw = self._rollup.sums(
                        self._conn, start_ms, end_ms, tz,
                        int(longest[0][0]) if longest else 0,
                        None if wanted is None else [(k.edge, k.device, k.point)
                                                     for k in wanted])
                finally:
                    self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError("query", str(exc)) from exc
        sums = {MeterKey(*k): v for k, v in raw.items()}
        if wanted is None:
            return sums
        return {k: sums.get(k, 0.0) for k in wanted}

    def hour_totals(self, keys: Iterable[MeterKey], h0: int, h1: int
                    ) -> dict[int, float] | None:
        """Consumption of `keys` together per epoch hour h0 ≤ h < h1 from the hourly rollup,
        or None when this store has no rollup (then read `interval_rows`)."""
        if self._rollup is None:
            return None
        with self._lock:
            try:
                return self._rollup.hour_totals(
                    self._conn, [(k.edge, k.device, k.point) for k in keys], h0, h1)
            except sqlite3.Error as exc:
                raise StoreError("query", str(exc)) from exc

    def day_totals(self, keys: Iterable[MeterKey], h0: int, h1: int, tz: ZoneInfo
                   ) -> dict[date, float] | None:
        """`hour_totals` grouped by the local date of each hour, whole days from the daily
        rollup (central/rollup.py `Rollup.day_totals`); None without a rollup."""
        if self._rollup is None:
            return None
        rollup, k = self._rollup, [(m.edge, m.device, m.point) for m in keys]
        with self._lock:
            try:
                nano = rollup.day_totals(
                    h0, h1, tz,
                    lambda a, b: rollup.bucket_totals(self._conn, "interval_daily", "day", k,
                                                      a, b),
                    lambda a, b: rollup.bucket_totals(self._conn, "interval_hourly", "hour",
                                                      k, a, b))
            except sqlite3.Error as exc:
                raise StoreError("query", str(exc)) from exc
        return {d: n / NANO for d, n in nano.items()}

    def ac_seconds(self, units: Sequence[AcPoints], start_ms: int, end_ms: int,
                   rule: AcRule, tz: ZoneInfo) -> tuple[int, int]:
        """The port's AC sweep, whole local days from the per-day cache (central/accache.py)."""
        if self.ac_days is None:
            return super().ac_seconds(units, start_ms, end_ms, rule, tz)
        return self.ac_days.seconds(self.sample_series, units, start_ms, end_ms, rule, tz)

    def rollup_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Both rollup tables, for tests and diagnostics."""
        return {t: [tuple(r) for r in self._query(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")]
                for t in ("interval_daily", "interval_hourly")}


if TYPE_CHECKING:  # mypy checks that the adapter satisfies the whole port

    def _is_a_full_store(store: Store) -> FullStore:
        return store
