"""The read side of one institution: a store reader bound to its edges, by construction.

One central serves several institutions from one store. An institution's telemetry is what
its edges sent (the edges named by its meters, AC units, bins and plugs; an edge reports for
one institution, which `create_app` checks). Every route, page model and report receives a
`TenantReader` made from the token's institution, never the store: a read of another
institution's edge, device, event, sample or interval returns nothing because the reader
does not hold a way to ask for it, not because each caller remembered a filter.

`TenantReader` offers the store port's reads (`central.storeport.StoreReader`) with the same
names and signatures, so code written against the port runs unchanged on a reader:

- reads by meter key (`interval_sums`, `period_sums`, `sample_series`, `hour_totals` …)
  keep only the keys of the institution's edges; with no keys, its configured meters;
- reads by edge (`events`, `interval_records`, `latest_event_with`, `command_results`,
  `watermark` …) answer for the institution's edges only; `events(None, …)` means "every
  edge of the institution", not "every edge of the store";
- `edges()` lists the institution's edges the store knows;
- the central-wide diagnostics (`dead_letters`, `counts`, `rows`) cannot be attributed to
  one institution: a tenant sees no dead letters, and `counts`/`rows` raise `ScopeError`.

`close()` leaves the store open: whoever opened the store closes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from central.admission import CENTRAL_EDGE
from central.errors import ScopeError
from central.institution import InstitutionConfig, MeterKey
from central.storeport import StoreReader, sums_per_day
from central.sumsdays import SumsAndDays, SumsAndDayTotals
from central.sweeps import AcPoints, AcRule

if TYPE_CHECKING:
    from central.storeport import (
        CommandResult,
        DeadLetter,
        EdgeState,
        LatestSample,
        StoredEvent,
        StoredInterval,
    )
    from protocols.wire import StreamId

__all__ = ["ScopeError", "TenantReader", "edges_of", "scoped"]


def edges_of(institution: InstitutionConfig) -> frozenset[str]:
    """The edges that report for `institution`: those its meters, AC units, bins and plugs
    name."""
    return frozenset([m.edge for m in institution.meters]
                     + [a.edge for a in institution.ac_units]
                     + [b.edge for b in institution.bins]
                     + [p.edge for p in institution.plugs])


class TenantReader:
    """The store, as one institution may read it (see the module docstring)."""

    def __init__(self, store: StoreReader, institution: InstitutionConfig) -> None:
        self._store = store
        self.institution = institution
        self.edges_owned = edges_of(institution)
        self._meter_keys = [m.key for m in institution.meters]

    @property
    def id(self) -> str:
        return self.institution.institution.id

    def __enter__(self) -> TenantReader:
        """A reader does not own the store it reads: leaving it closes nothing."""
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    # -- scoping helpers --------------------------------------------------------------

    def owns(self, edge: str) -> bool:
        return edge in self.edges_owned

    def _ask(self, keys: Iterable[MeterKey] | None
             ) -> tuple[list[MeterKey] | None, list[MeterKey]]:
        """(the keys asked, read once; the institution's among them). No keys asked: the
        institution's configured meters."""
        asked = None if keys is None else list(dict.fromkeys(keys))
        wanted = self._meter_keys if asked is None else asked
        return asked, [k for k in wanted if k.edge in self.edges_owned]

    def _keys(self, keys: Iterable[MeterKey] | None) -> list[MeterKey]:
        return self._ask(keys)[1]

    def _edges(self, edges: Iterable[str] | None) -> list[str]:
        if edges is None:
            return sorted(self.edges_owned)
        return sorted(set(edges) & self.edges_owned)

    def _edges_and_central(self, edges: Iterable[str] | None) -> list[str]:
        """`_edges`, plus the central's own edge when asked for it or for every edge."""
        asked = None if edges is None else set(edges)
        own = self._edges(asked)
        if asked is None or CENTRAL_EDGE in asked:
            own.append(CENTRAL_EDGE)
        return own

    # -- the port's reads -------------------------------------------------------------

    def watermark(self, stream: StreamId) -> int:
        return self._store.watermark(stream) if self.owns(stream.edge) else 0

    def pending_ranges(self, stream: StreamId) -> list[tuple[int, int]]:
        return self._store.pending_ranges(stream) if self.owns(stream.edge) else []

    def interval_sums(self, start_ms: int, end_ms: int,
                      keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        asked, own = self._ask(keys)
        sums = self._store.interval_sums(start_ms, end_ms, own) if own else {}
        return self._complete(sums, asked, own)

    def first_interval_start(self, start_ms: int, end_ms: int,
                             keys: Iterable[MeterKey] | None = None) -> int | None:
        own = self._keys(keys)
        return self._store.first_interval_start(start_ms, end_ms, own) if own else None

    def daily_sums(self, first: date, last: date, tz: ZoneInfo,
                   keys: Iterable[MeterKey] | None = None
                   ) -> dict[date, dict[MeterKey, float]]:
        return sums_per_day(self.interval_sums, first, last, tz, keys)

    def latest_samples(self, points: Iterable[str] | None = None
                       ) -> dict[MeterKey, LatestSample]:
        return {k: s for k, s in self._store.latest_samples(points).items()
                if k.edge in self.edges_owned}

    def edges(self) -> list[EdgeState]:
        return [e for e in self._store.edges() if e.edge in self.edges_owned]

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return []  # a refused payload names no institution it could be shown to

    def counts(self) -> dict[str, int]:
        raise ScopeError("row counts are the central's, not one institution's")

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        raise ScopeError("raw table rows are the central's, not one institution's")

    def ping(self) -> None:
        self._store.ping()

    def first_start_of(self, start_ms: int, end_ms: int,
                       keys: Iterable[MeterKey]) -> int | None:
        own = self._keys(keys)
        return self._store.first_start_of(start_ms, end_ms, own) if own else None

    def interval_rows(self, start_ms: int, end_ms: int, keys: Iterable[MeterKey]
                      ) -> list[tuple[MeterKey, int, int, float]]:
        own = self._keys(keys)
        return self._store.interval_rows(start_ms, end_ms, own) if own else []

    def period_sums(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                    keys: Iterable[MeterKey] | None = None) -> dict[MeterKey, float]:
        asked, own = self._ask(keys)
        sums = self._store.period_sums(start_ms, end_ms, tz, own) if own else {}
        return self._complete(sums, asked, own)

    def hour_totals(self, keys: Iterable[MeterKey], h0: int, h1: int
                    ) -> dict[int, float] | None:
        own = self._keys(keys)
        return self._store.hour_totals(own, h0, h1) if own else {}

    def day_totals(self, keys: Iterable[MeterKey], h0: int, h1: int, tz: ZoneInfo
                   ) -> dict[date, float] | None:
        own = self._keys(keys)
        return self._store.day_totals(own, h0, h1, tz) if own else {}

    def sums_and_day_totals(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                            keys: Sequence[MeterKey], groups: Sequence[int]
                            ) -> SumsAndDays | None:
        """The store's combined read (central/sumsdays.py) when every key is the
        institution's; otherwise None, and the caller's two reads filter as usual."""
        if not isinstance(self._store, SumsAndDayTotals) or len(self._keys(keys)) != len(keys):
            return None
        return self._store.sums_and_day_totals(start_ms, end_ms, tz, keys, groups)

    def alarm_events(self, until_ms: int, *, edges: Iterable[str] | None = None
                     ) -> list[tuple[str, str | None, int, str, str]]:
        """Alarm events of `edges` among the institution's (None: all of them) and the
        central's own (`CENTRAL_EDGE`), which every institution sees; filtered by the
        store's query, so the cost follows this institution's alarms, not the store's."""
        return self._store.alarm_events(until_ms, edges=self._edges_and_central(edges))

    def sample_series(self, key: MeterKey, start_ms: int, end_ms: int
                      ) -> list[tuple[int, float | int | bool | str]]:
        if not self.owns(key.edge):
            return []
        return self._store.sample_series(key, start_ms, end_ms)

    def ac_seconds(self, units: Sequence[AcPoints], start_ms: int, end_ms: int,
                   rule: AcRule, tz: ZoneInfo) -> tuple[int, int]:
        """The institution's units only (another edge's unit has no samples here)."""
        own = [u for u in units if self.owns(u.edge)]
        return self._store.ac_seconds(own, start_ms, end_ms, rule, tz) if own else (0, 0)

    def events(self, edges: Iterable[str] | None, *, names: Iterable[str] | None = None,
               prefix: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None, limit: int, newest_first: bool = True
               ) -> list[StoredEvent]:
        """Events of `edges` among the institution's (None: all of them), and the central's
        own (`CENTRAL_EDGE`: a foreign edge on the broker), which every institution sees."""
        own = self._edges_and_central(edges)
        if not own:
            return []
        return self._store.events(own, names=names, prefix=prefix, start_ms=start_ms,
                                  end_ms=end_ms, limit=limit, newest_first=newest_first)

    def interval_records(self, edges: Iterable[str] | None, start_ms: int, end_ms: int, *,
                         device: str | None = None, point: str | None = None, limit: int
                         ) -> list[StoredInterval]:
        """Interval records of `edges` among the institution's (None: all of them)."""
        own = self._edges(edges)
        if not own:
            return []
        return self._store.interval_records(own, start_ms, end_ms, device=device,
                                            point=point, limit=limit)

    def latest_event_with(self, edge: str, key: str) -> dict[str, Any] | None:
        return self._store.latest_event_with(edge, key) if self.owns(edge) else None

    def command_results(self, edge: str, ids: Iterable[str]) -> list[CommandResult]:
        return self._store.command_results(edge, ids) if self.owns(edge) else []

    def close(self) -> None:
        """Nothing to close: the store belongs to whoever opened it."""

    # --------------------------------------------------------------------------------

    @staticmethod
    def _complete(sums: dict[MeterKey, float], asked: list[MeterKey] | None,
                  own: Sequence[MeterKey]) -> dict[MeterKey, float]:
        """With keys asked: every asked key, 0.0 where not the institution's (the port's
        contract: an asked key is present)."""
        if asked is None:
            mine = set(own)
            return {k: v for k, v in sums.items() if k in mine}
        return {k: sums.get(k, 0.0) for k in asked}


if TYPE_CHECKING:  # mypy checks that a tenant reader is a whole store reader
    def _tenant_reader_is_a_store_reader(reader: TenantReader) -> StoreReader:
        return reader


def scoped(store: StoreReader, institution: InstitutionConfig) -> TenantReader:
    """`store` bound to `institution`: the reader itself when it already is this
    institution's, else a new `TenantReader` (a command-line report, a test)."""
    if isinstance(store, TenantReader) and store.id == institution.institution.id:
        return store
    if isinstance(store, TenantReader):
        raise ScopeError(f"a reader of institution {store.id!r} cannot read for "
                         f"{institution.institution.id!r}")
    return TenantReader(store, institution)
