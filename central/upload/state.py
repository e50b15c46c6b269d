"""The uploader's durable state: one SQLite file beside the store.

    accepted   (building, period) -> the digest of the values the platform accepted
    cursor     building -> the oldest period not yet accepted (all before it are)
    seq        building -> the last data sequence number sent
    log        every attempt and answer: ts, building, period, operation, outcome, detail
    backlog    building -> closed periods not yet accepted, as of the last pass
    counter    outcome -> total since the file was made (the `/metrics` counters; the log
               is pruned, these never go back)

Nothing is lost across a restart: a period counts as delivered only once its acceptance is
committed here, after the platform's answer; a crash between the two re-sends the period,
which the platform overwrites (a data message is keyed by building and time). The log
keeps the newest `log_rows` rows.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from central.sqlitefile import open_file

SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted (building TEXT NOT NULL, period INTEGER NOT NULL,
    digest TEXT NOT NULL, accepted_at INTEGER NOT NULL, PRIMARY KEY (building, period));
CREATE TABLE IF NOT EXISTS cursor (building TEXT PRIMARY KEY, period INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seq (building TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,
    building TEXT NOT NULL, period INTEGER, operation TEXT NOT NULL, outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS log_building ON log (building, id);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS backlog (building TEXT PRIMARY KEY, periods INTEGER NOT NULL,
    ts INTEGER NOT NULL);
"""


def upload_state_path(database: Path, institution: str) -> Path:
    """Where the uploader of `institution` keeps its state by default, beside the store:
    `<store db>.upload.<institution>.sqlite` (the API route looks there)."""
    return database.with_name(f"{database.stem}.upload.{institution}.sqlite")


@dataclass(frozen=True)
class LogEntry:
    id: int
    ts: int  # ms
    building: str
    period: int | None  # ms, the period's start
    operation: str  # login, heartbeat, report, continuous
    outcome: str
    detail: str


class UploadState:
    def __init__(self, path: str | Path, *, log_rows: int = 100_000,
                 readonly: bool = False) -> None:
        if readonly:
            self._conn = sqlite3.connect(f"file:{Path(path).as_posix()}?mode=ro", uri=True,
                                         check_same_thread=False, isolation_level=None)
        else:  # WAL, synchronous=FULL, busy timeout; StoreError naming the file
            self._conn = open_file(str(path), SCHEMA, "upload state")
        self._lock = threading.Lock()
        self.log_rows = log_rows
        self._logged = 0

    def close(self) -> None:
        self._conn.close()

    def accepted(self, building: str, lo: int, hi: int) -> dict[int, str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT period, digest FROM accepted WHERE building = ? AND period >= ? "
                "AND period < ?", (building, lo, hi)).fetchall()
        return {int(p): str(d) for p, d in rows}

    def cursor(self, building: str, default: int) -> int:
        with self._lock:
            row = self._conn.execute("SELECT period FROM cursor WHERE building = ?",
                                     (building,)).fetchone()
        return default if row is None else int(row[0])

    def next_seq(self, building: str) -> int:
        with self._lock:
            self._conn.execute("INSERT INTO seq VALUES (?, 1) ON CONFLICT (building) DO "
                               "UPDATE SET n = n + 1", (building,))
            return int(self._conn.execute("SELECT n FROM seq WHERE building = ?",
                                          (building,)).fetchone()[0])

    def accept(self, building: str, period: int, digest: str, now_ms: int,
               period_ms: int, operation: str = "report", detail: str = "") -> None:
        """The platform accepted `period`: record it, move the cursor over every accepted
        period that follows, and log it, in one transaction."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("INSERT INTO accepted VALUES (?, ?, ?, ?) ON CONFLICT (building, "
                          "period) DO UPDATE SET digest = excluded.digest, "
                          "accepted_at = excluded.accepted_at",
                          (building, period, digest, now_ms))
                row = c.execute("SELECT period FROM cursor WHERE building = ?",
                                (building,)).fetchone()
                if row is not None and int(row[0]) == period:
                    nxt = period + period_ms
                    while c.execute("SELECT 1 FROM accepted WHERE building = ? AND period = ?",
                                    (building, nxt)).fetchone():
                        nxt += period_ms
                    c.execute("UPDATE cursor SET period = ? WHERE building = ?",
                              (nxt, building))
                self._log(now_ms, building, period, operation, "accepted", detail)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def init_cursor(self, building: str, period: int) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO cursor VALUES (?, ?) ON CONFLICT DO NOTHING",
                               (building, period))

    def log(self, now_ms: int, building: str, period: int | None, operation: str,
            outcome: str, detail: str = "") -> None:
        with self._lock:
            self._log(now_ms, building, period, operation, outcome, detail)

    def _log(self, now_ms: int, building: str, period: int | None, operation: str,
             outcome: str, detail: str) -> None:
        self._conn.execute("INSERT INTO log (ts, building, period, operation, outcome, detail)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           (now_ms, building, period, operation, outcome, detail[:500]))
        self._conn.execute("INSERT INTO counter VALUES (?, 1) ON CONFLICT (name) DO UPDATE "
                           "SET n = n + 1", (f"{operation}:{outcome}",))
        self._logged += 1
        if self._logged % 1000 == 0:
            self._conn.execute("DELETE FROM log WHERE id <= (SELECT MAX(id) FROM log) - ?",
                               (self.log_rows,))

    def entries(self, *, building: str | None = None, limit: int = 100,
                before_id: int | None = None) -> list[LogEntry]:
        sql = "SELECT id, ts, building, period, operation, outcome, detail FROM log WHERE 1=1"
        params: list[object] = []
        if building is not None:
            sql += " AND building = ?"
            params.append(building)
        if before_id is not None:
            sql += " AND id < ?"
            params.append(before_id)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [LogEntry(int(r[0]), int(r[1]), str(r[2]), None if r[3] is None else int(r[3]),
                         str(r[4]), str(r[5]), str(r[6])) for r in rows]

    def set_backlog(self, building: str, periods: int, now_ms: int) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO backlog VALUES (?, ?, ?) ON CONFLICT (building) "
                               "DO UPDATE SET periods = excluded.periods, ts = excluded.ts",
                               (building, periods, now_ms))

    def backlogs(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT building, periods FROM backlog").fetchall()
        return {str(b): int(n) for b, n in rows}

    def buildings(self) -> list[str]:
        """Every building the file knows (cursor or log)."""
        with self._lock:
            rows = self._conn.execute("SELECT building FROM cursor UNION SELECT DISTINCT "
                                      "building FROM log ORDER BY 1").fetchall()
        return [str(r[0]) for r in rows]

    def counters(self) -> dict[str, int]:
        """(operation:outcome) -> total, e.g. `data:accepted`, `login:refused`."""
        with self._lock:
            rows = self._conn.execute("SELECT name, n FROM counter").fetchall()
        return {str(k): int(n) for k, n in rows}

    def last_accepted(self, building: str) -> int | None:
        with self._lock:
            row = self._conn.execute("SELECT MAX(period) FROM accepted WHERE building = ?",
                                     (building,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def last_error(self, building: str) -> LogEntry | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, ts, building, period, operation, outcome, detail FROM log "
                "WHERE building = ? AND outcome != 'accepted' "
                "ORDER BY id DESC LIMIT 1", (building,)).fetchone()
        if row is None:
            return None
        return LogEntry(int(row[0]), int(row[1]), str(row[2]),
                        None if row[3] is None else int(row[3]), str(row[4]), str(row[5]),
                        str(row[6]))
