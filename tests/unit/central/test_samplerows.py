"""The column checks ingest makes on a batch of samples give what the per-record loop
gives: the latest timestamp (future quarantine) and the clock counts (unsynced, far past)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from central.samplerows import clock_counts, max_ts, newest_per_point
from protocols.wire import Sample, SampleColumns

FLOOR = 946_684_800_000


@st.composite
def batches(draw: st.DrawFn) -> list[Sample]:
    n = draw(st.integers(min_value=1, max_value=12))
    return [Sample(i + 1, draw(st.sampled_from([0, FLOOR - 1, FLOOR, FLOOR + 5, 2 * FLOOR])),
                   draw(st.sampled_from(["m1", "m2"])), draw(st.sampled_from(["p", "q"])),
                   1.0, "W", draw(st.booleans())) for i in range(n)]


def _columns(samples: list[Sample]) -> SampleColumns:
    synced = [s.synced for s in samples]
    return SampleColumns([s.seq for s in samples], [s.ts for s in samples],
                         [s.device for s in samples], [s.point for s in samples],
                         [s.value for s in samples], [s.unit for s in samples],
                         None if all(synced) else synced)


@given(batches())
def test_column_checks_equal_the_per_record_ones(samples: list[Sample]) -> None:
    cols = _columns(samples)
    assert max_ts(cols) == max_ts(tuple(samples)) == max(s.ts for s in samples)
    assert clock_counts(cols, FLOOR) == clock_counts(tuple(samples), FLOOR) == (
        sum(not s.synced for s in samples), sum(s.ts < FLOOR for s in samples))
    newest: dict[tuple[str, str], Sample] = {}
    for s in samples:  # the newest by (ts, seq) per point
        old = newest.get((s.device, s.point))
        if old is None or (s.ts, s.seq) > (old.ts, old.seq):
            newest[(s.device, s.point)] = s
    assert sorted(cols[i].seq for i in newest_per_point(cols)) == sorted(
        s.seq for s in newest.values())
