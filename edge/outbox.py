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

Disk pressure (edge/diskguard.py keeps the numbers): the outbox keeps working space on a
full disk instead of failing every write.

- The WAL is bounded: `wal_autocheckpoint` and `journal_size_limit` are derived from
  `min_free_bytes`, and the WAL is truncated (`wal_checkpoint(TRUNCATE)`) after deletions.
- A reserve file (`<outbox>.reserve`, `reserve_bytes`) is preallocated next to the database
  and released the moment a write finds the disk full, so acknowledgements (deletes) still
  have room; it is made again once the space is back.
- High-water mark: while the free space (the filesystem's plus SQLite's free pages) is below
  `min_free_bytes`, new records are refused: each still gets its seq, and the seqs are
  counted as dropped ranges. The same happens to an append that fails on a full disk.
  Nothing raises: polling and rules go on. The dropped ranges are kept in memory and in
  `meta` (when that small write succeeds), announced at once out of band (`disk_status`,
  published by the uplink as a notice of its retained birth), and written into the stream as an
  `outbox.disk_full` alarm event with the exact `dropped_seqs` by the first append that
  succeeds after the pressure ends.
- Acks never stall the uplink: the acknowledged position moves in memory even when the
  delete cannot be written; the delete is retried on the next ack or append.

Bounded: at `max_rows` the oldest *samples* are dropped first (they are re-derivable
instantaneous values); interval records and events are dropped only when no sample is left.
Every drop is counted and leaves a gap-marker event (`outbox.overflow`) in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from edge.diskguard import (
    DiskStatus,
    ReserveFile,
    add_range,
    default_headroom,
    fs_free_bytes,
    range_count,
    wal_limits,
)
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
RETRY_AFTER_S = 5.0  # after a write failed on the disk, refuse new records this long
_DELETE_CHUNK = 1000  # rows per delete transaction: a huge ack must not need a huge WAL

log = logging.getLogger(__name__)


