"""The store as a port: what ingest writes through, what compliance and the API read
through, and the records that cross it.

`central.store.Store` (embedded SQLite, the default) and `central.pgstore.PgStore`
(PostgreSQL, shared by several ingest workers) both satisfy these protocols, and the contract
suite in tests/contracts/ runs the same tests against both. The records below are the port's
own: callers import them from here, never from an adapter, and neither adapter imports
the other (what they share is central/storesql.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from central.institution import MeterKey
from central.sweeps import AcPoints, AcRule
from protocols.wire import Batch, Birth, Death, Notice, Record, StreamId

# -- records ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Outcome of one committed batch: the watermark to acknowledge and what was new."""

    watermark: int
    inserted: int  # rows inserted, or intervals replaced by a newer (epoch, seq)
    duplicates: int  # records already stored (or intervals superseded by a newer write)
    quarantined: int


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A payload or record refused by ingest, kept verbatim for an engineer to inspect."""

    topic: str
    payload: bytes
    error: str


@dataclass(frozen=True, slots=True)
class LatestSample:
    ts: int  # ms
    value: float | int | bool | str
    unit: str


@dataclass(frozen=True, slots=True)
class EdgeState:
    edge: str
    site: str
    epoch: int | None
    online: bool | None  # None: never seen a birth or death
    software: str | None
    devices: list[dict[str, Any]]
    birth_ts: int | None  # ms, the edge's clock
    last_seen: float | None  # POSIX seconds, the central's clock
    changed: float | None
    synced: bool | None = None  # the edge's clock synchronised at its last birth


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as stored; `data` is the JSON text of the event's data, as the edge sent
    it (readers decode it, a malformed one included)."""

    edge: str
    epoch: int
    seq: int
    ts: int  # ms, the edge's clock
    name: str
    severity: str
    device: str | None
    data: str
    synced: bool


@dataclass(frozen=True, slots=True)
class StoredInterval:
    edge: str
    device: str
    point: str
    start: int  # ms
    duration_s: int
    quantity: float
    unit: str
    flags: tuple[str, ...]
    synced: bool


@dataclass(frozen=True, slots=True)
class CommandResult:
    """One `command.result` event of an edge: the answer to the command `id`."""

    id: str
    status: str | None  # None when the edge sent no string
    detail: str | None
    ts: int  # ms, the edge's clock


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    topic: str
    payload: bytes
    size: int
    error: str
    first_seen: float
    last_seen: float
    count: int


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """One batch as ingest hands it to `IngestStore.store_many`."""

    stream: StreamId
    after: int
    upto: int
    records: Sequence[Record]
    site: str
    quarantine: Sequence[Quarantine] = ()


def notice_event_row(stream: StreamId, notice: Notice) -> tuple[Any, ...]:
    """An out-of-band notice as an events row: seq -ts, below every stream seq (>= 1)."""
    return (stream.edge, stream.epoch, -max(1, notice.ts), notice.ts, notice.name,
            notice.severity.value, None,
            json.dumps(notice.data, ensure_ascii=False, sort_keys=True), int(notice.synced))


