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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from central.config import MeterKey
from central.errors import StoreError
from central.rollup import Rollup, open_rollup
from protocols.wire import (
    Batch,
    Birth,
    Death,
    IntervalRecord,
    Notice,
    Record,
    Sample,
    StreamId,
)

SCHEMA_VERSION = 1
MAX_DEAD_LETTER_BYTES = 64 * 1024  # longer payloads are truncated; `size` keeps the original

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

_TABLES = ("streams", "pending", "samples", "latest", "intervals", "events", "edges",
           "dead_letter")

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
_UPSERT_INTERVAL = """INSERT INTO intervals
    (edge, device, point, start, duration_s, quantity, unit, flags, synced, stream_epoch, seq)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (edge, device, point, start) DO UPDATE SET
        duration_s = excluded.duration_s, quantity = excluded.quantity, unit = excluded.unit,
        flags = excluded.flags, synced = excluded.synced,
        stream_epoch = excluded.stream_epoch, seq = excluded.seq
    WHERE (excluded.stream_epoch, excluded.seq) > (intervals.stream_epoch, intervals.seq)"""
# Proportional share of each interval that overlaps [:s, :e), so period sums are exact even
# when an interval straddles midnight or New Year.
_OVERLAP_SUM = """SELECT edge, device, point,
        SUM(CASE WHEN start >= :s AND start + duration_s * 1000 <= :e THEN quantity
                 ELSE quantity * (MIN(start + duration_s * 1000, :e) - MAX(start, :s))
                      / (duration_s * 1000.0) END)
    FROM intervals
    WHERE start < :e AND start >= :lo AND start + duration_s * 1000 > :s
    GROUP BY edge, device, point"""
# The longest interval ever stored bounds how far before :s a straddling interval can start,
# which keeps the range scan on `intervals_by_start` short.
_BUMP_MAX_DURATION = """INSERT INTO meta (key, value) VALUES ('max_interval_s', ?)
    ON CONFLICT (key) DO UPDATE SET
        value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))"""
# (Both sides cast: `value` is a TEXT column, and SQLite orders any text above any integer,
# so MAX(90000, '900') was '900' and a long interval fell out of every later period sum.)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Outcome of one committed batch: the watermark to acknowledge and what was new."""

    watermark: int
    inserted: int  # rows inserted, or intervals replaced by a newer (epoch, seq)
    duplicates: int  # records already stored (or intervals superseded by a newer write)
    quarantined: int


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A payload or record refused by ingest, kept verbatim for an engineer to inspect."""

    topic: str
    payload: bytes
    error: str


@dataclass(frozen=True, slots=True)
class LatestSample:
    ts: int  # ms
    value: float | int | bool | str
    unit: str


@dataclass(frozen=True, slots=True)
class EdgeState:
    edge: str
    site: str
    epoch: int | None
    online: bool | None  # None: never seen a birth or death
    software: str | None
    devices: list[dict[str, Any]]
    birth_ts: int | None  # ms, the edge's clock
    last_seen: float | None  # POSIX seconds, the central's clock
    changed: float | None
    synced: bool | None = None  # the edge's clock synchronised at its last birth


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as stored; `data` is the JSON text of the event's data, as the edge sent
    it (readers decode it, a malformed one included)."""

    edge: str
    epoch: int
    seq: int
    ts: int  # ms, the edge's clock
    name: str
    severity: str
    device: str | None
    data: str
    synced: bool


@dataclass(frozen=True, slots=True)
class StoredInterval:
    edge: str
    device: str
    point: str
    start: int  # ms
    duration_s: int
    quantity: float
    unit: str
    flags: tuple[str, ...]
    synced: bool


@dataclass(frozen=True, slots=True)
class CommandResult:
    """One `command.result` event of an edge: the answer to the command `id`."""

    id: str
    status: str | None  # None when the edge sent no string
    detail: str | None
    ts: int  # ms, the edge's clock


