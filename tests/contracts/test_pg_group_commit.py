"""PostgreSQL group commit (`PgStore.store_many`: the batches that queued up in one
transaction, stream locks first in sorted order): four workers storing groups that mix two
epochs of one edge, in random order with duplicates, at the same time, lose and double
nothing, and a group of new and resent batches gives the counts batch-by-batch writes give."""

from __future__ import annotations

import random
import threading

import pytest

from central.pgstore import PgStore
from central.storeport import BatchWrite, FullStore
from protocols.wire import Batch, StreamId
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.contracts.test_postgres import chain


def _write(b: Batch) -> BatchWrite:
    return BatchWrite(b.stream, b.after, b.seq, b.records, "s")


def test_concurrent_groups_on_two_streams_lose_nothing(pg_server: PgServer,
                                                       request: pytest.FixtureRequest) -> None:
    dsn = pg_server.dsn(pg_server.create_database())
    streams = {1: chain("edge-1", 1, 30), 2: chain("edge-1", 2, 30)}
    work = [b for c in streams.values() for b in c] * 2
    random.Random(11).shuffle(work)
    stores = [PgStore(dsn, password=APP_PASSWORD) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(i: int, store: PgStore) -> None:
        try:
            barrier.wait()
            mine = work[i::len(stores)]
            for g in range(0, len(mine), 3):
                store.store_many([_write(b) for b in mine[g:g + 3]], now=1.0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for s in stores:
        s.close()
    assert errors == []
    check = PgStore(dsn, password=APP_PASSWORD, readonly=True)
    request.addfinalizer(check.close)
    for epoch, c in streams.items():
        assert check.watermark(StreamId("edge-1", epoch)) == c[-1].seq
        assert check.pending_ranges(StreamId("edge-1", epoch)) == []
    counts = check.counts()
    assert (counts["samples"], counts["events"], counts["pending"]) == (60, 60, 0)


def test_a_group_counts_as_its_batches_one_by_one(store: FullStore) -> None:
    """Both backends: a group with a gap, its filler, and a resend in it."""
    c = chain("edge-1", 1, 4)
    group = [c[1], c[0], c[1], c[2]]  # ahead, the gap filled, a duplicate, the next one
    results = store.store_many([_write(b) for b in group], now=1.0)
    assert [r.watermark for r in results] == [0, c[1].seq, c[1].seq, c[2].seq]
    assert [(r.inserted, r.duplicates) for r in results][2] == (0, 3)
    assert sum(r.inserted for r in results) == 9
