"""The per-day AC-compliance cache of central/accache.py on PostgreSQL.

The cache's logic and its exactness argument are central/accache.py's, unchanged: whole
local days are served from `ac_days` when their fingerprint (the generations of the sample
buckets their sweep read) still matches, the rest is swept live. What is PostgreSQL's own:

- `bump` counts a batch's sample rows into `sample_days` in the batch's transaction with an
  additive `INSERT … ON CONFLICT DO UPDATE SET gen = gen + excluded.gen`: concurrent workers
  never lose a count (READ COMMITTED updates the newest committed row version), and a count
  is visible exactly when its samples are (same commit).
- Reads run in READ COMMITTED, one statement each: a batch committing between the read of
  the generations and the read of the samples makes the saved fingerprint older than the
  data, so the day is recomputed once more later, never served stale (the same argument as
  for SQLite's reader).
- A computed day is saved in its own short transaction, best effort; a read-only store (the
  API's reader, `default_transaction_read_only`) asks for a READ WRITE transaction for that
  one write, the cache being the one thing a reader writes, as on SQLite.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import psycopg

from central.accache import DAY_MS, AcDayCache
from central.errors import StoreError

if TYPE_CHECKING:
    Conn = psycopg.Connection[tuple[Any, ...]]

_BUMP = """INSERT INTO sample_days AS t (edge, device, point, bucket, gen)
    SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::bigint[])
    ON CONFLICT (edge, device, point, bucket) DO UPDATE SET gen = t.gen + excluded.gen"""
_SAVE = """INSERT INTO ac_days AS t (edge, device, points, rule, with_on, day, fingerprint,
        judged_ms, compliant_ms) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (edge, device, points, rule, with_on, day) DO UPDATE SET
        fingerprint = excluded.fingerprint, judged_ms = excluded.judged_ms,
        compliant_ms = excluded.compliant_ms"""


def bump(conn: Conn, edge: str, samples: Sequence[Sequence[Any]]) -> None:
    """Count one batch's sample rows (seq, ts, device, point, …) of stream edge `edge` into
    `sample_days`; call it in the batch's transaction."""
    counts = sorted(Counter((str(r[2]), str(r[3]), int(r[1]) // DAY_MS)
                            for r in samples).items())
    if counts:
        conn.execute(_BUMP, (edge, [k[0] for k, _ in counts], [k[1] for k, _ in counts],
                             [k[2] for k, _ in counts], [n for _, n in counts]))


class PgAcDayCache(AcDayCache):
    """The cache read and filled through the store's connection (`use`, the store's
    `PgConnection.use`: the connection under its lock, errors as `StoreError`)."""

    def __init__(self, use: Callable[[str], AbstractContextManager[Conn]], *,
                 writable: bool) -> None:
        super().__init__(None, threading.RLock(), "", writable=writable)  # type: ignore[arg-type]
        self._use = use

    def _query(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._use("query") as conn:
            return conn.execute(sql.replace("?", "%s").encode(), params).fetchall()

    def _save(self, rows: list[tuple[Any, ...]]) -> None:
        """Best effort, as on SQLite: a cache that cannot be written leaves the figure as
        computed; the next read computes those days again."""
        with (contextlib.suppress(StoreError), self._use("ac_days") as conn,
              conn.transaction(), conn.cursor() as cur):
            cur.execute("SET TRANSACTION READ WRITE")
            cur.executemany(_SAVE, rows)
