"""Daily and hourly rollups on PostgreSQL, with the exactness of the SQLite ones.

The definition is central/rollup.py's, reused, not copied: the same integer nano-unit parts
(`Rollup.contributions`), the same replay of the interval upsert's (epoch, seq) rule
(`Rollup.deltas`) and the same read plan (`Rollup.plan`: whole days, whole hours, raw
partial hours at the edges, unrolled intervals from the raw table). What is PostgreSQL's own:

- Day buckets are local days of one zone fixed per database by the migration that created
  them: Asia/Shanghai, the zone of the institutions greenguard serves (no setting, so no
  worker can maintain the rollup on another calendar than its peers, and nothing is
  rebuilt at start). A day bucket is a fixed span of time, so a reader in any zone still
  takes the days wholly inside its period and the hours of the rest.
- Maintenance runs in the batch's transaction (central/pgstore.py), just before the
  interval upsert: a killed worker rolls back both, a committed batch committed both.
- Concurrency. The delta of a batch is computed from the stored versions of its interval
  keys, so those versions must not change between the read and the upsert. Only writers
  of the same edge write the same interval keys (intervals are keyed by the stream's
  edge); the stream row lock serialises one (edge, epoch), and a transaction-level
  advisory lock on the edge (taken before the read, in its own statement so the read's
  snapshot is taken after the lock is held) serialises the epochs of one edge. Rollup rows
  are then changed by additive deltas, `INSERT … ON CONFLICT DO UPDATE SET nano = nano +
  excluded.nano`: in READ COMMITTED the update applies to the newest committed version of
  the row, so two transactions adding to one row never lose either addition. (Recomputing a
  bucket from the raw rows instead would lose one: each would see only its own writes.)
  Additions commute, so the rollup equals the recomputation whatever the commit order.
- A database from before the rollups is filled by the migration that creates them
  (central/migrations/store/0004_rollups.sql, the same splitting rule in SQL; tested
  against this module's recomputation).
- Reads are one statement, so days, hours and raw edges come from one snapshot even while
  workers commit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from central.rollup import (
    DEFAULT_TIMEZONE,
    HOUR_MS,
    MAX_ROLLED_S,
    NANO,
    Key4,
    ReadPlan,
    Rollup,
    Stored,
)

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[tuple[Any, ...]]

DAY_ZONE = DEFAULT_TIMEZONE  # as in migration 0004; changing it needs a migration
LOCK_CLASS = 0x6767_7275  # "ggru": advisory locks of rollup maintenance, one per edge
_ROLLED = "i.duration_s <= 86400 AND i.quantity <= 1e5 AND i.quantity >= -1e5"
# The predicate of the partial index `intervals_unrolled` (migration 0004), so it is used.
_UNROLLED = "(i.duration_s > 86400 OR i.quantity > 1e5 OR i.quantity < -1e5)"

_CURRENT = """SELECT i.edge, i.device, i.point, i.start, i.duration_s, i.quantity,
        i.stream_epoch, i.seq
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[]) AS k(e, d, p, s)
    JOIN intervals i ON i.edge = k.e AND i.device = k.d AND i.point = k.p AND i.start = k.s"""
# Both rollups in one statement (one round trip); each row's delta is added to the newest
# committed version of the row.
_ADD = """WITH daily AS (
        INSERT INTO interval_daily AS t (edge, device, point, day, nano)
        SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[], %s::bigint[])
        ON CONFLICT (edge, device, point, day) DO UPDATE SET nano = t.nano + excluded.nano)
    INSERT INTO interval_hourly AS t (edge, device, point, hour, nano)
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[])
    ON CONFLICT (edge, device, point, hour) DO UPDATE SET nano = t.nano + excluded.nano"""

ROLLUP = Rollup(DAY_ZONE)


def roll_up(conn: Conn, rows: Sequence[Sequence[Any]]) -> None:
    """Apply to the rollups exactly what the interval upsert is about to do with `rows`
    (edge, device, point, start, duration_s, quantity, unit, flags, synced, epoch, seq), in
    the batch's transaction, before the upsert."""
    if not rows:
        return
    for edge in sorted({str(r[0]) for r in rows}):
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, edge))
    keys = list(dict.fromkeys((r[0], r[1], r[2], r[3]) for r in rows))
    current: dict[Key4, Stored | None] = dict.fromkeys(keys)
    columns = [list(c) for c in zip(*keys, strict=True)]
    for e, d, p, st, du, q, ep, sq in conn.execute(_CURRENT, columns).fetchall():
        current[(e, d, p, int(st))] = (int(du), float(q), int(ep), int(sq))
    daily, hourly = ROLLUP.deltas(rows, current)
    params: list[list[Any]] = []
    for deltas in (daily, hourly):
        changed = sorted((k, n) for k, n in deltas.items() if n)  # one lock order
        params += [[k[i] for k, _ in changed] for i in range(4)] + [[n for _, n in changed]]
    if params[4] or params[9]:
        conn.execute(_ADD, params)


