"""AC setpoint compliance from a per-day cache kept exact (the SQLite store).

Why this module exists: a month's AC compliance read every raw sample of the month (about
4 million rows for 30 units at 1-minute polls, 3–5 s to read alone) and swept them, on every
dashboard refresh. Closed days do not change unless a late sample arrives, so each judged
unit's (judged ms, compliant ms) of each whole local day is kept in `ac_days` and only the
open part of a period (today, and any partial day at its edges) is swept live.

Why the cache is exact, not approximately right:

- `central.sweeps.unit_ms` adds spans as integer milliseconds, so the sweep over [a, b) is
  the sum of the sweeps over [a, m) and [m, b) for any cut m: the values in force at m are
  those in force at the piece's start, and a hold that crosses m ends at the same time.
  A day's sweep is seeded with the samples of the `max_hold` before its midnight (an older
  sample has expired by then, exactly as in the whole-period sweep).
- Whether on/off decides (`with_on`) is a property of the whole period in the uncached
  sweep (the unit has some on sample before the period's end); it is part of the key.
- Late and replayed samples: the store's write transaction adds, per series and UTC day,
  the number of sample rows written to `sample_days.gen` (replays included: a generation,
  never decremented). A cached day keeps the generations of the buckets its sweep read
  (the seed window included) as its fingerprint; a read whose fingerprint differs
  recomputes the day. The generations count the rows written since the cache was created,
  not the rows stored: every cached day was computed after that, so any later write to its
  buckets changes its fingerprint, and a store from before the cache needs no count of its
  old samples (its first writable open only creates the empty tables). A write between
  the fingerprint read and the sample read makes the saved fingerprint older than the
  data, so the day is recomputed once more later: never a stale figure.
- Rule changes: the key holds the thresholds, the judged modes, the hold and the day zone.

Stores without the cache (PostgreSQL, a read-only open of a store created before it) run
`uncached`, the plain sweep over the period's samples.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from central.institution import MeterKey
from central.rollup import LocalDays
from central.sweeps import AcPoints, AcRule, Samples, unit_ms

DAY_MS = 86_400_000
CACHE_VERSION = 1
_CHUNK_DAYS = 31  # days of samples read at once when filling the cache

SCHEMA = """
CREATE TABLE IF NOT EXISTS sample_days (
    edge TEXT NOT NULL, device TEXT NOT NULL, point TEXT NOT NULL, bucket INTEGER NOT NULL,
    gen INTEGER NOT NULL, PRIMARY KEY (edge, device, point, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ac_days (
    edge TEXT NOT NULL, device TEXT NOT NULL, points TEXT NOT NULL, rule TEXT NOT NULL,
    with_on INTEGER NOT NULL, day INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    judged_ms INTEGER NOT NULL, compliant_ms INTEGER NOT NULL,
    PRIMARY KEY (edge, device, points, rule, with_on, day)) WITHOUT ROWID;
"""
_BUMP = """INSERT INTO sample_days (edge, device, point, bucket, gen) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (edge, device, point, bucket) DO UPDATE SET gen = gen + excluded.gen"""

SeriesReader = Callable[[MeterKey, int, int], Samples]


def bump(conn: sqlite3.Connection, sample_rows: Sequence[Sequence[Any]]) -> None:
    """Count a batch's sample rows (stream_edge, epoch, seq, ts, device, point, …) into
    `sample_days`; call it in the store's write transaction."""
    counts = Counter((r[0], r[4], r[5], int(r[3]) // DAY_MS) for r in sample_rows)
    conn.executemany(_BUMP, [(*k, n) for k, n in counts.items()])


def open_ac_days(conn: sqlite3.Connection, lock: threading.RLock, path: str, *,
                 readonly: bool) -> AcDayCache | None:
    """The store's cache: empty tables created on the first writable open (nothing read from
    the samples: see the module's note on generations); None on a read-only open of a store
    without it. A read-only
    store (the API's per-request reader) reads the cache and saves the days it computed
    through a short-lived connection of its own: the one thing such a reader writes."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'ac_days'").fetchone()
    except sqlite3.Error:
        row = None
    ready = row is not None and json.loads(row[0]).get("version") == CACHE_VERSION
    if readonly:
        return AcDayCache(conn, lock, path, writable=False) if ready else None
    conn.executescript(SCHEMA)
    if not ready:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM sample_days")
            conn.execute("DELETE FROM ac_days")
            conn.execute("INSERT INTO meta (key, value) VALUES ('ac_days', ?) ON CONFLICT "
                         "(key) DO UPDATE SET value = excluded.value",
                         (json.dumps({"version": CACHE_VERSION}),))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return AcDayCache(conn, lock, path, writable=True)


def uncached(read: SeriesReader, units: Sequence[AcPoints], start_ms: int, end_ms: int,
             rule: AcRule) -> tuple[int, int]:
    """(judged ms, compliant ms) of `units` over [start_ms, end_ms) from the raw samples:
    the definition the cache must reproduce."""
    judged = compliant = 0
    if end_ms <= start_ms:
        return 0, 0
    for u in units:
        sp = read(MeterKey(u.edge, u.device, u.setpoint), start_ms, end_ms)
        md = read(MeterKey(u.edge, u.device, u.mode), start_ms, end_ms)
        on = read(MeterKey(u.edge, u.device, u.on), start_ms, end_ms) if u.on else []
        j, c = unit_ms(sp, md, on, start_ms, end_ms, rule, with_on=bool(on))
        judged += j
        compliant += c
    return judged, compliant


class AcDayCache:
    """Per-day AC figures of one SQLite store, read and filled under the store's lock."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, path: str, *,
                 writable: bool) -> None:
        self._conn = conn
        self._lock = lock
        self._path = path
        self.writable = writable
        self._days: dict[str, LocalDays] = {}

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def seconds(self, read: SeriesReader, units: Sequence[AcPoints], start_ms: int,
                end_ms: int, rule: AcRule, tz: ZoneInfo) -> tuple[int, int]:
        """`uncached(read, units, start_ms, end_ms, rule)`, exactly: whole local days of
        `tz` from the cache, the rest swept live."""
        if end_ms <= start_ms:
            return 0, 0
        days = self._days.setdefault(tz.key, LocalDays(tz))
        d0 = days.day_of(start_ms)
        if days.midnight(d0) < start_ms:
            d0 += 1
        d1 = days.day_of(end_ms)  # midnight(d1) <= end_ms
        if d0 >= d1:
            return uncached(read, units, start_ms, end_ms, rule)
        key = json.dumps([rule.summer_min, rule.winter_max, sorted(rule.cooling),
                          sorted(rule.heating), rule.max_hold_ms, tz.key])
        judged = compliant = 0
        for u in units:
            with_on = u.on is not None and bool(self._query(
                "SELECT 1 FROM samples WHERE stream_edge = ? AND device = ? AND point = ? "
                "AND ts < ? LIMIT 1", (u.edge, u.device, u.on, end_ms)))
            for a, b in ((start_ms, days.midnight(d0)), (days.midnight(d1), end_ms)):
                j, c = self._live(read, u, a, b, rule, with_on)
                judged += j
                compliant += c
            j, c = self._whole_days(read, u, d0, d1, days, rule, key, with_on)
            judged += j
            compliant += c
        return judged, compliant

    @staticmethod
    def _live(read: SeriesReader, u: AcPoints, a: int, b: int, rule: AcRule,
              with_on: bool) -> tuple[int, int]:
        if b <= a:
            return 0, 0
        lo = a - rule.max_hold_ms
        sp = read(MeterKey(u.edge, u.device, u.setpoint), lo, b)
        md = read(MeterKey(u.edge, u.device, u.mode), lo, b)
        on = read(MeterKey(u.edge, u.device, u.on), lo, b) if u.on and with_on else []
        return unit_ms(sp, md, on, a, b, rule, with_on=with_on)

    def _whole_days(self, read: SeriesReader, u: AcPoints, d0: int, d1: int,
                    days: LocalDays, rule: AcRule, key: str, with_on: bool
                    ) -> tuple[int, int]:
        hold = rule.max_hold_ms
        points = [u.setpoint, u.mode, *([u.on] if u.on and with_on else [])]
        b_lo, b_hi = (days.midnight(d0) - hold) // DAY_MS, (days.midnight(d1) - 1) // DAY_MS
        gens: list[dict[int, int]] = []
        for p in points:
            rows = self._query(
                "SELECT bucket, gen FROM sample_days WHERE edge = ? AND device = ? AND "
                "point = ? AND bucket >= ? AND bucket <= ?", (u.edge, u.device, p, b_lo, b_hi))
            gens.append({int(b): int(g) for b, g in rows})

        def fingerprint(d: int) -> str:
            lo = (days.midnight(d) - hold) // DAY_MS
            hi = (days.midnight(d + 1) - 1) // DAY_MS
            return "|".join(",".join(str(g.get(b, 0)) for b in range(lo, hi + 1))
                            for g in gens)

        names = "\x1f".join([*points[:2], u.on or ""])
        stored = {int(d): (str(fp), int(j), int(c)) for d, fp, j, c in self._query(
            "SELECT day, fingerprint, judged_ms, compliant_ms FROM ac_days WHERE edge = ? AND "
            "device = ? AND points = ? AND rule = ? AND with_on = ? AND day >= ? AND day < ?",
            (u.edge, u.device, names, key, int(with_on), d0, d1))}
        judged = compliant = 0
        missing: list[tuple[int, str]] = []
        for d in range(d0, d1):
            fp = fingerprint(d)
            hit = stored.get(d)
            if hit is not None and hit[0] == fp:
                judged += hit[1]
                compliant += hit[2]
            else:
                missing.append((d, fp))
        fresh: list[tuple[Any, ...]] = []
        for chunk in _chunks(missing):
            first, last = chunk[0][0], chunk[-1][0]
            lo, hi = days.midnight(first) - hold, days.midnight(last + 1)
            series = [_Series(read(MeterKey(u.edge, u.device, p), lo, hi)) for p in points]
            for d, fp in chunk:
                a, b = days.midnight(d), days.midnight(d + 1)
                sp, md, *on = (s.window(a - hold, b) for s in series)
                j, c = unit_ms(sp, md, on[0] if on else [], a, b, rule, with_on=with_on)
                judged += j
                compliant += c
                fresh.append((u.edge, u.device, names, key, int(with_on), d, fp, j, c))
        if fresh:
            self._save(fresh)
        return judged, compliant

    def _save(self, rows: list[tuple[Any, ...]]) -> None:
        """Best effort: a cache that cannot be written (busy, a read-only file) leaves the
        figure as computed; the next read computes those days again."""
        with contextlib.suppress(sqlite3.Error):
            if self.writable:
                with self._lock:
                    if not self._conn.in_transaction:  # never commit someone else's
                        _insert(self._conn, rows)
                return
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=1.0)
            try:
                _insert(conn, rows)
            finally:
                conn.close()

    def rows(self) -> list[tuple[Any, ...]]:
        """The cached days (for tests and diagnostics)."""
        return self._query("SELECT * FROM ac_days ORDER BY edge, device, day", ())


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO ac_days VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         rows)
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class _Series:
    """One point's samples in time order, cut into windows by bisection."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples
        self.stamps = [ts for ts, _ in samples]

    def window(self, lo: int, hi: int) -> Samples:
        """Samples with lo <= ts < hi."""
        i = bisect.bisect_left(self.stamps, lo)
        j = bisect.bisect_left(self.stamps, hi)
        return self.samples[i:j]


def _chunks(missing: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """Runs of missing days spanning at most `_CHUNK_DAYS` days, read with one query each."""
    chunk: list[tuple[int, str]] = []
    for item in missing:
        if chunk and item[0] - chunk[0][0] >= _CHUNK_DAYS:
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk
