"""The edge outbox: a bounded SQLite store-and-forward queue, one stream per installation.

Every record gets the next `seq` of the stream when it is appended, in the same
transaction as the meter states it was derived from, so a crash can neither lose a computed
interval nor compute it twice. Rows are deleted only when the central acknowledges
"stored up to seq N" (`ack`). The installation epoch is created once, with the database: a
wiped edge starts a new stream and is never mistaken for a replay.

Durability: WAL with `synchronous=NORMAL` — a power cut may lose the last transactions
that were committed but not yet checkpointed (at most the last poll or two), never corrupt the
database; `synchronous=FULL` is available through `durable=True` where that matters more
than SD-card wear.

Disk full or an I/O error: `append` raises `OutboxError` and the records of that call are
lost (they never got a seq, so no gap in the stream is hidden); the agent keeps polling and
enforcing rules, and the next successful append leads with an `outbox.write_failed` alarm
event that counts the failed appends and lost records.

Bounded: at `max_rows` the oldest *samples* are dropped first (they are re-derivable
instantaneous values); interval records and events are dropped only when no sample is left.
Every drop is counted and leaves a gap-marker event (`outbox.overflow`) in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.errors import OutboxError
from edge.intervals import MeterState
from protocols.wire import (
    Channel,
    Event,
    IntervalFlag,
    IntervalRecord,
    Record,
    Sample,
    Severity,
    StreamId,
    encode_record,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS rows (
    seq INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS meter_state (
    device TEXT NOT NULL,
    point TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (device, point)
) STRICT;
"""


_CHANNELS = {c.value: c for c in Channel}


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    channel: Channel
    body: str  # the record encoded with protocols.wire.encode_record


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    oldest_created: float | None
    acked_upto: int
    last_seq: int
    dropped_samples: int
    dropped_other: int


def _kind(record: Record) -> str:
    if isinstance(record, Sample):
        return "sample"
    if isinstance(record, IntervalRecord):
        return "interval"
    return "event"


def _state_to_json(state: MeterState) -> str:
    return json.dumps({
        "last_ts_ms": state.last_ts_ms, "last_value": state.last_value,
        "open_start_ms": state.open_start_ms, "open_quantity": state.open_quantity,
        "open_flags": sorted(f.value for f in state.open_flags),
    })


def _state_from_json(text: str) -> MeterState:
    raw = json.loads(text)
    return MeterState(
        last_ts_ms=raw["last_ts_ms"], last_value=raw["last_value"],
        open_start_ms=raw["open_start_ms"], open_quantity=raw["open_quantity"],
        open_flags={IntervalFlag(f) for f in raw["open_flags"]},
    )


