"""Out-of-band edge notices (a birth's optional `notices`, state topic): an edge whose outbox
cannot take a record still tells the central about its disk, and the central keeps it apart
from the stream (no ack, no watermark), shows it in edge health and in the alarms."""

from __future__ import annotations

import json

import httpx
import pytest

from central.api import Tenant, create_app
from central.ingest import Ingestor, IngestStats
from central.institution import InstitutionConfig
from central.profile import CoefficientProfile
from central.store import Store
from central.triage import EdgeBirth, triage
from protocols.clock import VirtualClock
from protocols.errors import WireError
from protocols.wire import Birth, Notice, Severity, StreamId, decode, encode
from tests.unit.central.central_helpers import authenticator, batch, bearer, sample
from tests.unit.central.test_api_reads import BASE, NOW, populate

STATE = "gg/v1/site-1/edge-1/state"


def status(state: str, ts: int, dropped: list[list[int]]) -> Birth:
    return Birth(StreamId("edge-1", 1), ts, True, "greenguard-edge/test", (), (Notice(
        ts, "alarm.outbox_disk", Severity.ALARM if state == "raised" else Severity.INFO,
        {"state": state, "disk_pressure": state == "raised", "dropped_seqs": dropped,
         "dropped_records": sum(b - a + 1 for a, b in dropped), "outbox_depth": 7}),))


def test_notice_round_trips_and_names_a_bad_field() -> None:
    msg = status("raised", 1_700_000_000_000, [[3, 9]])
    assert decode(encode(msg)) == msg
    plain = Birth(StreamId("edge-1", 1), 1, True, "x")
    assert b"notices" not in encode(plain)  # v1 births without notices are unchanged
    with pytest.raises(WireError, match="severity"):
        decode(encode(msg).replace(b'"alarm"', b'"loud"', 1))
    with pytest.raises(WireError, match=r"notices\[0\]\.name"):
        decode(encode(msg).replace(b"alarm.outbox_disk", b"Alarm!", 1))
    triaged = triage(STATE, encode(msg))
    assert isinstance(triaged, EdgeBirth)
    assert triaged.birth.notices == msg.notices


def test_notice_is_stored_once_outside_the_stream_and_never_acked(store: Store) -> None:
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    ingestor.handle("gg/v1/site-1/edge-1/telemetry",
                    encode(batch([sample(1), sample(2)], after=0)))
    payload = encode(status("raised", int(NOW * 1000), [[3, 9]]))
    assert ingestor.handle(STATE, payload) is None  # no ack: not part of the stream
    assert ingestor.handle(STATE, payload) is None  # a repeat is stored once
    assert store.watermark(StreamId("edge-1", 1)) == 2
    rows = store.events({"edge-1"}, names=["alarm.outbox_disk"], limit=10)
    assert len(rows) == 1
    assert rows[0].seq < 0
    assert json.loads(rows[0].data)["dropped_seqs"] == [[3, 9]]


async def test_edge_health_and_alarms_show_the_disk_pressure(
        store: Store, institution: InstitutionConfig, profile: CoefficientProfile) -> None:
    populate(store)
    ingestor = Ingestor(store, VirtualClock(NOW), IngestStats())
    ingestor.handle(STATE, encode(status("raised", int(NOW * 1000) - 5000, [[100, 140]])))
    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile)], VirtualClock(NOW), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 headers=bearer(auth, "viewer", ["demo-school"])) as c:
        edges = {e["edge"]: e for e in (await c.get(f"{BASE}/edges")).json()}
        assert edges["edge-1"]["disk_pressure"] is True
        assert edges["edge-1"]["dropped_records"] == 41
        assert edges["edge-1"]["outbox_depth"] == 7
        assert edges["edge-2"]["disk_pressure"] is None
        alarms = (await c.get(f"{BASE}/alarms")).json()
        assert any(a["name"] == "alarm.outbox_disk" and a["edge"] == "edge-1" for a in alarms)
        board = (await c.get(f"{BASE}/dashboard")).json()
        assert [a["data"]["dropped_records"] for a in board["alarms"]["active"]
                if a["kind"] == "outbox_disk"] == [41]  # the page lists it as active
        ingestor.handle(STATE, encode(status("cleared", int(NOW * 1000) - 1000, [[100, 140]])))
        edges = {e["edge"]: e for e in (await c.get(f"{BASE}/edges")).json()}
        assert edges["edge-1"]["disk_pressure"] is False
        alarms = (await c.get(f"{BASE}/alarms")).json()
        assert not any(a["name"] == "alarm.outbox_disk" for a in alarms)
