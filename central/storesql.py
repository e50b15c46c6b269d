"""The SQL that the SQLite `Store` and the PostgreSQL `PgStore` share, written once.

Both adapters keep the same tables (central/store.py's schema, central/migrations/store/ for
PostgreSQL) and the same rules (watermark and pending ranges advanced under the stream's
lock, interval upserts ordered by (epoch, seq), dead letters counted). What differs is
supplied by each adapter as a `Dialect`:

- placeholders: the statements here are written with `?`; PostgreSQL's driver wants `%s`;
- scalar MAX/MIN of two values (SQLite) or GREATEST/LEAST (PostgreSQL);
- text ordering: SQLite orders text by bytes, PostgreSQL by the database's collation unless
  told `COLLATE "C"`;
- lists of values: `IN (?, ?, …)` in SQLite, one array parameter `= ANY(%s)` in PostgreSQL;
- locking: a SQLite write transaction holds the whole database (`BEGIN IMMEDIATE`), a
  PostgreSQL one takes the stream's row lock (`FOR UPDATE`) before touching its watermark;
- sample values: one dynamically typed `value` column in SQLite, `num`/`txt` in PostgreSQL;
- text: PostgreSQL text cannot hold NUL, which becomes U+FFFD there.

What stays in each adapter is what really differs: connections and transactions, bulk
inserts (executemany vs server-side `unnest`), the maintenance and reads of the rollups and
the AC day cache (one definition in central/rollup.py and accache.py, driven by each
adapter), the longest-interval bound, and reads tuned to one engine. Adapter-private;
callers use central/storeport.py.
"""

from __future__ import annotations

import functools
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from central import accache
from central.institution import MeterKey
from central.storeport import (
    CommandResult,
    DeadLetter,
    EdgeState,
    LatestSample,
    Quarantine,
    StoredEvent,
    StoredInterval,
    event_data,
    sums_per_day,
)
from central.sweeps import AcPoints, AcRule
from protocols.wire import Birth, Death, StreamId

MAX_DEAD_LETTER_BYTES = 64 * 1024  # longer payloads are truncated; `size` keeps the original

TABLES = ("streams", "pending", "samples", "latest", "intervals", "events", "edges",
          "dead_letter")

Value = float | int | bool | str


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database spells what the shared statements need."""

    name: str
    placeholder: str  # "?" or "%s"
    greatest: str  # scalar maximum of two values
    least: str
    collate: str  # appended to a text column in ORDER BY: byte order on both
    find: str  # position of a substring (1-based, 0 when absent)
    for_update: str  # appended to the SELECT of a stream's watermark
    value_columns: str  # a sample's value as stored, ending in vtype
    decode: Callable[..., Value]  # those columns back to the value
    text: Callable[[str], str]  # a string as the database can hold it
    array_lists: bool  # a list of values as one array parameter (= ANY(?))

    def sql(self, statement: str) -> str:
        """`statement`, written with `?` placeholders, in this database's style."""
        if self.placeholder == "?":
            return statement
        return _convert(statement, self.placeholder)

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """`column` equal to one of `values` (not empty): the condition and its parameters."""
        if self.array_lists:
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)


@functools.lru_cache(maxsize=512)  # the statements are a few dozen shapes
def _convert(statement: str, placeholder: str) -> str:
    assert "%" not in statement, "a literal % would be taken for a placeholder"
    return statement.replace("?", placeholder)


def same_text(s: str) -> str:
    return s


def no_nul(s: str) -> str:
    return s.replace("\x00", "\ufffd") if "\x00" in s else s


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


def birth_devices(birth: Birth) -> str:
    return json.dumps([{"id": d.id, "kind": d.kind, "model": d.model,
                        "points": list(d.points)} for d in birth.devices],
                      ensure_ascii=False)


# -- writes -------------------------------------------------------------------------

