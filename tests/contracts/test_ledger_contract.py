"""The `Ledger` contract against SQLite and PostgreSQL: upsert by (kind, ref) counted as
inserted/updated/unchanged, all-or-nothing puts, and the period selections reports use."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest

from central.energy import EnergyType
from central.ledger import (
    Bill,
    Clearance,
    EntryKind,
    FuelEntry,
    HazardousMove,
    Ledger,
    PutResult,
)
from central.pgledger import PgLedger
from tests.contracts.pg import APP_PASSWORD, PgServer


def bill(ref: str, first: date, last: date, quantity: float = 100.0) -> Bill:
    return Bill(ref=ref, energy=EnergyType.NATURAL_GAS, period_start=first, period_end=last,
                quantity=quantity)


def ts(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


def test_put_counts_inserts_updates_and_replays(ledger: Ledger) -> None:
    entries = [bill("g-1", date(2025, 1, 1), date(2025, 1, 31)),
               bill("g-2", date(2025, 2, 1), date(2025, 2, 28))]
    assert ledger.put(EntryKind.BILL, entries) == PutResult(2, 0, 0)
    assert ledger.put(EntryKind.BILL, entries) == PutResult(0, 0, 2)
    corrected = bill("g-2", date(2025, 2, 1), date(2025, 2, 28), quantity=120.0)
    assert ledger.put(EntryKind.BILL, [entries[0], corrected]) == PutResult(0, 1, 1)
    [_, got] = ledger.bills(date(2025, 1, 1), date(2025, 12, 31))
    assert got == corrected


def test_a_put_is_all_or_nothing(ledger: Ledger) -> None:
    good = bill("g-1", date(2025, 1, 1), date(2025, 1, 31))
    fuel = FuelEntry(ref="f-1", vehicle="car-1", day=date(2025, 1, 3), litres=40, km=300)
    with pytest.raises(TypeError, match="bill entries must be Bill"):
        ledger.put(EntryKind.BILL, [good, fuel])  # type: ignore[list-item]
    assert ledger.bills(date(2025, 1, 1), date(2025, 12, 31)) == []


def test_same_ref_in_different_kinds_is_two_entries(ledger: Ledger) -> None:
    ledger.put(EntryKind.BILL, [bill("r-1", date(2025, 1, 1), date(2025, 1, 1))])
    fuel = FuelEntry(ref="r-1", vehicle="car-1", day=date(2025, 1, 3), litres=40, km=300)
    assert ledger.put(EntryKind.FUEL, [fuel]) == PutResult(1, 0, 0)


def test_a_replaced_bill_no_longer_counts_wherever_its_correction_lies(
        ledger: Ledger) -> None:
    old = bill("jan", date(2025, 1, 1), date(2025, 1, 31))
    # The correction moves the period: the old one must vanish from January too.
    fixed = Bill(ref="jan-fixed", energy=EnergyType.NATURAL_GAS, period_start=date(2025, 2, 1),
                 period_end=date(2025, 2, 28), quantity=90.0, unit="m3", replaces="jan")
    ledger.put(EntryKind.BILL, [old, fixed])
    assert ledger.bills(date(2025, 1, 1), date(2025, 1, 31)) == []
    assert [b.ref for b in ledger.bills(date(2025, 1, 1), date(2025, 12, 31))] == ["jan-fixed"]
    assert [b.ref for b in ledger.all_bills()] == ["jan", "jan-fixed"]


def test_bills_overlap_and_fuel_is_inclusive(ledger: Ledger) -> None:
    ledger.put(EntryKind.BILL, [bill("jan", date(2025, 1, 1), date(2025, 1, 31)),
                                bill("q1", date(2025, 1, 1), date(2025, 3, 31)),
                                bill("apr", date(2025, 4, 1), date(2025, 4, 30))])
    assert [b.ref for b in ledger.bills(date(2025, 1, 31), date(2025, 2, 1))] == ["jan", "q1"]
    assert [b.ref for b in ledger.bills(date(2025, 3, 31), date(2025, 3, 31))] == ["q1"]
    ledger.put(EntryKind.FUEL, [
        FuelEntry(ref=f"f-{d}", vehicle="car-1", day=date(2025, 1, d), litres=40, km=300)
        for d in (1, 15, 31)])
    assert [f.ref for f in ledger.fuel(date(2025, 1, 1), date(2025, 1, 15))] == ["f-1", "f-15"]
    assert [f.ref for f in ledger.fuel(date(2025, 1, 31), date(2025, 2, 1))] == ["f-31"]


def test_clearances_and_hazardous_are_half_open(ledger: Ledger) -> None:
    ledger.put(EntryKind.CLEARANCE, [
        Clearance(ref=f"c-{d}", time=ts(d), category="kitchen", weight_kg=12.5)
        for d in (1, 2, 3)])
    got = ledger.clearances(ts(1).timestamp(), ts(3).timestamp())
    assert [c.ref for c in got] == ["c-1", "c-2"]
    assert got[0].time == ts(1)
    ledger.put(EntryKind.HAZARDOUS, [
        HazardousMove(ref="h-in", time=ts(1, 8), direction="in", item="lamps", quantity=3),
        HazardousMove(ref="h-out", time=ts(2, 8), direction="out", item="lamps", quantity=3,
                      manifest_no="M-1")])
    assert [h.ref for h in ledger.hazardous(ts(1).timestamp(), ts(2, 8).timestamp())] == ["h-in"]
    assert len(ledger.hazardous(ts(1).timestamp(), ts(3).timestamp())) == 2


def test_concurrent_imports_count_each_entry_once(pg_server: PgServer) -> None:
    """Two API processes importing the same file at once (PostgreSQL only: SQLite has one
    writer): every entry is inserted once, the other import sees it unchanged."""
    dsn = pg_server.dsn(pg_server.create_database())
    entries = [bill(f"g-{i}", date(2025, 1, 1), date(2025, 1, 31)) for i in range(200)]
    books = [PgLedger(dsn, "school", password=APP_PASSWORD) for _ in range(2)]
    results: list[PutResult] = []
    barrier = threading.Barrier(2)

    def run(book: PgLedger) -> None:
        barrier.wait()
        results.append(book.put(EntryKind.BILL, entries))

    threads = [threading.Thread(target=run, args=(b,)) for b in books]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for b in books:
        b.close()
    assert len(results) == 2
    assert sum(r.inserted for r in results) == 200
    assert sum(r.unchanged for r in results) == 200
    assert sum(r.updated for r in results) == 0
