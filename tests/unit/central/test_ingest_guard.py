"""Ingest that a forger on the broker cannot steer (issue 20, item 3): unconfigured edges,
epochs without a birth or beyond the clock, far seq jumps and far-future timestamps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from central.admission import CENTRAL_EDGE, FOREIGN_EDGE_ALARM, GuardSettings, IngestGuard
from central.ingest import Ingestor, IngestStats
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Birth, Death, StreamId, encode
from tests.unit.central.central_helpers import batch, interval, sample

NOW = 1_790_000_000.0  # 2026-09-22
NOW_MS = int(NOW * 1000)
EPOCH = NOW_MS - 86_400_000  # the real edge's outbox was made yesterday
SITE = "site-1"
TELEMETRY = f"gg/v1/{SITE}/edge-1/telemetry"
STATE = f"gg/v1/{SITE}/edge-1/state"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Store, Ingestor, IngestGuard]]:
    store = Store(tmp_path / "central.sqlite")
    guard = IngestGuard({SITE: frozenset({"edge-1"})}, store, GuardSettings(refresh_s=0))
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats(), guard=guard)
    out = ingestor.handle(STATE, encode(Birth(StreamId("edge-1", EPOCH), NOW_MS, True, "t")))
    assert out is None
    assert ingestor.stats.births == 1
    yield store, ingestor, guard
    store.close()


def _latest(store: Store) -> dict[tuple[str, str, str], float | int | bool | str]:
    return {tuple(k): v.value for k, v in store.latest_samples().items()}  # type: ignore[misc]


def test_a_real_edge_is_stored_and_acknowledged(setup: tuple[Store, Ingestor, IngestGuard]
                                                ) -> None:
    store, ingestor, _ = setup
    out = ingestor.handle(TELEMETRY, encode(batch([sample(1, ts=NOW_MS)], after=0,
                                                  epoch=EPOCH)))
    assert out is not None
    assert out.ack.upto == 1
    assert len(store.rows("samples")) == 1


def test_an_unconfigured_edge_is_refused_and_raises_one_alarm(
        setup: tuple[Store, Ingestor, IngestGuard]) -> None:
    store, ingestor, guard = setup
    for _ in range(3):
        out = ingestor.handle(f"gg/v1/{SITE}/evil-1/telemetry",
                              encode(batch([sample(1, ts=NOW_MS)], after=0, edge="evil-1",
                                           epoch=EPOCH)))
        assert out is None  # no ack
    birth = Birth(StreamId("evil-1", EPOCH), NOW_MS, True, "x")
    assert ingestor.handle(f"gg/v1/{SITE}/evil-1/state", encode(birth)) is None
    assert store.rows("samples") == []
    assert [e.edge for e in store.edges()] == ["@central", "edge-1"]  # no evil-1 row
    letters = store.dead_letters()
    assert letters
    assert all("not configured" in d.error for d in letters)
    assert guard.stats.foreign == 4
    assert guard.stats.foreign_edges == {"site-1/evil-1": 4}
    alarms = store.events([CENTRAL_EDGE], prefix="alarm.", limit=10)
    assert [(a.name, a.device, a.severity) for a in alarms] == [
        (FOREIGN_EDGE_ALARM, "evil-1", "alarm")]


def test_an_edge_of_another_site_is_foreign_here(setup: tuple[Store, Ingestor, IngestGuard]
                                                 ) -> None:
    store, ingestor, _ = setup
    out = ingestor.handle("gg/v1/other-site/edge-1/telemetry",
                          encode(batch([sample(1, ts=NOW_MS)], after=0, epoch=EPOCH)))
    assert out is None
    assert store.rows("samples") == []


def test_a_huge_epoch_cannot_replace_real_kwh(setup: tuple[Store, Ingestor, IngestGuard]
                                              ) -> None:
    store, ingestor, guard = setup
    real = ingestor.handle(TELEMETRY, encode(batch([interval(1, start=NOW_MS - 900_000,
                                                             quantity=0.039)],
                                                   after=0, epoch=EPOCH)))
    assert real is not None
    huge = StreamId("edge-1", 2**53)
    assert ingestor.handle(STATE, encode(Birth(huge, NOW_MS, True, "x"))) is None
    forged = ingestor.handle(TELEMETRY, encode(batch(
        [interval(1, start=NOW_MS - 900_000, quantity=5000.0)], after=0, epoch=2**53)))
    assert forged is None
    assert [r[5] for r in store.rows("intervals")] == [0.039]
    assert guard.stats.epoch_refused == 2
    assert [e.epoch for e in store.edges() if e.edge == "edge-1"] == [EPOCH]


def test_a_new_epoch_needs_its_birth_and_an_old_stream_may_drain(
        setup: tuple[Store, Ingestor, IngestGuard]) -> None:
    store, ingestor, _ = setup
    assert ingestor.handle(TELEMETRY, encode(batch([sample(1, ts=NOW_MS)], after=0,
                                                   epoch=EPOCH))) is not None
    wiped = EPOCH + 3_600_000  # the edge was re-installed an hour later
    early = encode(batch([sample(1, ts=NOW_MS, value=2.0)], after=0, epoch=wiped))
    assert ingestor.handle(TELEMETRY, early) is None  # before its birth: refused
    assert ingestor.handle(STATE, encode(Birth(StreamId("edge-1", wiped), NOW_MS, True,
                                               "t"))) is None
    out = ingestor.handle(TELEMETRY, early)  # resent after the birth: stored
    assert out is not None
    assert out.ack.stream.epoch == wiped
    late = ingestor.handle(TELEMETRY, encode(batch([sample(2, ts=NOW_MS)], after=1,
                                                   epoch=EPOCH)))
    assert late is not None
    assert late.ack.upto == 2
    never = ingestor.handle(TELEMETRY, encode(batch([sample(1, ts=NOW_MS)], after=0,
                                                    epoch=EPOCH - 5)))
    assert never is None  # an older epoch the central never saw
    stale = Death(StreamId("edge-1", 2**53))
    assert ingestor.handle(STATE, encode(stale)) is None
    assert [e.online for e in store.edges() if e.edge == "edge-1"] == [True]


def test_a_huge_seq_does_not_move_the_watermark(setup: tuple[Store, Ingestor, IngestGuard]
                                               ) -> None:
    store, ingestor, guard = setup
    stream = StreamId("edge-1", EPOCH)
    assert ingestor.handle(TELEMETRY, encode(batch([sample(5, ts=NOW_MS)], after=0,
                                                   epoch=EPOCH))) is not None
    forged = ingestor.handle(TELEMETRY, encode(batch([sample(10**13, ts=NOW_MS)], after=5,
                                                     epoch=EPOCH)))
    assert forged is None
    assert guard.stats.seq_refused == 1
    assert store.watermark(stream) == 5
    assert len(store.rows("samples")) == 1


def test_a_sample_stamped_2100_is_quarantined_and_pins_nothing(
        setup: tuple[Store, Ingestor, IngestGuard]) -> None:
    store, ingestor, _ = setup
    year_2100 = 4_102_444_800_000
    out = ingestor.handle(TELEMETRY, encode(batch([sample(1, ts=NOW_MS, value=1.0),
                                                   sample(2, ts=year_2100, value=9e9)],
                                                  after=0, epoch=EPOCH)))
    assert out is not None
    assert out.ack.upto == 2
    assert ingestor.stats.clock_future == 1
    later = ingestor.handle(TELEMETRY, encode(batch([sample(3, ts=NOW_MS + 1000, value=3.0)],
                                                    after=2, epoch=EPOCH)))
    assert later is not None
    assert list(_latest(store).values()) == [3.0]
    assert next(d.error for d in store.dead_letters()).endswith("quarantined")


def test_an_edge_with_a_key_is_accepted_only_signed(tmp_path: Path) -> None:
    """With `edge_keys`, even a plausible batch just ahead of the watermark is refused unless
    the edge's key signed it for this topic."""
    from protocols.signing import Signer, generate_private_key_pem

    edge_key, forger_key = Signer(generate_private_key_pem()), Signer(generate_private_key_pem())
    store = Store(tmp_path / "central.sqlite")
    guard = IngestGuard({SITE: frozenset({"edge-1"})}, store, GuardSettings(refresh_s=0),
                        edge_keys={"edge-1": edge_key.public_key})
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats(), guard=guard)
    birth = encode(Birth(StreamId("edge-1", EPOCH), NOW_MS, True, "t"))
    assert ingestor.handle(STATE, birth) is None
    assert ingestor.stats.births == 0  # unsigned: refused
    assert ingestor.handle(STATE, edge_key.seal(STATE, birth, NOW_MS)) is None
    assert ingestor.stats.births == 1
    near = encode(batch([sample(1, ts=NOW_MS, value=666.0)], after=0, epoch=EPOCH))
    assert ingestor.handle(TELEMETRY, near) is None
    assert ingestor.handle(TELEMETRY, forger_key.seal(TELEMETRY, near, NOW_MS)) is None
    other_topic = edge_key.seal("gg/v1/site-1/edge-2/telemetry", near, NOW_MS)
    assert ingestor.handle(TELEMETRY, other_topic) is None
    assert guard.stats.unsigned_refused == 4
    assert store.rows("samples") == []
    real = encode(batch([sample(1, ts=NOW_MS, value=1.0)], after=0, epoch=EPOCH))
    out = ingestor.handle(TELEMETRY, edge_key.seal(TELEMETRY, real, NOW_MS))
    assert out is not None
    assert out.ack.upto == 1
    assert [r[6] for r in store.rows("samples")] == [1.0]
    store.close()


def test_signed_uplink_of_an_edge_without_a_key_is_opened(tmp_path: Path) -> None:
    from protocols.signing import Signer, generate_private_key_pem

    store = Store(tmp_path / "central.sqlite")
    guard = IngestGuard({SITE: frozenset({"edge-1"})}, store, GuardSettings(refresh_s=0))
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats(), guard=guard)
    key = Signer(generate_private_key_pem())
    birth = encode(Birth(StreamId("edge-1", EPOCH), NOW_MS, True, "t"))
    ingestor.handle(STATE, key.seal(STATE, birth, NOW_MS))
    out = ingestor.handle(TELEMETRY, key.seal(TELEMETRY, encode(batch(
        [sample(1, ts=NOW_MS)], after=0, epoch=EPOCH)), NOW_MS))
    assert out is not None
    assert out.ack.upto == 1
    store.close()