def event_data(raw: str) -> dict[str, Any] | None:
    """An event's data decoded, or None when it is not a JSON object."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


# -- the port -------------------------------------------------------------------------


class IngestStore(Protocol):
    """The write side of the ack contract (see central/store.py for the rules)."""

    def store_records(self, stream: StreamId, after: int, upto: int,
                      records: Sequence[Record], *, site: str, now: float,
                      quarantine: Sequence[Quarantine] = ()) -> StoreResult: ...

    def store_many(self, writes: Sequence[BatchWrite], *, now: float) -> list[StoreResult]: ...

    def store_batch(self, batch: Batch, site: str, *, now: float = 0.0) -> int: ...

    def dead_letter(self, quarantine: Quarantine, *, now: float) -> None: ...

    def record_birth(self, site: str, birth: Birth, *, now: float) -> None: ...

    def record_death(self, site: str, death: Death, *, now: float) -> None: ...

    def record_notice(self, stream: StreamId, notice: Notice, *, now: float) -> None: ...

    def close(self) -> None: ...


class StoreReader(Protocol):
    """Reads of the API, the overview and compliance."""

    def watermark(self, stream: StreamId) -> int: ...

    def pending_ranges(self, stream: StreamId) -> list[tuple[int, int]]: ...

    def interval_sums(self, start_ms: int, end_ms: int,
                      keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]: ...

    def first_interval_start(self, start_ms: int, end_ms: int,
                             keys: Iterable[MeterKey] | None = None) -> int | None: ...

    def daily_sums(self, first: date, last: date, tz: ZoneInfo,
                   keys: Iterable[MeterKey] | None = None
                   ) -> dict[date, dict[MeterKey, float]]: ...

    def latest_samples(self, points: Iterable[str] | None = None
                       ) -> dict[MeterKey, LatestSample]: ...

    def edges(self) -> list[EdgeState]: ...

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    def counts(self) -> dict[str, int]: ...

    def rows(self, table: str) -> list[tuple[Any, ...]]: ...

    def ping(self) -> None: ...

    def first_start_of(self, start_ms: int, end_ms: int,
                       keys: Iterable[MeterKey]) -> int | None: ...

    def interval_rows(self, start_ms: int, end_ms: int, keys: Iterable[MeterKey]
                      ) -> list[tuple[MeterKey, int, int, float]]: ...

    def period_sums(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                    keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]: ...

    def hour_totals(self, keys: Iterable[MeterKey], h0: int, h1: int
                    ) -> dict[int, float] | None: ...

    def day_totals(self, keys: Iterable[MeterKey], h0: int, h1: int, tz: ZoneInfo
                   ) -> dict[date, float] | None: ...

    def alarm_events(self, until_ms: int, *, edges: Iterable[str] | None = None
                     ) -> list[tuple[str, str | None, int, str, str]]: ...

    def sample_series(self, key: MeterKey, start_ms: int, end_ms: int
                      ) -> list[tuple[int, float | int | bool | str]]: ...

    def ac_seconds(self, units: Sequence[AcPoints], start_ms: int, end_ms: int,
                   rule: AcRule, tz: ZoneInfo) -> tuple[int, int]: ...

    # The API's and the dashboard's reads: no caller outside the stores writes SQL.

    def events(self, edges: Iterable[str] | None, *, names: Iterable[str] | None = None,
               prefix: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None, limit: int, newest_first: bool = True
               ) -> list[StoredEvent]: ...

    def interval_records(self, edges: Iterable[str], start_ms: int, end_ms: int, *,
                         device: str | None = None, point: str | None = None, limit: int
                         ) -> list[StoredInterval]: ...

    def latest_event_with(self, edge: str, key: str) -> dict[str, Any] | None: ...

    def command_results(self, edge: str, ids: Iterable[str]) -> list[CommandResult]: ...

    def close(self) -> None: ...

    def __enter__(self) -> StoreReader: ...

    def __exit__(self, *exc: object) -> None: ...


class FullStore(IngestStore, StoreReader, Protocol):
    """Both sides: what one adapter object offers."""


# -- the port's definitions that both adapters share ----------------------------------


def sums_per_day(interval_sums: Callable[[int, int, list[MeterKey] | None],
                                         dict[MeterKey, float]],
                 first: date, last: date, tz: ZoneInfo,
                 keys: Iterable[MeterKey] | None) -> dict[date, dict[MeterKey, float]]:
    """`daily_sums` of either store: `interval_sums` over each local day first…last."""
    wanted = list(keys) if keys is not None else None
    out: dict[date, dict[MeterKey, float]] = {}
    day = first
    while day <= last:
        out[day] = interval_sums(local_midnight_ms(day, tz),
                                 local_midnight_ms(day + timedelta(days=1), tz), wanted)
        day += timedelta(days=1)
    return out


def local_midnight_ms(day: date, tz: ZoneInfo) -> int:
    """Start of `day` in `tz` as epoch milliseconds."""
    return math.floor(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
