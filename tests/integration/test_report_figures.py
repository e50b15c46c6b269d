"""Every figure a filed report shows is the API's: read back from the PDF text (pdftotext)
and the XLSX cells (openpyxl) and compared with `/compliance` and the report's JSON; the PDF
pages are kept as PNG under the pytest tmp dir for a look. And one projection everywhere:
the same data gives the same `projection` in the API, the dashboard, every report and the
demo summary."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import yaml

from central.api import Tenant, create_app
from central.config import CentralSettings
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.profile import CoefficientProfile, load_profile
from central.reports import num
from central.store import Store
from protocols.clock import VirtualClock
from simulators.demo import demo_compliance
from tests import system
from tests.integration.test_central_reports import (
    BASE,
    NOW,
    populate,
    render_pages,
)
from tests.unit.central.central_helpers import authenticator, bearer, local_ts
from tests.unit.central.registry_helpers import SCHOOL

pytestmark = pytest.mark.integration

ENTRIES: dict[str, list[dict[str, Any]]] = {
    "bill": [{"ref": "gas-q1", "energy": "natural_gas", "period_start": "2025-01-01",
              "period_end": "2025-03-31", "quantity": 900, "unit": "m3"},
             {"ref": "elec-2024-12", "energy": "electricity", "building": "B",
              "period_start": "2024-12-01", "period_end": "2024-12-31",
              "quantity": 5_000}],
    "fuel": [{"ref": "f1", "vehicle": "car-1", "day": "2025-02-01", "litres": 200,
              "km": 2500}],
}


@pytest.fixture
def school() -> InstitutionConfig:
    return parse_institution(SCHOOL)


@pytest.fixture
def profile() -> CoefficientProfile:
    return load_profile("national")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "central.sqlite") as s:
        yield s


@contextlib.asynccontextmanager
async def open_client(store: Store, school: InstitutionConfig, profile: CoefficientProfile,
                      ledger: SqliteLedger, now: float) -> AsyncIterator[httpx.AsyncClient]:
    """The API over the store and ledger at `now`, with the bills and fuel of ENTRIES."""
    auth = authenticator()
    app = create_app(store, [Tenant(school, profile, ledger)], VirtualClock(now), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://test{BASE}", headers=bearer(auth)) as c:
        for kind, rows in ENTRIES.items():
            r = await c.post(f"ledger/{kind}", json=rows)
            assert r.status_code == 200, r.text
        yield c


@pytest.fixture
async def client(store: Store, school: InstitutionConfig, profile: CoefficientProfile,
                 tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    populate(store)
    ledger = SqliteLedger(tmp_path / "central.ledger.sqlite")
    async with open_client(store, school, profile, ledger, NOW) as c:
        yield c
    ledger.close()


async def test_every_figure_of_the_annual_pdf_is_the_apis(client: httpx.AsyncClient,
                                                         tmp_path: Path) -> None:
    system.require("poppler-utils")
    c = (await client.get("compliance", params={"year": 2025})).json()
    data = (await client.get("reports/annual",
                             params={"year": 2025, "format": "json"})).json()
    assert data["ytd"] == c
    r = await client.get("reports/annual", params={"year": 2025, "format": "pdf"})
    assert r.status_code == 200, r.text
    pages, text = await asyncio.to_thread(render_pages, r.content, tmp_path)
    assert pages  # kept as tmp_path/page-N.png
    flat = " ".join(text.split())
    assert "统计期：2025年1月1日至2025年12月31日" in flat
    q = {x["energy"]: x for x in c["quantities"]}
    figures = {
        "综合能耗": num(c["energy_kgce"], 2),
        "用电量": num(q["electricity"]["total"], 2),
        "用水量": num(q["water"]["total"], 2),
        "天然气": num(q["natural_gas"]["total"], 2),
        "汽油": num(q["gasoline"]["total"], 2),
        "kgce/m²": num(c["kgce_per_m2"], 4),
        "kgce/人": num(c["kgce_per_person"], 4),
        "m³/人": num(c["water_m3_per_person"], 4),
    }
    for name, shown in figures.items():
        assert shown in flat, (name, shown)
    assert q["electricity"]["sources"] == ["metered"]  # December's bill is last year's
    for item in c["items"]:
        assert num(item["projected"], 4) in flat, item["key"]
    for month in data["months"]:
        assert num(month["energy_kgce"], 2) in flat, month["month"]
    for line in c["energy_by_type"]:
        assert num(line["kgce"], 2) in flat, line["energy"]
    assert c["coverage"]["text_zh"] in flat
    assert c["score"] is not None
    assert f"考核得分 {num(c['score'], 1)} / 10（预计）" in flat
    for paragraph in data["analysis_zh"]:
        assert " ".join(paragraph.split())[:30] in flat
    for wrong in ("数值 Value", "PUE PUE", " m3", "kgce/person", "2025-01-01 –",
                  "非工作时间用电占比 0.0 %", "01B00 空调用电 0.0"):
        assert wrong not in flat, wrong


async def test_every_figure_of_the_xlsx_is_the_apis(client: httpx.AsyncClient,
                                                   tmp_path: Path) -> None:
    c = (await client.get("compliance", params={"year": 2025})).json()
    r = await client.get("reports/ledger", params={"year": 2025, "format": "xlsx"})
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(r.content)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[:1] == ["月度汇总"]
    ws = book["月度汇总"]
    rows = list(ws.iter_rows())
    header = next(r for r in rows if r[0].value == "月份")
    col = {cell.value: i for i, cell in enumerate(header)}
    total = next(r for r in rows if r[0].value == "合计")
    q = {x["energy"]: x["total"] for x in c["quantities"]}
    for name, value in (("用电量 (kWh)", q["electricity"]), ("用水量 (m³)", q["water"]),
                        ("天然气 (m³)", q["natural_gas"]), ("汽油 (L)", q["gasoline"]),
                        ("综合能耗 (kgce)", c["energy_kgce"])):
        cell = total[col[name]]
        assert cell.value == pytest.approx(value, rel=1e-12), name  # full precision
        assert cell.number_format == "#,##0.00", name
    ratios = {r[0].value: r[1] for r in rows if r[0].value in (
        "单位建筑面积能耗", "人均综合能耗", "人均用水量")}
    # Full precision (the XML keeps 16 significant digits), shown with 4 decimals.
    assert ratios["单位建筑面积能耗"].value == pytest.approx(c["kgce_per_m2"], rel=1e-15)
    assert ratios["人均综合能耗"].value == pytest.approx(c["kgce_per_person"], rel=1e-15)
    assert ratios["人均用水量"].value == pytest.approx(c["water_m3_per_person"], rel=1e-15)
    assert {cell.number_format for cell in ratios.values()} == {"0.0000"}
    entries = [r[1].value for r in book["账单与加油记录"].iter_rows(min_row=2)]
    assert entries == ["gas-q1", "f1"]  # December's electricity bill is last year's
    types = list(book["能源品种"].iter_rows(values_only=True))
    assert types[0][:2] == ("能源品种", "来源")
    assert types[-1][5] == pytest.approx(c["energy_kgce"], rel=1e-12)
    assert "energy" not in types[0]
    assert "quantity" not in types[0]


async def test_a_month_without_data_is_blank_not_zero(store: Store, school: InstitutionConfig,
                                                      profile: CoefficientProfile,
                                                      tmp_path: Path) -> None:
    populate(store)
    ledger = SqliteLedger(":memory:")
    async with open_client(store, school, profile, ledger,
                                 local_ts(2025, 5, 15)) as c:
        data = (await c.get("reports/annual", params={"year": 2025, "format": "json"})).json()
        april = next(m for m in data["months"] if m["month"] == "2025-04")
        assert april["has_data"] is False
        assert april["energy_kgce"] is None
        assert april["coverage"]["text_zh"].startswith("数据覆盖 0 / 30 天")
        html = (await c.get("reports/annual", params={"year": 2025})).text
        assert "<td>2025-04</td><td>—</td><td>—</td>" in html
    ledger.close()


async def test_one_projection_everywhere(store: Store, school: InstitutionConfig,
                                         profile: CoefficientProfile, tmp_path: Path) -> None:
    populate(store)
    settings = CentralSettings(institution_config=tmp_path / "institution.yaml",
                               database=tmp_path / "central.sqlite")
    settings.institution_config.write_text(yaml.safe_dump(SCHOOL, allow_unicode=True),
                                           encoding="utf-8")
    ledger = SqliteLedger(settings.ledger_path)
    async with open_client(store, school, profile, ledger, NOW) as c:
        seen: dict[str, Any] = {
            "api": (await c.get("compliance", params={"year": 2025})).json()["projection"],
            "dashboard": (await c.get("dashboard")).json()["compliance"]["projection"],
        }
        for report, number in (("monthly", 3), ("quarterly", 1), ("annual", None)):
            params: dict[str, Any] = {"year": 2025, "format": "json"}
            if number:
                params["number"] = number
            body = (await c.get(f"reports/{report}", params=params)).json()
            seen[report] = body["ytd"]["projection"]
    ledger.close()
    seen["demo"] = demo_compliance(store, settings, now=NOW).projection.model_dump(
        mode="json")
    assert seen["api"]["status"] == "provisional"
    assert seen["api"]["energy_kgce"] is not None
    for where, projection in seen.items():
        assert projection == seen["api"], where


async def test_one_day_of_data_says_not_enough_everywhere(
        store: Store, school: InstitutionConfig, profile: CoefficientProfile) -> None:
    populate(store)
    cfg = copy.deepcopy(SCHOOL)
    cfg["targets"] = {2025: {"kgce_per_m2": 100, "kgce_per_person": 100,
                             "water_m3_per_person": 100}}
    inst = parse_institution(cfg)
    ledger = SqliteLedger(":memory:")
    # 1 January, 20:00: the first meter records of the year are this morning's.
    async with open_client(store, inst, profile, ledger,
                                 local_ts(2025, 1, 1, 20)) as c:
        api = (await c.get("compliance", params={"year": 2025})).json()
        dash = (await c.get("dashboard")).json()["compliance"]
        html = (await c.get("reports/monthly", params={"year": 2025, "number": 1})).text
        sheet = (await c.get("reports/scoring", params={"year": 2025})).text
    ledger.close()
    for figures in (api, dash):
        assert figures["score"] is None
        assert figures["projection"]["status"] == "insufficient"
    for page in (html, sheet):
        assert "数据不足，暂不预测" in page
        assert "10.0 / 10" not in page


async def test_the_annual_analysis_compares_with_the_same_span_of_last_year(
        store: Store, school: InstitutionConfig, profile: CoefficientProfile) -> None:
    from tests.unit.central.central_helpers import batch, interval, local_ms

    populate(store)  # 2025: 10,000 kWh in Q1
    last_year = [interval(100 + m, start=local_ms(2024, m, 1), quantity=2_500.0)
                 for m in (1, 2, 3)]  # 2024: 7,500 kWh in Q1
    store.store_batch(batch(last_year, after=0, epoch=0), "s", now=NOW)
    ledger = SqliteLedger(":memory:")
    async with open_client(store, school, profile, ledger, NOW) as c:
        data = (await c.get("reports/annual", params={"year": 2025, "format": "json"})).json()
    ledger.close()
    assert data["previous"]["electricity_kwh"] == pytest.approx(7_500.0)
    # Three 15-minute records of one of two electricity meters in 2024 against four days of
    # 2025: never a "+33.3 %" (docs/comparisons.md) — the analysis says what is missing.
    zh, en = " ".join(data["analysis_zh"]), " ".join(data["analysis_en"])
    assert "上升 33.3%" not in zh
    assert "不作同比：" in zh
    assert "用电量（无数据：本期电 3/90 天；对比期电 0/91 天）" in zh
    assert "up 33.3 %" not in en
    assert "No year-on-year comparison for total energy (" in en
    assert "electricity (no data on current electricity 3/90; previous electricity 0/91" in en