class OutboxRow(NamedTuple):
    """One stored record as the uplink forwards it: a named tuple, because the uplink reads
    rows by the hundred per batch and a frozen dataclass cost twice the SELECT."""

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
    refused_records: int = 0  # refused under disk pressure, since start
    disk_pressure: bool = False


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
                 durable: bool = False, epoch: int | None = None,
                 min_free_bytes: int | None = None, reserve_bytes: int | None = None
                 ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        auto_free, auto_reserve = default_headroom(self.path.parent)
        min_free_bytes = auto_free if min_free_bytes is None else min_free_bytes
        self.min_free_bytes = min_free_bytes
        self.reserve = ReserveFile(self.path.with_name(self.path.name + ".reserve"),
                                   auto_reserve if reserve_bytes is None else reserve_bytes)
        wal_pages, journal_limit = wal_limits(min_free_bytes)
        self._journal_limit = journal_limit
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute(f"PRAGMA wal_autocheckpoint={wal_pages}")
            self._db.execute(f"PRAGMA journal_size_limit={journal_limit}")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        (self._page_size,) = self._db.execute("PRAGMA page_size").fetchone()
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
        self._deleted_upto = self._acked  # rows up to here are gone from the file
        self._dropped_samples = int(meta["dropped_samples"])
        self._dropped_other = int(meta["dropped_other"])
        (self._depth,) = self._db.execute("SELECT count(*) FROM rows").fetchone()
        # Seq ranges refused under disk pressure and not yet written into the stream.
        self._unreported: list[list[int]] = json.loads(meta.get("disk_dropped", "[]"))
        self._unreported_since = int(meta.get("disk_dropped_since", "0"))
        self.disk_status = DiskStatus(min_free_bytes=min_free_bytes)
        if self._unreported:  # a restart during pressure: announce it again
            self.disk_status.pressure = True
            self.disk_status.since_ms = self._unreported_since
            self.disk_status.dropped_seqs = [list(r) for r in self._unreported]
            self.disk_status.reason = "dropped before a restart, not yet reported"
            self.disk_status.version = 1
        self.status_changed = asyncio.Event()
        self.write_failures = 0  # appends that failed on the disk, since start
        self.refused_records = 0  # records refused under disk pressure, since start
        self.ack_write_failures = 0  # deletes that could not be written (retried)
        self._last_truncate = 0.0
        self._retry_at = 0.0  # after a failed write: refuse until then
        self.reserve.make()

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

        The `seq` field of the given records is ignored. Returns the assigned seqs. Under
        disk pressure the records are refused instead: their seqs are counted as dropped
        (`disk_status`), nothing is stored, nothing raises.
        """
        created = time.time() if now is None else now
        if not records and not meter_states:
            return []
        self._retry_delete()
        space = self._space()  # once per append: a statvfs and a PRAGMA
        free = sum(space)
        if self.disk_status.pressure and self._pressure_over(free, created):
            self._end_pressure(created, free)
        elif not self.disk_status.pressure and self._short_of_space(space):
            self._checkpoint()  # the WAL's space counts as free once it is truncated
            space = self._space()
            free = sum(space)
            if self._short_of_space(space):
                self._start_pressure(created, free, f"free space {free} B below the "
                                                    f"high-water mark {self.min_free_bytes} B")
        if self.disk_status.pressure:
            return self._refuse(records, created, free)
        seqs: list[int] = []
        rows = []
        seq = self._next_seq
        leading = bool(self._unreported)
        if leading:
            # The pressure is over: the stream gets the exact dropped ranges, durably.
            records = [self._disk_full_event(created), *records]
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
                if leading:
                    db.execute("DELETE FROM meta WHERE key IN ('disk_dropped', "
                               "'disk_dropped_since')")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):  # a failed COMMIT can leave it open
                self._db.execute("ROLLBACK")
            self.write_failures += 1
            self._retry_at = created + RETRY_AFTER_S
            self.reserve.release()  # room for acks and for the small meta write below
            self._start_pressure(created, self._free_bytes(), f"write failed: {exc}")
            return self._refuse(records[1:] if leading else records, created,
                                self._free_bytes())
        if leading:
            self._unreported = []
            self.disk_status.version += 1  # the in-stream report is written
            self.status_changed.set()
            seqs = seqs[1:]
        self._next_seq = seq
        self._depth += len(rows)
        if self._depth > self.max_rows:
            try:
                self._enforce_bound(created)
            except sqlite3.Error as exc:  # retried with the next append
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                log.warning("outbox overflow drop failed: %s", exc)
        self.changed.set()
        return seqs

    # -- disk pressure ----------------------------------------------------------------

    def _free_bytes(self) -> int:
        """Room for new rows: the filesystem's free space plus SQLite's free pages."""
        return sum(self._space())

    def _space(self) -> tuple[int, int]:
        """(filesystem free bytes, bytes of SQLite's free pages). New rows go to free
        pages first, but every write passes through the WAL, which needs the filesystem."""
        try:
            (freelist,) = self._db.execute("PRAGMA freelist_count").fetchone()
        except sqlite3.Error:
            freelist = 0
        try:
            fs = fs_free_bytes(self.path.parent)
        except OSError:
            fs = 0
        return fs, int(freelist) * int(self._page_size)

    def _short_of_space(self, space: tuple[int, int]) -> bool:
        fs, pages = space
        return fs + pages < self.min_free_bytes or fs < self._journal_limit // 2

    def _pressure_over(self, free: int, now: float) -> bool:
        """Hysteresis: the mark plus room for a full WAL, that WAL room on the filesystem
        itself, and after a failed write no new attempt within `RETRY_AFTER_S`."""
        if now < self._retry_at:
            return False
        need = self.min_free_bytes + self._journal_limit
        if free < need:
            return False
        self._checkpoint()  # judged without the WAL, whose size comes and goes
        fs, pages = self._space()
        return fs + pages >= need and fs >= self._journal_limit

    def _start_pressure(self, now: float, free: int, reason: str) -> None:
        st = self.disk_status
        if not st.pressure:
            log.warning("outbox under disk pressure (%s): new records are refused and "
                        "counted by seq until space is back", reason)
            st.pressure = True
            st.until_ms = None
            # Ranges not yet written into the stream stay in the report until they are.
            st.since_ms = self._unreported_since if self._unreported else int(now * 1000)
            st.dropped_seqs = [list(r) for r in self._unreported]
            st.reason = reason
        st.free_bytes = free
        st.version += 1
        self.status_changed.set()
        self._checkpoint()

    def _end_pressure(self, now: float, free: int) -> None:
        st = self.disk_status
        if self._space()[0] >= self._journal_limit + self.reserve.size:
            self.reserve.make()  # only from real filesystem room, never from the WAL's
        st.pressure = False
        st.until_ms = int(now * 1000)
        st.free_bytes = free
        st.version += 1
        self.status_changed.set()
        log.warning("outbox disk pressure over (%d B free): %d records were refused, "
                    "seqs %s", free, st.dropped_records, st.dropped_seqs)

    def _refuse(self, records: Sequence[Record], now: float, free: int) -> list[int]:
        n = len(records)
        st = self.disk_status
        st.free_bytes = free
        if n == 0:
            return []
        first, last = self._next_seq, self._next_seq + n - 1
        self._next_seq = last + 1
        if not self._unreported:
            self._unreported_since = int(now * 1000)
        add_range(self._unreported, first, last)
        add_range(st.dropped_seqs, first, last)
        self.refused_records += n
        st.version += 1
        self.status_changed.set()
        # Keep the seqs and the ranges across a restart when the disk allows that much.
        try:
            with self._tx() as db:
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
                    ("next_seq", str(self._next_seq)),
                    ("disk_dropped", json.dumps(self._unreported)),
                    ("disk_dropped_since", str(self._unreported_since))])
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
        return []

    def _disk_full_event(self, now: float) -> Event:
        st = self.disk_status
        return Event(seq=0, ts=int(now * 1000), name="outbox.disk_full",
                     severity=Severity.ALARM,
                     data={"dropped_seqs": [list(r) for r in self._unreported],
                           "dropped_records": range_count(self._unreported),
                           "since_ts": self._unreported_since,
                           "min_free_bytes": self.min_free_bytes,
                           "reason": st.reason})

    def _checkpoint(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

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
        """The central stored everything up to `upto`: delete it. Returns rows deleted.

        The acknowledged position moves even when the delete cannot be written (a full
        disk): those rows are never sent again and are deleted by a later call."""
        if upto <= self._acked:
            return 0
        upto = min(upto, self.last_seq)
        self._acked = upto
        deleted = self._retry_delete()
        if self.disk_status.pressure:
            free = self._free_bytes()
            now = time.time()
            if self._pressure_over(free, now):
                self._end_pressure(now, free)
        return deleted

    def _retry_delete(self) -> int:
        """Delete acknowledged rows in chunks, truncating the WAL after each chunk under
        pressure. When the disk is full: release the reserve and halve the chunk until a
        delete fits; if none does, leave the rest for the next call. Returns rows deleted."""
        deleted = 0
        chunk = _DELETE_CHUNK
        while self._deleted_upto < self._acked:
            row = self._db.execute("SELECT seq FROM rows WHERE seq > ? AND seq <= ? "
                                   "ORDER BY seq LIMIT 1 OFFSET ?",
                                   (self._deleted_upto, self._acked, chunk - 1)).fetchone()
            stop = self._acked if row is None else int(row[0])
            try:
                deleted += self._delete_upto(stop)
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._checkpoint()
                if self.reserve.release():
                    log.warning("outbox delete failed (%s): released the %d B reserve",
                                exc, self.reserve.size)
                    continue
                if chunk > 8:
                    chunk //= 4
                    continue
                self.ack_write_failures += 1
                log.warning("outbox delete up to seq %d failed, retried later: %s", stop, exc)
                return deleted
        return deleted

    def _delete_upto(self, stop: int) -> int:
        with self._tx() as db:
            cur = db.execute("DELETE FROM rows WHERE seq > ? AND seq <= ?",
                             (self._deleted_upto, stop))
            db.execute("UPDATE meta SET value = ? WHERE key = 'acked_upto'", (str(stop),))
        self._deleted_upto = stop
        self._depth -= cur.rowcount
        if self.disk_status.pressure or time.monotonic() - self._last_truncate > 1.0:
            self._checkpoint()
            self._last_truncate = time.monotonic()
        return int(cur.rowcount)

    def stats(self) -> OutboxStats:
        # The first row by seq (an index walk of one row, where min(created) scanned them
        # all): rows are appended in seq order, so it is the oldest one left.
        row = self._db.execute("SELECT created FROM rows ORDER BY seq LIMIT 1").fetchone()
        oldest = None if row is None else row[0]
        return OutboxStats(depth=self._depth, oldest_created=oldest, acked_upto=self._acked,
                           last_seq=self.last_seq, dropped_samples=self._dropped_samples,
                           dropped_other=self._dropped_other,
                           refused_records=self.refused_records,
                           disk_pressure=self.disk_status.pressure)


def _with_seq(record: Record, seq: int) -> Record:
    if isinstance(record, Sample):
        return Sample(seq, record.ts, record.device, record.point, record.value, record.unit,
                      record.synced)
    if isinstance(record, IntervalRecord):
        return IntervalRecord(seq, record.device, record.point, record.start, record.duration_s,
                              record.quantity, record.unit, record.flags, record.synced)
    return Event(seq, record.ts, record.name, record.severity, record.device, record.data,
                 record.synced)
