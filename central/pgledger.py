"""The manual ledger on PostgreSQL: `central.ledger.Ledger` for a shared server.

Same rules as `SqliteLedger` (upsert by (kind, ref), a `put` is one transaction, raw
quantities stored as the validated entry's JSON). Two API processes may import the same
file at once: the existing row is read `FOR UPDATE` and a first insert uses
`ON CONFLICT DO NOTHING`, re-reading when another writer won, so each entry is counted as
inserted, updated or unchanged exactly once. The schema comes from
central/migrations/ledger/.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from central import migrations
from central.ledger import (
    MODELS,
    EntryKind,
    PutResult,
    SqlLedger,
    _Entry,
    _range,
)
from central.pgstore import POSTGRES, PgConnection


class PgLedger(SqlLedger):
    def __init__(self, dsn: str, *, password: str | None = None, migrate: bool = True,
                 connect_timeout_s: int = 10) -> None:
        self.dsn = dsn
        self._db = PgConnection(dsn, password, connect_timeout_s, "greenguard-ledger",
                                what="ledger open")
        if migrate:
            try:
                migrations.apply(self._db.get(), "ledger")
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        self._db.close()

    def put(self, kind: EntryKind, entries: Sequence[_Entry]) -> PutResult:
        model = MODELS[kind]
        for entry in entries:
            if not isinstance(entry, model):
                raise TypeError(f"{kind} entries must be {model.__name__}")
        inserted = updated = unchanged = 0
        with self._db.use("ledger put") as conn, conn.transaction():
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
        return PutResult(inserted, updated, unchanged)

    def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]:
        with self._db.use("ledger query") as conn:
            return conn.execute(POSTGRES.sql(query).encode(), params).fetchall()
