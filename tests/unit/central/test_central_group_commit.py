"""Group commit: batches that queue up while the store is busy go into one transaction and
each stream is acknowledged once, with its last watermark, after the commit — the same
stored rows and watermarks as one transaction per batch; on a failed write, nothing."""

from __future__ import annotations

from pathlib import Path

from central.ingest import Ingestor, IngestStats
from central.store import Store
from central.storeport import BatchWrite
from protocols.clock import VirtualClock
from protocols.wire import Batch, Birth, StreamId, encode
from tests.unit.central.central_helpers import batch, interval, sample

NOW = 1_750_000_000.0
TOPIC = "gg/v1/site-1/{edge}/telemetry"


def batches() -> list[Batch]:
    return [
        batch([sample(1), sample(2, ts=1_735_689_601_000, value=5.0)], after=0),
        batch([sample(6, ts=1_735_689_606_000)], after=4),  # arrives before its predecessor
        batch([sample(1, device="meter-b")], after=0, edge="edge-2"),
        batch([sample(3, ts=1_735_689_603_000, value=7.0), interval(4)], after=2),
        batch([sample(1), sample(2, ts=1_735_689_601_000, value=5.0)], after=0),  # replay
    ]


def test_one_transaction_stores_what_one_per_batch_stores(tmp_path: Path) -> None:
    one_by_one = Store(tmp_path / "a.sqlite")
    grouped = Store(tmp_path / "b.sqlite")
    expected = [one_by_one.store_records(b.stream, b.after, b.seq, b.records, site="s",
                                         now=NOW) for b in batches()]
    got = grouped.store_many([BatchWrite(b.stream, b.after, b.seq, b.records, "s")
                              for b in batches()], now=NOW)
    assert got == expected
    assert [r.watermark for r in got] == [2, 2, 1, 6, 6]
    for table in ("samples", "latest", "intervals", "streams", "pending"):
        assert grouped.rows(table) == one_by_one.rows(table), table
    [latest] = [row for row in grouped.rows("latest") if row[1] == "meter-a"]
    assert latest[4] == 1000.0  # seq 6 at the latest ts wins, whatever the order


def test_commit_acks_each_stream_once_with_its_last_watermark(store: Store) -> None:
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    items = [ingestor.prepare(TOPIC.format(edge=b.stream.edge), encode(b)) for b in batches()]
    birth = Birth(StreamId("edge-1", 1), 1_750_000_000_000, True, "0.1.0")
    items.insert(2, ingestor.prepare("gg/v1/site-1/edge-1/state", encode(birth)))
    items.append(ingestor.prepare(TOPIC.format(edge="edge-1"), b"garbage"))
    acks = ingestor.commit(items)
    assert sorted((a.ack.stream.edge, a.ack.upto) for a in acks) == [("edge-1", 6),
                                                                      ("edge-2", 1)]
    s = ingestor.stats
    assert (s.received, s.batches, s.births, s.dead_letters) == (7, 5, 1, 1)
    assert (s.stored_records, s.duplicates) == (6, 2)
    assert sum(s.store_write_counts) == 2  # the birth split the batches into two groups


def test_a_failed_group_stores_and_acknowledges_nothing(store: Store) -> None:
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # disk full
    big = batch([sample(i, value="x" * 3000) for i in range(3, 60)], after=2)
    items = [ingestor.prepare(TOPIC.format(edge="edge-1"), encode(b))
             for b in (batch([sample(1), sample(2)], after=0), big)]
    assert ingestor.commit(items) == []
    assert store.counts()["samples"] == 0  # the small batch was not half-committed
    assert store.watermark(StreamId("edge-1", 1)) == 0
    assert ingestor.stats.store_errors == 1
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    [ack] = ingestor.commit(items)
    assert ack.ack.upto == 59
