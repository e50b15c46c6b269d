"""HTTP API and built-in page over a populated store, with a virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from central.api import Tenant, create_app
from central.config import InstitutionConfig
from central.ingest import IngestStats
from central.profile import CoefficientProfile
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Birth, StreamId
from tests.unit.central.central_helpers import (
    authenticator,
    batch,
    bearer,
    interval,
    local_ms,
    local_ts,
    sample,
)

NOW = local_ts(2025, 7, 2, 12, 0)  # fraction of 2025 elapsed: exactly 0.5
NOW_MS = int(NOW * 1000)
BASE = "/api/v1/institutions/demo-school"


def populate(store: Store) -> None:
    jan, today = local_ms(2025, 1, 1), local_ms(2025, 7, 2, 8, 0)  # metered all year
    kwh = {"device": "meter-a"}
    e1 = [
        interval(1, start=jan, quantity=5_950.0, **kwh),
        interval(2, start=today, quantity=50.0, **kwh),
        interval(3, start=today, quantity=10.0, device="meter-a-ac"),  # sub-meter
        interval(4, start=jan, quantity=3_238.0, device="water-a", point="water_m3",
                 unit="m3"),
        interval(5, start=today, quantity=2.0, device="water-a", point="water_m3",
                 unit="m3"),
        sample(6, ts=NOW_MS - 10_000, value=12_000.0),
        sample(7, ts=NOW_MS - 3_600_000, device="meter-a-ac", value=600.0),  # stale
        sample(8, ts=NOW_MS - 5_000, device="water-a", point="flow_m3h", value=1.5,
               unit="m3/h"),
    ]
    e2 = [
        interval(1, start=jan, quantity=3_970.0, device="meter-b"),
        interval(2, start=today, quantity=30.0, device="meter-b"),
        sample(3, ts=NOW_MS - 20_000, device="meter-b", value=8_000.0),
    ]
    store.store_batch(batch(e1, after=0), "site-1", now=NOW - 10)
    store.store_batch(batch(e2, after=0, edge="edge-2"), "site-1", now=NOW - 20)
    store.record_birth("site-1", Birth(StreamId("edge-1", 1), ts=NOW_MS, synced=True,
                                       software="0.1.0"), now=NOW - 30)


def http(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    # httpx directly: starlette's TestClient warns that it wants `httpx2` instead.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                             headers=headers)


@pytest.fixture
async def client(store: Store, institution: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    populate(store)
    stats = IngestStats(received=2, batches=2, stored_records=11, acks_sent=2, connected=True)
    auth = authenticator()
    app = create_app(store, [Tenant(institution, profile)], VirtualClock(NOW), auth, stats)
    async with http(app, bearer(auth, "viewer", ["demo-school"])) as c:
        yield c


async def test_healthz(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["time"] == NOW
    assert body["mqtt_connected"] is True


async def test_compliance_year_to_date(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{BASE}/compliance", params={"year": 2025})
    assert r.status_code == 200
    c = r.json()
    assert c["energy_kgce"] == pytest.approx(1_229.0)  # 10,000 kWh × 0.1229, sub excluded
    assert c["kgce_per_m2"] == pytest.approx(1_229 / 12_000)
    assert c["kgce_per_person"] == pytest.approx(1_229 / 1_620)
    assert c["water_m3_per_person"] == pytest.approx(3_240 / 1_620)
    assert c["fraction_elapsed"] == pytest.approx(0.5)
    assert c["score"] == 10.0
    assert c["provisional"] is True
    assert c["profile_id"] == "national"
    assert (await client.get(f"{BASE}/compliance")).json()["year"] == 2025  # the clock's year
    assert (await client.get(f"{BASE}/compliance", params={"year": 1999})).status_code == 422


async def test_overview_live_and_today(client: httpx.AsyncClient) -> None:
    o = (await client.get(f"{BASE}/overview")).json()
    assert o["today"] == "2025-07-02"
    assert o["power_w"] == 20_000.0  # 12 kW + 8 kW on main meters
    assert o["energy_kwh_today"] == pytest.approx(80.0)  # sub-meter's 10 kWh not added
    assert o["water_m3_today"] == pytest.approx(2.0)
    a, b = o["buildings"]
    assert (a["id"], a["power_w"], a["energy_kwh_today"]) == ("A", 12_000.0, 50.0)
    assert (b["id"], b["power_w"], b["energy_kwh_today"]) == ("B", 8_000.0, 30.0)
    sub = next(m for m in a["meters"] if m["device"] == "meter-a-ac")
    assert sub["live"]["stale"] is True
    assert sub["today"] == 10.0
    water = next(m for m in a["meters"] if m["device"] == "water-a")
    assert water["live"]["value"] == 1.5
    assert water["live"]["point"] == "flow_m3h"
    edges = {e["edge"]: e for e in o["edges"]}
    assert edges["edge-1"]["online"] is True
    # No birth seen, but heard from 20 s ago: online, as `/edges` says (one rule for both).
    assert edges["edge-2"]["online"] is True
    assert edges["edge-2"]["age_s"] == pytest.approx(20.0)
    assert o["ingest"]["stored_records"] == 11
    assert o["compliance"]["energy_kgce"] == pytest.approx(1_229.0)


async def test_reader_connections_from_a_path(db_path: Path, store: Store,
                                        institution: InstitutionConfig,
                                        profile: CoefficientProfile) -> None:
    populate(store)
    auth = authenticator()
    app = create_app(db_path, [Tenant(institution, profile)], VirtualClock(NOW), auth)
    async with http(app, bearer(auth)) as c:
        assert (await c.get(f"{BASE}/overview")).json()["power_w"] == 20_000.0
        assert (await c.get("/healthz")).json()["mqtt_connected"] is None
    missing = create_app(db_path.with_name("absent.sqlite"), [Tenant(institution, profile)],
                         VirtualClock(NOW), auth)
    async with http(missing) as c:
        r = await c.get("/healthz")
        assert r.status_code == 503
        assert "store open failed" in r.json()["detail"]


async def test_csv_with_bare_carriage_returns_imports(client: httpx.AsyncClient) -> None:
    """Old Mac line ends (a bare CR) were a server error: csv saw a CR inside a line."""
    from central.auth import Role

    app_auth = client._transport.app.state.auth  # type: ignore[attr-defined]
    _, raw = app_auth.issue("engineer", Role.ENGINEER, ["demo-school"])
    headers = {"Authorization": f"Bearer {raw}"}
    body = b"ref,vehicle,day,litres,km\rr-1,car-1,2025-02-03,120,1500\r"
    r = await client.post(f"{BASE}/ledger/fuel/import", content=body, headers=headers)
    assert r.status_code == 422, r.text  # parsed: car-1 is not a vehicle of this school
    assert r.json()["problems"][0]["value"] == "car-1"
    r = await client.post(f"{BASE}/ledger/fuel/import", headers=headers,
                          content=b'ref,vehicle\nr-1,"car-1\xc2\x85\r,x\n')
    assert r.status_code == 422, r.text
    assert r.json()["stored"] == 0
