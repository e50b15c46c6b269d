"""Daily and hourly rollups of interval records, kept in the store's write transaction, so a
year-to-date figure reads about 365 rows per meter instead of 35,040.

Why it looks like this:

- The interval upsert replaces a stored interval only when the incoming (epoch, seq) is
  newer. `roll_up` runs in the same transaction just before that upsert, reads the rows the
  batch may replace, replays the upsert's rule in batch order, and adds exactly the change:
  − the replaced interval's parts, + the winner's parts. Replays and older copies change
  nothing, so a rollup is a function of the stored intervals whatever the arrival order.
- Quantities are summed as integers in nano-units (1e-9 kWh, m³…). Integer addition is exact
  and order-free, so after any sequence of replacements a bucket equals the recomputation
  from the intervals to the unit; float deltas would drift (0.1 + 0.2 − 0.2 ≠ 0.1).
- An interval that straddles a bucket boundary is split in proportion to its overlap, with
  integer parts that add up to its rounded total (floor of the cumulative share), the same
  proportional rule as the raw period sums.
- Day buckets are local calendar days of the rollup's time zone (stored in `meta`; a reader
  in another zone does not use them); hour buckets are epoch hours, the same everywhere.
- Intervals longer than a day or larger than 1e5 units are not rolled up (they would spread
  over hundreds of hour buckets or risk integer overflow): readers take them from the raw
  table through a partial index that is empty in normal operation.

A read of [s, e) takes whole local days from `interval_daily`, whole hours of the remaining
pieces from `interval_hourly`, and only the partial hours at the edges from `intervals`.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

NANO = 1_000_000_000
HOUR_MS = 3_600_000
MAX_ROLLED_S = 86_400
MAX_ROLLED_QUANTITY = 1e5
ROLLUP_VERSION = 1
DEFAULT_TIMEZONE = "Asia/Shanghai"

SCHEMA = """
CREATE TABLE IF NOT EXISTS interval_daily (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, day INTEGER NOT NULL,
    nano INTEGER NOT NULL, PRIMARY KEY (edge, device, point, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS interval_hourly (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, hour INTEGER NOT NULL,
    nano INTEGER NOT NULL, PRIMARY KEY (edge, device, point, hour)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS intervals_unrolled ON intervals (start)
    WHERE duration_s > 86400 OR quantity > 1e5 OR quantity < -1e5;
-- Not a rollup, but the same kind of read support: open alarms need every alarm event ever
-- stored, a small share of all events (audit.write, device_offline…).
CREATE INDEX IF NOT EXISTS events_alarms ON events (ts)
    WHERE name >= 'alarm.' AND name < 'alarm/';
"""
_UNROLLED = "(duration_s > 86400 OR quantity > 1e5 OR quantity < -1e5)"
_ROLLED = "duration_s <= 86400 AND quantity <= 1e5 AND quantity >= -1e5"
_ADD_DAILY = """INSERT INTO interval_daily (edge, device, point, day, nano) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (edge, device, point, day) DO UPDATE SET nano = nano + excluded.nano"""
_ADD_HOURLY = """INSERT INTO interval_hourly (edge, device, point, hour, nano)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (edge, device, point, hour) DO UPDATE SET nano = nano + excluded.nano"""
_LOOKUP_CHUNK = 200  # keys per "IN (VALUES …)" lookup: 800 parameters
_KEYS_CHUNK = 2000  # meters per bucket query: 6,002 parameters

Key4 = tuple[str, str, str, int]  # edge, device, point, start
Stored = tuple[int, float, int, int]  # duration_s, quantity, epoch, seq


def rolled(duration_s: int, quantity: float) -> bool:
    """Whether an interval goes into the rollups (the complement of `intervals_unrolled`)."""
    return duration_s <= MAX_ROLLED_S and -MAX_ROLLED_QUANTITY <= quantity <= MAX_ROLLED_QUANTITY


def _split(start: int, end: int, total: int, cuts: Iterable[tuple[int, int]]
           ) -> list[tuple[int, int]]:
    """Integer parts of `total` per bucket; `cuts` yields (bucket, bucket end ms) in order
    from the bucket holding `start`. Parts are differences of floor(total × elapsed share),
    so they add up to `total` exactly."""
    out: list[tuple[int, int]] = []
    span = end - start
    done = 0
    for bucket, bucket_end in cuts:
        upto = min(end, bucket_end)
        cum = total * (upto - start) // span
        out.append((bucket, cum - done))
        done = cum
        if upto >= end:
            break
    return out


def hour_parts(start: int, duration_s: int, quantity: float) -> list[tuple[int, int]]:
    end = start + duration_s * 1000
    total = round(quantity * NANO)
    first = start // HOUR_MS
    if end <= (first + 1) * HOUR_MS:
        return [(first, total)]
    return _split(start, end, total, ((h, (h + 1) * HOUR_MS) for h in range(first, end)))


class LocalDays:
    """Local calendar days of one time zone as ordinals, with cached midnights."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._day_cache: dict[int, int] = {}
        self._midnight_cache: dict[int, int] = {}

    def day_of(self, ms: int) -> int:
        """Ordinal of the local day holding `ms`; cached per quarter hour (every zone offset
        in use is a multiple of 15 minutes)."""
        slot = ms // 900_000
        cache = self._day_cache
        day = cache.get(slot)
        if day is None:
            if len(cache) > 200_000:
                cache.clear()
            day = datetime.fromtimestamp(slot * 900, self.tz).date().toordinal()
            cache[slot] = day
        return day

    def midnight(self, ordinal: int) -> int:
        cache = self._midnight_cache
        ms = cache.get(ordinal)
        if ms is None:
            d = date.fromordinal(ordinal)
            ms = math.floor(datetime(d.year, d.month, d.day, tzinfo=self.tz).timestamp() * 1000)
            cache[ordinal] = ms
        return ms

    def parts(self, start: int, duration_s: int, quantity: float) -> list[tuple[int, int]]:
        end = start + duration_s * 1000
        total = round(quantity * NANO)
        first = self.day_of(start)
        if end <= self.midnight(first + 1):
            return [(first, total)]
        return _split(start, end, total,
                      ((d, self.midnight(d + 1)) for d in range(first, first + 400)))


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """The buckets of one period read (see `Rollup.plan`)."""

    days: tuple[int, int] | None  # day buckets d0 <= d < d1
    hours: list[tuple[int, int]]  # hour buckets h0 <= h < h1, per range
    edges: list[tuple[int, int, int]]  # (s, t, lowest start): raw intervals over [s, t)


class Rollup:
    """The rollup of one store: its day zone, maintenance and reads."""

    def __init__(self, timezone: str) -> None:
        self.timezone = timezone
        self.days = LocalDays(ZoneInfo(timezone))

    # -- maintenance (inside the store's write transaction) ------------------------------

    def contributions(self, edge: str, device: str, point: str, start: int, duration_s: int,
                      quantity: float, sign: int,
                      daily: dict[tuple[str, str, str, int], int],
                      hourly: dict[tuple[str, str, str, int], int]) -> None:
        if not rolled(duration_s, quantity):
            return
        end = start + duration_s * 1000
        hour = start // HOUR_MS
        if end <= (hour + 1) * HOUR_MS:  # the usual case: inside one hour, hence one day
            day = self.days.day_of(start)
            if end <= self.days.midnight(day + 1):
                nano = sign * round(quantity * NANO)
                daily[(edge, device, point, day)] += nano
                hourly[(edge, device, point, hour)] += nano
                return
        for day, nano in self.days.parts(start, duration_s, quantity):
            daily[(edge, device, point, day)] += sign * nano
        for hour, nano in hour_parts(start, duration_s, quantity):
            hourly[(edge, device, point, hour)] += sign * nano

    def deltas(self, rows: Sequence[Sequence[Any]], current: dict[Key4, Stored | None]
               ) -> tuple[dict[Key4, int], dict[Key4, int]]:
        """The change (daily, hourly) that upserting `rows` (in order) makes to the rollups,
        given the `current` stored version of each of their keys (None: absent), which is
        updated as the upsert would. The one definition both stores maintain their rollups
        with (central/pgrollup.py for PostgreSQL)."""
        daily: dict[Key4, int] = defaultdict(int)
        hourly: dict[Key4, int] = defaultdict(int)
        for r in rows:
            key: Key4 = (r[0], r[1], r[2], r[3])
            old = current[key]
            if old is not None and (r[9], r[10]) <= (old[2], old[3]):
                continue  # the upsert's WHERE keeps the stored row
            if old is not None:
                self.contributions(*key, old[0], old[1], -1, daily, hourly)
            self.contributions(*key, int(r[4]), float(r[5]), 1, daily, hourly)
            current[key] = (int(r[4]), float(r[5]), int(r[9]), int(r[10]))
        return daily, hourly

    def roll_up(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Apply to the rollups exactly what `_UPSERT_INTERVAL` is about to do with `rows`
        (edge, device, point, start, duration_s, quantity, unit, flags, synced, epoch, seq).
        Call it in the same transaction, before the upsert."""
        keys = list(dict.fromkeys((r[0], r[1], r[2], r[3]) for r in rows))
        current: dict[Key4, Stored | None] = dict.fromkeys(keys)
        for i in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[i:i + _LOOKUP_CHUNK]
            values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
            for e, d, p, st, du, q, ep, sq in conn.execute(
                    "SELECT i.edge, i.device, i.point, i.start, i.duration_s, i.quantity, "
                    f"i.stream_epoch, i.seq FROM (VALUES {values}) AS v CROSS JOIN intervals "
                    "AS i ON i.edge = v.column1 AND i.device = v.column2 "
                    "AND i.point = v.column3 AND i.start = v.column4",
                    [v for k in chunk for v in k]):
                current[(e, d, p, st)] = (int(du), float(q), int(ep), int(sq))
        daily, hourly = self.deltas(rows, current)
        if daily:
            conn.executemany(_ADD_DAILY, [(*k, n) for k, n in daily.items() if n])
        if hourly:
            conn.executemany(_ADD_HOURLY, [(*k, n) for k, n in hourly.items() if n])

    def rebuild(self, conn: sqlite3.Connection) -> int:
        """Recompute both rollups from the stored intervals (a store created before the
        rollups existed, or a new day zone). Returns the number of intervals read."""
        conn.execute("DELETE FROM interval_daily")
        conn.execute("DELETE FROM interval_hourly")
        n = 0
        meter: tuple[str, str, str] | None = None
        daily: dict[tuple[str, str, str, int], int] = defaultdict(int)
        hourly: dict[tuple[str, str, str, int], int] = defaultdict(int)

        def flush() -> None:
            conn.executemany("INSERT INTO interval_daily VALUES (?, ?, ?, ?, ?)",
                             [(*k, v) for k, v in daily.items()])
            conn.executemany("INSERT INTO interval_hourly VALUES (?, ?, ?, ?, ?)",
                             [(*k, v) for k, v in hourly.items()])
            daily.clear()
            hourly.clear()

        cursor = conn.execute(f"SELECT edge, device, point, start, duration_s, quantity "
                              f"FROM intervals WHERE {_ROLLED} ORDER BY edge, device, point")
        for e, d, p, st, du, q in cursor:
            if meter != (e, d, p):
                flush()
                meter = (e, d, p)
            self.contributions(e, d, p, int(st), int(du), float(q), 1, daily, hourly)
            n += 1
        flush()
        return n

    # -- reads -----------------------------------------------------------------------------

    def plan(self, start_ms: int, end_ms: int, max_interval_s: int, *, any_zone: bool,
             zone: str = "") -> ReadPlan:
        """Which buckets a read of [start_ms, end_ms) takes: the whole days of the rollup's
        zone inside it (only when the reader's `zone` is the rollup's, unless `any_zone`:
        a day bucket is a fixed span of time, so any reader may use the ones inside its
        period), the whole hours of the rest, and the partial hours at the edges from
        the raw intervals (with the lowest start an interval overlapping them can have)."""
        pieces: list[tuple[int, int]] = []
        days: tuple[int, int] | None = None
        if any_zone or zone == self.timezone:
            d0 = self.days.day_of(start_ms)
            if self.days.midnight(d0) < start_ms:
                d0 += 1
            d1 = self.days.day_of(end_ms)  # midnight(d1) <= end_ms
            if d0 < d1:
                days = (d0, d1)
                pieces = [(start_ms, self.days.midnight(d0)), (self.days.midnight(d1), end_ms)]
        if not pieces:
            pieces = [(start_ms, end_ms)]
        lo_span = min(max_interval_s, MAX_ROLLED_S) * 1000
        hours: list[tuple[int, int]] = []
        edges: list[tuple[int, int, int]] = []
        for a, b in pieces:
            if b <= a:
                continue
            h0, h1 = -(-a // HOUR_MS), b // HOUR_MS
            cuts = [(a, b)]
            if h0 < h1:
                hours.append((h0, h1))
                cuts = [(a, h0 * HOUR_MS), (h1 * HOUR_MS, b)]
            edges.extend((s, t, s - lo_span) for s, t in cuts if t > s)
        return ReadPlan(days, hours, edges)

    def sums(self, conn: sqlite3.Connection, start_ms: int, end_ms: int, tz: ZoneInfo,
             max_interval_s: int, keys: Sequence[tuple[str, str, str]] | None = None,
             ) -> dict[tuple[str, str, str], float]:
        """Per-meter consumption over [start_ms, end_ms), pro-rating straddling intervals:
        rollups for whole days (when `tz` is the rollup's zone) and whole hours, raw
        intervals for the partial hours at the edges and for unrolled intervals."""
        nano: dict[tuple[str, str, str], int] = defaultdict(int)
        raw: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        plan = self.plan(start_ms, end_ms, max_interval_s, any_zone=False, zone=tz.key)
        if plan.days is not None:
            self._bucket_sums(conn, "interval_daily", "day", *plan.days, keys, nano)
        for h0, h1 in plan.hours:
            self._bucket_sums(conn, "interval_hourly", "hour", h0, h1, keys, nano)
        for s, t, lo in plan.edges:
            self._raw(conn, f"start >= {lo} AND {_ROLLED}", s, t, raw)
        self._raw(conn, _UNROLLED, start_ms, end_ms, raw, "INDEXED BY intervals_unrolled")
        out = {k: v / NANO for k, v in nano.items()}
        for k, parts in raw.items():
            out[k] = math.fsum([out.get(k, 0.0), *parts])
        return out

    def day_totals(self, h0: int, h1: int, tz: ZoneInfo,
                   days: Callable[[int, int], dict[int, int]],
                   hours: Callable[[int, int], dict[int, int]]) -> dict[date, int]:
        """Σ nano of whole hours h0 ≤ h < h1 per local date (in `tz`) of each hour's start:
        `hours` grouped by day, with the days of the rollup's zone that lie wholly inside
        taken from `days` (d0, d1 → nano per day ordinal) instead of their 24-odd hours
        (`hours`: h0, h1 → nano per epoch hour). Exactly equal: where a day's midnights are
        hour boundaries an interval's day part and its hour parts are differences of the
        same floors. Only when `tz` is the rollup's zone; otherwise all from `hours`."""
        out: dict[date, int] = defaultdict(int)
        ranges = [(h0, h1)]
        if tz.key == self.timezone and h0 < h1:
            d0 = self.days.day_of(h0 * HOUR_MS)
            if self.days.midnight(d0) < h0 * HOUR_MS:
                d0 += 1
            d1 = self.days.day_of(h1 * HOUR_MS)
            m0, m1 = self.days.midnight(d0), self.days.midnight(d1)
            if d0 < d1 and m0 % HOUR_MS == 0 and m1 % HOUR_MS == 0:
                for d, n in days(d0, d1).items():
                    out[date.fromordinal(d)] += n
                ranges = [(h0, m0 // HOUR_MS), (m1 // HOUR_MS, h1)]
        local = self.days if tz.key == self.timezone else LocalDays(tz)
        for a, b in ranges:
            if a < b:
                for h, n in hours(a, b).items():
                    out[date.fromordinal(local.day_of(h * HOUR_MS))] += n
        return dict(out)

    @staticmethod
    def bucket_totals(conn: sqlite3.Connection, table: str, column: str,
                      keys: Sequence[tuple[str, str, str]], lo: int, hi: int
                      ) -> dict[int, int]:
        """Σ nano over `keys` per bucket lo ≤ b < hi of one rollup table."""
        acc: dict[int, int] = defaultdict(int)
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _KEYS_CHUNK):
            chunk = unique[i:i + _KEYS_CHUNK]
            values = ", ".join(["(?, ?, ?)"] * len(chunk))
            for bucket, n in conn.execute(
                    f"SELECT h.{column}, SUM(h.nano) FROM (VALUES {values}) AS k CROSS JOIN "
                    f"{table} AS h ON h.edge = k.column1 AND h.device = k.column2 "
                    f"AND h.point = k.column3 AND h.{column} >= ? AND h.{column} < ? "
                    f"GROUP BY h.{column}", [*(v for key in chunk for v in key), lo, hi]):
                acc[int(bucket)] += int(n)
        return dict(acc)

    @staticmethod
    def hour_totals(conn: sqlite3.Connection, keys: Sequence[tuple[str, str, str]], h0: int,
                    h1: int) -> dict[int, float]:
        """Σ over `keys` per epoch hour h0 ≤ h < h1 (units, not nano), one primary-key range
        per meter."""
        acc: dict[int, int] = defaultdict(int)
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _KEYS_CHUNK):
            chunk = unique[i:i + _KEYS_CHUNK]
            values = ", ".join(["(?, ?, ?)"] * len(chunk))
            for hour, n in conn.execute(
                    f"SELECT h.hour, SUM(h.nano) FROM (VALUES {values}) AS k CROSS JOIN "
                    "interval_hourly AS h ON h.edge = k.column1 AND h.device = k.column2 "
                    "AND h.point = k.column3 AND h.hour >= ? AND h.hour < ? GROUP BY h.hour",
                    [*(v for key in chunk for v in key), h0, h1]):
                acc[int(hour)] += int(n)
        return {h: n / NANO for h, n in acc.items()}

    @staticmethod
    def _bucket_sums(conn: sqlite3.Connection, table: str, column: str, lo: int, hi: int,
                     keys: Sequence[tuple[str, str, str]] | None,
                     acc: dict[tuple[str, str, str], int]) -> None:
        """Buckets lo ≤ b < hi per meter: for given meters one primary-key range each (the
        table is ordered by meter, then bucket, so other meters and years are never read);
        otherwise one ordered scan of the table."""
        if keys is None:
            rows: Iterable[Any] = conn.execute(
                f"SELECT edge, device, point, TOTAL(nano) FROM {table} "
                f"WHERE {column} >= ? AND {column} < ? GROUP BY edge, device, point", (lo, hi))
            for e, d, p, n in rows:
                acc[(e, d, p)] += int(n)
            return
        for i in range(0, len(keys), _KEYS_CHUNK):
            chunk = keys[i:i + _KEYS_CHUNK]
            values = ", ".join(["(?, ?, ?)"] * len(chunk))
            rows = conn.execute(
                f"SELECT column1, column2, column3, (SELECT TOTAL(nano) FROM {table} WHERE "
                f"edge = column1 AND device = column2 AND point = column3 AND {column} >= ? "
                f"AND {column} < ?) FROM (VALUES {values})",
                [lo, hi, *(v for k in chunk for v in k)])
            for e, d, p, n in rows:
                if n:
                    acc[(e, d, p)] += int(n)

    @staticmethod
    def _raw(conn: sqlite3.Connection, where: str, s: int, e: int,
             acc: dict[tuple[str, str, str], list[float]], index: str = "") -> None:
        for edge, device, point, q in conn.execute(
                "SELECT edge, device, point, SUM(CASE WHEN start >= :s AND "
                "start + duration_s * 1000 <= :e THEN quantity ELSE quantity * "
                "(MIN(start + duration_s * 1000, :e) - MAX(start, :s)) / (duration_s * 1000.0) "
                f"END) FROM intervals {index} WHERE {where} AND start < :e "
                "AND start + duration_s * 1000 > :s GROUP BY edge, device, point",
                {"s": s, "e": e}):
            acc[(edge, device, point)].append(float(q))


def open_rollup(conn: sqlite3.Connection, timezone: str | None, *, readonly: bool
                ) -> Rollup | None:
    """The store's rollup: created (and filled from existing intervals) on first writable
    open, rebuilt when opened for writing with another day zone. A read-only open of a store
    without rollups returns None and readers scan the intervals."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'rollup'").fetchone()
    except sqlite3.Error:
        row = None
    meta = json.loads(row[0]) if row else None
    if readonly:
        if meta is None or meta.get("version") != ROLLUP_VERSION:
            return None
        return Rollup(str(meta["tz"]))
    wanted = timezone or (meta["tz"] if meta else DEFAULT_TIMEZONE)
    ZoneInfo(wanted)  # an unknown zone fails here, before anything is written
    conn.executescript(SCHEMA)  # idempotent; outside a transaction (executescript commits)
    if meta is not None and meta.get("version") == ROLLUP_VERSION and meta["tz"] == wanted:
        return Rollup(wanted)
    rollup = Rollup(wanted)
    conn.execute("BEGIN IMMEDIATE")
    try:
        rollup.rebuild(conn)
        conn.execute("INSERT INTO meta (key, value) VALUES ('rollup', ?) ON CONFLICT (key) "
                     "DO UPDATE SET value = excluded.value",
                     (json.dumps({"version": ROLLUP_VERSION, "tz": wanted}),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return rollup