# In record order, so a later version of an interval in the same batch wins.
UPSERT_INTERVAL = """INSERT INTO intervals
    (edge, device, point, start, duration_s, quantity, unit, flags, synced, stream_epoch, seq)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (edge, device, point, start) DO UPDATE SET
        duration_s = excluded.duration_s, quantity = excluded.quantity, unit = excluded.unit,
        flags = excluded.flags, synced = excluded.synced,
        stream_epoch = excluded.stream_epoch, seq = excluded.seq
    WHERE (excluded.stream_epoch, excluded.seq) > (intervals.stream_epoch, intervals.seq)"""


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Writes:
    """The shared statements of one write transaction; `execute` runs one statement (in
    the dialect's style) on the transaction's connection."""

    def __init__(self, dialect: Dialect, execute: Callable[[str, Sequence[Any]], Cursor]
                 ) -> None:
        self.dialect = dialect
        self._execute = execute

    def run(self, statement: str, params: Sequence[Any] = ()) -> Cursor:
        return self._execute(self.dialect.sql(statement), params)

    def lock_stream(self, stream: StreamId, site: str, now: float) -> int:
        """The stream's watermark, its row created if absent and locked until commit
        (PostgreSQL; SQLite's write transaction already excludes every other writer)."""
        self.run("INSERT INTO streams (edge, epoch, site, watermark, updated) "
                 "VALUES (?, ?, ?, 0, ?) ON CONFLICT (edge, epoch) DO NOTHING",
                 (stream.edge, stream.epoch, site, now))
        row = self.run("SELECT watermark FROM streams WHERE edge = ? AND epoch = ?"
                       + self.dialect.for_update, (stream.edge, stream.epoch)).fetchone()
        assert row is not None
        return int(row[0])

    def advance(self, stream: StreamId, w: int, after: int, upto: int, site: str,
                now: float) -> int:
        """The new watermark after the batch (after, upto] of a stream whose watermark,
        read under `lock_stream`, is `w`; the batch is kept as a pending range until its
        predecessor arrives."""
        key = (stream.edge, stream.epoch)
        if after <= w:
            w = max(w, upto)
        else:
            self.run("INSERT INTO pending (edge, epoch, after, upto) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT DO NOTHING", (*key, after, upto))
        while True:  # merge every pending range the watermark now reaches
            (top,) = self.run("SELECT MAX(upto) FROM pending WHERE edge = ? AND epoch = ? "
                              "AND after <= ?", (*key, w)).fetchone()
            if top is None:  # nothing reached (the usual case: no gap): nothing to delete
                break
            self.run("DELETE FROM pending WHERE edge = ? AND epoch = ? AND after <= ?",
                     (*key, w))
            if top <= w:
                break
            w = int(top)
        self.run("UPDATE streams SET site = ?, watermark = ?, updated = ? "
                 "WHERE edge = ? AND epoch = ?", (site, w, now, *key))
        return w

    def touch(self, edge: str, site: str, now: float) -> None:
        """The edge was heard from: its site and the latest `now` (never moved back)."""
        self.run(
            "INSERT INTO edges (edge, site, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (edge) DO UPDATE SET site = excluded.site, "
            f"last_seen = {self.dialect.greatest}(COALESCE(edges.last_seen, "
            "excluded.last_seen), excluded.last_seen)", (edge, site, now))

    def dead_letter(self, q: Quarantine, now: float) -> None:
        text = self.dialect.text
        digest = hashlib.sha256(q.topic.encode() + b"\0" + q.payload).hexdigest()
        self.run(
            "INSERT INTO dead_letter (digest, topic, payload, size, error, first_seen, "
            "last_seen, count) VALUES (?, ?, ?, ?, ?, ?, ?, 1) "
            "ON CONFLICT (digest) DO UPDATE SET count = dead_letter.count + 1, "
            f"last_seen = {self.dialect.greatest}(dead_letter.last_seen, excluded.last_seen)",
            (digest, text(q.topic), q.payload[:MAX_DEAD_LETTER_BYTES], len(q.payload),
             text(q.error), now, now))

    def record_birth(self, site: str, birth: Birth, now: float) -> None:
        self.run(
            "INSERT INTO edges (edge, site, epoch, online, software, devices, birth_ts, "
            "synced, last_seen, changed) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (edge) DO UPDATE SET site = excluded.site, epoch = excluded.epoch, "
            "online = 1, software = excluded.software, devices = excluded.devices, "
            "birth_ts = excluded.birth_ts, synced = excluded.synced, "
            "last_seen = excluded.last_seen, changed = excluded.changed "
            "WHERE edges.epoch IS NULL OR excluded.epoch >= edges.epoch",
            (birth.stream.edge, site, birth.stream.epoch, self.dialect.text(birth.software),
             birth_devices(birth), birth.ts, int(birth.synced), now, now))

    def record_death(self, site: str, death: Death, now: float) -> None:
        """Mark the edge offline, unless the death is a stale will of an older epoch."""
        self.run(
            "INSERT INTO edges (edge, site, epoch, online, changed) VALUES (?, ?, ?, 0, ?) "
            "ON CONFLICT (edge) DO UPDATE SET online = 0, changed = excluded.changed "
            "WHERE edges.epoch IS NULL OR edges.epoch <= excluded.epoch",
            (death.stream.edge, site, death.stream.epoch, now))