def key_list(keys: Sequence[tuple[str, str, str]]) -> str:
    """`keys` as one JSON parameter (a jsonb array of [edge, device, point]): encoded in C
    by the json module, where three text arrays cost psycopg's Python array dumper about
    10 µs a key (30 ms a compliance call for 1,000 meters)."""
    return json.dumps([list(k) for k in keys])


# The rows (e, d, p, n) of a `key_list` parameter, n its 1-based position.
KEYS = ("(SELECT a.k ->> 0 AS e, a.k ->> 1 AS d, a.k ->> 2 AS p, a.n FROM "
        "jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS a(k, n))")


def _meters(keys: Sequence[tuple[str, str, str]] | None, alias: str) -> tuple[str, list[Any]]:
    """A condition restricting `alias` to `keys` (nothing when None), to append to a WHERE,
    and its parameters. A semi-join: the planner hashes the keys and probes the rollup rows
    with them (or probes each key's index range when the rest of the WHERE is selective),
    never hashes a year of rollup rows."""
    if keys is None:
        return "", []
    return (f" AND ({alias}.edge, {alias}.device, {alias}.point) IN (SELECT k.e, k.d, k.p "
            f"FROM {KEYS} k)", [key_list(keys)])


def _overlap(s: int, t: int) -> tuple[str, list[Any]]:
    """The share of interval `i` inside [s, t) (the raw sums' proportional rule; 0 for a
    quantity below 1e-300, whose share would underflow, which PostgreSQL refuses)."""
    return ("CASE WHEN i.start >= %s AND i.start + i.duration_s * 1000 <= %s THEN i.quantity "
            "WHEN ABS(i.quantity) < 1e-300 THEN 0.0 ELSE i.quantity * (LEAST(i.start + "
            "i.duration_s * 1000, %s) - GREATEST(i.start, %s)) / (i.duration_s * 1000.0) END",
            [s, t, t, s])


def period_sql(plan: ReadPlan, start_ms: int, end_ms: int,
               keys: Sequence[tuple[str, str, str]] | None) -> tuple[str, list[Any]]:
    """One statement for `plan`: rows (edge, device, point, nano or NULL, quantity part or
    NULL); bucket rows are summed per meter in the database, raw parts come one by one."""
    parts: list[str] = []
    params: list[Any] = []
    join_r, join_p = _meters(keys, "r")
    buckets: list[tuple[str, str, int, int]] = []
    if plan.days is not None:
        buckets.append(("interval_daily", "day", *plan.days))
    buckets += [("interval_hourly", "hour", h0, h1) for h0, h1 in plan.hours]
    if buckets:
        ranges = " UNION ALL ".join(
            f"SELECT r.edge, r.device, r.point, r.nano FROM {table} r "
            f"WHERE r.{column} >= %s AND r.{column} < %s{join_r}"
            for table, column, _, _ in buckets)
        for _table, _column, lo, hi in buckets:
            params += [lo, hi, *join_p]
        parts.append(f"SELECT edge, device, point, SUM(nano), NULL::float8 FROM ({ranges}) b "
                     "GROUP BY edge, device, point")
    join_i, join_ip = _meters(keys, "i")
    for s, t, _lo in plan.edges:
        share, share_p = _overlap(s, t)
        parts.append(f"SELECT i.edge, i.device, i.point, NULL::numeric, {share} FROM intervals "
                     f"i WHERE {_ROLLED} AND i.start < %s AND i.start >= %s - LEAST("
                     "(SELECT seconds FROM interval_bound WHERE id = 1), "
                     f"{MAX_ROLLED_S}) * 1000 AND i.start + i.duration_s * 1000 > %s{join_i}")
        params += [*share_p, t, s, s, *join_ip]
    share, share_p = _overlap(start_ms, end_ms)
    parts.append(f"SELECT i.edge, i.device, i.point, NULL::numeric, {share} FROM intervals "
                 f"i WHERE {_UNROLLED} "
                 f"AND i.start < %s AND i.start + i.duration_s * 1000 > %s{join_i}")
    params += [*share_p, end_ms, start_ms, *join_ip]
    return " UNION ALL ".join(parts), params


