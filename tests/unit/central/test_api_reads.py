"""The API's read routes over a real SQLite store: institutions and buildings, devices with
their latest points, downsampled series, interval records, events, alarms, the audit trail
and edge health. Figures are computed by hand from the records written here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from central.api import Tenant, create_app
from central.institution import InstitutionConfig
from central.profile import CoefficientProfile
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Birth, Event, Severity, StreamId
from tests.unit.central.central_helpers import (
    authenticator,
    batch,
    bearer,
    interval,
    local_ms,
    local_ts,
    sample,
)

NOW = local_ts(2025, 7, 2, 12, 0)
T0 = local_ms(2025, 7, 2, 10, 0)  # series window start
BASE = "/api/v1/institutions/demo-school"
MIN = 60_000


def ev(seq: int, minute: int, name: str, data: dict[str, Any], device: str | None = "water-a",
       severity: Severity = Severity.WARNING) -> Event:
    return Event(seq=seq, ts=T0 + minute * MIN, name=name, severity=severity, device=device,
                 data=data)


def populate(store: Store) -> None:
    power = [(0, 1000.0), (5, 3000.0), (14, 2000.0),  # bucket 10:00-10:15: avg 2000
             (15, 500.0), (29, 1500.0),  # bucket 10:15-10:30: avg 1000
             (61, 7000.0)]  # bucket 11:00-11:15 (10:30-11:00 is empty: no bucket)
    records = [sample(i + 1, ts=T0 + m * MIN, value=v) for i, (m, v) in enumerate(power)]
    records.append(sample(7, ts=T0 - 10 * MIN, value=99_999.0))  # before the window
    records += [interval(8, start=T0, quantity=1.5), interval(9, start=T0 + 15 * MIN,
                                                               quantity=2.5)]
    records += [
        ev(10, 1, "alarm.leak", {"state": "raised", "rule": "leak", "point": "flow_m3h",
                                 "flow": 0.4}),
        ev(11, 20, "alarm.leak", {"state": "cleared", "rule": "leak", "point": "flow_m3h",
                                  "flow": 0.0}),
        ev(12, 30, "alarm.lights_on", {"state": "raised", "rule": "lights_after_hours"},
           device="meter-a"),
        ev(13, 31, "audit.write", {"rule": "ac_limit", "source": "rule", "reason": "summer",
                                   "point": "setpoint_c", "before": 22, "after": 26,
                                   "dry_run": False}, severity=Severity.INFO),
        ev(14, 32, "command.result", {"id": "c-1", "status": "applied"}, device=None,
           severity=Severity.INFO),
        ev(15, 33, "edge.health", {"outbox_depth": 42}, device=None, severity=Severity.INFO),
    ]
    store.record_birth("site-1", Birth(StreamId("edge-1", 1), ts=int(NOW * 1000), synced=False,
                                       software="0.1.0"), now=NOW - 30)
    store.store_batch(batch(records, after=0), "site-1", now=NOW - 10)
    store.store_batch(batch([sample(1, ts=T0, device="meter-b", value=5.0)], after=0,
                            edge="edge-2"), "site-1", now=NOW - 900)
    store.store_batch(batch([sample(1, ts=T0, device="meter-x", value=5.0)], after=0,
                            edge="edge-9"), "site-9", now=NOW)  # not this institution's


@pytest.fixture
async def client(store: Store, institution: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    populate(store)
    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile)], VirtualClock(NOW), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 headers=bearer(auth, "viewer", ["demo-school"])) as c:
        yield c


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await client.get(f"{BASE}{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_institution_and_buildings(client: httpx.AsyncClient) -> None:
    info = await get(client, "")
    assert (info["id"], info["timezone"], info["energy_users"]) == (
        "demo-school", "Asia/Shanghai", 1620.0)
    assert [(b["id"], b["floor_area_m2"], b["meters"]) for b in info["buildings"]] == [
        ("A", 7000.0, 3), ("B", 5000.0, 1)]
    assert info["targets"]["2025"]["kgce_per_m2"] == 0.25
    assert await get(client, "/buildings") == info["buildings"]


async def test_devices_with_latest_points_and_nothing_from_other_edges(
        client: httpx.AsyncClient) -> None:
    devices = {(d["edge"], d["device"]): d for d in await get(client, "/devices")}
    assert set(devices) == {("edge-1", "meter-a"), ("edge-1", "meter-a-ac"),
                            ("edge-1", "water-a"), ("edge-2", "meter-b")}
    meter = devices[("edge-1", "meter-a")]
    assert (meter["kind"], meter["building"], meter["role"]) == ("meter", "A", "main")
    power = next(p for p in meter["points"] if p["point"] == "power_w")
    assert (power["ts"], power["value"], power["unit"]) == (T0 + 61 * MIN, 7000.0, "W")


async def test_series_is_bucketed_on_the_server(client: httpx.AsyncClient) -> None:
    s = await get(client, "/series", edge="edge-1", device="meter-a", point="power_w",
                  start="2025-07-02T10:00:00", end="2025-07-02T12:00:00", bucket_s=900)
    assert (s["start"], s["end"], s["bucket_s"]) == (T0, T0 + 120 * MIN, 900)
    rows = [(b["start"], b["count"], b["avg"], b["min"], b["max"], b["last"])
            for b in s["buckets"]]
    assert rows == [
        (T0, 3, 2000.0, 1000.0, 3000.0, 2000.0),
        (T0 + 15 * MIN, 2, 1000.0, 500.0, 1500.0, 1500.0),
        (T0 + 60 * MIN, 1, 7000.0, 7000.0, 7000.0, 7000.0),
    ]
    # An offset in the query is honoured: 02:00Z is 10:00 in Shanghai.
    utc = await get(client, "/series", edge="edge-1", device="meter-a", point="power_w",
                    start="2025-07-02T02:00:00Z", end="2025-07-02T04:00:00Z", bucket_s=3600)
    assert [(b["count"], b["avg"]) for b in utc["buckets"]] == [(5, 1600.0), (1, 7000.0)]


async def test_series_refusals_name_the_field(client: httpx.AsyncClient) -> None:
    q = {"device": "meter-a", "point": "power_w", "start": "2025-07-02T10:00:00",
         "end": "2025-07-02T12:00:00"}
    r = await client.get(f"{BASE}/series", params={**q, "edge": "edge-9"})
    assert r.status_code == 404
    assert "edge" in r.json()["detail"]
    assert "edge-9" in r.json()["detail"]
    r = await client.get(f"{BASE}/series", params={**q, "edge": "edge-1", "bucket_s": 1})
    assert r.status_code == 422
    assert "bucket_s: 1" in r.json()["detail"]
    r = await client.get(f"{BASE}/series", params={**q, "edge": "edge-1",
                                                   "end": "2025-07-02T09:00:00"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("end: must be after start")
    r = await client.get(f"{BASE}/series", params={**q, "edge": "edge-1", "bucket_s": "x"})
    assert r.status_code == 422
    (problem,) = r.json()["detail"]
    assert (problem["loc"], problem["input"]) == (["query", "bucket_s"], "x")


async def test_interval_records(client: httpx.AsyncClient) -> None:
    rows = await get(client, "/intervals", start="2025-07-02T10:00:00",
                     end="2025-07-02T10:30:00")
    assert [(r["device"], r["start"], r["quantity"], r["unit"]) for r in rows] == [
        ("meter-a", T0, 1.5, "kWh"), ("meter-a", T0 + 15 * MIN, 2.5, "kWh")]
    assert await get(client, "/intervals", start="2025-07-02T10:00:00",
                     end="2025-07-02T10:30:00", device="meter-b") == []


async def test_events_alarms_and_audit(client: httpx.AsyncClient) -> None:
    names = [e["name"] for e in await get(client, "/events")]
    assert names == ["edge.health", "command.result", "audit.write", "alarm.lights_on",
                     "alarm.leak", "alarm.leak"]  # newest first
    assert [e["data"]["state"] for e in await get(client, "/events", name="alarm.*")] == [
        "raised", "cleared", "raised"]
    assert len(await get(client, "/events", name="alarm.leak",
                         since="2025-07-02T10:10:00")) == 1
    active = await get(client, "/alarms")
    assert [(a["name"], a["device"], a["rule"]) for a in active] == [
        ("alarm.lights_on", "meter-a", "lights_after_hours")]
    every = {a["name"]: a["state"] for a in await get(client, "/alarms", state="all")}
    assert every == {"alarm.leak": "cleared", "alarm.lights_on": "raised"}
    audit = await get(client, "/audit")
    assert [(e["name"], e["data"].get("after")) for e in audit] == [
        ("command.result", None), ("audit.write", 26)]


async def test_edge_health(client: httpx.AsyncClient) -> None:
    edges = {e["edge"]: e for e in await get(client, "/edges")}
    assert set(edges) == {"edge-1", "edge-2"}  # edge-9 belongs to nobody here
    e1, e2 = edges["edge-1"], edges["edge-2"]
    assert (e1["online"], e1["connected"], e1["clock_synced"], e1["outbox_depth"]) == (
        True, True, False, 42)
    assert e1["age_s"] == pytest.approx(10.0)
    # Never born, last heard 900 s ago: not online, state unknown, no depth reported.
    assert (e2["online"], e2["connected"], e2["outbox_depth"]) == (False, None, None)
    assert e2["age_s"] == pytest.approx(900.0)