# -- reads --------------------------------------------------------------------------

# Proportional share of each interval that overlaps [s, e), so period sums are exact even
# when an interval straddles midnight or New Year. Parameters: s, e, e, s, e, lo, s.
# (A share of a quantity below 1e-300 is 0: PostgreSQL refuses a float that underflows.)
_OVERLAP_SUM = """SELECT edge, device, point,
        SUM(CASE WHEN start >= ? AND start + duration_s * 1000 <= ? THEN quantity
                 WHEN ABS(quantity) < 1e-300 THEN 0.0
                 ELSE quantity * ({least}(start + duration_s * 1000, ?) - {greatest}(start, ?))
                      / (duration_s * 1000.0) END)
    FROM intervals
    WHERE start < ? AND start >= ? AND start + duration_s * 1000 > ?
    GROUP BY edge, device, point"""


class SqlReads(ABC):
    """The port's reads that are the same query on both databases. An adapter supplies
    its `dialect`, `_query` (run one statement in the dialect's style) and `_lower_bound`
    (how far before a period an interval overlapping it can start)."""

    dialect: ClassVar[Dialect]

    @abstractmethod
    def _query(self, query: str, params: Sequence[Any] = ()) -> list[Any]: ...

    @abstractmethod
    def _lower_bound(self, start_ms: int) -> int: ...

    def _select(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._query(self.dialect.sql(statement), params)

    def watermark(self, stream: StreamId) -> int:
        rows = self._select("SELECT watermark FROM streams WHERE edge = ? AND epoch = ?",
                            (stream.edge, stream.epoch))
        return int(rows[0][0]) if rows else 0

    def pending_ranges(self, stream: StreamId) -> list[tuple[int, int]]:
        rows = self._select("SELECT after, upto FROM pending WHERE edge = ? AND epoch = ? "
                            "ORDER BY after, upto", (stream.edge, stream.epoch))
        return [(int(a), int(u)) for a, u in rows]

    def interval_sums(self, start_ms: int, end_ms: int,
                      keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        """Consumption per meter over [start_ms, end_ms), pro-rating straddling intervals."""
        if end_ms <= start_ms:
            return {}
        d = self.dialect
        s, e = start_ms, end_ms
        rows = self._select(_OVERLAP_SUM.format(least=d.least, greatest=d.greatest),
                            (s, e, e, s, e, self._lower_bound(start_ms), s))
        sums = {MeterKey(ed, dv, p): float(q) for ed, dv, p, q in rows}
        if keys is None:
            return sums
        return {k: sums.get(k, 0.0) for k in keys}

    def first_interval_start(self, start_ms: int, end_ms: int,
                             keys: Iterable[MeterKey] | None = None) -> int | None:
        """Start of the earliest interval in [start_ms, end_ms) of the given meters: when
        metering began within a period."""
        rows = self._select("SELECT edge, device, point, MIN(start) FROM intervals "
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
        rows = self._select("SELECT edge, device, point, ts, unit, "
                            f"{self.dialect.value_columns} FROM latest")
        wanted = set(points) if points is not None else None
        decode = self.dialect.decode
        return {MeterKey(r[0], r[1], r[2]): LatestSample(int(r[3]), decode(*r[5:]), r[4])
                for r in rows if wanted is None or r[2] in wanted}

    def edges(self) -> list[EdgeState]:
        rows = self._select("SELECT edge, site, epoch, online, software, devices, birth_ts, "
                            "last_seen, changed, synced FROM edges ORDER BY edge"
                            + self.dialect.collate)
        return [EdgeState(edge=e, site=s, epoch=None if ep is None else int(ep),
                          online=None if on is None else bool(on), software=sw,
                          devices=json.loads(dv) if dv else [],
                          birth_ts=None if bt is None else int(bt), last_seen=ls, changed=ch,
                          synced=None if sy is None else bool(sy))
                for e, s, ep, on, sw, dv, bt, ls, ch, sy in rows]

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._select("SELECT id, topic, payload, size, error, first_seen, last_seen, "
                            "count FROM dead_letter ORDER BY last_seen DESC, id DESC LIMIT ?",
                            (limit,))
        return [DeadLetter(int(i), t, bytes(p), int(sz), e, f, ls, int(c))
                for i, t, p, sz, e, f, ls, c in rows]

    def counts(self) -> dict[str, int]:
        """Row counts per table; dead letters count every refusal, including repeats."""
        out = {table: int(self._select(f"SELECT COUNT(*) FROM {table}")[0][0])
               for table in TABLES}
        out["dead_letter_refusals"] = int(
            self._select("SELECT COALESCE(SUM(count), 0) FROM dead_letter")[0][0])
        return out

    def ping(self) -> None:
        self._select("SELECT 1")

    # -- API and dashboard reads ------------------------------------------------------

    def events(self, edges: Iterable[str] | None, *, names: Iterable[str] | None = None,
               prefix: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None, limit: int, newest_first: bool = True
               ) -> list[StoredEvent]:
        """Events of `edges` (None: of every edge) with one of `names` and/or a name
        starting with `prefix`, ts in [start_ms, end_ms), at most `limit`, ordered by
        (ts, epoch, seq, edge), newest first unless `newest_first` is False."""
        where: list[str] = []
        params: list[Any] = []
        for column, values in (("stream_edge", edges), ("name", names)):
            if values is not None:
                wanted = sorted(set(values))
                if not wanted:
                    return []
                condition, more = self.dialect.any_of(column, wanted)
                where.append(condition)
                params += more
        if prefix:
            where.append("substr(name, 1, CAST(? AS INTEGER)) = ?")
            params += [len(prefix), prefix]
        if start_ms is not None:
            where.append("ts >= ?")
            params.append(start_ms)
        if end_ms is not None:
            where.append("ts < ?")
            params.append(end_ms)
        o = "DESC" if newest_first else "ASC"
        rows = self._select(
            "SELECT stream_edge, stream_epoch, seq, ts, name, severity, device, data, synced "
            f"FROM events WHERE {' AND '.join(where) or '1 = 1'} ORDER BY ts {o}, "
            f"stream_epoch {o}, seq {o}, stream_edge{self.dialect.collate} {o} LIMIT ?",
            [*params, limit])
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
        condition, params = self.dialect.any_of("edge", wanted)
        params += [start_ms, end_ms]
        where = ""
        if device is not None:
            where += " AND device = ?"
            params.append(device)
        if point is not None:
            where += " AND point = ?"
            params.append(point)
        c = self.dialect.collate
        rows = self._select(
            "SELECT edge, device, point, start, duration_s, quantity, unit, flags, synced "
            f"FROM intervals WHERE {condition} AND start >= ? AND start < ?{where} "
            f"ORDER BY start, edge{c}, device{c}, point{c} LIMIT ?", [*params, limit])
        return [StoredInterval(e, d, p, int(st), int(du), float(q), u, flag_list(f), bool(sy))
                for e, d, p, st, du, q, u, f, sy in rows]

    def latest_event_with(self, edge: str, key: str) -> dict[str, Any] | None:
        """The data of the edge's newest event (by ts, epoch, seq) whose data has the
        top-level `key` (e.g. `outbox_depth`), or None. Read in pages: usually the first
        candidate (the text mentions `key`) has it."""
        needle = json.dumps(key, ensure_ascii=False)
        offset, page = 0, 8
        while True:
            rows = self._select(
                f"SELECT data FROM events WHERE stream_edge = ? AND {self.dialect.find}"
                "(data, ?) > 0 ORDER BY ts DESC, stream_epoch DESC, seq DESC LIMIT ? OFFSET ?",
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
        """The edge's `command.result` events answering one of `ids`, oldest first (by ts,
        epoch, seq): the last one per id is the current answer."""
        wanted = frozenset(ids)
        if not wanted:
            return []
        rows = self._select("SELECT data, ts FROM events WHERE stream_edge = ? AND "
                            "name = 'command.result' ORDER BY ts, stream_epoch, seq", (edge,))
        return [r for r in (command_result(str(d), int(ts), wanted) for d, ts in rows)
                if r is not None]

    # -- compliance reads ---------------------------------------------------------------

    def interval_rows(self, start_ms: int, end_ms: int, keys: Iterable[MeterKey]
                      ) -> list[tuple[MeterKey, int, int, float]]:
        """(meter, start ms, duration s, quantity) of every interval of `keys` overlapping
        [start_ms, end_ms), in start order per meter; the caller pro-rates at the edges."""
        lo = self._lower_bound(start_ms)
        out: list[tuple[MeterKey, int, int, float]] = []
        for key in dict.fromkeys(keys):
            rows = self._select(
                "SELECT start, duration_s, quantity FROM intervals WHERE edge = ? AND "
                "device = ? AND point = ? AND start >= ? AND start < ? "
                "AND start + duration_s * 1000 > ? ORDER BY start",
                (key.edge, key.device, key.point, lo, end_ms, start_ms))
            out.extend((key, int(st), int(du), float(q)) for st, du, q in rows)
        return out

    def sample_series(self, key: MeterKey, start_ms: int, end_ms: int
                      ) -> list[tuple[int, Value]]:
        """Samples of one point in [start_ms, end_ms), preceded by the last one before
        start_ms (the value in force when the window opens), in time order."""
        columns = f"ts, {self.dialect.value_columns}"
        before = self._select(
            f"SELECT {columns} FROM samples WHERE stream_edge = ? AND device = ? AND "
            "point = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
            (key.edge, key.device, key.point, start_ms))
        rows = self._select(
            f"SELECT {columns} FROM samples WHERE stream_edge = ? AND device = ? AND "
            "point = ? AND ts >= ? AND ts < ? ORDER BY ts",
            (key.edge, key.device, key.point, start_ms, end_ms))
        decode = self.dialect.decode
        return [(int(r[0]), decode(*r[1:])) for r in [*before, *rows]]

    def ac_seconds(self, units: Sequence[AcPoints], start_ms: int, end_ms: int,
                   rule: AcRule, tz: ZoneInfo) -> tuple[int, int]:
        """(judged ms, compliant ms) of the AC units over [start_ms, end_ms): the sweep over
        the raw samples (the SQLite store serves whole days of `tz` from its cache)."""
        return accache.uncached(self.sample_series, units, start_ms, end_ms, rule)

    def alarm_events(self, until_ms: int, *, edges: Iterable[str] | None = None
                     ) -> list[tuple[str, str | None, int, str, str]]:
        """(edge, device, ts, name, data JSON) of every `alarm.*` event of `edges` (None:
        of every edge) before `until_ms`, in time order (an alarm raised long ago may still
        be open). The prefix test is `substr`, not a range: a range of text follows
        PostgreSQL's collation, which may order '.' and '/' otherwise than bytes do. The
        edge filter is in the query, so one institution's view reads its own alarms, not
        the whole district's."""
        where, params = "", list[Any]()
        if edges is not None:
            wanted = sorted(set(edges))
            if not wanted:
                return []
            condition, params = self.dialect.any_of("stream_edge", wanted)
            where = f" AND {condition}"
        rows = self._select(
            "SELECT stream_edge, device, ts, name, data FROM events WHERE "
            f"substr(name, 1, 6) = 'alarm.' AND ts < ?{where} ORDER BY ts, stream_epoch, seq",
            [until_ms, *params])
        return [(str(e), d, int(ts), str(n), str(data)) for e, d, ts, n, data in rows]
