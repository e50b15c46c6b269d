"""The manual ledger on PostgreSQL: `central.ledger.Ledger` for a shared server.

Same rules as `SqliteLedger` (upsert by (kind, ref), a `put` is one transaction, raw
quantities stored as the validated entry's JSON). Two API processes may import the same
file at once: the existing row is read `FOR UPDATE` and a first insert uses
`ON CONFLICT DO NOTHING`, re-reading when another writer won, so each entry is counted as
inserted, updated or unchanged exactly once. The schema comes from
central/migrations/ledger/.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from central import migrations
from central.errors import StoreError
from central.ledger import (
    MODELS,
    EntryKind,
    Ledger,
    PutResult,
    _Entry,
    _range,
)
from central.pgstore import Conn, connect


class PgLedger(Ledger):
    def __init__(self, dsn: str, *, password: str | None = None, migrate: bool = True,
                 connect_timeout_s: int = 10) -> None:
        self.dsn = dsn
        self._password = password
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.RLock()
        self._conn: Conn | None = None
        if migrate:
            try:
                migrations.apply(self._connection(), "ledger")
            except BaseException:
                self.close()
                raise

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, self._password, self._connect_timeout_s,
                                 "greenguard-ledger", what="ledger open")
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def put(self, kind: EntryKind, entries: Sequence[_Entry]) -> PutResult:
        model = MODELS[kind]
        for entry in entries:
            if not isinstance(entry, model):
                raise TypeError(f"{kind} entries must be {model.__name__}")
        inserted = updated = unchanged = 0
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction():
                    for entry in entries:
                        data = entry.model_dump_json()
                        lo, hi = _range(kind, entry)
                        cur = conn.execute(
                            "INSERT INTO ledger_entries (kind, ref, lo, hi, data) "
                            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind, ref) DO NOTHING",
                            (kind.value, entry.ref, lo, hi, data))
                        if cur.rowcount == 1:
                            inserted += 1
                            continue
                        row = conn.execute("SELECT data FROM ledger_entries WHERE kind = %s "
                                           "AND ref = %s FOR UPDATE",
                                           (kind.value, entry.ref)).fetchone()
                        if row is not None and row[0] == data:
                            unchanged += 1
                            continue
                        conn.execute("UPDATE ledger_entries SET lo = %s, hi = %s, data = %s, "
                                     "updated_count = updated_count + 1 "
                                     "WHERE kind = %s AND ref = %s",
                                     (lo, hi, data, kind.value, entry.ref))
                        updated += 1
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    self._conn = None
                raise StoreError("ledger put", str(exc)) from exc
        return PutResult(inserted, updated, unchanged)

    def _select(self, kind: EntryKind, lo: float, hi: float, *, overlap: bool,
                end_open: bool) -> list[Any]:
        upper = "lo < %s" if end_open else "lo <= %s"
        lower = "hi >= %s" if overlap else "lo >= %s"
        query = (f"SELECT data FROM ledger_entries WHERE kind = %s AND {upper} AND {lower} "
                 "ORDER BY lo, ref")
        with self._lock:
            conn = self._connection()
            try:
                rows = conn.execute(query.encode(), (kind.value, hi, lo)).fetchall()
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    self._conn = None
                raise StoreError("ledger query", str(exc)) from exc
        model = MODELS[kind]
        return [model.model_validate(json.loads(data)) for (data,) in rows]

    def count(self) -> dict[str, int]:
        with self._lock:
            rows = self._connection().execute(
                "SELECT kind, COUNT(*) FROM ledger_entries GROUP BY kind").fetchall()
        return {str(k): int(n) for k, n in rows}