class Outbox:
    """One SQLite file; used from one event loop (calls are short and synchronous)."""

    def __init__(self, path: str | Path, *, edge_id: str, max_rows: int = 1_000_000,
                 durable: bool = False, epoch: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        self.max_rows = max_rows
        self.changed = asyncio.Event()
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if "edge_id" in meta and meta["edge_id"] != edge_id:
            raise OutboxError(
                f"outbox {self.path} belongs to edge {meta['edge_id']!r}, not {edge_id!r}"
            )
        if "epoch" not in meta:
            meta = {"edge_id": edge_id,
                    "epoch": str(epoch if epoch is not None else int(time.time() * 1000)),
                    "next_seq": "1", "acked_upto": "0", "dropped_samples": "0",
                    "dropped_other": "0"}
            with self._tx():
                self._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        self.stream = StreamId(edge_id, int(meta["epoch"]))
        self._next_seq = int(meta["next_seq"])
        self._acked = int(meta["acked_upto"])
        self._dropped_samples = int(meta["dropped_samples"])
        self._dropped_other = int(meta["dropped_other"])
        (self._depth,) = self._db.execute("SELECT count(*) FROM rows").fetchone()
        self._failed_appends = 0  # since the last successful append
        self._lost_records = 0
        self._first_failure: tuple[float, str] | None = None
        self.write_failures = 0  # since start

    def _tx(self) -> sqlite3.Connection:
        # sqlite3 connection as context manager: COMMIT on success, ROLLBACK on error.
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def close(self) -> None:
        self._db.close()

    # -- meter state ----------------------------------------------------------------

    def meter_states(self) -> dict[tuple[str, str], MeterState]:
        return {(d, p): _state_from_json(b)
                for d, p, b in self._db.execute("SELECT device, point, body FROM meter_state")}

    # -- append ---------------------------------------------------------------------

    def append(self, records: Sequence[Record], *,
               meter_states: Iterable[tuple[str, str, MeterState]] = (),
               now: float | None = None) -> list[int]:
        """Give each record the next seq and store it, with the meter states, atomically.

        The `seq` field of the given records is ignored. Returns the assigned seqs.
        """
        created = time.time() if now is None else now
        seqs: list[int] = []
        rows = []
        seq = self._next_seq
        if self._failed_appends:
            # The first append after a failure (disk full, I/O error) leads with an alarm
            # saying what was lost, so the gap is visible at the central, not only in a log.
            records = [self._write_failure_event(created), *records]
        for record in records:
            channel = Channel.EVENTS if isinstance(record, Event) else Channel.TELEMETRY
            body = encode_record(_with_seq(record, seq))
            rows.append((seq, channel.value, _kind(record), created, body))
            seqs.append(seq)
            seq += 1
        try:
            with self._tx() as db:
                db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?)", rows)
                db.executemany(
                    "INSERT OR REPLACE INTO meter_state VALUES (?, ?, ?)",
                    [(d, p, _state_to_json(s)) for d, p, s in meter_states],
                )
                db.execute("UPDATE meta SET value = ? WHERE key = 'next_seq'", (str(seq),))
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):  # a failed COMMIT can leave it open
                self._db.execute("ROLLBACK")
            lost = len(records) - (1 if self._failed_appends else 0)
            self._failed_appends += 1
            self._lost_records += lost
            self.write_failures += 1
            if self._first_failure is None:
                self._first_failure = (created, str(exc))
            raise OutboxError(f"outbox append failed, {lost} records lost: {exc}") from exc
        self._failed_appends = self._lost_records = 0
        self._first_failure = None
        self._next_seq = seq
        self._depth += len(rows)
        if self._depth > self.max_rows:
            self._enforce_bound(created)
        self.changed.set()
        return seqs

    def _write_failure_event(self, now: float) -> Event:
        since, error = self._first_failure or (now, "")
        return Event(seq=0, ts=int(now * 1000), name="outbox.write_failed",
                     severity=Severity.ALARM,
                     data={"failed_appends": self._failed_appends,
                           "lost_records": self._lost_records,
                           "since_ts": int(since * 1000), "error": error})

    def _enforce_bound(self, now: float) -> None:
        # Drop in chunks of 1 % so that overflow leaves one gap marker per chunk, not per row;
        # +1 leaves room for the marker itself.
        excess = max(self._depth - self.max_rows + 1, self.max_rows // 100)
        with self._tx() as db:
            victims = db.execute(
                "SELECT seq FROM rows WHERE kind = 'sample' ORDER BY seq LIMIT ?", (excess,)
            ).fetchall()
            n_samples = len(victims)
            if n_samples < excess:
                victims += db.execute(
                    "SELECT seq FROM rows WHERE kind != 'sample' ORDER BY seq LIMIT ?",
                    (excess - n_samples,),
                ).fetchall()
            dropped = sorted(v[0] for v in victims)
            ranges: list[list[int]] = []
            for q in dropped:
                if ranges and q == ranges[-1][1] + 1:
                    ranges[-1][1] = q
                else:
                    ranges.append([q, q])
            db.executemany("DELETE FROM rows WHERE seq = ?", victims)
            self._dropped_samples += n_samples
            self._dropped_other += len(victims) - n_samples
            marker = Event(seq=self._next_seq, ts=int(now * 1000), name="outbox.overflow",
                           severity=Severity.WARNING,
                           data={"dropped_samples": n_samples,
                                 "dropped_other": len(victims) - n_samples,
                                 "dropped_seqs": ranges,
                                 "max_rows": self.max_rows})
            db.execute("INSERT INTO rows VALUES (?, ?, ?, ?, ?)",
                       (self._next_seq, Channel.EVENTS.value, "event", now, encode_record(marker)))
            db.executemany("UPDATE meta SET value = ? WHERE key = ?", [
                (str(self._next_seq + 1), "next_seq"),
                (str(self._dropped_samples), "dropped_samples"),
                (str(self._dropped_other), "dropped_other"),
            ])
        self._next_seq += 1
        self._depth += 1 - len(victims)

    # -- read and acknowledge -------------------------------------------------------

    def read_after(self, seq: int, limit: int) -> list[OutboxRow]:
        channel = _CHANNELS.__getitem__  # a dict lookup: Channel(c) per row cost more
        return [OutboxRow(s, channel(c), b) for s, c, b in self._db.execute(
            "SELECT seq, channel, body FROM rows WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit))]

    @property
    def acked_upto(self) -> int:
        return self._acked

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def ack(self, upto: int) -> int:
        """The central stored everything up to `upto`: delete it. Returns rows deleted."""
        if upto <= self._acked:
            return 0
        upto = min(upto, self.last_seq)
        try:
            with self._tx() as db:
                cur = db.execute("DELETE FROM rows WHERE seq <= ?", (upto,))
                db.execute("UPDATE meta SET value = ? WHERE key = 'acked_upto'", (str(upto),))
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            # The rows stay and are sent again later; the central stores them once.
            raise OutboxError(f"outbox ack up to {upto} failed: {exc}") from exc
        self._acked = upto
        self._depth -= cur.rowcount
        return cur.rowcount

    def stats(self) -> OutboxStats:
        # The first row by seq (an index walk of one row, where min(created) scanned them
        # all): rows are appended in seq order, so it is the oldest one left.
        row = self._db.execute("SELECT created FROM rows ORDER BY seq LIMIT 1").fetchone()
        oldest = None if row is None else row[0]
        return OutboxStats(depth=self._depth, oldest_created=oldest, acked_upto=self._acked,
                           last_seq=self.last_seq, dropped_samples=self._dropped_samples,
                           dropped_other=self._dropped_other)


def _with_seq(record: Record, seq: int) -> Record:
    if isinstance(record, Sample):
        return Sample(seq, record.ts, record.device, record.point, record.value, record.unit,
                      record.synced)
    if isinstance(record, IntervalRecord):
        return IntervalRecord(seq, record.device, record.point, record.start, record.duration_s,
                              record.quantity, record.unit, record.flags, record.synced)
    return Event(seq, record.ts, record.name, record.severity, record.device, record.data,
                 record.synced)
