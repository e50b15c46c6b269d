"""The statistics ledger's manual side: bills, vehicle fuel, waste clearances, the hazardous
waste store log. A port (`Ledger`) with an embedded SQLite adapter here and a PostgreSQL one
in central/pgledger.py, both checked by the contract suite in tests/contracts.

Why it looks like this:

- Every entry carries a `ref` chosen by whoever enters it (invoice number, fuel card
  receipt, manifest number). Writing is an upsert by (kind, ref): a re-imported file or a
  replayed request changes nothing, a corrected entry replaces the old one. Figures change
  exactly once however often the same entry arrives.
- A `put` of many entries is one transaction: an import is all or nothing.
- The ledger is its own SQLite file, apart from the telemetry store, so the API's writes
  never contend with ingest for the writer lock, and the ledger can move to PostgreSQL on its
  own.
- Raw quantities are stored (m³, MJ, litres, km); conversion to kgce happens at reading time
  with the profile named in the result, so a report can be recomputed under another profile.
"""

from __future__ import annotations

import abc
import contextlib
import enum
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from central.energy import EnergyType
from central.errors import StoreError
from central.sqlitefile import open_file

Ref = Annotated[str, Field(min_length=1, max_length=64)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Text = Annotated[str, Field(max_length=200)]


class EntryKind(enum.StrEnum):
    BILL = "bill"
    FUEL = "fuel"
    CLEARANCE = "clearance"
    HAZARDOUS = "hazardous"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    ref: Ref


class Bill(_Entry):
    """A consumption bill for non-metered energy or water (gas, heat, a water utility bill):
    its quantity is spread evenly over its days, local `period_start`…`period_end` inclusive."""

    energy: EnergyType
    building: str | None = None
    period_start: date
    period_end: date
    quantity: NonNegative
    unit: str | None = None  # required except for electricity (kWh) and water (m3)
    amount_yuan: NonNegative | None = None  # what the bill charges, 元 (central/cost.py)
    supplier: Text | None = None
    note: Text | None = None
    # A bill of the same energy, building and overlapping days under another ref is refused
    # unless it says what it is: the correction of that bill (`replaces`: its ref; the
    # replaced bill stays in the ledger and no longer counts) or an addition (`supplement`).
    replaces: Ref | None = None
    supplement: bool = False

    @model_validator(mode="after")
    def _period(self) -> Bill:
        if self.period_end < self.period_start:
            raise ValueError(f"period_end {self.period_end} is before period_start "
                             f"{self.period_start}")
        return self

    @property
    def days(self) -> int:
        return (self.period_end - self.period_start).days + 1


class FuelEntry(_Entry):
    """Fuel for one official car (一车一卡): litres bought and km driven on the day."""

    vehicle: str
    day: date
    litres: Positive
    km: NonNegative
    note: Text | None = None


class Clearance(_Entry):
    """One line of the waste clearance ledger (清运台账, STANDARDS.md §6)."""

    time: AwareDatetime
    category: str
    subcategory: Text | None = None
    building: str | None = None
    point: Text | None = None  # bin or collection point
    weight_kg: NonNegative | None = None
    volume_l: NonNegative | None = None
    bins: Annotated[int, Field(ge=0)] | None = None
    hauler: Text | None = None
    vehicle_plate: Text | None = None
    destination: Text | None = None
    handover: Text | None = None  # persons handing over and receiving
    manifest_no: Text | None = None  # required for hazardous waste
    notes: Text | None = None
    source: Literal["manual", "sensor"] = "manual"

    @model_validator(mode="after")
    def _measured(self) -> Clearance:
        if self.weight_kg is None and self.volume_l is None and self.bins is None:
            raise ValueError("give weight_kg, volume_l or bins")
        return self


class HazardousMove(_Entry):
    """The hazardous-waste store log: what went in, and out with a manifest."""

    time: AwareDatetime
    direction: Literal["in", "out"]
    item: Text
    quantity: Positive
    unit: Annotated[str, Field(min_length=1, max_length=16)] = "kg"
    manifest_no: Text | None = None
    handler: Text | None = None
    notes: Text | None = None

    @model_validator(mode="after")
    def _manifest(self) -> HazardousMove:
        if self.direction == "out" and not self.manifest_no:
            raise ValueError("manifest_no is required when hazardous waste leaves the store")
        return self


Entry = Bill | FuelEntry | Clearance | HazardousMove
MODELS: dict[EntryKind, type[_Entry]] = {
    EntryKind.BILL: Bill, EntryKind.FUEL: FuelEntry,
    EntryKind.CLEARANCE: Clearance, EntryKind.HAZARDOUS: HazardousMove,
}


@dataclass(frozen=True, slots=True)
class PutResult:
    inserted: int
    updated: int
    unchanged: int


class Ledger(abc.ABC):
    """Port of the manual ledger. Adapters: `SqliteLedger` (embedded default), `PgLedger`
    (central/pgledger.py, PostgreSQL)."""

    # The institution an adapter is bound to (PgLedger); None: all it holds is one
    # institution's (a SQLite file of its own).
    institution: str | None = None

    @abc.abstractmethod
    def put(self, kind: EntryKind, entries: Sequence[_Entry]) -> PutResult:
        """Upsert by ref, all entries in one transaction."""

    @abc.abstractmethod
    def _select(self, kind: EntryKind, lo: float, hi: float, *, overlap: bool,
                end_open: bool) -> list[Any]:
        """Entries of `kind` whose [lo, hi] range overlaps the query range (`overlap`) or
        whose lo falls in it, ordered by lo and ref; `end_open` excludes lo == hi."""

    def bills(self, first: date, last: date) -> list[Bill]:
        """Bills whose period overlaps local days first…last inclusive, less those another
        bill `replaces` (wherever its period lies)."""
        found: list[Bill] = self._select(EntryKind.BILL, first.toordinal(),
                                         last.toordinal(), overlap=True, end_open=False)
        if not found:
            return found
        replaced = {b.replaces for b in self.all_bills() if b.replaces}
        return [b for b in found if b.ref not in replaced]

    def all_bills(self) -> list[Bill]:
        """Every bill, replaced ones included (the import's overlap check reads them)."""
        return self._select(EntryKind.BILL, -1e18, 1e18, overlap=True,
                            end_open=False)

    def fuel(self, first: date, last: date) -> list[FuelEntry]:
        """Fuel entries dated first…last inclusive."""
        return self._select(EntryKind.FUEL, first.toordinal(), last.toordinal(),
                            overlap=False, end_open=False)

    def clearances(self, start: float, end: float) -> list[Clearance]:
        """Clearances with start ≤ time < end (POSIX seconds)."""
        return self._select(EntryKind.CLEARANCE, start, end, overlap=False, end_open=True)

    def hazardous(self, start: float, end: float) -> list[HazardousMove]:
        """Store-log moves with start ≤ time < end."""
        return self._select(EntryKind.HAZARDOUS, start, end, overlap=False, end_open=True)

    def close(self) -> None:  # noqa: B027 - adapters without resources need nothing
        """Release the adapter's resources."""


class SqlLedger(Ledger):
    """The reads both SQL adapters share, written once with `?` placeholders; `_fetch`
    runs one in the adapter's database. Every read goes through `_read`, which reads from
    `_entries`: the SQLite file's table (the file is one institution's), or on PostgreSQL
    the rows of the one institution the ledger is bound to (`_scope` holds its parameters)."""

    _entries = "ledger_entries"
    _scope: tuple[Any, ...] = ()

    @abc.abstractmethod
    def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]: ...

    def _read(self, query: str, params: Sequence[Any]) -> list[Any]:
        """`query` reads `{entries}`: this ledger's entries, and nothing else."""
        return self._fetch(query.replace("{entries}", self._entries), (*self._scope, *params))

    def _select(self, kind: EntryKind, lo: float, hi: float, *, overlap: bool,
                end_open: bool) -> list[Any]:
        upper = "lo < ?" if end_open else "lo <= ?"
        lower = "hi >= ?" if overlap else "lo >= ?"
        rows = self._read(f"SELECT data FROM {{entries}} WHERE kind = ? AND {upper} AND "
                          f"{lower} ORDER BY lo, ref", (kind.value, hi, lo))
        model = MODELS[kind]
        return [model.model_validate(json.loads(data)) for (data,) in rows]

    def count(self) -> dict[str, int]:
        rows = self._read("SELECT kind, COUNT(*) FROM {entries} GROUP BY kind", ())
        return {str(k): int(n) for k, n in rows}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries (
    kind TEXT NOT NULL, ref TEXT NOT NULL,
    lo REAL NOT NULL, hi REAL NOT NULL,  -- ordinal days (bills, fuel) or POSIX seconds
    data TEXT NOT NULL, updated_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, ref)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ledger_by_range ON ledger_entries (kind, lo);
