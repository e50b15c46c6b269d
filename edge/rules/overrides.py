"""Overrides and executed command ids, in one SQLite file next to the outbox, so overrides
survive a restart and end on time, and a command id is executed at most once.

A command's id is inserted in the same transaction as its effect: a crash leaves either
both or neither, and a replay of the id finds it (`duplicate`).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.rules.arbiter import ActiveOverride
from protocols.registermap import PointValue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS overrides (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    point TEXT NOT NULL,
    value TEXT NOT NULL,
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    ended REAL,
    end_reason TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    received REAL NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL
) STRICT;
"""


class OverrideStoreError(EdgeError):
    """The rules state database cannot be read or written."""


@dataclass(frozen=True, slots=True)
class StoredOverride:
    override: ActiveOverride
    created: float
    ended: float | None
    end_reason: str | None


class OverrideStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OverrideStoreError(f"rules state {self.path}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise OverrideStoreError(f"rules state {self.path}: {exc}") from None

    def seen(self, command_id: str) -> str | None:
        rows = self._query("SELECT status FROM commands WHERE id = ?", (command_id,))
        return None if not rows else str(rows[0][0])

    def record_command(self, command_id: str, name: str, now: float, status: str,
                       detail: str = "", override: ActiveOverride | None = None,
                       clear: str | None = None) -> bool:
        """Record a command id with its outcome and effect in one transaction; False if the
        id was already there (nothing done)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO commands VALUES (?, ?, ?, ?, ?)",
                    (command_id, name, now, status, detail))
                if cur.rowcount == 0:
                    self._db.execute("ROLLBACK")
                    return False
                if override is not None:
                    self._insert(override, now)
                if clear is not None:
                    self._end(clear, now, "cleared")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OverrideStoreError(f"rules state {self.path}: {exc}") from None
        return True

    def _insert(self, o: ActiveOverride, now: float) -> None:
        self._db.execute(
            "INSERT INTO overrides (id, device, point, value, reason, origin, created, expires)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (o.id, o.device, o.point, json.dumps(o.value), o.reason, o.origin, now, o.expires))

    def _end(self, override_id: str, now: float, why: str) -> int:
        cur = self._db.execute(
            "UPDATE overrides SET ended = ?, end_reason = ? WHERE id = ? AND ended IS NULL",
            (now, why, override_id))
        return cur.rowcount

    def add(self, o: ActiveOverride, now: float) -> None:
        """A local override (the CLI): no command id to dedup."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._insert(o, now)
        except sqlite3.IntegrityError:
            raise OverrideStoreError(f"override id {o.id!r} already exists") from None
        except sqlite3.Error as exc:
            raise OverrideStoreError(f"rules state {self.path}: {exc}") from None

    def clear(self, override_id: str, now: float) -> bool:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                return self._end(override_id, now, "cleared") > 0
        except sqlite3.Error as exc:
            raise OverrideStoreError(f"rules state {self.path}: {exc}") from None

    def is_open(self, override_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM overrides WHERE id = ? AND ended IS NULL",
                                (override_id,)))

    def expire(self, now: float) -> list[ActiveOverride]:
        """End the overrides whose time is up; returns them (for `override.expired` events)."""
        ended = [s.override for s in self.all() if s.ended is None and s.override.expires <= now]
        if ended:
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    for o in ended:
                        self._end(o.id, now, "expired")
            except sqlite3.Error as exc:
                raise OverrideStoreError(f"rules state {self.path}: {exc}") from None
        return ended

    def active(self, now: float) -> list[ActiveOverride]:
        return [s.override for s in self.all()
                if s.ended is None and s.override.expires > now]

    def all(self) -> list[StoredOverride]:
        rows = self._query(
            "SELECT id, device, point, value, reason, origin, created, expires, ended, "
            "end_reason FROM overrides ORDER BY created, id")
        out = []
        for r in rows:
            value: PointValue = json.loads(str(r[3]))
            out.append(StoredOverride(
                ActiveOverride(str(r[0]), str(r[1]), str(r[2]), value, str(r[4]),
                               float(r[7]), str(r[5])),  # type: ignore[arg-type]
                float(r[6]), None if r[8] is None else float(r[8]),  # type: ignore[arg-type]
                None if r[9] is None else str(r[9])))
        return out
