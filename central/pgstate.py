"""The central's own state on PostgreSQL: API tokens and sent commands, shared by workers.

A PostgreSQL central runs as several workers (docs/scale-out.md), each serving the API. A
token issued, or revoked, through one worker must hold on every other at the next request,
and a command sent through one must be listed, with its status, by any. So these tables
live in the shared database (store migration 0003) instead of each worker's SQLite files;
the SQLite central keeps `central.auth.TokenStore` and `central.commands.CommandBook`.

Each table has its own connection (`PgConnection`: one lock, reopened after a failure),
and applies the store's migrations when opened, so the token actions of
`greenguard central` work on a database no worker has started on yet.

Upgrading: before store version 3 a PostgreSQL central kept tokens and commands in SQLite
files beside `--db`, one set per worker. Opened with `adopt=` that file, a table copies its
rows in (`ON CONFLICT DO NOTHING`: a row already here, revoked since, stays as it is), so
every token that worked on some worker works on all, and the command history is kept.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from central import migrations
from central.auth import TokenInfo, token_info, token_row
from central.commands import CommandRow
from central.errors import StoreError
from central.pgstore import PgConnection

if TYPE_CHECKING:
    from central.auth import TokenTable
    from central.commands import CommandTable


class _Table:
    def __init__(self, dsn: str, password: str | None, what: str, *, migrate: bool,
                 connect_timeout_s: int) -> None:
        self.dsn = dsn
        self.what = what
        self._db = PgConnection(dsn, password, connect_timeout_s, "greenguard-state",
                                what=f"{what} open")
        if migrate:
            try:
                with self._db.lock:
                    migrations.apply(self._db.get(), "store")
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        self._db.close()

    def _run(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._db.use(self.what) as conn:
            cur = conn.execute(statement.encode(), params)
            return cur.fetchall() if cur.description is not None else []

    def _count(self, statement: str, params: Sequence[Any]) -> int:
        with self._db.use(self.what) as conn:
            return conn.execute(statement.encode(), params).rowcount

    def _adopt(self, path: Path, table: str, columns: str) -> None:
        rows = _sqlite_rows(path, f"SELECT {columns} FROM {table}", self.what)
        if not rows:
            return
        marks = ", ".join(["%s"] * len(rows[0]))
        with self._db.use(f"{self.what} adopt") as conn, conn.transaction():
            cur = conn.cursor()
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
                            "ON CONFLICT DO NOTHING".encode(), rows)
            added = max(cur.rowcount, 0)
        if added:
            log.info("%s: %d rows copied from %s into PostgreSQL", self.what, added, path)


log = logging.getLogger(__name__)
_TOKEN_COLUMNS = "id, name, role, institutions, created, expires, revoked"
_COMMAND_COLUMNS = "institution, id, site, edge, name, args, issued, expires, created_by, sent"


def _sqlite_rows(path: Path, query: str, what: str) -> list[tuple[Any, ...]]:
    """Rows of a SQLite file of an older central, opened read-only; none if it is absent."""
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{what} adopt", f"{path}: {exc}") from exc


class PgTokenStore(_Table):
    """`central.auth.TokenTable` in the shared database."""

    def __init__(self, dsn: str, *, password: str | None = None, migrate: bool = True,
                 adopt: Path | None = None, connect_timeout_s: int = 10) -> None:
        super().__init__(dsn, password, "token store", migrate=migrate,
                         connect_timeout_s=connect_timeout_s)
        if adopt is not None:
            self._adopt(adopt, "tokens", _TOKEN_COLUMNS)

    def add(self, info: TokenInfo) -> None:
        self._run(f"INSERT INTO tokens ({_TOKEN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                  token_row(info))

    def get(self, token_id: str) -> TokenInfo | None:
        rows = self._run(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE id = %s", (token_id,))
        return token_info(rows[0]) if rows else None

    def all(self) -> list[TokenInfo]:
        return [token_info(r) for r in self._run(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created, id")]

    def revoke(self, token_id: str, *, now: float) -> bool:
        return self._count("UPDATE tokens SET revoked = COALESCE(revoked, %s) WHERE id = %s",
                           (now, token_id)) > 0


class PgCommandBook(_Table):
    """`central.commands.CommandTable` in the shared database, keyed by institution."""

    def __init__(self, dsn: str, *, password: str | None = None, migrate: bool = True,
                 adopt: Path | None = None, connect_timeout_s: int = 10) -> None:
        super().__init__(dsn, password, "command store", migrate=migrate,
                         connect_timeout_s=connect_timeout_s)
        if adopt is not None:
            self._adopt(adopt, "commands", _COMMAND_COLUMNS)

    def add(self, row: CommandRow) -> None:
        self._run(f"INSERT INTO commands ({_COMMAND_COLUMNS}) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                  (row.institution, row.id, row.site, row.edge, row.name,
                   json.dumps(row.args), row.issued, row.expires, row.created_by,
                   int(row.sent)))

    def mark_sent(self, command_id: str) -> None:
        self._run("UPDATE commands SET sent = 1 WHERE id = %s", (command_id,))

    def rows(self, institution: str, *, command_id: str | None = None,
             limit: int = 200) -> list[CommandRow]:
        query = ("SELECT id, institution, site, edge, name, args, issued, expires, "
                 "created_by, sent FROM commands WHERE institution = %s")
        params: list[Any] = [institution]
        if command_id is not None:
            query += " AND id = %s"
            params.append(command_id)
        query += ' ORDER BY issued DESC, id COLLATE "C" LIMIT %s'
        params.append(limit)
        return [CommandRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), int(r[6]),
                           int(r[7]), r[8], bool(r[9])) for r in self._run(query, params)]


if TYPE_CHECKING:  # mypy checks that the adapters satisfy the ports

    def _tokens(t: PgTokenStore) -> TokenTable:
        return t

    def _commands(c: PgCommandBook) -> CommandTable:
        return c