"""
SCHEMA_VERSION = 1


def _range(kind: EntryKind, entry: _Entry) -> tuple[float, float]:
    if isinstance(entry, Bill):
        return entry.period_start.toordinal(), entry.period_end.toordinal()
    if isinstance(entry, FuelEntry):
        return entry.day.toordinal(), entry.day.toordinal()
    if isinstance(entry, Clearance | HazardousMove):
        ts = entry.time.timestamp()
        return ts, ts
    raise TypeError(f"not a ledger entry of kind {kind}: {type(entry).__name__}")


class SqliteLedger(SqlLedger):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._conn = open_file(self.path, _SCHEMA, "ledger")
        try:
            self._conn.execute("INSERT OR IGNORE INTO ledger_meta (key, value) "
                               "VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.Error as exc:
            raise StoreError("ledger open", f"{self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError("ledger put", str(exc)) from exc
                raise

    def put(self, kind: EntryKind, entries: Sequence[_Entry]) -> PutResult:
        model = MODELS[kind]
        inserted = updated = unchanged = 0
        with self._transaction() as conn:
            for entry in entries:
                if not isinstance(entry, model):
                    raise TypeError(f"{kind} entries must be {model.__name__}")
                data = entry.model_dump_json()
                lo, hi = _range(kind, entry)
                row = conn.execute("SELECT data FROM ledger_entries WHERE kind = ? AND ref = ?",
                                   (kind.value, entry.ref)).fetchone()
                if row is None:
                    conn.execute("INSERT INTO ledger_entries (kind, ref, lo, hi, data) "
                                 "VALUES (?, ?, ?, ?, ?)", (kind.value, entry.ref, lo, hi, data))
                    inserted += 1
                elif row[0] != data:
                    conn.execute("UPDATE ledger_entries SET lo = ?, hi = ?, data = ?, "
                                 "updated_count = updated_count + 1 WHERE kind = ? AND ref = ?",
                                 (lo, hi, data, kind.value, entry.ref))
                    updated += 1
                else:
                    unchanged += 1
        return PutResult(inserted, updated, unchanged)

    def _fetch(self, query: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError("ledger query", str(exc)) from exc


def local_datetime(value: datetime, tz_key: str) -> datetime:
    """A naive time from a spreadsheet is local to the institution."""
    if value.tzinfo is not None:
        return value
    from zoneinfo import ZoneInfo

    return value.replace(tzinfo=ZoneInfo(tz_key))
