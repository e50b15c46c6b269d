"""Property: any permutation and duplication of a stream's batches ends in the same stored
rows and W = the last seq (RELIABILITY.md scenario 8, duplicate/reordered replay storm)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from central.store import Store
from protocols.wire import Batch, Event, IntervalRecord, Record, Sample, Severity, StreamId

STREAM = StreamId("edge-1", 7)
TABLES = ("samples", "latest", "intervals", "events", "streams", "pending", "edges")


@st.composite
def chains(draw: st.DrawFn) -> list[Batch]:
    """A stream's batches: seqs with holes, mixed record kinds, and intervals that correct
    an earlier record of the same interval."""
    batches: list[Batch] = []
    seq = 0
    for _ in range(draw(st.integers(1, 6))):
        after = seq
        records: list[Record] = []
        for _ in range(draw(st.integers(1, 4))):
            seq += draw(st.integers(1, 3))  # holes: dropped outbox rows
            kind = draw(st.sampled_from(["sample", "interval", "event"]))
            if kind == "sample":
                records.append(Sample(seq=seq, ts=1_000 * draw(st.integers(0, 3)),
                                      device="m", point="power_w",
                                      value=float(draw(st.integers(0, 99))), unit="W"))
            elif kind == "interval":
                records.append(IntervalRecord(
                    seq=seq, device="m", point="energy_import_kwh",
                    start=900_000 * draw(st.integers(0, 3)), duration_s=900,
                    quantity=float(draw(st.integers(0, 99))), unit="kWh"))
            else:
                records.append(Event(seq=seq, ts=seq, name="e", severity=Severity.INFO))
        batches.append(Batch(STREAM, after, 0, True, tuple(records)))
    return batches


def final_rows(batches: list[Batch]) -> tuple[dict[str, list[tuple[object, ...]]], int]:
    with Store(":memory:") as store:
        w = 0
        for b in batches:
            w = store.store_batch(b, "site", now=0.0)
        return {t: store.rows(t) for t in TABLES}, w


@settings(max_examples=150, deadline=None)
@given(data=st.data(), chain=chains())
def test_any_delivery_order_gives_the_same_rows(data: st.DataObject,
                                                chain: list[Batch]) -> None:
    extra = data.draw(st.lists(st.sampled_from(chain), max_size=6))
    delivery = data.draw(st.permutations(chain + extra))
    expected, w_in_order = final_rows(chain)
    got, w = final_rows(delivery)
    assert w == w_in_order == chain[-1].seq
    assert got == expected
    unique = {r.seq for b in chain for r in b.records}
    stored = len(got["samples"]) + len(got["events"])
    assert stored == sum(1 for b in chain for r in b.records
                         if not isinstance(r, IntervalRecord))
    assert stored <= len(unique)
    assert got["pending"] == []
