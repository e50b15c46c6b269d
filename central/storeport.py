"""The store as a port: what ingest writes through and what compliance reads through.

`central.store.Store` (embedded SQLite, the default) and `central.pgstore.PgStore`
(PostgreSQL, shared by several ingest workers) both satisfy these protocols, and the contract
suite in tests/contracts/ runs the same tests against both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from central.config import MeterKey

if TYPE_CHECKING:
    from central.store import (
        BatchWrite,
        CommandResult,
        DeadLetter,
        EdgeState,
        LatestSample,
        Quarantine,
        StoredEvent,
        StoredInterval,
        StoreResult,
    )
    from protocols.wire import Batch, Birth, Death, Notice, Record, StreamId


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

    def alarm_events(self, until_ms: int) -> list[tuple[str, str | None, int, str, str]]: ...

    def sample_series(self, key: MeterKey, start_ms: int, end_ms: int
                      ) -> list[tuple[int, float | int | bool | str]]: ...

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


class FullStore(IngestStore, StoreReader, Protocol):
    """Both sides: what one adapter object offers."""


if TYPE_CHECKING:  # mypy checks that both adapters satisfy the whole port
    from central.pgstore import PgStore
    from central.store import Store

    def _sqlite_is_a_full_store(store: Store) -> FullStore:
        return store

    def _postgres_is_a_full_store(store: PgStore) -> FullStore:
        return store
