"""Differential property: any permutation and duplication of a stream's batches, delivered to
PostgreSQL, ends in exactly the rows SQLite holds after in-order delivery, with W = the last
seq (RELIABILITY.md scenario 8 across backends)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.pgstore import PgStore
from central.store import Store
from protocols.wire import Batch, Event, IntervalRecord, Record, Sample, Severity, StreamId
from tests.contracts.pg import APP_PASSWORD, PgServer

TABLES = ("samples", "latest", "intervals", "events", "streams", "pending", "edges")
_edges = itertools.count(1)


@pytest.fixture(scope="module")
def pg_store(pg_server: PgServer) -> Iterator[PgStore]:
    with PgStore(pg_server.dsn(pg_server.create_database("diff")),
                 password=APP_PASSWORD) as store:
        yield store


@st.composite
def chains(draw: st.DrawFn) -> list[tuple[int, int, tuple[Record, ...]]]:
    """(after, upto, records) of a stream: seqs with holes, mixed kinds, intervals that
    correct earlier ones (also within one batch), samples of equal timestamps."""
    out: list[tuple[int, int, tuple[Record, ...]]] = []
    seq = 0
    for _ in range(draw(st.integers(1, 5))):
        after = seq
        records: list[Record] = []
        for _ in range(draw(st.integers(1, 4))):
            seq += draw(st.integers(1, 3))
            kind = draw(st.sampled_from(["sample", "text", "interval", "event"]))
            if kind == "sample":
                records.append(Sample(seq=seq, ts=1_000 * draw(st.integers(0, 3)),
                                      device="m", point="power_w",
                                      value=float(draw(st.integers(0, 99))), unit="W"))
            elif kind == "text":
                records.append(Sample(seq=seq, ts=seq, device="m", point="mode",
                                      value=draw(st.sampled_from(["cool", "heat", True])),
                                      unit=""))
            elif kind == "interval":
                records.append(IntervalRecord(
                    seq=seq, device="m", point="energy_import_kwh",
                    start=900_000 * draw(st.integers(0, 2)), duration_s=900,
                    quantity=float(draw(st.integers(0, 99))), unit="kWh"))
            else:
                records.append(Event(seq=seq, ts=seq, name="e", severity=Severity.INFO,
                                     data={"n": seq, "文": "字"}))
        upto = seq + draw(st.integers(0, 1))  # a quarantined poison record at the end
        seq = upto
        out.append((after, upto, tuple(records)))
    return out


def rows_of(store: Store | PgStore, edge: str) -> dict[str, list[tuple[object, ...]]]:
    return {t: [r for r in store.rows(t) if r[0] == edge] for t in TABLES}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), chain=chains())
def test_postgres_after_any_delivery_equals_sqlite_in_order(
        pg_store: PgStore, data: st.DataObject,
        chain: list[tuple[int, int, tuple[Record, ...]]]) -> None:
    edge = f"edge-{next(_edges)}"
    stream = StreamId(edge, 3)
    batches = [Batch(stream, after, 0, True, recs) for after, _, recs in chain]
    uptos = {id(b): upto for b, (_, upto, _) in zip(batches, chain, strict=True)}
    extra = data.draw(st.lists(st.sampled_from(batches), max_size=5))
    delivery = data.draw(st.permutations(batches + extra))
    with Store(":memory:") as reference:
        for b in batches:
            reference.store_records(stream, b.after, uptos[id(b)], b.records, site="s",
                                    now=0.0)
        expected = rows_of(reference, edge)
    for b in delivery:
        pg_store.store_records(stream, b.after, uptos[id(b)], b.records, site="s", now=0.0)
    assert pg_store.watermark(stream) == chain[-1][1]
    assert rows_of(pg_store, edge) == expected
