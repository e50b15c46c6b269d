"""CO₂ in every output is the same figure, and that figure is the hand-computed one: the
`/carbon` API, `/metrics`, the monthly report (JSON, HTML), the annual PDF's text and the
XLSX CO₂ sheet, over the reports' Q1 2025 school (metered electricity, a gas bill, a car's
fuel log)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openpyxl
import pytest

from central.institution import InstitutionConfig
from central.ledger import SqliteLedger
from central.profile import CoefficientProfile
from central.store import Store
from tests.integration.test_central_reports import NOW, populate, render_pages
from tests.integration.test_report_figures import (  # the reports' fixtures
    open_client,
    profile,
    school,
    store,
)

pytestmark = pytest.mark.integration
__all__ = ["profile", "school", "store"]  # fixtures used by name

# The shipped factors valid in 2025 (central/codes/emission_factors.yaml).
GRID, GAS, GASOLINE, DENSITY = 0.5306, 2.1622, 2.9251, 0.725


@pytest.fixture
async def client(store: Store, school: InstitutionConfig, profile: CoefficientProfile,
                 tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    populate(store)
    ledger = SqliteLedger(tmp_path / "central.ledger.sqlite")
    async with open_client(store, school, profile, ledger, NOW) as c:
        yield c
    ledger.close()


async def test_carbon_api_is_the_hand_computed_mix(client: httpx.AsyncClient) -> None:
    c = (await client.get("compliance", params={"year": 2025})).json()
    q = {x["energy"]: x["total"] for x in c["quantities"]}
    # electricity kWh × 0.5306 + the 900 m³ Q1 gas bill × 2.1622 + 200 L × 0.725 × 2.9251
    expected_kg = q["electricity"] * GRID + 900 * GAS + 200 * DENSITY * GASOLINE
    assert q["natural_gas"] == pytest.approx(900)
    year = (await client.get("carbon", params={"year": 2025})).json()
    ytd = year["ytd"]
    assert ytd["t_co2"] == pytest.approx(expected_kg / 1000, rel=1e-12)
    assert ytd["complete"] is True
    assert ytd["kg_co2_per_m2"] == pytest.approx(expected_kg / c["floor_area_m2"], rel=1e-9)
    assert ytd["kg_co2_per_person"] == pytest.approx(expected_kg / c["energy_users"],
                                                     rel=1e-9)
    assert {f["energy"]: f["kg_co2_per_unit"] for f in ytd["factors"]} == {
        "electricity": GRID, "natural_gas": GAS, "gasoline": GASOLINE}
    assert [m["month"] for m in year["months"]] == ["2025-01", "2025-02", "2025-03"]
    assert sum(m["t_co2"] for m in year["months"]) == pytest.approx(ytd["t_co2"], rel=1e-9)
    m = (await client.get("metrics", params={"start": "2025-01-01", "end": "2025-04-01"})
         ).json()
    assert m["carbon"]["t_co2"] == pytest.approx(ytd["t_co2"], rel=1e-12)
    empty = (await client.get("metrics", params={"start": "2024-06-01",
                                                 "end": "2024-07-01"})).json()
    assert empty["carbon"]["t_co2"] is None  # no data: "—", never 0


async def test_carbon_in_the_reports_and_the_xlsx(client: httpx.AsyncClient,
                                                         tmp_path: Path) -> None:
    year = (await client.get("carbon", params={"year": 2025})).json()
    march = year["months"][2]["t_co2"]
    data = (await client.get("reports/monthly", params={"year": 2025, "number": 3,
                                                        "format": "json"})).json()
    assert data["period"]["carbon"]["t_co2"] == pytest.approx(march, rel=1e-12)
    assert data["carbon_ytd"]["t_co2"] == pytest.approx(year["ytd"]["t_co2"], rel=1e-12)
    html = (await client.get("reports/monthly", params={"year": 2025, "number": 3,
                                                        "format": "html"})).text
    assert f"<td>二氧化碳排放量</td><td>{march:,.3f}</td><td>{year['ytd']['t_co2']:,.3f}" in html
    assert "全国电力平均二氧化碳排放因子" in html  # the factor's source is named
    r = await client.get("reports/ledger", params={"year": 2025, "format": "xlsx"})
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(r.content)
    ws = openpyxl.load_workbook(path)["碳排放"]
    rows = list(ws.iter_rows(values_only=True))
    months = {row[0]: row[1] for row in rows[1:4]}
    assert months == pytest.approx({m["month"]: m["t_co2"] for m in year["months"]},
                                   rel=1e-15)
    ytd_row = next(row for row in rows if row[0] == "二氧化碳排放量")
    assert ytd_row[2] == pytest.approx(year["ytd"]["t_co2"], rel=1e-15)
    r = await client.get("reports/annual", params={"year": 2025, "format": "pdf"})
    _pages, text = await asyncio.to_thread(render_pages, r.content, tmp_path)
    flat = " ".join(text.split())
    ytd = f"{year['ytd']['t_co2']:,.3f}"
    assert f"二氧化碳排放量 {ytd} {ytd} tCO₂" in flat  # the year so far, twice
    for m in year["months"]:  # the monthly table's CO₂ column
        assert f"{m['t_co2']:,.3f}" in flat, m["month"]


async def test_the_dashboard_card_is_the_apis(client: httpx.AsyncClient) -> None:
    """The page's year reuses its compliance report's lines and coverage (no second read
    of the year): the same figures as `/carbon`; its month (1 April, 00:00) has no data."""
    year = (await client.get("carbon", params={"year": 2025})).json()["ytd"]
    card = (await client.get("dashboard")).json()["carbon"]
    for key in ("t_co2", "t_co2_for_area", "kg_co2_per_m2", "kg_co2_per_person"):
        assert card["ytd"][key] == pytest.approx(year[key], rel=1e-12), key
    assert card["ytd"]["factors"] == year["factors"]
    assert card["ytd"]["coverage"] == year["coverage"]
    assert card["month"]["t_co2"] is None
