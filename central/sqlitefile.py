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


class SqliteFile:
    """A thread-safe connection to one SQLite file with `schema` applied; `what` names the
    file in errors ("token store", "command store")."""

    def __init__(self, path: str | Path, schema: str, what: str) -> None:
        self.path = str(path)
        self.what = what
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout = 5000")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
                self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.executescript(schema)
        except sqlite3.Error as exc:
            raise StoreError(f"{what} open", f"{self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(self.what, str(exc)) from exc