def period_sums(conn: Conn, start_ms: int, end_ms: int,
                keys: Sequence[tuple[str, str, str]] | None
                ) -> dict[tuple[str, str, str], float]:
    """Per-meter consumption over [start_ms, end_ms) from the rollups, pro-rating straddling
    intervals at the edges: `interval_sums` within the rollups' 1e-9 rounding per interval."""
    plan = ROLLUP.plan(start_ms, end_ms, MAX_ROLLED_S, any_zone=True)
    return _sums(conn, plan, start_ms, end_ms, keys, {})


def _sums(conn: Conn, plan: ReadPlan, start_ms: int, end_ms: int,
          keys: Sequence[tuple[str, str, str]] | None,
          nano: dict[tuple[str, str, str], int]) -> dict[tuple[str, str, str], float]:
    """`period_sums` of `plan`, adding to the nano-units already read per meter (`nano`)."""
    statement, params = period_sql(plan, start_ms, end_ms, keys)
    raw: dict[tuple[str, str, str], list[float]] = {}
    for e, d, p, n, q in conn.execute(statement.encode(), params).fetchall():
        key = (str(e), str(d), str(p))
        if n is not None:
            nano[key] = nano.get(key, 0) + int(n)
        elif q is not None:
            raw.setdefault(key, []).append(float(q))
    out = {k: v / NANO for k, v in nano.items()}
    for k, qs in raw.items():
        out[k] = math.fsum([out.get(k, 0.0), *qs])
    return out


# One pass over the daily rollup rows of the asked meters for both the per-meter sums and
# the per-group daily totals; grouping by the keys' positions (integers), not their text.
_SUMS_AND_DAYS = """SELECT GROUPING(k.n), k.n, k.g, r.day, SUM(r.nano)
    FROM interval_daily r
    JOIN (SELECT a.k ->> 0 AS e, a.k ->> 1 AS d, a.k ->> 2 AS p, (a.k ->> 3)::int AS g, a.n
          FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS a(k, n)) k
      ON r.edge = k.e AND r.device = k.d AND r.point = k.p
    WHERE r.day >= %s AND r.day < %s
    GROUP BY GROUPING SETS ((k.n), (k.g, r.day))"""


