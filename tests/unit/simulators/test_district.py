"""The district plan and the lean edges without I/O: the generated institution files pass the
central's own validation, a lean edge's batches are what the central admits (signed with the
key its file names, seqs contiguous), acks delete rows and an ack that does not come makes
the edge resend."""

from __future__ import annotations

import json
import time
from pathlib import Path

from central.admission import IngestGuard, sites_from
from central.institution import load_institutions, parse_institution
from central.storeport import EdgeState
from protocols.signing import Signer, Verifier, generate_private_key_pem
from protocols.wire import (
    Ack,
    Batch,
    Birth,
    IntervalRecord,
    Sample,
    StreamId,
    decode,
    record_from_dict,
)
from simulators.district import write_configs
from simulators.district_fleet import AckVerifier, LeanEdge
from simulators.district_plan import POLL_S, plan_district

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC, 08:00 in Shanghai (a holiday: 元旦)


def test_plan_is_deterministic_varied_and_valid(tmp_path: Path) -> None:
    plan = plan_district(40, seed=7, year=2026)
    again = plan_district(40, seed=7, year=2026)
    assert [p.config["buildings"] for p in plan] == [p.config["buildings"] for p in again]
    assert {p.type for p in plan} == {"school", "agency"}
    assert len({p.district for p in plan}) > 3
    assert len({p.edge for p in plan}) == 40  # one edge per institution, ids unique
    configs = load_institutions(write_configs(plan, tmp_path / "institutions"))
    assert [c.institution.id for c in configs] == [p.id for p in plan]
    for c, p in zip(configs, plan, strict=True):
        assert c.institution.district == p.district
        assert c.edge_keys == {p.edge: p.config["edge_keys"][p.edge]}
        assert {m.device for m in c.meters} == {m.device for m in p.meters}
        assert 2026 in c.targets


def test_lean_edge_batches_are_signed_contiguous_and_admitted() -> None:
    [inst] = plan_district(1, seed=3, year=2026)
    edge = LeanEdge(inst, epoch=int(T0 * 1000), poll_s=POLL_S, batch_max=50)
    produced = edge.produce(T0, T0 + 3600)
    meters = len(inst.meters)
    assert produced == meters * (60 + 4)  # a sample a minute, an interval a quarter hour
    verifier = Verifier(inst.config["edge_keys"][inst.edge])
    name, sealed = edge.birth(int(T0 * 1000))
    birth = decode(verifier.unseal(name, sealed))
    assert isinstance(birth, Birth)
    assert birth.stream == edge.stream
    config = parse_institution(json.loads(json.dumps(inst.config)))
    guard = IngestGuard(sites_from([config]), _NoStore())
    assert guard.birth(inst.id, birth.stream, T0) is None
    guard.born(birth.stream, inst.id)
    seqs: list[int] = []
    while (out := edge.next_batch(int(T0 * 1000), 0.0)) is not None:
        name, sealed = out
        batch = decode(verifier.unseal(name, sealed))
        assert isinstance(batch, Batch)
        assert batch.after == (seqs[-1] if seqs else 0)
        assert guard.batch(inst.id, batch.stream, batch.after, batch.seq, T0) is None
        seqs += [r.seq for r in batch.records]
        assert len(batch.records) <= 50
    assert seqs == list(range(1, produced + 1))
    kinds = {type(record_from_dict(json.loads(r))) for _, r in edge.rows}
    assert kinds == {Sample, IntervalRecord}


def test_acks_delete_rows_and_silence_makes_the_edge_resend() -> None:
    [inst] = plan_district(1, seed=3, year=2026)
    edge = LeanEdge(inst, epoch=1, poll_s=POLL_S, batch_max=1000, resend_after_s=5.0)
    n = edge.produce(T0, T0 + 600)
    assert edge.next_batch(0, mono=100.0) is not None
    assert edge.next_batch(0, mono=101.0) is None  # everything sent, nothing new
    edge.on_ack(Ack(edge.stream, 3), mono=102.0)
    assert [s for s, _ in edge.rows][:1] == [4]
    assert edge.next_batch(0, mono=106.0) is None  # the ack reset the resend clock
    out = edge.next_batch(0, mono=107.5)  # 5.5 s without progress: resend from seq 4
    assert out is not None
    assert edge.resends == 1
    edge.on_ack(Ack(edge.stream, 10**9), mono=108.0)  # never past what was produced
    assert (edge.acked, edge.drained, len(edge.rows)) == (n, True, 0)
    edge.on_ack(Ack(StreamId(edge.stream.edge, 2), 1), mono=109.0)
    assert edge.acked == n  # another epoch's ack changes nothing


def test_at_most_max_in_flight_batches_are_unacknowledged() -> None:
    [inst] = plan_district(1, seed=3, year=2026)
    edge = LeanEdge(inst, epoch=1, poll_s=POLL_S, batch_max=10, max_in_flight=3)
    edge.produce(T0, T0 + 3600)
    sent = 0
    while edge.next_batch(0, mono=1.0) is not None:
        sent += 1
    assert (sent, edge.sent_upto) == (3, 30)
    edge.on_ack(Ack(edge.stream, 10), mono=2.0)  # one batch acknowledged: one more may go
    assert edge.next_batch(0, mono=2.0) is not None
    assert edge.next_batch(0, mono=2.0) is None
    assert edge.sent_upto == 40


def test_acks_must_be_signed_by_the_central() -> None:
    central = Signer(generate_private_key_pem())
    forger = Signer(generate_private_key_pem())
    acks = AckVerifier(central.public_key)
    topic = "gg/v1/site/edge-1/ack"
    now = int(time.time() * 1000)
    ack = Ack(stream=StreamId("edge-1", 1), upto=5)
    assert acks.ack("edge-1", topic, central.sign(topic, ack, now)) == ack
    assert acks.ack("edge-1", topic, forger.sign(topic, ack, now)) is None
    assert acks.refused == 1


# -- helpers --------------------------------------------------------------------------------


class _NoStore:
    """The guard's two store reads on an empty store."""

    def watermark(self, stream: StreamId) -> int:
        return 0

    def edges(self) -> list[EdgeState]:
        return []
