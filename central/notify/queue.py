"""The notification file: alarm episodes, deliveries, attempts, mutes and the audit trail.

A delivery is one message to one recipient for one stage of one alarm episode, keyed by
`episode|recipient|stage`: inserting the same key twice is a no-op, so an alarm event seen
again (an edge's resend, a replay after a central restart) never makes a second message.

Before a send the delivery is marked `sending` and an attempt row is written (both durable:
`synchronous=FULL`); after the receiver answered, the attempt and the delivery are updated in
one transaction. A process killed in between leaves a `sending` row: on start-up
`recover_in_doubt` records that attempt as `in_doubt` and makes the delivery due again. The
resend carries the same key (webhook `Idempotency-Key`, e-mail `Message-ID`, 编号 in chat
messages), so a receiver that deduplicates shows it once; the window is one request.

States: pending → sending → sent | failed (gave up or refused) | cancelled (acknowledged,
cleared before its delay, or a flap that came back before the all-clear went out).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.errors import StoreError
from central.sqlitefile import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    id TEXT PRIMARY KEY,
    institution TEXT NOT NULL, edge TEXT NOT NULL, device TEXT NOT NULL, kind TEXT NOT NULL,
    rule TEXT NOT NULL, point TEXT NOT NULL,
    severity TEXT NOT NULL, building TEXT, room TEXT, data TEXT NOT NULL,
    raised_ms INTEGER NOT NULL, cleared_ms INTEGER, acked_at REAL, acked_by TEXT,
    route TEXT, stage INTEGER NOT NULL DEFAULT 0, next_stage_at REAL,
    reminders INTEGER NOT NULL DEFAULT 0, next_reminder_at REAL,
    flaps INTEGER NOT NULL DEFAULT 0, suppressed TEXT
);
CREATE INDEX IF NOT EXISTS episodes_identity
    ON episodes (institution, edge, device, kind, rule, point, raised_ms);
CREATE INDEX IF NOT EXISTS episodes_open ON episodes (cleared_ms, acked_at);
CREATE TABLE IF NOT EXISTS deliveries (
    key TEXT PRIMARY KEY,
    episode TEXT, institution TEXT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL,
    stage TEXT NOT NULL, message TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, next_at REAL NOT NULL,
    done_at REAL, last_answer TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS deliveries_episode ON deliveries (episode);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, n INTEGER NOT NULL, started REAL NOT NULL,
    finished REAL, outcome TEXT, answer TEXT
);
CREATE INDEX IF NOT EXISTS attempts_key ON attempts (key);
CREATE TABLE IF NOT EXISTS mutes (
    id INTEGER PRIMARY KEY, institution TEXT NOT NULL, edge TEXT NOT NULL,
    device TEXT NOT NULL, until REAL NOT NULL, reason TEXT NOT NULL, actor TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, institution TEXT NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, detail TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Episode:
    id: str
    institution: str
    edge: str
    device: str
    kind: str
    rule: str
    point: str
    severity: str
    building: str | None
    room: str | None
    data: dict[str, Any]
    raised_ms: int
    cleared_ms: int | None
    acked_at: float | None
    acked_by: str | None
    route: str | None
    stage: int
    next_stage_at: float | None
    reminders: int
    next_reminder_at: float | None
    flaps: int
    suppressed: str | None


EPISODE_COLUMNS = ", ".join(Episode.__slots__)


def _episode(row: Sequence[Any]) -> Episode:
    values = list(row)
    values[10] = json.loads(values[10])
    return Episode(*values)


@dataclass(frozen=True, slots=True)
class Delivery:
    key: str
    episode: str | None
    institution: str
    channel: str
    recipient: str
    stage: str
    message: dict[str, Any]
    state: str
    attempts: int
    created: float
    next_at: float
    done_at: float | None
    last_answer: str | None


DELIVERY_COLUMNS = ", ".join(Delivery.__slots__)


def _delivery(row: Sequence[Any]) -> Delivery:
    values = list(row)
    values[6] = json.loads(values[6])
    return Delivery(*values)


class NotifyQueue(SqliteFile):
    """The notification file. Every method is one statement or one transaction."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, SCHEMA, "notification queue")

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(self.what, str(exc)) from exc

    # -- episodes ---------------------------------------------------------------------
    def episode(self, episode_id: str) -> Episode | None:
        rows = self._run(f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE id = ?",
                         (episode_id,))
        return _episode(rows[0]) if rows else None

    def latest_episode(self, identity: Sequence[str]) -> Episode | None:
        rows = self._run(
            f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE institution = ? AND edge = ? AND "
            "device = ? AND kind = ? AND rule = ? AND point = ? "
            "ORDER BY raised_ms DESC LIMIT 1", tuple(identity))
        return _episode(rows[0]) if rows else None

    def episodes(self, institution: str, *, open_only: bool = False,
                 limit: int = 200) -> list[Episode]:
        where = "institution = ?" + (" AND cleared_ms IS NULL" if open_only else "")
        rows = self._run(f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE {where} "
                         "ORDER BY raised_ms DESC LIMIT ?", (institution, limit))
        return [_episode(r) for r in rows]

    def escalating(self, now: float) -> list[Episode]:
        """Open, unacknowledged, not suppressed episodes with a stage or reminder due."""
        rows = self._run(
            f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE cleared_ms IS NULL AND "
            "acked_at IS NULL AND suppressed IS NULL AND ((next_stage_at IS NOT NULL AND "
            "next_stage_at <= ?) OR (next_reminder_at IS NOT NULL AND next_reminder_at <= ?)) "
            "ORDER BY raised_ms", (now, now))
        return [_episode(r) for r in rows]

    def suppressed_open(self, why: str) -> list[Episode]:
        rows = self._run(f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE cleared_ms IS NULL "
                         "AND suppressed = ? ORDER BY raised_ms", (why,))
        return [_episode(r) for r in rows]

    def insert_episode(self, e: Episode) -> bool:
        with self._transaction() as c:
            cur = c.execute(
                f"INSERT OR IGNORE INTO episodes ({EPISODE_COLUMNS}) VALUES "
                f"({', '.join('?' * len(Episode.__slots__))})",
                [json.dumps(getattr(e, f), ensure_ascii=False) if f == "data"
                 else getattr(e, f) for f in Episode.__slots__])
            return bool(cur.rowcount)

    def update_episode(self, episode_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._run(f"UPDATE episodes SET {sets} WHERE id = ?", (*fields.values(), episode_id))

    # -- deliveries -------------------------------------------------------------------
    def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Insert deliveries whose key is new; returns how many were new."""
        new = 0
        with self._transaction() as c:
            for d in deliveries:
                cur = c.execute(
                    f"INSERT OR IGNORE INTO deliveries ({DELIVERY_COLUMNS}) VALUES "
                    f"({', '.join('?' * len(Delivery.__slots__))})",
                    [json.dumps(d.message, ensure_ascii=False) if f == "message"
                     else getattr(d, f) for f in Delivery.__slots__])
                new += cur.rowcount
        return new

    def delivery(self, key: str) -> Delivery | None:
        rows = self._run(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE key = ?", (key,))
        return _delivery(rows[0]) if rows else None

    def deliveries(self, *, institution: str | None = None, episode: str | None = None,
                   limit: int = 500) -> list[Delivery]:
        where, params = [], []
        if institution is not None:
            where.append("institution = ?")
            params.append(institution)
        if episode is not None:
            where.append("episode = ?")
            params.append(episode)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self._run(f"SELECT {DELIVERY_COLUMNS} FROM deliveries {clause} "
                         "ORDER BY created, key LIMIT ?", (*params, limit))
        return [_delivery(r) for r in rows]

    def due(self, now: float, limit: int) -> list[Delivery]:
        """Pending deliveries due now, oldest first; an all-clear waits until the alarm's own
        message to that recipient is done."""
        rows = self._run(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE state = 'pending' AND "
            "next_at <= ? AND NOT (stage LIKE 'clear%' AND EXISTS (SELECT 1 FROM deliveries o "
            "WHERE o.episode = d.episode AND o.recipient = d.recipient AND o.channel = "
            "d.channel AND o.stage NOT LIKE 'clear%' AND o.state IN ('pending', 'sending'))) "
            "ORDER BY next_at, created, key LIMIT ?", (now, limit))
        return [_delivery(r) for r in rows]

    def next_due_at(self) -> float | None:
        rows = self._run("SELECT MIN(next_at) FROM deliveries WHERE state = 'pending'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def begin_attempt(self, key: str, now: float) -> int:
        """Mark `sending` and write the attempt row, durably, before the send."""
        with self._transaction() as c:
            c.execute("UPDATE deliveries SET state = 'sending', attempts = attempts + 1 "
                      "WHERE key = ?", (key,))
            n = c.execute("SELECT attempts FROM deliveries WHERE key = ?", (key,)).fetchone()
            cur = c.execute("INSERT INTO attempts (key, n, started) VALUES (?, ?, ?)",
                            (key, n[0], now))
            return int(cur.lastrowid or 0)

    def finish_attempt(self, attempt_id: int, key: str, *, outcome: str, answer: str,
                       now: float, state: str, next_at: float | None) -> None:
        with self._transaction() as c:
            c.execute("UPDATE attempts SET finished = ?, outcome = ?, answer = ? WHERE id = ?",
                      (now, outcome, answer, attempt_id))
            c.execute("UPDATE deliveries SET state = ?, last_answer = ?, next_at = "
                      "COALESCE(?, next_at), done_at = CASE WHEN ? IN ('sent', 'failed') "
                      "THEN ? ELSE done_at END WHERE key = ?",
                      (state, answer, next_at, state, now, key))

    def recover_in_doubt(self, now: float) -> int:
        """Deliveries left `sending` by a process that died: their open attempt is recorded
        as `in_doubt` and they are due again at once."""
        with self._transaction() as c:
            keys = [r[0] for r in c.execute(
                "SELECT key FROM deliveries WHERE state = 'sending'").fetchall()]
            for key in keys:
                c.execute("UPDATE attempts SET finished = ?, outcome = 'in_doubt', answer = "
                          "'process stopped between send and record' WHERE key = ? AND "
                          "finished IS NULL", (now, key))
                c.execute("UPDATE deliveries SET state = 'pending', next_at = ? WHERE key = ?",
                          (now, key))
            return len(keys)

    def cancel(self, episode_id: str, *, stages_like: str = "%", now: float, why: str,
               retried_too: bool = False) -> int:
        """Cancel pending deliveries of an episode that were never attempted (or, with
        `retried_too`, also those waiting for a retry)."""
        with self._transaction() as c:
            cur = c.execute("UPDATE deliveries SET state = 'cancelled', done_at = ?, "
                            "last_answer = ? WHERE episode = ? AND state = 'pending' AND "
                            "(attempts = 0 OR ?) AND stage LIKE ?",
                            (now, why, episode_id, retried_too, stages_like))
            return int(cur.rowcount)

    def clear_attempted(self, episode_id: str) -> bool:
        """Whether an all-clear of this episode was sent or is being sent."""
        rows = self._run("SELECT 1 FROM deliveries WHERE episode = ? AND stage LIKE 'clear%' "
                         "AND attempts > 0 LIMIT 1", (episode_id,))
        return bool(rows)

    def recipients_of(self, episode_id: str) -> list[tuple[str, str]]:
        rows = self._run("SELECT DISTINCT channel, recipient FROM deliveries WHERE episode = ? "
                         "AND stage NOT LIKE 'clear%' AND state IN ('pending', 'sending', "
                         "'sent') ORDER BY channel, recipient", (episode_id,))
        return [(r[0], r[1]) for r in rows]

    def attempts(self, key: str) -> list[dict[str, Any]]:
        rows = self._run("SELECT n, started, finished, outcome, answer FROM attempts WHERE "
                         "key = ? ORDER BY id", (key,))
        return [dict(zip(("n", "started", "finished", "outcome", "answer"), r, strict=True))
                for r in rows]

    def counts(self) -> dict[str, Any]:
        """For /metrics: deliveries by channel and state, attempts by channel and outcome."""
        deliveries = self._run("SELECT channel, state, COUNT(*) FROM deliveries "
                               "GROUP BY channel, state")
        attempts = self._run("SELECT d.channel, COALESCE(a.outcome, 'open'), COUNT(*) FROM "
                             "attempts a JOIN deliveries d ON d.key = a.key "
                             "GROUP BY d.channel, a.outcome")
        return {"deliveries": [tuple(r) for r in deliveries],
                "attempts": [tuple(r) for r in attempts]}

    # -- mutes and audit --------------------------------------------------------------
    def add_mute(self, institution: str, edge: str, device: str, until: float, reason: str,
                 actor: str, now: float) -> None:
        with self._transaction() as c:
            c.execute("INSERT INTO mutes (institution, edge, device, until, reason, actor, "
                      "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (institution, edge, device, until, reason, actor, now))
            c.execute("INSERT INTO audit (ts, institution, actor, action, detail) VALUES "
                      "(?, ?, ?, 'mute', ?)", (now, institution, actor, json.dumps(
                          {"edge": edge, "device": device, "until": until, "reason": reason},
                          ensure_ascii=False)))

    def muted(self, institution: str, edge: str, device: str, now: float) -> str | None:
        rows = self._run("SELECT reason FROM mutes WHERE institution = ? AND edge = ? AND "
                         "device = ? AND until > ? ORDER BY until DESC LIMIT 1",
                         (institution, edge, device, now))
        return str(rows[0][0]) if rows else None

    def mutes(self, institution: str, now: float) -> list[dict[str, Any]]:
        rows = self._run("SELECT edge, device, until, reason, actor, created FROM mutes WHERE "
                         "institution = ? AND until > ? ORDER BY until", (institution, now))
        return [dict(zip(("edge", "device", "until", "reason", "actor", "created"), r,
                         strict=True)) for r in rows]

    def audit(self, institution: str, actor: str, action: str, detail: dict[str, Any],
              now: float) -> None:
        self._run("INSERT INTO audit (ts, institution, actor, action, detail) VALUES "
                  "(?, ?, ?, ?, ?)", (now, institution, actor, action,
                                      json.dumps(detail, ensure_ascii=False)))

    def audit_log(self, institution: str, limit: int = 200) -> list[dict[str, Any]]:
        rows = self._run("SELECT ts, actor, action, detail FROM audit WHERE institution = ? "
                         "ORDER BY id DESC LIMIT ?", (institution, limit))
        return [{"ts": r[0], "actor": r[1], "action": r[2], "detail": json.loads(r[3])}
                for r in rows]
