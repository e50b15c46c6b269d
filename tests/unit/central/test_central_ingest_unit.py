"""Ingest without a broker: triage, dead letters, store failures (no ack), edge state."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.ingest import Ingestor, IngestStats, backoff_delays
from central.store import Store
from central.triage import Rejected, StoreBatch, triage
from protocols.clock import VirtualClock
from protocols.wire import Ack, Birth, Death, DeviceInfo, StreamId, decode, encode
from tests.unit.central.central_helpers import batch, interval, sample

TELEMETRY = "gg/v1/site-1/edge-1/telemetry"
STATE = "gg/v1/site-1/edge-1/state"
NOW = 1_750_000_000.0


@pytest.fixture
def ingestor(store: Store) -> Ingestor:
    return Ingestor(store, VirtualClock(NOW), IngestStats())


def test_batch_is_stored_then_acked_on_the_edge_ack_topic(ingestor: Ingestor) -> None:
    out = ingestor.handle(TELEMETRY, encode(batch([sample(1), interval(2)], after=0)))
    assert out is not None
    assert out.topic == "gg/v1/site-1/edge-1/ack"
    assert decode(out.payload) == Ack(StreamId("edge-1", 1), 2)
    again = ingestor.handle(TELEMETRY, encode(batch([sample(1), interval(2)], after=0)))
    assert again is not None
    assert again.ack.upto == 2
    s = ingestor.stats
    assert (s.received, s.batches, s.stored_records, s.duplicates) == (2, 2, 2, 2)
    [edge] = ingestor.store.edges()
    assert edge.last_seen == NOW
    assert edge.site == "site-1"


def test_out_of_order_batch_is_acked_with_the_current_watermark(ingestor: Ingestor) -> None:
    early = ingestor.handle(TELEMETRY, encode(batch([sample(5)], after=3)))
    assert early is not None
    assert early.ack.upto == 0
    filled = ingestor.handle(TELEMETRY, encode(batch([sample(2), sample(3)], after=0)))
    assert filled is not None
    assert filled.ack.upto == 5


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        (TELEMETRY, b"\x00\xffgarbage", "not valid JSON"),
        (TELEMETRY, b'{"v": 2, "type": "batch"}', "unsupported version"),
        ("gg/v1/site-1/edge-2/telemetry", encode(batch([sample(1)], after=0)), "does not match"),
        ("not/a/topic", encode(batch([sample(1)], after=0)), "expected gg/v1"),
        (STATE, encode(batch([sample(1)], after=0)), "state channel"),
        (TELEMETRY, encode(Ack(StreamId("edge-1", 1), 3)), "not an uplink message"),
        (TELEMETRY, encode(Death(StreamId("edge-1", 1))), "belongs on the state channel"),
    ],
)
def test_refused_payloads_become_dead_letters(ingestor: Ingestor, topic: str, payload: bytes,
                                              why: str) -> None:
    assert ingestor.handle(topic, payload) is None
    [dl] = ingestor.store.dead_letters()
    assert (dl.topic, dl.payload) == (topic, payload)
    assert why in dl.error
    assert dl.first_seen == NOW
    assert ingestor.stats.dead_letters == 1
    assert ingestor.store.counts()["samples"] == 0


def test_poison_record_is_quarantined_and_the_rest_stored(ingestor: Ingestor) -> None:
    obj = json.loads(encode(batch([sample(1), sample(2), sample(3)], after=0)))
    obj["records"][1]["value"] = {"nested": "object"}  # invalid value type
    out = ingestor.handle(TELEMETRY, json.dumps(obj).encode())
    assert out is not None
    assert out.ack.upto == 3
    assert ingestor.store.counts()["samples"] == 2
    [dl] = ingestor.store.dead_letters()
    assert dl.error.startswith("records[1].value: must be a number")
    assert json.loads(dl.payload)["record"]["seq"] == 2
    assert ingestor.stats.dead_letters == 1
    assert ingestor.stats.stored_records == 2


def test_poison_last_record_still_advances_to_the_envelope_seq(ingestor: Ingestor) -> None:
    obj = json.loads(encode(batch([sample(1), sample(2)], after=0)))
    del obj["records"][1]["unit"]
    out = ingestor.handle(TELEMETRY, json.dumps(obj).encode())
    assert out is not None
    assert out.ack.upto == 2
    obj["records"][0]["device"] = "bad device"
    out = ingestor.handle(TELEMETRY, json.dumps(obj).encode())  # nothing good left
    assert out is not None
    assert out.ack.upto == 2
    assert ingestor.store.counts()["samples"] == 1


def test_broken_envelope_is_not_salvaged(ingestor: Ingestor) -> None:
    obj = json.loads(encode(batch([sample(1), sample(2)], after=0)))
    del obj["records"][1]["unit"]
    obj["after"] = "zero"
    assert ingestor.handle(TELEMETRY, json.dumps(obj).encode()) is None
    obj["after"] = 0
    obj["records"][0]["seq"] = 5  # chain out of order: not a per-record problem
    assert ingestor.handle(TELEMETRY, json.dumps(obj).encode()) is None
    assert ingestor.store.counts()["samples"] == 0
    assert ingestor.stats.dead_letters == 2


def test_store_failure_sends_no_ack_and_recovers(ingestor: Ingestor) -> None:
    store = ingestor.store
    (pages,) = store._conn.execute("PRAGMA page_count").fetchone()
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # disk full
    big = batch([sample(i, value="x" * 3000) for i in range(1, 100)], after=0)
    assert ingestor.handle(TELEMETRY, encode(big)) is None
    assert ingestor.stats.store_errors == 1
    assert ingestor.stats.acks_sent == 0
    assert "full" in (ingestor.stats.last_error or "")
    store._conn.execute("PRAGMA max_page_count = 1073741823")  # space freed
    out = ingestor.handle(TELEMETRY, encode(big))
    assert out is not None
    assert out.ack.upto == 99


def test_birth_and_death_track_edge_state(ingestor: Ingestor) -> None:
    birth = Birth(StreamId("edge-1", 2), ts=1_750_000_000_000, synced=True, software="0.1.0",
                  devices=(DeviceInfo("meter-a", "modbus", "eastron-sdm120", ("power_w",)),))
    assert ingestor.handle(STATE, encode(birth)) is None
    [e] = ingestor.store.edges()
    assert (e.online, e.epoch, e.software, e.devices[0]["model"]) == (
        True, 2, "0.1.0", "eastron-sdm120")
    ingestor.handle(STATE, encode(Death(StreamId("edge-1", 1))))  # stale will: ignored
    assert ingestor.store.edges()[0].online is True
    ingestor.handle(STATE, encode(Death(StreamId("edge-1", 2))))
    assert ingestor.store.edges()[0].online is False
    assert (ingestor.stats.births, ingestor.stats.deaths) == (1, 2)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    delays = backoff_delays(0.5, 8.0, random.Random(1))
    got = [next(delays) for _ in range(8)]
    bases = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert all(b / 2 <= d <= b for d, b in zip(got, bases, strict=True))
    assert len(set(got)) == len(got)  # jittered, not lock-step


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(path=st.lists(st.sampled_from(["records", 0, 1, "seq", "value", "after", "stream",
                                      "edge", "unit", "kind"]), min_size=1, max_size=3),
       replacement=_JSON, raw=st.binary(max_size=64))
def test_triage_never_raises(path: list[str | int], replacement: object, raw: bytes) -> None:
    obj = json.loads(encode(batch([sample(1), interval(2)], after=0)))
    target = obj
    for key in path[:-1]:
        try:
            target = target[key]
        except (KeyError, IndexError, TypeError):
            break
    key = path[-1]
    settable_dict = isinstance(target, dict) and isinstance(key, str)
    settable_list = isinstance(target, list) and isinstance(key, int) and key < len(target)
    if settable_dict or settable_list:
        target[key] = replacement
    payload = json.dumps(obj, allow_nan=True).encode()
    for p in (payload, raw, payload[: len(payload) // 2]):
        result = triage(TELEMETRY, p)
        assert isinstance(result, StoreBatch | Rejected)
