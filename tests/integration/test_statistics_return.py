"""The 公共机构能源资源消费统计 return: three sheets whose figures equal the quarterly
report's JSON of the same period (and the hand-computed Q1 total)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from central.api import Tenant, create_app
from central.institution import parse_institution
from central.ledger import SqliteLedger
from central.profile import load_profile
from central.store import Store
from protocols.clock import VirtualClock
from tests.integration.test_central_reports import NOW, Q1_KGCE, populate
from tests.unit.central.central_helpers import authenticator, bearer
from tests.unit.central.registry_helpers import SCHOOL

pytestmark = pytest.mark.integration
BASE = f"/api/v1/institutions/{SCHOOL['institution']['id']}/"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = Store(tmp_path / "central.sqlite")
    populate(store)
    ledger = SqliteLedger(":memory:")
    auth = authenticator()
    app = create_app(store, [Tenant(parse_institution(SCHOOL), load_profile("national"),
                                    ledger)], VirtualClock(NOW), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://test{BASE}", headers=bearer(auth)) as c:
        r = await c.post("ledger/bill", json=[
            {"ref": "gas-q1", "energy": "natural_gas", "period_start": "2025-01-01",
             "period_end": "2025-03-31", "quantity": 900,
             "unit": "m3"}])
        assert r.status_code == 200
        r = await c.post("ledger/fuel", json=[
            {"ref": "f1", "vehicle": "car-1", "day": "2025-02-01", "litres": 200, "km": 2500}])
        assert r.status_code == 200
        yield c
    ledger.close()
    store.close()


def _rows(ws: Any) -> list[list[Any]]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


async def test_quarterly_return_equals_the_quarterly_report(
        client: httpx.AsyncClient) -> None:
    r = await client.get("statistics-return", params={"year": 2025, "quarter": 1})
    assert r.status_code == 200, r.text
    assert "2025-Q1.xlsx" in r.headers["content-disposition"]
    report = (await client.get("reports/quarterly", params={
        "year": 2025, "number": 1, "format": "json"})).json()
    period = report["period"]
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["基本信息", "能源消费", "水资源消费"]
    info = {row[0]: row for row in _rows(book["基本信息"]) if row and row[0]}
    assert info["单位性质"][1:] == ["101", None, "021 教育事业"]
    assert info["建筑面积"][3] == pytest.approx(period["floor_area_m2"])
    assert info["用能人数"][3] == pytest.approx(period["energy_users"])
    assert info["统计期"][1] == "2025 Q1"
    energy = {row[0]: row for row in _rows(book["能源消费"])[2:] if row and row[0]}
    by_type = {e["energy"]: e for e in period["energy_by_type"]}
    assert energy["电"][2] == pytest.approx(by_type["electricity"]["quantity"])
    assert energy["电"][2] == pytest.approx(10_000.0)
    assert energy["天然气"][2] == pytest.approx(900.0)
    assert energy["天然气"][5] == "台账"
    assert energy["汽油"][2] == pytest.approx(200.0)
    assert "水" not in energy
    assert energy["综合能耗合计"][3] == pytest.approx(period["energy_kgce"])
    assert energy["综合能耗合计"][3] == pytest.approx(Q1_KGCE, abs=0.01)
    water = {row[0]: row for row in _rows(book["水资源消费"]) if row and row[0]}
    assert water["用水量"][2] == pytest.approx(period["water_m3"])
    assert water["用水量"][2] == pytest.approx(3_000.0)
    assert water["用水量"][3] is None  # the ledger holds no amounts


async def test_annual_return_and_refusals(client: httpx.AsyncClient) -> None:
    r = await client.get("statistics-return", params={"year": 2025})
    assert r.status_code == 200
    assert openpyxl.load_workbook(io.BytesIO(r.content))["基本信息"]["B5"].value == "2025"
    assert (await client.get("statistics-return",
                             params={"year": 2025, "quarter": 5})).status_code == 422
    late = await client.get("statistics-return", params={"year": 2025, "quarter": 3})
    assert late.status_code == 422  # has not started yet
