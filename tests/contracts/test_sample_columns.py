"""Samples decoded as columns (`SampleColumns`, central/samplerows.py) are stored exactly as
the same samples given one by one: same rows, same latest values, same counts, on both
backends. Each case stores the columnar form in one store and the per-record form in a
second one, then compares every table."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from central.storeport import FullStore
from protocols.wire import Sample, SampleColumns, StreamId

S = StreamId("edge-1", 7)


def _columns(samples: list[Sample]) -> SampleColumns:
    synced = [s.synced for s in samples]
    return SampleColumns([s.seq for s in samples], [s.ts for s in samples],
                         [s.device for s in samples], [s.point for s in samples],
                         [s.value for s in samples], [s.unit for s in samples],
                         None if all(synced) else synced)


CASES = {
    "numbers": [Sample(i, 1_750_000_000_000 + i * 1000, f"m{i % 3}", "power_w", i * 1.5, "W")
                for i in range(1, 31)],
    # ints, booleans and strings side by side; a timestamp going backwards (the newest of a
    # point is then not its last sample), an unsynced clock, a unit with NUL
    "mixed": [Sample(1, 1_750_000_005_000, "ac-1", "on", True, ""),
              Sample(2, 1_750_000_001_000, "ac-1", "on", False, ""),
              Sample(3, 1_750_000_002_000, "ac-1", "mode", "cool", "", synced=False),
              Sample(4, 1_750_000_002_000, "ac-1", "mode", "heat", ""),
              Sample(5, 1_750_000_000_000, "m1", "count", 7, "pcs"),
              Sample(6, 1_750_000_000_000, "m1", "power_w", 2.5, "W\x00")],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_columns_are_stored_as_the_records_are(
        reopen_store: Callable[..., FullStore], case: str) -> None:
    samples = CASES[case]
    columnar, plain = reopen_store(), reopen_store()
    # the second open of the same database would share it: use the edge id to tell apart
    other = StreamId("edge-2", 7)
    cols = _columns(samples)
    got = [columnar.store_records(S, 0, samples[-1].seq, cols, site="s", now=1.0),
           columnar.store_records(S, 0, samples[-1].seq, cols, site="s", now=2.0)]
    want = [plain.store_records(other, 0, samples[-1].seq, tuple(samples), site="s", now=1.0),
            plain.store_records(other, 0, samples[-1].seq, tuple(samples), site="s", now=2.0)]
    assert got == want  # inserted on the first write, duplicates on the replay
    assert got[0].inserted == len(samples)
    assert got[1].duplicates == len(samples)
    for table in ("samples", "latest"):
        rows = columnar.rows(table)
        assert [r[1:] for r in rows if r[0] == "edge-1"] == [
            r[1:] for r in rows if r[0] == "edge-2"], table
    # The AC day cache's per-day sample counts (central/accache.py, central/pgaccache.py)
    # are bumped from the columns too, replays included, on both backends.
    days = [tuple(r) for r in columnar._query(  # type: ignore[attr-defined]
        "SELECT edge, device, point, bucket, gen FROM sample_days ORDER BY 1, 2, 3, 4")]
    assert days
    assert [r[1:] for r in days if r[0] == "edge-1"] == [r[1:] for r in days
                                                         if r[0] == "edge-2"]


def test_the_columns_read_back_as_samples() -> None:
    samples = CASES["mixed"]
    cols = _columns(samples)
    assert list(cols) == samples
    assert cols == tuple(samples)
    assert tuple(samples) == cols
    assert cols[2] == samples[2]
    assert cols[-1] == samples[-1]
    assert cols[1:3] == tuple(samples[1:3])
    assert len(cols) == 6
    assert cols.unsynced() == 1


@pytest.mark.parametrize("columnar", [True, False])
def test_a_resend_overlapping_a_pending_range_is_stored_once(store: FullStore,
                                                             columnar: bool) -> None:
    """A batch above the watermark normally holds only new records (PostgreSQL then COPYs
    it, central/pgcopy.py); a resend of a batch that arrived ahead of its predecessor, cut
    differently this time, overlaps its pending range: the stored part is absorbed, the new
    part stored, and the chain still closes."""
    def part(first: int, last: int) -> list[Sample]:
        return [Sample(s, 1_750_000_000_000 + s * 1000, "m1", "power_w", float(s), "W")
                for s in range(first, last + 1)]

    def put(after: int, samples: list[Sample]) -> tuple[int, int, int]:
        records = _columns(samples) if columnar else tuple(samples)
        r = store.store_records(S, after, samples[-1].seq, records, site="s", now=1.0)
        return r.watermark, r.inserted, r.duplicates

    assert put(10, part(11, 20)) == (0, 10, 0)  # ahead of its predecessor: pending
    assert put(10, part(11, 25)) == (0, 5, 10)  # resent, cut longer: overlaps the pending
    assert put(0, part(1, 10)) == (25, 10, 0)  # the gap fills
    assert put(20, part(21, 25)) == (25, 0, 5)  # at or below the watermark: all stored
    rows = store.rows("samples")
    assert [r[2] for r in rows] == list(range(1, 26))
