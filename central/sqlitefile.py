"""One small SQLite file of the central's state (tokens, sent commands): opened in WAL with
`synchronous=FULL` (a revoked token or a sent command must survive a power cut), its schema
applied, every statement under one lock and every error a `StoreError` naming the file."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from central.errors import StoreError


def open_file(path: str, schema: str, what: str) -> sqlite3.Connection:
    """A connection to one SQLite file (WAL, `synchronous=FULL`; ":memory:" as it is) with
    `schema` applied, usable from any thread under the caller's lock; `StoreError` naming
    `what` and the file if it cannot be opened."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        if path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(schema)
    except sqlite3.Error as exc:
        raise StoreError(f"{what} open", f"{path}: {exc}") from exc
    return conn


class SqliteFile:
    """A thread-safe connection to one SQLite file with `schema` applied; `what` names the
    file in errors ("token store", "command store")."""

    def __init__(self, path: str | Path, schema: str, what: str) -> None:
        self.path = str(path)
        self.what = what
        self._lock = threading.Lock()
        self._conn = open_file(self.path, schema, what)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(self.what, str(exc)) from exc
