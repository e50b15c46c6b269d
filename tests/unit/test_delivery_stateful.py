"""Hypothesis stateful test of the delivery contract: edge outbox + a network that loses,
duplicates and reorders + the central store + acks, with restarts on both sides.

Invariants after every step: nothing the central acknowledged is missing from its store,
no row is deleted from the outbox before it is acknowledged, nothing is stored twice. At the
end the network heals and everything produced is stored exactly once.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from central.store import Store
from edge.outbox import Outbox
from protocols.wire import Batch, Sample, record_from_dict

SITE = "site-1"


class Delivery(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="gg-stateful-"))
        self.outbox = Outbox(self.tmp / "outbox.sqlite", edge_id="edge-1", epoch=7)
        self.store = Store(self.tmp / "central.sqlite")
        self.network: list[Batch] = []  # in flight, in any order
        self.acks: list[int] = []  # acks in flight back to the edge
        self.sent_upto = 0  # the uplink's chain pointer
        self.produced = 0
        self.ts = 0

    def teardown(self) -> None:
        self.outbox.close()
        self.store.close()

    # -- the edge ---------------------------------------------------------------------

    @rule(n=st.integers(1, 5))
    def produce(self, n: int) -> None:
        records = []
        for _ in range(n):
            self.ts += 1000
            records.append(Sample(0, self.ts, "m1", "power_w", float(self.ts), "W"))
        self.outbox.append(records)
        self.produced += n

    @rule(limit=st.integers(1, 4))
    def send(self, limit: int) -> None:
        self.sent_upto = max(self.sent_upto, self.outbox.acked_upto)
        rows = self.outbox.read_after(self.sent_upto, limit)
        if not rows:
            return
        records = tuple(record_from_dict(json.loads(r.body)) for r in rows)
        self.network.append(Batch(self.outbox.stream, self.sent_upto, 0, True, records))
        self.sent_upto = rows[-1].seq

    @rule()
    def resend_timer(self) -> None:
        self.sent_upto = self.outbox.acked_upto

    @rule()
    def edge_restart(self) -> None:
        self.outbox.close()
        self.outbox = Outbox(self.tmp / "outbox.sqlite", edge_id="edge-1")
        self.sent_upto = self.outbox.acked_upto

    # -- the network ------------------------------------------------------------------

    @precondition(lambda self: bool(self.network))
    @rule(i=st.integers(0, 1000), duplicate=st.booleans())
    def deliver(self, i: int, duplicate: bool) -> None:
        batch = self.network[i % len(self.network)]
        if not duplicate:
            self.network.remove(batch)
        watermark = self.store.store_batch(batch, SITE)
        self.acks.append(watermark)

    @precondition(lambda self: bool(self.network))
    @rule(i=st.integers(0, 1000))
    def lose(self, i: int) -> None:
        del self.network[i % len(self.network)]

    @precondition(lambda self: bool(self.acks))
    @rule(i=st.integers(0, 1000), lose=st.booleans())
    def ack_arrives(self, i: int, lose: bool) -> None:
        upto = self.acks.pop(i % len(self.acks))
        if not lose and upto > self.outbox.acked_upto:
            self.outbox.ack(upto)

    @rule()
    def central_restart(self) -> None:
        self.store.close()
        self.store = Store(self.tmp / "central.sqlite")

    # -- invariants -------------------------------------------------------------------

    def stored_seqs(self) -> list[int]:
        return sorted(r[0] for r in self.store._query(
            "SELECT seq FROM samples WHERE stream_edge = 'edge-1'"))

    @invariant()
    def acknowledged_rows_are_stored_and_nothing_twice(self) -> None:
        stored = self.stored_seqs()
        assert len(stored) == len(set(stored))
        assert set(range(1, self.outbox.acked_upto + 1)) <= set(stored)

    @invariant()
    def unacknowledged_rows_are_still_in_the_outbox(self) -> None:
        kept = {r.seq for r in self.outbox.read_after(self.outbox.acked_upto, 10**6)}
        assert kept == set(range(self.outbox.acked_upto + 1, self.produced + 1))

    @invariant()
    def the_central_never_acknowledges_what_it_lacks(self) -> None:
        assert self.store.watermark(self.outbox.stream) <= self.produced
        stored = set(self.stored_seqs())
        assert set(range(1, self.store.watermark(self.outbox.stream) + 1)) <= stored

    # -- heal -------------------------------------------------------------------------

    @rule()
    def heal_and_drain(self) -> None:
        """The link comes back for good: everything produced ends up stored once."""
        self.network.clear()
        self.acks.clear()
        self.sent_upto = self.outbox.acked_upto
        for _ in range(self.produced + 1):
            rows = self.outbox.read_after(self.sent_upto, 10)
            if not rows:
                break
            records = tuple(record_from_dict(json.loads(r.body)) for r in rows)
            upto = self.store.store_batch(
                Batch(self.outbox.stream, self.sent_upto, 0, True, records), SITE)
            self.sent_upto = rows[-1].seq
            self.outbox.ack(upto)
        assert self.outbox.acked_upto == self.produced
        assert self.stored_seqs() == list(range(1, self.produced + 1))


TestDelivery = Delivery.TestCase
TestDelivery.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