def sums_and_days(conn: Conn, start_ms: int, end_ms: int, tz: ZoneInfo,
                  keys: Sequence[tuple[str, str, str]], groups: Sequence[int]
                  ) -> tuple[dict[tuple[str, str, str], float], list[dict[date, float]]] | None:
    """`period_sums` of `keys` (distinct) over [start_ms, end_ms) and, per group g (the
    keys with groups[i] == g, 0 ≤ g < max + 1), `day_totals` of its whole hours, reading
    the daily rollup rows once instead of twice (a compliance call: the year's sums and the
    projection's daily rates). The same nano-unit sums as the two reads, from one snapshot.
    None where the period has no whole day of the rollup's zone or no whole hour."""
    plan = ROLLUP.plan(start_ms, end_ms, MAX_ROLLED_S, any_zone=True)
    h0, h1 = -(-start_ms // HOUR_MS), end_ms // HOUR_MS
    if plan.days is None or h0 >= h1 or not keys or len(set(keys)) != len(keys):
        return None
    d0, d1 = plan.days
    count = max(groups) + 1
    by_day: list[dict[int, int]] = [{} for _ in range(count)]
    nano: dict[tuple[str, str, str], int] = {}
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        listed = json.dumps([[*k, g] for k, g in zip(keys, groups, strict=True)])
        for grouping, n, g, day, total in conn.execute(
                _SUMS_AND_DAYS.encode(), [listed, d0, d1]).fetchall():
            if grouping == 0:
                nano[keys[int(n) - 1]] = int(total)
            else:
                by_day[int(g)][int(day)] = int(total)
        sums = _sums(conn, ReadPlan(None, plan.hours, plan.edges), start_ms, end_ms, keys,
                     nano)
        totals: list[dict[date, float]] = []
        for g in range(count):
            members = [k for k, kg in zip(keys, groups, strict=True) if kg == g]

            def days(a: int, b: int, g: int = g, members: list[Any] = members
                     ) -> dict[int, int]:
                if (a, b) == (d0, d1):
                    return by_day[g]
                return bucket_totals(conn, "interval_daily", "day", members, a, b)

            def hours(a: int, b: int, members: list[Any] = members) -> dict[int, int]:
                return bucket_totals(conn, "interval_hourly", "hour", members, a, b)

            nano_days = ROLLUP.day_totals(h0, h1, tz, days, hours) if members else {}
            totals.append({d: n / NANO for d, n in nano_days.items()})
    return sums, totals


def bucket_totals(conn: Conn, table: str, column: str, keys: Sequence[tuple[str, str, str]],
                  lo: int, hi: int) -> dict[int, int]:
    """Σ nano over `keys` per bucket lo ≤ b < hi of one rollup table, one primary-key
    range per meter."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return {}
    join, params = _meters(unique, "r")
    rows = conn.execute(
        f"SELECT r.{column}, SUM(r.nano) FROM {table} r WHERE r.{column} >= %s AND "
        f"r.{column} < %s{join} GROUP BY r.{column}".encode(), [lo, hi, *params]).fetchall()
    return {int(b): int(n) for b, n in rows}


def hour_totals(conn: Conn, keys: Sequence[tuple[str, str, str]], h0: int, h1: int
                ) -> dict[int, float]:
    """Σ over `keys` per epoch hour h0 ≤ h < h1 (units)."""
    return {h: n / NANO for h, n in
            bucket_totals(conn, "interval_hourly", "hour", keys, h0, h1).items()}


def day_totals(conn: Conn, keys: Sequence[tuple[str, str, str]], h0: int, h1: int,
               tz: ZoneInfo) -> dict[date, float]:
    """`hour_totals` grouped by the local date of each hour, whole days of the day zone
    from the daily rollup (`Rollup.day_totals`). One read transaction: days and hours of
    the same snapshot."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        nano = ROLLUP.day_totals(
            h0, h1, tz,
            lambda a, b: bucket_totals(conn, "interval_daily", "day", keys, a, b),
            lambda a, b: bucket_totals(conn, "interval_hourly", "hour", keys, a, b))
    return {d: n / NANO for d, n in nano.items()}


def first_start(conn: Conn, keys: Sequence[tuple[str, str, str]], start_ms: int,
                end_ms: int) -> int | None:
    """Start of the earliest interval of `keys` in [start_ms, end_ms): the first row of
    each meter's primary-key range (a probe per meter, not a scan of the period)."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return None
    row = conn.execute(
        f"SELECT MIN(f.start) FROM {KEYS} AS k "
        "CROSS JOIN LATERAL (SELECT i.start FROM intervals i WHERE i.edge = k.e AND "
        "i.device = k.d AND i.point = k.p AND i.start >= %s AND i.start < %s "
        "ORDER BY i.start LIMIT 1) AS f",
        [key_list(unique), start_ms, end_ms]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def rollup_rows(conn: Conn) -> dict[str, list[tuple[Any, ...]]]:
    """Both rollup tables in key order, for tests and diagnostics."""
    return {t: [(str(e), str(d), str(p), int(b), int(n)) for e, d, p, b, n in conn.execute(
                f"SELECT * FROM {t} ORDER BY edge COLLATE \"C\", device COLLATE \"C\", "
                "point COLLATE \"C\", 4".encode()).fetchall()]
            for t in ("interval_daily", "interval_hourly")}