def event_data(raw: str) -> dict[str, Any] | None:
    """An event's data decoded, or None when it is not a JSON object."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def command_result(raw: str, ts: int, ids: frozenset[str]) -> CommandResult | None:
    """The answer in one `command.result` event's data if it names one of `ids`. Decoded in
    Python by both stores (PostgreSQL keeps `data` as text, json_extract is SQLite's)."""
    data = event_data(raw)
    if data is None or not isinstance(data.get("id"), str) or data["id"] not in ids:
        return None
    status, detail = data.get("status"), data.get("detail")
    return CommandResult(
        id=data["id"], status=status if isinstance(status, str) else None,
        detail=None if detail is None else detail if isinstance(detail, str)
        else json.dumps(detail, ensure_ascii=False), ts=int(ts))


def flag_list(flags: str | None) -> tuple[str, ...]:
    return tuple(f for f in str(flags).split(",") if f) if flags else ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    topic: str
    payload: bytes
    size: int
    error: str
    first_seen: float
    last_seen: float
    count: int


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """One batch as ingest hands it to `Store.store_many`."""

    stream: StreamId
    after: int
    upto: int
    records: Sequence[Record]
    site: str
    quarantine: Sequence[Quarantine] = ()


@dataclass(slots=True)
class _BatchRows:
    samples: list[tuple[Any, ...]]
    latest: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    intervals: list[tuple[Any, ...]]


def _rows(w: BatchWrite) -> _BatchRows:
    """SQL parameter tuples of one batch, built before the transaction opens."""
    edge, epoch = w.stream.edge, w.stream.epoch
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


def notice_event_row(stream: StreamId, notice: Notice) -> tuple[Any, ...]:
    """An out-of-band notice as an events row: seq -ts, below every stream seq (>= 1)."""
    return (stream.edge, stream.epoch, -max(1, notice.ts), notice.ts, notice.name,
            notice.severity.value, None,
            json.dumps(notice.data, ensure_ascii=False, sort_keys=True), int(notice.synced))


def _unvalue(v: Any, vtype: str) -> float | int | bool | str:
    if vtype == "b":
        return bool(v)
    if vtype == "s":
        return str(v)
    return v  # type: ignore[no-any-return]


class Store:
    """One writer connection (thread-safe through a lock) or a read-only reader."""

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
            for w, rows in zip(writes, prepared, strict=True):
                inserted = self._write_records(conn, rows)
                for q in w.quarantine:
                    self._dead_letter(conn, q, now)
                watermark = self._advance(conn, w.stream, w.after, w.upto, w.site, now)
                results.append(StoreResult(watermark, inserted, len(w.records) - inserted,
                                           len(w.quarantine)))
            if latest:
                conn.executemany(_UPSERT_LATEST, list(latest.values()))
            for edge, site in dict.fromkeys((w.stream.edge, w.site) for w in writes):
                self._touch(conn, edge, site, now)
        return results

    def _write_records(self, conn: sqlite3.Connection, rows: _BatchRows) -> int:
        """Insert one batch's rows; returns how many were new (or newer interval versions).
        The rollups are brought up to date first: they read what the upsert will replace,
        and a batch sees the batches of the same transaction before it."""
        if rows.intervals and self._rollup is not None:
            self._rollup.roll_up(conn, rows.intervals)
        before = conn.total_changes
        if rows.samples:
            conn.executemany(_INSERT_SAMPLE, rows.samples)
        if rows.events:
            conn.executemany(_INSERT_EVENT, rows.events)
        if rows.intervals:
            conn.executemany(_UPSERT_INTERVAL, rows.intervals)
        inserted = conn.total_changes - before
        if rows.intervals:
            conn.execute(_BUMP_MAX_DURATION, (max(row[4] for row in rows.intervals),))
        return inserted

    @staticmethod
    def _advance(conn: sqlite3.Connection, stream: StreamId, after: int, upto: int,
                 site: str, now: float) -> int:
        key = (stream.edge, stream.epoch)
        row = conn.execute("SELECT watermark FROM streams WHERE edge = ? AND epoch = ?",
                           key).fetchone()
        w = 0 if row is None else int(row[0])
        if after <= w:
            w = max(w, upto)
        else:
            conn.execute("INSERT OR IGNORE INTO pending (edge, epoch, after, upto) "
                         "VALUES (?, ?, ?, ?)", (*key, after, upto))
        while True:  # merge every pending range the watermark now reaches
            (top,) = conn.execute("SELECT MAX(upto) FROM pending WHERE edge = ? AND epoch = ? "
                                  "AND after <= ?", (*key, w)).fetchone()
            conn.execute("DELETE FROM pending WHERE edge = ? AND epoch = ? AND after <= ?",
                         (*key, w))
            if top is None or top <= w:
                break
            w = int(top)
        conn.execute(
            "INSERT INTO streams (edge, epoch, site, watermark, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (edge, epoch) DO UPDATE SET site = excluded.site, "
            "watermark = excluded.watermark, updated = excluded.updated",
            (*key, site, w, now))
        return w

    @staticmethod
    def _touch(conn: sqlite3.Connection, edge: str, site: str, now: float) -> None:
        conn.execute(
            "INSERT INTO edges (edge, site, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (edge) DO UPDATE SET site = excluded.site, "
            "last_seen = MAX(COALESCE(last_seen, excluded.last_seen), excluded.last_seen)",
            (edge, site, now))

    @staticmethod
    def _dead_letter(conn: sqlite3.Connection, q: Quarantine, now: float) -> None:
        digest = hashlib.sha256(q.topic.encode() + b"\0" + q.payload).hexdigest()
        conn.execute(
            "INSERT INTO dead_letter (digest, topic, payload, size, error, first_seen, "
            "last_seen, count) VALUES (?, ?, ?, ?, ?, ?, ?, 1) "
            "ON CONFLICT (digest) DO UPDATE SET count = count + 1, last_seen = excluded.last_seen",
            (digest, q.topic, q.payload[:MAX_DEAD_LETTER_BYTES], len(q.payload), q.error, now,
             now))

    def dead_letter(self, quarantine: Quarantine, *, now: float) -> None:
        """Keep a refused payload. Identical payloads on the same topic are counted, not
        stored again, so an edge resending garbage cannot fill the disk."""
        with self._transaction("dead_letter") as conn:
            self._dead_letter(conn, quarantine, now)

    def record_birth(self, site: str, birth: Birth, *, now: float) -> None:
        devices = json.dumps([{"id": d.id, "kind": d.kind, "model": d.model,
                               "points": list(d.points)} for d in birth.devices],
                             ensure_ascii=False)
        with self._transaction("record_birth") as conn:
            conn.execute(
                "INSERT INTO edges (edge, site, epoch, online, software, devices, birth_ts, "
                "synced, last_seen, changed) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (edge) DO UPDATE SET site = excluded.site, epoch = excluded.epoch, "
                "online = 1, software = excluded.software, devices = excluded.devices, "
                "birth_ts = excluded.birth_ts, synced = excluded.synced, "
                "last_seen = excluded.last_seen, changed = excluded.changed "
                "WHERE edges.epoch IS NULL OR excluded.epoch >= edges.epoch",
                (birth.stream.edge, site, birth.stream.epoch, birth.software, devices,
                 birth.ts, int(birth.synced), now, now))

    def record_notice(self, stream: StreamId, notice: Notice, *, now: float) -> None:
        """Keep an out-of-band edge event (a birth's notice, no stream seq) among the edge's
        events, under the negative seq -ts so it never meets a stream seq; a repeat (the
        same notice in a later birth) is stored once."""
        with self._transaction("record_notice") as conn:
            conn.execute(_INSERT_EVENT, notice_event_row(stream, notice))

    def record_death(self, site: str, death: Death, *, now: float) -> None:
        """Mark the edge offline, unless the death is a stale will of an older epoch."""
        with self._transaction("record_death") as conn:
            conn.execute(
                "INSERT INTO edges (edge, site, epoch, online, changed) VALUES (?, ?, ?, 0, ?) "
                "ON CONFLICT (edge) DO UPDATE SET online = 0, changed = excluded.changed "
                "WHERE edges.epoch IS NULL OR edges.epoch <= excluded.epoch",
                (death.stream.edge, site, death.stream.epoch, now))

    # -- reads --------------------------------------------------------------------

    def watermark(self, stream: StreamId) -> int:
        rows = self._query("SELECT watermark FROM streams WHERE edge = ? AND epoch = ?",
                           (stream.edge, stream.epoch))
        return int(rows[0][0]) if rows else 0

    def pending_ranges(self, stream: StreamId) -> list[tuple[int, int]]:
        rows = self._query("SELECT after, upto FROM pending WHERE edge = ? AND epoch = ? "
                           "ORDER BY after", (stream.edge, stream.epoch))
        return [(int(a), int(u)) for a, u in rows]

    def interval_sums(self, start_ms: int, end_ms: int,
                      keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        """Consumption per meter over [start_ms, end_ms), pro-rating straddling intervals."""
        if end_ms <= start_ms:
            return {}
        longest = self._query("SELECT value FROM meta WHERE key = 'max_interval_s'")
        lo = start_ms - (int(longest[0][0]) * 1000 if longest else 0)
        rows = self._query(_OVERLAP_SUM, {"s": start_ms, "e": end_ms, "lo": lo})
        sums = {MeterKey(e, d, p): float(q) for e, d, p, q in rows}
        if keys is None:
            return sums
        return {k: sums.get(k, 0.0) for k in keys}

    def first_interval_start(self, start_ms: int, end_ms: int,
                             keys: Iterable[MeterKey] | None = None) -> int | None:
        """Start of the earliest interval in [start_ms, end_ms) of the given meters: when
        metering began within a period."""
        rows = self._query("SELECT edge, device, point, MIN(start) FROM intervals "
                           "WHERE start >= ? AND start < ? GROUP BY edge, device, point",
                           (start_ms, end_ms))
        wanted = None if keys is None else set(keys)
        starts = [int(m) for e, d, p, m in rows if wanted is None or MeterKey(e, d, p) in wanted]
        return min(starts) if starts else None

    def daily_sums(self, first: date, last: date, tz: ZoneInfo,
                   keys: Iterable[MeterKey] | None = None) -> dict[date, dict[MeterKey, float]]:
        """Consumption per local calendar day from `first` to `last` inclusive."""
        return sums_per_day(self.interval_sums, first, last, tz, keys)

    def latest_samples(self, points: Iterable[str] | None = None
                       ) -> dict[MeterKey, LatestSample]:
        rows = self._query("SELECT edge, device, point, ts, value, vtype, unit FROM latest")
        wanted = set(points) if points is not None else None
        return {MeterKey(e, d, p): LatestSample(int(ts), _unvalue(v, vt), u)
                for e, d, p, ts, v, vt, u in rows if wanted is None or p in wanted}

    def edges(self) -> list[EdgeState]:
        rows = self._query("SELECT edge, site, epoch, online, software, devices, birth_ts, "
                           "last_seen, changed, synced FROM edges ORDER BY edge")
        return [EdgeState(edge=e, site=s, epoch=ep, online=None if on is None else bool(on),
                          software=sw, devices=json.loads(dv) if dv else [], birth_ts=bt,
                          last_seen=ls, changed=ch, synced=None if sy is None else bool(sy))
                for e, s, ep, on, sw, dv, bt, ls, ch, sy in rows]

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._query("SELECT id, topic, payload, size, error, first_seen, last_seen, "
                           "count FROM dead_letter ORDER BY last_seen DESC, id DESC LIMIT ?",
                           (limit,))
        return [DeadLetter(int(i), t, bytes(p), int(sz), e, f, ls, int(c))
                for i, t, p, sz, e, f, ls, c in rows]

    def counts(self) -> dict[str, int]:
        """Row counts per table; dead letters count every refusal, including repeats."""
        out: dict[str, int] = {}
        for table in _TABLES:
            out[table] = int(self._query(f"SELECT COUNT(*) FROM {table}")[0][0])
        out["dead_letter_refusals"] = int(
            self._query("SELECT COALESCE(SUM(count), 0) FROM dead_letter")[0][0])
        return out

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        """Every row of one table in a stable order; for contract tests and diagnostics."""
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}")
        return [tuple(r) for r in self._query(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4")]

    def ping(self) -> None:
        self._query("SELECT 1")

    # -- API and dashboard reads (the same contract in central/pgstore.py) ------------

    def events(self, edges: Iterable[str] | None, *, names: Iterable[str] | None = None,
               prefix: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None, limit: int, newest_first: bool = True
               ) -> list[StoredEvent]:
        """Events of `edges` (None: of every edge) with one of `names` and/or a name
        starting with `prefix`, ts in [start_ms, end_ms), at most `limit`, ordered by
        (ts, epoch, seq, edge), newest first unless `newest_first` is False."""
        where, params = _event_filter(edges, names, prefix, start_ms, end_ms)
        if where is None:
            return []
        order = "DESC" if newest_first else "ASC"
        rows = self._query(
            "SELECT stream_edge, stream_epoch, seq, ts, name, severity, device, data, synced "
            f"FROM events WHERE {where} ORDER BY ts {order}, stream_epoch {order}, "
            f"seq {order}, stream_edge {order} LIMIT ?", [*params, limit])
        return [StoredEvent(str(e), int(ep), int(sq), int(ts), str(n), str(sv), dv, str(d),
                            bool(sy)) for e, ep, sq, ts, n, sv, dv, d, sy in rows]

    def interval_records(self, edges: Iterable[str], start_ms: int, end_ms: int, *,
                         device: str | None = None, point: str | None = None, limit: int
                         ) -> list[StoredInterval]:
        """Interval records of `edges` starting in [start_ms, end_ms), optionally of one
        device and/or point, at most `limit`, ordered by (start, edge, device, point)."""
        wanted = sorted(set(edges))
        if not wanted:
            return []
        where, params = "", list[Any]()
        if device is not None:
            where, params = " AND device = ?", [device]
        if point is not None:
            where += " AND point = ?"
            params.append(point)
        rows = self._query(
            "SELECT edge, device, point, start, duration_s, quantity, unit, flags, synced "
            f"FROM intervals WHERE edge IN ({', '.join('?' * len(wanted))}) AND start >= ? "
            f"AND start < ?{where} ORDER BY start, edge, device, point LIMIT ?",
            [*wanted, start_ms, end_ms, *params, limit])
        return [StoredInterval(e, d, p, int(st), int(du), float(q), u, flag_list(f), bool(sy))
                for e, d, p, st, du, q, u, f, sy in rows]

    def latest_event_with(self, edge: str, key: str) -> dict[str, Any] | None:
        """The data of the edge's newest event (by ts, epoch, seq) whose data has the
        top-level `key` (e.g. `outbox_depth`), or None."""
        needle = json.dumps(key, ensure_ascii=False)
        with self._lock:
            try:
                cursor = self._conn.execute(
                    "SELECT data FROM events WHERE stream_edge = ? AND instr(data, ?) > 0 "
                    "ORDER BY ts DESC, stream_epoch DESC, seq DESC", (edge, needle))
                try:
                    for (raw,) in cursor:
                        data = event_data(str(raw))
                        if data is not None and key in data:
                            return data
                finally:
                    cursor.close()
            except sqlite3.Error as exc:
                raise StoreError("query", str(exc)) from exc
        return None

    def command_results(self, edge: str, ids: Iterable[str]) -> list[CommandResult]:
        """The edge's `command.result` events answering one of `ids`, oldest first (by ts,
        epoch, seq): the last one per id is the current answer."""
        wanted = frozenset(ids)
        if not wanted:
            return []
        rows = self._query("SELECT data, ts FROM events WHERE stream_edge = ? AND "
                           "name = 'command.result' ORDER BY ts, stream_epoch, seq", (edge,))
        return [r for r in (command_result(str(d), int(ts), wanted) for d, ts in rows)
                if r is not None]

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

    def interval_rows(self, start_ms: int, end_ms: int, keys: Iterable[MeterKey]
                      ) -> list[tuple[MeterKey, int, int, float]]:
        """(meter, start ms, duration s, quantity) of every interval of `keys` overlapping
        [start_ms, end_ms), in start order per meter; the caller pro-rates at the edges."""
        longest = self._query("SELECT value FROM meta WHERE key = 'max_interval_s'")
        lo = start_ms - (int(longest[0][0]) * 1000 if longest else 0)
        out: list[tuple[MeterKey, int, int, float]] = []
        for key in dict.fromkeys(keys):
            rows = self._query(
                "SELECT start, duration_s, quantity FROM intervals WHERE edge = ? AND "
                "device = ? AND point = ? AND start >= ? AND start < ? "
                "AND start + duration_s * 1000 > ? ORDER BY start",
                (key.edge, key.device, key.point, lo, end_ms, start_ms))
            out.extend((key, int(st), int(du), float(q)) for st, du, q in rows)
        return out

    def sample_series(self, key: MeterKey, start_ms: int, end_ms: int
                      ) -> list[tuple[int, float | int | bool | str]]:
        """Samples of one point in [start_ms, end_ms), preceded by the last one before
        start_ms (the value in force when the window opens), in time order."""
        before = self._query(
            "SELECT ts, value, vtype FROM samples WHERE stream_edge = ? AND device = ? AND "
            "point = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
            (key.edge, key.device, key.point, start_ms))
        rows = self._query(
            "SELECT ts, value, vtype FROM samples WHERE stream_edge = ? AND device = ? AND "
            "point = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (key.edge, key.device, key.point, start_ms, end_ms))
        return [(int(ts), _unvalue(v, vt)) for ts, v, vt in [*before, *rows]]

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

    def alarm_events(self, until_ms: int) -> list[tuple[str, str | None, int, str, str]]:
        """(edge, device, ts, name, data JSON) of every `alarm.*` event before `until_ms`,
        in time order (an alarm raised long ago may still be open)."""
        rows = self._query(
            "SELECT stream_edge, device, ts, name, data FROM events WHERE name >= 'alarm.' "
            "AND name < 'alarm/' AND ts < ? ORDER BY ts, stream_epoch, seq", (until_ms,))
        return [(str(e), d, int(ts), str(n), str(data)) for e, d, ts, n, data in rows]

    def rollup_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Both rollup tables, for tests and diagnostics."""
        return {t: [tuple(r) for r in self._query(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4")]
                for t in ("interval_daily", "interval_hourly")}


def _event_filter(edges: Iterable[str] | None, names: Iterable[str] | None,
                  prefix: str | None, start_ms: int | None, end_ms: int | None
                  ) -> tuple[str | None, list[Any]]:
    """The WHERE clause (SQLite placeholders) of `Store.events`; None when nothing can
    match (no edges or no names given)."""
    where: list[str] = []
    params: list[Any] = []
    if edges is not None:
        wanted = sorted(set(edges))
        if not wanted:
            return None, []
        where.append(f"stream_edge IN ({', '.join('?' * len(wanted))})")
        params += wanted
    if names is not None:
        named = sorted(set(names))
        if not named:
            return None, []
        where.append(f"name IN ({', '.join('?' * len(named))})")
        params += named
    if prefix:
        where.append("substr(name, 1, ?) = ?")
        params += [len(prefix), prefix]
    if start_ms is not None:
        where.append("ts >= ?")
        params.append(start_ms)
    if end_ms is not None:
        where.append("ts < ?")
        params.append(end_ms)
    return " AND ".join(where) or "1", params


def sums_per_day(interval_sums: Callable[[int, int, list[MeterKey] | None],
                                         dict[MeterKey, float]],
                 first: date, last: date, tz: ZoneInfo,
                 keys: Iterable[MeterKey] | None) -> dict[date, dict[MeterKey, float]]:
    """`daily_sums` of either store: `interval_sums` over each local day first…last."""
    wanted = list(keys) if keys is not None else None
    out: dict[date, dict[MeterKey, float]] = {}
    day = first
    while day <= last:
        out[day] = interval_sums(local_midnight_ms(day, tz),
                                 local_midnight_ms(day + timedelta(days=1), tz), wanted)
        day += timedelta(days=1)
    return out


def local_midnight_ms(day: date, tz: ZoneInfo) -> int:
    """Start of `day` in `tz` as epoch milliseconds."""
    return math.floor(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
