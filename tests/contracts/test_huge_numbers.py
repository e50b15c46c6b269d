"""Numbers no store column can hold, on SQLite and PostgreSQL alike: a sample value beyond 64
bits arriving over the wire is quarantined by ingest (named in the dead letter, the batch's
other records stored and acknowledged), and a store handed one directly fails the write
with a `StoreError` (no ack), never an `OverflowError` that escapes ingest."""

from __future__ import annotations

import json

import pytest

from central.errors import StoreError
from central.ingest import Ingestor, IngestStats
from central.storeport import FullStore
from central.triage import StoreBatch
from protocols.clock import VirtualClock
from protocols.wire import SampleColumns, StreamId, encode
from tests.unit.central.central_helpers import batch, event, interval, sample

TELEMETRY = "gg/v1/site-1/edge-1/telemetry"
NOW = 1_750_000_000.0
S1 = StreamId("edge-1", 1)


def _payload(values: list[object], *, mixed: bool) -> bytes:
    """A batch of samples seq 1… with these values (and an interval record after them when
    `mixed`, so the records are decoded one by one instead of as columns)."""
    records = [sample(i + 1) for i in range(len(values))]
    obj = json.loads(encode(batch(records + ([interval(len(values) + 1)] if mixed else []),
                                  after=0)))
    for i, value in enumerate(values):
        obj["records"][i]["value"] = value
    return json.dumps(obj).encode()


@pytest.mark.parametrize("mixed", [False, True], ids=["columns", "records"])
@pytest.mark.parametrize("huge", [2**70, -(2**70), 2**63, -(2**63) - 1, 10**400],
                         ids=["2^70", "-2^70", "2^63", "-2^63-1", "10^400"])
def test_a_sample_beyond_64_bits_is_quarantined_and_the_rest_stored(
        store: FullStore, huge: int, mixed: bool) -> None:
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    out = ingestor.handle(TELEMETRY, _payload([1.5, huge, 2**63 - 1, -(2**63)], mixed=mixed))
    assert out is not None
    assert out.ack.upto == (5 if mixed else 4)
    assert ingestor.stats.store_errors == 0
    assert ingestor.stats.dead_letters == 1
    [dl] = store.dead_letters()
    assert dl.error.startswith("records[1].value: integer beyond 64 bits")
    assert json.loads(dl.payload)["record"]["seq"] == 2
    counts = store.counts()
    assert counts["samples"] == 3
    # (PostgreSQL keeps numbers as doubles, SQLite keeps the integers exact)
    values = sorted((r[2], float(r[6])) for r in store.rows("samples"))
    assert values == [(1, 1.5), (3, float(2**63 - 1)), (4, float(-(2**63)))]


def test_an_infinite_sample_is_quarantined(store: FullStore) -> None:
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    payload = _payload([1.5, 0, 2.5], mixed=False).replace(b'"value": 0,', b'"value": 1e400,')
    assert b"1e400" in payload
    out = ingestor.handle(TELEMETRY, payload)
    assert out is not None
    assert out.ack.upto == 3
    [dl] = store.dead_letters()
    assert dl.error.startswith("records[1].value: must be finite")
    assert store.counts()["samples"] == 2


def test_huge_integers_where_they_are_storable_are_kept(store: FullStore) -> None:
    """An interval quantity is a double (2^70 is kept as 1.18e21); event data is JSON text,
    so an integer of any size in it comes back as sent."""
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    obj = json.loads(encode(batch([interval(1), event(2)], after=0)))
    obj["records"][0]["quantity"] = 2**70
    obj["records"][1]["data"] = {"big": 2**70, "small": -(2**70)}
    out = ingestor.handle(TELEMETRY, json.dumps(obj).encode())
    assert out is not None
    assert out.ack.upto == 2
    assert ingestor.stats.dead_letters == 0
    [stored] = store.interval_records(["edge-1"], 0, 2**62, limit=10)
    assert stored.quantity == float(2**70)
    [ev] = store.events(["edge-1"], limit=10)
    assert json.loads(ev.data) == {"big": 2**70, "small": -(2**70)}


@pytest.mark.parametrize("as_columns", [False, True], ids=["records", "columns"])
def test_a_store_handed_an_unstorable_number_fails_the_write(store: FullStore,
                                                             as_columns: bool) -> None:
    """The store's own guard, for records that did not come through the decoder: 10^400
    overflows SQLite's integer and PostgreSQL's double alike."""
    records = [sample(1), sample(2, value=10**400)]
    written = SampleColumns(*zip(*((r.seq, r.ts, r.device, r.point, r.value, r.unit)
                                   for r in records), strict=True)) if as_columns \
        else tuple(records)
    with pytest.raises(StoreError, match="too large"):
        store.store_records(S1, 0, 2, written, site="site-1", now=NOW)
    assert store.counts()["samples"] == 0
    result = store.store_records(S1, 0, 2, (sample(1), sample(2)), site="site-1", now=NOW)
    assert (result.watermark, result.inserted) == (2, 2)


def test_ingest_counts_a_store_overflow_as_a_store_error(store: FullStore) -> None:
    """Even if such a record reached the store, ingest withholds the ack and counts it."""
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    bad = StoreBatch("site-1", S1, 0, 1, (sample(1, value=10**400),))
    assert ingestor.commit([bad]) == []
    assert ingestor.stats.store_errors == 1
    assert "too large" in (ingestor.stats.last_error or "")
