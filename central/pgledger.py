"""The manual ledger on PostgreSQL: `central.ledger.Ledger` for a shared server.

Same rules as `SqliteLedger` (upsert by (kind, ref), a `put` is one transaction, raw
quantities stored as the validated entry's JSON). Two API processes may import the same
file at once: the existing row is read `FOR UPDATE` and a first insert uses
`ON CONFLICT DO NOTHING`, re-reading when another writer won, so each entry is counted as
inserted, updated or unchanged exactly once. The schema comes from
central/migrations/ledger/.

One database holds the ledgers of every institution the central serves (a SQLite central
keeps a file per institution). A `PgLedger` is bound to one institution when it is made
and cannot be asked about another: every read goes through `SqlLedger._read`, which reads
the bound institution's rows only (`_entries`), and `put` writes the institution into the
primary key `(institution, kind, ref)`. The ledgers of many institutions share one
connection (`open_many`, `sibling`), so a district's hundreds of institutions do not
cost a connection each.

Upgrading a database from the single-institution schema (ledger version 1): its rows belong
to the one institution that central served, named by `legacy_owner` (the backend passes the
institution when the config holds only one). A ledger holding rows with no owner named is
refused with a `StoreError` that says what to do, never attributed by guess.
"""

from __future__ import annotations

import threading
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

OWNER_SETTING = "greenguard.ledger_owner"  # read by migrations/ledger/0002_institution.sql


class _Shared:
    """One connection used by the ledgers of several institutions; closed with the last."""

    def __init__(self, db: PgConnection) -> None:
        self.db = db
        self.users = 0
        self._lock = threading.Lock()

    def join(self) -> None:
        with self._lock:
            self.users += 1

    def leave(self) -> None:
        with self._lock:
            self.users -= 1
            last = self.users == 0
        if last:
            self.db.close()


class PgLedger(SqlLedger):
    """The ledger of `institution` in a shared PostgreSQL database."""

    # What every read sees (SqlLedger._read): the bound institution's rows, nothing else.
    _entries = ("(SELECT kind, ref, lo, hi, data FROM ledger_entries "
                "WHERE institution = ?) AS entries")

    def __init__(self, dsn: str, institution: str, *, password: str | None = None,
                 migrate: bool = True, legacy_owner: str | None = None,
                 connect_timeout_s: int = 10) -> None:
        self.dsn = dsn
        shared = _Shared(PgConnection(dsn, password, connect_timeout_s, "greenguard-ledger",
                                      what="ledger open"))
        self._bind(shared, institution)
        if migrate:
            settings = {} if legacy_owner is None else {OWNER_SETTING: legacy_owner}
            try:
                with shared.db.lock:
                    migrations.apply(shared.db.get(), "ledger", settings=settings)
            except BaseException:
                self.close()
                raise

    def _bind(self, shared: _Shared, institution: str) -> None:
        if not isinstance(institution, str) or not institution:
            raise ValueError(f"a ledger needs an institution id, got {institution!r}")
        self.institution = institution
        self._scope = (institution,)
        self._shared = shared
        self._db = shared.db
        self._closed = False
        shared.join()

    @classmethod
    def open_many(cls, dsn: str, institutions: Sequence[str], *,
                  password: str | None = None, migrate: bool = True,
                  connect_timeout_s: int = 10) -> list[PgLedger]:
        """The ledgers of `institutions` on one connection. With a single institution, rows
        from the single-institution schema are attributed to it when migrating."""
        if not institutions:
            return []
        first = cls(dsn, institutions[0], password=password, migrate=migrate,
                    legacy_owner=institutions[0] if len(institutions) == 1 else None,
                    connect_timeout_s=connect_timeout_s)
        return [first, *(first.sibling(i) for i in institutions[1:])]

    def sibling(self, institution: str) -> PgLedger:
        """The ledger of `institution` on this ledger's connection."""
        other = PgLedger.__new__(PgLedger)
        other.dsn = self.dsn
        other._bind(self._shared, institution)
        return other

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._shared.leave()

    def put(self, kind: EntryKind, entries: Sequence[_Entry]) -> PutResult:
        model = MODELS[kind]
        for entry in entries:
            if not isinstance(entry, model):
                raise TypeError(f"{kind} entries must be {model.__name__}")
        inserted = updated = unchanged = 0
        owner = self.institution
        with self._db.use("ledger put") as conn, conn.transaction():
            for entry in entries:
                data = entry.model_dump_json()
                lo, hi = _range(kind, entry)
                key = (owner, kind.value, entry.ref)
                cur = conn.execute(
                    "INSERT INTO ledger_entries (institution, kind, ref, lo, hi, data) "
                    "VALUES (%s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (institution, kind, ref) DO NOTHING", (*key, lo, hi, data))
                if cur.rowcount == 1:
                    inserted += 1
                    continue
                row = conn.execute("SELECT data FROM ledger_entries WHERE institution = %s "
                                   "AND kind = %s AND ref = %s FOR UPDATE", key).fetchone()
                if row is not None and row[0] == data:
                    unchanged += 1
                    continue
                conn.execute("UPDATE ledger_entries SET lo = %s, hi = %s, data = %s, "
                             "updated_count = updated_count + 1 "
                             "WHERE institution = %s AND kind = %s AND ref = %s",
                             (lo, hi, data, *key))
                updated += 1
        return PutResult(inserted, updated, unchanged)

    def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]:
        with self._db.use("ledger query") as conn:
            return conn.execute(POSTGRES.sql(query).encode(), params).fetchall()
