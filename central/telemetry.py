"""The `TelemetryStore` port: where samples, interval records and events go for dashboards.

Two adapters pass one contract suite (tests/contracts/test_telemetry_store.py):

- `SqliteTelemetry` wraps the embedded `central.store.Store`, which already keeps every
  record (the default: nothing to install);
- `central.influx.InfluxTelemetry` writes line protocol to InfluxDB 2 (production, read by
  the Grafana dashboards in deploy/grafana/).

Why the contract looks like this:

- `write` is idempotent. Ingest calls it before it acknowledges a batch and the edge resends
  whatever was not acknowledged, so the same records arrive again after any failure. A
  failed write raises `StoreError` and nothing is acknowledged (back-pressure): no adapter
  may drop records silently.
- Compliance never reads through this port: it reads the SQL store, whose interval upserts
  are ordered by (epoch, seq). Dashboards and the API's live views read `series` and
  `latest`, which are downsampled by the store itself (server-side), not in Python.
- Tags come from the institution config (`DeviceTags`): the building, zone and 分项 item of a
  device are known at the central, not at the edge.
"""

from __future__ import annotations

import abc
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from central.errors import StoreError
from central.institution import InstitutionConfig, MeterKey
from protocols.wire import Record, StreamId, Value

if TYPE_CHECKING:
    from central.store import Store
    from central.storeport import LatestSample


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """The records of one uplink batch as ingest hands them over, with the envelope that
    the SQL store needs for its watermark (`after`, `upto`)."""

    site: str
    stream: StreamId
    after: int
    upto: int
    records: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One bucket of a downsampled series: bucket start (ms) and the mean in it."""

    ts: int
    value: float


@dataclass(frozen=True, slots=True)
class PlaceTags:
    """Where a device or meter is, as the institution config says."""

    building: str | None = None
    zone: str | None = None
    item: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceTags:
    """building / zone / 分项 item tags per (edge, device, point), falling back to
    (edge, device) for AC units and points that are not a configured meter."""

    by_point: Mapping[MeterKey, PlaceTags] = field(default_factory=dict)
    by_device: Mapping[tuple[str, str], PlaceTags] = field(default_factory=dict)

    @classmethod
    def from_institution(cls, config: InstitutionConfig) -> DeviceTags:
        by_point: dict[MeterKey, PlaceTags] = {}
        by_device: dict[tuple[str, str], PlaceTags] = {}
        for ac in config.ac_units:
            by_device[(ac.edge, ac.device)] = PlaceTags(ac.building, ac.zone)
        for m in config.meters:
            by_point[m.key] = PlaceTags(m.building, m.zone, m.item)
            if m.live_point is not None:  # power_w of the same meter: same place and item
                by_point[MeterKey(m.edge, m.device, m.live_point)] = PlaceTags(
                    m.building, m.zone, m.item)
            by_device.setdefault((m.edge, m.device), PlaceTags(m.building, m.zone))
        return cls(by_point, by_device)

    @classmethod
    def from_institutions(cls, configs: Sequence[InstitutionConfig]) -> DeviceTags:
        """One lookup for every institution a central serves (an edge belongs to one)."""
        by_point: dict[MeterKey, PlaceTags] = {}
        by_device: dict[tuple[str, str], PlaceTags] = {}
        for config in configs:
            one = cls.from_institution(config)
            by_point.update(one.by_point)
            by_device.update(one.by_device)
        return cls(by_point, by_device)

    def lookup(self, edge: str, device: str | None, point: str | None = None) -> PlaceTags:
        if device is None:
            return PlaceTags()
        if point is not None:
            tags = self.by_point.get(MeterKey(edge, device, point))
            if tags is not None:
                return tags
        return self.by_device.get((edge, device), PlaceTags())


class TelemetryStore(abc.ABC):
    """Port for the telemetry of every batch. Adapters raise `StoreError` on any failure."""

    @abc.abstractmethod
    def write(self, batch: TelemetryBatch) -> None:
        """Store the batch's samples, intervals and events; idempotent; raises on failure,
        after which nothing of the batch may be acknowledged."""

    @abc.abstractmethod
    def series(self, key: MeterKey, start_ms: int, end_ms: int, step_ms: int
               ) -> list[SeriesPoint]:
        """Numeric samples of one point in [start_ms, end_ms), averaged per `step_ms`
        bucket (buckets aligned to multiples of step_ms, empty buckets left out)."""

    @abc.abstractmethod
    def latest(self, points: Iterable[str] | None = None) -> dict[MeterKey, LatestSample]:
        """The newest sample of every point (of the named points only, when given)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise `StoreError` when the store cannot be reached."""

    @abc.abstractmethod
    def close(self) -> None: ...


def check_series_args(start_ms: int, end_ms: int, step_ms: int) -> None:
    if step_ms <= 0:
        raise ValueError(f"step_ms must be positive (got {step_ms})")
    if end_ms < start_ms:
        raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}")


def numeric(value: Value) -> float | None:
    """A sample value as a number for series (booleans 0/1); None for text."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


class SqliteTelemetry(TelemetryStore):
    """The embedded store behind the port. `write` is the SQL store's own batch write (one
    transaction with the stream watermark), so when the central runs on SQLite alone there
    is nothing to write twice: ingest only calls a *second* telemetry store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, batch: TelemetryBatch) -> None:
        # store.py turns most sqlite errors into StoreError; a closed connection escapes its
        # rollback path as sqlite3.ProgrammingError, which the port must not leak.
        try:
            self.store.store_records(batch.stream, batch.after, batch.upto, batch.records,
                                     site=batch.site, now=0.0)
        except sqlite3.Error as exc:
            raise StoreError("telemetry write", str(exc)) from exc

    def series(self, key: MeterKey, start_ms: int, end_ms: int, step_ms: int
               ) -> list[SeriesPoint]:
        check_series_args(start_ms, end_ms, step_ms)
        return [SeriesPoint(b, v) for b, v in self.store.bucket_means(key, start_ms, end_ms,
                                                                      step_ms)]

    def latest(self, points: Iterable[str] | None = None) -> dict[MeterKey, LatestSample]:
        return self.store.latest_samples(points)

    def ping(self) -> None:
        self.store.ping()

    def close(self) -> None:
        self.store.close()


__all__ = ["DeviceTags", "PlaceTags", "SeriesPoint", "SqliteTelemetry", "StoreError",
           "TelemetryBatch", "TelemetryStore", "check_series_args", "numeric"]
