"""The manual ledger through the API: entries and CSV/XLSX imports with row-level errors and
nothing half imported; replays and backfilled telemetry change the figures exactly once."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import openpyxl
import pytest

from central.api import Tenant, create_app
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.profile import CoefficientProfile
from central.store import Store
from protocols.clock import VirtualClock
from tests.unit.central.central_helpers import (
    authenticator,
    batch,
    bearer,
    interval,
    local_ms,
    local_ts,
)
from tests.unit.central.registry_helpers import SCHOOL

BASE = f"/api/v1/institutions/{SCHOOL['institution']['id']}/"

NOW = local_ts(2025, 4, 1)  # Q1 is over: 90 days of 2025

GAS_BILL = {"ref": "gas-2025-q1", "energy": "natural_gas", "building": "B",
            "period_start": "2025-01-01", "period_end": "2025-03-31", "quantity": 1000,
            "unit": "m3"}
FUEL_CSV = (b"ref,vehicle,day,litres,km\n"
            b"r-1,car-1,2025-02-03,120,1500\n"
            b"r-2,car-1,2025-03-10,80,1000\n")


@pytest.fixture
def school() -> InstitutionConfig:
    return parse_institution(SCHOOL)


@pytest.fixture
async def client(store: Store, school: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    jan = local_ms(2025, 1, 1)
    store.store_batch(batch([interval(1, start=jan, quantity=6_000.0),
                             interval(2, start=jan, quantity=3_240.0, device="water-a",
                                      point="water_m3", unit="m3")], after=0), "s",
                      now=NOW)
    store.store_batch(batch([interval(1, start=jan, quantity=4_000.0, device="meter-b")],
                            after=0, edge="edge-2"), "s", now=NOW)
    ledger = SqliteLedger(":memory:")
    auth = authenticator()
    app = create_app(store, [Tenant(school, profile, ledger)], VirtualClock(NOW), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://test{BASE}", headers=bearer(auth)) as c:
        yield c
    ledger.close()


async def kgce(client: httpx.AsyncClient) -> float:
    r = await client.get("compliance", params={"year": 2025})
    assert r.status_code == 200
    return float(r.json()["energy_kgce"])


async def test_gas_bill_and_fuel_import_enter_the_figures_once(
        client: httpx.AsyncClient) -> None:
    assert await kgce(client) == pytest.approx(1_229.0)
    r = await client.post("ledger/bill", json=[GAS_BILL])
    assert r.json() == {"inserted": 1, "updated": 0, "unchanged": 0}
    assert await kgce(client) == pytest.approx(1_229.0 + 1_214.3)
    r = await client.post("ledger/fuel/import", content=FUEL_CSV,
                          params={"format": "csv"})
    assert r.json() == {"inserted": 2, "updated": 0, "unchanged": 0, "rows": 2,
                        "encoding": "utf-8"}
    total = 1_229.0 + 1_214.3 + 213.353  # 200 L petrol × 0.725 × 1.4714
    assert await kgce(client) == pytest.approx(total, rel=1e-12)
    for _ in range(3):  # replays change nothing
        await client.post("ledger/bill", json=[GAS_BILL])
        r = await client.post("ledger/fuel/import", content=FUEL_CSV)
        assert r.json() == {"inserted": 0, "updated": 0, "unchanged": 2, "rows": 2,
                            "encoding": "utf-8"}
    assert await kgce(client) == pytest.approx(total, rel=1e-12)
    m = (await client.get("metrics", params={"start": "2025-01-01",
                                                     "end": "2025-04-01"})).json()
    [car, van] = m["vehicles"]
    assert (car["plate"], car["litres"], car["km"]) == ("浙C·12345", 200.0, 2_500.0)
    assert car["l_per_100km"] == pytest.approx(8.0)
    assert van["entries"] == 0
    b = (await client.get("metrics", params={"start": "2025-01-01",
                                                     "end": "2025-04-01",
                                                     "building": "B"})).json()
    assert b["energy_kgce"] == pytest.approx(4_000 * 0.1229 + 1_214.3)  # no car in B
    assert b["floor_area_m2"] == 5_000.0
    assert b["kgce_per_person"] is None


async def test_the_same_bill_under_another_ref_is_refused_unless_it_says_what_it_is(
        client: httpx.AsyncClient) -> None:
    assert (await client.post("ledger/bill", json=[GAS_BILL])).status_code == 200
    before = await kgce(client)
    again = {**GAS_BILL, "ref": "gas-2025-q1-typed-again"}
    r = await client.post("ledger/bill", json=[again])
    assert r.status_code == 422
    assert "overlaps bill 'gas-2025-q1'" in r.text
    assert "replaces: gas-2025-q1" in r.text
    # In a file too, and against an earlier row of the same file.
    csv_two = (b"ref,energy,building,period_start,period_end,quantity,unit\n"
               b"feb-a,natural_gas,A,2025-02-01,2025-02-28,10,m3\n"
               b"feb-b,natural_gas,A,2025-02-15,2025-03-14,10,m3\n")
    r = await client.post("ledger/bill/import", content=csv_two, params={"format": "csv"})
    assert r.status_code == 422
    assert "row 3.period_start" in r.text
    assert "overlaps bill 'feb-a'" in r.text
    assert await kgce(client) == pytest.approx(before)
    # A correction replaces the bill: counted once, at the corrected quantity.
    fixed = {**GAS_BILL, "ref": "gas-2025-q1-corrected", "quantity": 1100,
             "replaces": "gas-2025-q1"}
    assert (await client.post("ledger/bill", json=[fixed])).status_code == 200
    assert await kgce(client) == pytest.approx(before + 100 * 1.2143)
    # A supplement adds to it.
    extra = {**GAS_BILL, "ref": "gas-2025-q1-extra", "quantity": 50, "supplement": True}
    assert (await client.post("ledger/bill", json=[extra])).status_code == 200
    assert await kgce(client) == pytest.approx(before + 150 * 1.2143)
    r = await client.post("ledger/bill", json=[{**GAS_BILL, "ref": "x", "replaces": "nope"}])
    assert r.status_code == 422
    assert "no bill with this ref" in r.text


async def test_a_fuel_or_gas_bill_without_a_unit_is_refused(
        client: httpx.AsyncClient) -> None:
    for energy in ("natural_gas", "gasoline", "diesel", "heat"):
        bill = {k: v for k, v in GAS_BILL.items() if k != "unit"} | {"energy": energy}
        r = await client.post("ledger/bill", json=[bill])
        assert r.status_code == 422, energy
        assert f"a {energy} bill needs its unit" in r.text
    elec = {k: v for k, v in GAS_BILL.items() if k != "unit"} | {"energy": "electricity",
                                                                 "ref": "e-1"}
    assert (await client.post("ledger/bill", json=[elec])).status_code == 200  # kWh


async def test_a_bad_row_refuses_the_whole_file(client: httpx.AsyncClient) -> None:
    bad = FUEL_CSV + b"r-3,bus-9,2025-03-11,50,400\nr-4,car-1,2025-13-01,10,x\n"
    r = await client.post("ledger/fuel/import", content=bad)
    assert r.status_code == 422
    body = r.json()
    assert body["stored"] == 0
    fields = {(p["field"], p["value"]) for p in body["problems"]}
    assert ("row 4.vehicle", "bus-9") in fields  # spreadsheet rows: header is row 1
    assert ("row 5.day", "2025-13-01") in fields
    assert ("row 5.km", "x") in fields
    assert "unknown vehicle" in body["detail"]
    assert await kgce(client) == pytest.approx(1_229.0)  # nothing went in
    r = await client.post("ledger/bill", json=[GAS_BILL, {**GAS_BILL, "ref": "x",
                                                                  "unit": "barrel",
                                                                  "supplement": True}])
    assert r.status_code == 422
    [problem] = r.json()["problems"]
    assert (problem["field"], problem["value"]) == ("entries[1].unit", "barrel")
    assert await kgce(client) == pytest.approx(1_229.0)


async def test_xlsx_import_and_waste_ledger(client: httpx.AsyncClient) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["ref", "time", "category", "weight_kg", "hauler", "vehicle_plate",
               "manifest_no"])
    ws.append(["c-1", "2025-01-15 09:00", "kitchen", 120.5, "环卫所", "浙C·00001", None])
    ws.append(["c-2", "2025-01-20 09:00", "kitchen", 79.5, "环卫所", "浙C·00001", None])
    ws.append(["c-3", "2025-02-03 10:00", "hazardous", 3.2, "有资质单位", "浙C·00002",
               "HW-2025-001"])
    ws.append(["c-4", "2025-02-05 10:00", "recyclable", 40, "回收站", None, None])
    raw = io.BytesIO()
    book.save(raw)
    r = await client.post("ledger/clearance/import", content=raw.getvalue(),
                          params={"format": "xlsx"})
    assert r.json() == {"inserted": 4, "updated": 0, "unchanged": 0, "rows": 4,
                        "encoding": None}, r.text
    r = await client.post("ledger/hazardous", json=[
        {"ref": "h-1", "time": "2025-01-10T10:00:00+08:00", "direction": "in",
         "item": "废电池 batteries", "quantity": 5},
        {"ref": "h-2", "time": "2025-02-03T10:00:00+08:00", "direction": "out",
         "item": "废电池 batteries", "quantity": 3.2, "manifest_no": "HW-2025-001"}])
    assert r.json()["inserted"] == 2
    w = (await client.get("waste", params={"year": 2025})).json()
    assert [(m["month"], m["category"], m["weight_kg"]) for m in w["monthly"]] == [
        ("2025-01", "kitchen", 200.0), ("2025-02", "hazardous", 3.2),
        ("2025-02", "recyclable", 40.0)]
    [h] = w["hazardous"]
    assert h["balance"] == pytest.approx(1.8)
    # Hazardous waste without a manifest is refused, naming the row.
    ws.append(["c-5", "2025-03-01 10:00", "hazardous", 1.0, "x", None, None])
    raw = io.BytesIO()
    book.save(raw)
    r = await client.post("ledger/clearance/import", content=raw.getvalue(),
                          params={"format": "xlsx"})
    assert r.status_code == 422
    assert r.json()["problems"][0]["field"] == "row 6.manifest_no"


async def test_backfilled_day_changes_the_figures_exactly_once(
        client: httpx.AsyncClient, store: Store) -> None:
    before = await kgce(client)
    # A day that reached the central late (the edge was offline): 15-minute records.
    day = local_ms(2025, 2, 10)
    late = [interval(10 + i, start=day + i * 900_000, quantity=2.5) for i in range(96)]
    for _ in range(4):  # the same batch replayed, as after a lost ack
        store.store_batch(batch(late, after=1), "s", now=NOW)
    after = await kgce(client)
    assert after - before == pytest.approx(96 * 2.5 * 0.1229, rel=1e-9)  # 240 kWh, once
    # An older copy of the same records arriving afterwards changes nothing either.
    stale = [interval(2 + i, start=day + i * 900_000, quantity=99.0) for i in range(8)]
    store.store_batch(batch(stale, after=1), "s", now=NOW)
    assert await kgce(client) == pytest.approx(after, rel=1e-12)
