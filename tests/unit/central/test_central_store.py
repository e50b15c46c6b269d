"""The store half of the ack contract: dedup, upsert, watermark and pending ranges."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from central.config import MeterKey
from central.errors import StoreError
from central.store import Quarantine, Store
from protocols.wire import StreamId
from tests.unit.central.central_helpers import batch, event, interval, local_ms, sample

S1 = StreamId("edge-1", 1)


def test_duplicate_batch_is_stored_once(store: Store) -> None:
    b = batch([sample(1), interval(2), event(3)], after=0)
    first = store.store_records(b.stream, b.after, b.seq, b.records, site="s", now=1.0)
    again = store.store_records(b.stream, b.after, b.seq, b.records, site="s", now=2.0)
    assert (first.watermark, first.inserted, first.duplicates) == (3, 3, 0)
    assert (again.watermark, again.inserted, again.duplicates) == (3, 0, 3)
    counts = store.counts()
    assert (counts["samples"], counts["intervals"], counts["events"]) == (1, 1, 1)
    assert store.store_batch(b, "s", now=3.0) == 3


def test_replayed_interval_is_an_idempotent_upsert(store: Store) -> None:
    store.store_batch(batch([interval(1, quantity=1.5)], after=0), "s")
    # A newer record of the same interval (re-estimated after a gap) replaces it ...
    store.store_batch(batch([interval(7, quantity=2.5)], after=1), "s")
    # ... an older one arriving late, or a replay, changes nothing.
    store.store_batch(batch([interval(1, quantity=1.5)], after=0), "s")
    store.store_batch(batch([interval(7, quantity=2.5)], after=1), "s")
    rows = store.rows("intervals")
    assert len(rows) == 1
    assert rows[0][5] == 2.5
    assert rows[0][-1] == 7


def test_out_of_order_batches_advance_only_when_the_gap_fills(store: Store) -> None:
    # Seqs have holes (4, 6 and 8 were dropped by the edge); only the `after` chain counts.
    b1 = batch([sample(1), sample(2), sample(3)], after=0)
    b2 = batch([sample(5)], after=3)
    b3 = batch([sample(7), sample(9)], after=5)
    assert store.store_batch(b3, "s") == 0
    assert store.pending_ranges(S1) == [(5, 9)]
    assert store.store_batch(b2, "s") == 0
    assert store.pending_ranges(S1) == [(3, 5), (5, 9)]
    assert store.store_batch(b1, "s") == 9
    assert store.pending_ranges(S1) == []
    assert store.counts()["samples"] == 6


def test_batch_starting_at_the_last_acknowledged_seq(store: Store) -> None:
    assert store.store_batch(batch([sample(1), sample(2)], after=0), "s") == 2
    # The edge lost our ack and resends from its persisted last-acknowledged seq (0), with
    # more records appended: the overlap is absorbed and W moves on.
    assert store.store_batch(batch([sample(1), sample(2), sample(4)], after=0), "s") == 4
    assert store.counts()["samples"] == 3


def test_watermark_and_pending_survive_reopen(db_path: Path) -> None:
    with Store(db_path) as s:
        s.store_batch(batch([sample(1)], after=0), "s")
        s.store_batch(batch([sample(5)], after=3), "s")
    with Store(db_path) as s:
        assert s.watermark(S1) == 1
        assert s.pending_ranges(S1) == [(3, 5)]
        assert s.store_batch(batch([sample(2), sample(3)], after=1), "s") == 5
    with Store(db_path, readonly=True) as r:
        assert r.watermark(S1) == 5
        with pytest.raises(StoreError):
            r.store_batch(batch([sample(6)], after=5), "s")


def test_new_epoch_starts_at_zero_and_is_not_a_duplicate(store: Store) -> None:
    store.store_batch(batch([sample(1), sample(2)], after=0, epoch=1), "s")
    # The edge was wiped: a new installation epoch restarts at seq 1.
    assert store.store_batch(batch([sample(1)], after=0, epoch=2), "s") == 1
    assert store.watermark(StreamId("edge-1", 1)) == 2
    assert store.counts()["samples"] == 3


def test_quarantine_is_committed_with_the_batch(store: Store) -> None:
    q = Quarantine("gg/v1/s/edge-1/telemetry", b'{"bad":1}', "records[1].unit: missing")
    r = store.store_records(S1, 0, 3, [sample(1)], site="s", now=5.0, quarantine=[q])
    assert (r.watermark, r.inserted, r.quarantined) == (3, 1, 1)
    [dl] = store.dead_letters()
    assert (dl.topic, dl.payload, dl.count, dl.first_seen) == (q.topic, q.payload, 1, 5.0)


def test_dead_letters_are_counted_not_duplicated(store: Store) -> None:
    q = Quarantine("gg/v1/s/e/telemetry", b"\xff" * 100_000, "not JSON")
    store.dead_letter(q, now=1.0)
    store.dead_letter(q, now=2.0)
    [dl] = store.dead_letters()
    assert dl.count == 2
    assert dl.size == 100_000
    assert len(dl.payload) == 64 * 1024
    assert (dl.first_seen, dl.last_seen) == (1.0, 2.0)
    assert store.counts()["dead_letter_refusals"] == 2


def test_failed_write_rolls_back_everything(store: Store) -> None:
    store.store_batch(batch([sample(1)], after=0), "s")
    # Simulate a full disk: SQLite may not grow the file any more.
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = [sample(i, value="x" * 2000) for i in range(2, 200)]
    with pytest.raises(StoreError, match="full"):
        store.store_batch(batch(big, after=1), "s")
    assert store.watermark(S1) == 1
    assert store.counts()["samples"] == 1


def test_interval_sums_prorate_straddling_intervals(store: Store) -> None:
    midnight = local_ms(2025, 3, 1)
    hour = 3_600_000
    recs = [
        interval(1, start=midnight - hour, quantity=4.0, duration_s=7200),  # half in March 1
        interval(2, start=midnight, quantity=10.0, duration_s=3600),
        interval(3, start=midnight + 23 * hour, quantity=6.0, duration_s=7200),  # half
        interval(4, start=midnight, quantity=1.0, device="water-a", point="water_m3",
                 unit="m3", duration_s=3600),
    ]
    store.store_batch(batch(recs, after=0), "s")
    a = MeterKey("edge-1", "meter-a", "energy_import_kwh")
    w = MeterKey("edge-1", "water-a", "water_m3")
    sums = store.interval_sums(midnight, midnight + 24 * hour)
    assert sums == {a: pytest.approx(2.0 + 10.0 + 3.0), w: 1.0}
    other = MeterKey("edge-9", "x", "y")
    # First hour of March 1: half of interval 1 plus all of interval 2.
    assert store.interval_sums(midnight, midnight + hour, [a, other]) == {a: 2.0 + 10.0,
                                                                          other: 0.0}
    days = store.daily_sums(date(2025, 2, 28), date(2025, 3, 2), ZoneInfo("Asia/Shanghai"), [a])
    assert days == {date(2025, 2, 28): {a: 2.0}, date(2025, 3, 1): {a: 15.0},
                    date(2025, 3, 2): {a: 3.0}}


def test_latest_sample_per_point(store: Store) -> None:
    store.store_batch(batch([sample(1, ts=2000, value=5.0), sample(2, ts=1000, value=9.0),
                             sample(3, point="on", value=True, unit="")], after=0), "s")
    latest = store.latest_samples()
    assert latest[MeterKey("edge-1", "meter-a", "power_w")].value == 5.0
    assert latest[MeterKey("edge-1", "meter-a", "on")].value is True
    assert set(store.latest_samples(["on"])) == {MeterKey("edge-1", "meter-a", "on")}
