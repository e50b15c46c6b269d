"""Every report generated end to end through the API and the CLI: the PDF is rendered to PNG
pages with pdftoppm and its text checked with pdftotext; the XLSX is read back with openpyxl
and its totals equal the API's."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import openpyxl
import pytest
import yaml

from central.api import Tenant, create_app
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.profile import CoefficientProfile, load_profile
from central.store import Store
from protocols.clock import VirtualClock
from simulators.cli import main as greenguard
from tests import system
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

pytestmark = pytest.mark.integration

NOW = local_ts(2025, 4, 1)


def populate(store: Store) -> None:
    """Q1 2025: per month A 2,000 kWh, B 1,000 kWh + water; on 1 March 1,000 kWh more."""
    recs1, recs2 = [], []
    for i, month in enumerate((1, 2, 3)):
        start = local_ms(2025, month, 1)
        recs1 += [interval(2 * i + 1, start=start, quantity=2_000.0),
                  interval(2 * i + 2, start=start, quantity=1_000.0, device="water-a",
                           point="water_m3", unit="m3")]
        recs2.append(interval(i + 1, start=start, quantity=1_000.0, device="meter-b"))
    recs1.append(interval(7, start=local_ms(2025, 3, 1, 12), quantity=1_000.0))
    store.store_batch(batch(recs1, after=0), "s", now=NOW)
    store.store_batch(batch(recs2, after=0, edge="edge-2"), "s", now=NOW)


@pytest.fixture
def school() -> InstitutionConfig:
    return parse_institution(SCHOOL)


@pytest.fixture
def profile() -> CoefficientProfile:
    return load_profile("national")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "central.sqlite")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
async def client(store: Store, school: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    populate(store)
    ledger = SqliteLedger(":memory:")
    auth = authenticator()
    app = create_app(store, [Tenant(school, profile, ledger)], VirtualClock(NOW), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://test{BASE}", headers=bearer(auth)) as c:
        r = await c.post("ledger/bill", json=[
            {"ref": "gas-q1", "energy": "natural_gas", "period_start": "2025-01-01",
             "period_end": "2025-03-31", "quantity": 900, "unit": "m3"}])
        assert r.status_code == 200
        r = await c.post("ledger/fuel", json=[
            {"ref": "f1", "vehicle": "car-1", "day": "2025-02-01", "litres": 200, "km": 2500}])
        assert r.status_code == 200
        r = await c.post("ledger/clearance", json=[
            {"ref": "c1", "time": "2025-03-02T09:00:00+08:00", "category": "kitchen",
             "weight_kg": 321.5, "hauler": "环卫所"}])
        assert r.status_code == 200
        yield c
    ledger.close()


# 10,000 kWh × 0.1229 + 900 m³ × 1.2143 + 200 L × 0.725 × 1.4714 = 1,229 + 1,092.87 + 213.353
Q1_KGCE = 2_535.223


async def test_monthly_disclosure_html(client: httpx.AsyncClient) -> None:
    r = await client.get("reports/monthly", params={"year": 2025, "number": 3})
    assert r.status_code == 200
    html = r.text
    assert "示范中学 Demo Middle School 能源资源消费月度公示 2025-03" in html
    assert "<td>4,000.00</td>" in html  # March kWh: 2,000 + 1,000 + 1,000
    assert "<td>10,000.00</td>" in html  # year to date
    assert "<td>321.5</td>" in html  # kitchen waste cleared in March
    en = (await client.get("reports/monthly",
                           params={"year": 2025, "number": 3, "lang": "en"})).text
    assert "Monthly energy and resource disclosure 2025-03" in en
    bad = await client.get("reports/monthly", params={"year": 2025})
    assert bad.status_code == 422
    assert "month" in bad.json()["detail"]


def render_pages(content: bytes, tmp_path: Path) -> tuple[list[bytes], str]:
    """PNG pages (pdftoppm) and the text (pdftotext) of a PDF; skips without poppler-utils."""
    system.require("poppler-utils")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(content)
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=60)
    pages = [p.read_bytes() for p in sorted(tmp_path.glob("page*.png"))]
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, timeout=60,
                          capture_output=True, text=True).stdout
    return pages, text


async def test_quarterly_pdf_renders_with_title_and_figure(
        client: httpx.AsyncClient, tmp_path: Path) -> None:
    r = await client.get("reports/quarterly",
                         params={"year": 2025, "number": 1, "format": "pdf"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    pages, text = await asyncio.to_thread(render_pages, r.content, tmp_path)
    assert pages
    assert pages[0][:8] == b"\x89PNG\r\n\x1a\n"
    assert "季度能源分析报告" in text
    assert "2025 Q1" in text
    assert f"{Q1_KGCE:,.2f}" in text  # 2,535.22 kgce this quarter


async def test_ledger_xlsx_totals_equal_the_api(client: httpx.AsyncClient,
                                                tmp_path: Path) -> None:
    c = (await client.get("compliance", params={"year": 2025})).json()
    assert c["energy_kgce"] == pytest.approx(Q1_KGCE, rel=1e-12)
    r = await client.get("reports/ledger", params={"year": 2025, "format": "xlsx"})
    assert r.status_code == 200
    path = tmp_path / "ledger.xlsx"
    path.write_bytes(r.content)
    book = openpyxl.load_workbook(path, data_only=True)
    ws = book["月度汇总"]
    rows = [row for row in ws.iter_rows(values_only=True) if row and row[0]]
    months = [row for row in rows if str(row[0]).startswith("2025-")]
    assert [m[1] for m in months] == [3_000.0, 3_000.0, 4_000.0]
    header = next(row for row in rows if row[0] == "月份")
    assert header[:5] == ("月份", "用电量 (kWh)", "用水量 (m³)", "天然气 (m³)", "汽油 (L)")
    kgce = header.index("综合能耗 (kgce)")
    total = next(row for row in rows if str(row[0]).startswith("合计"))
    assert total[1] == pytest.approx(10_000.0)
    assert total[2] == pytest.approx(c["water_m3"])
    assert total[3] == pytest.approx(900.0)  # the gas bill, as a quantity
    assert total[kgce] == pytest.approx(c["energy_kgce"], rel=1e-9)
    types = book["能源品种"]
    last = list(types.iter_rows(values_only=True))[-1]
    assert last[5] == pytest.approx(c["energy_kgce"], rel=1e-12)


async def test_scoring_sheet_lists_evidence(client: httpx.AsyncClient) -> None:
    r = await client.get("reports/scoring", params={"year": 2025, "format": "json"})
    lines = {x["id"]: x for x in r.json()}
    assert lines["1"]["evidenced"] is True
    assert lines["3.6"]["evidenced"] is True  # 01D10 meter configured
    assert lines["3.8"]["evidence"].startswith("浙C·12345 200.0 L / 2,500 km = 8.00 L/100km")
    assert lines["4.10"]["evidence"] == "1 clearance records"
    assert lines["4.9"]["evidenced"] is False
    html = (await client.get("reports/scoring", params={"year": 2025})).text
    assert "节约型机关创建评分自评表" in html


def test_cli_writes_reports_and_imports(tmp_path: Path, school: InstitutionConfig,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "central.sqlite"
    with Store(db) as store:
        populate(store)
    cfg = tmp_path / "institution.yaml"
    cfg.write_text(yaml.safe_dump(SCHOOL, allow_unicode=True), encoding="utf-8")
    fuel = tmp_path / "fuel.csv"
    fuel.write_text("ref,vehicle,day,litres,km\nf1,car-1,2025-02-01,200,2500\n")
    common = ["--config", str(cfg), "--db", str(db)]
    assert greenguard(["report", "import", "fuel", "--file", str(fuel), *common]) == 0
    assert "1 inserted" in capsys.readouterr().out
    out = tmp_path / "ledger.xlsx"
    assert greenguard(["report", "ledger", "--year", "2025", "-o", str(out), *common]) == 0
    assert openpyxl.load_workbook(out)["公务用车"]["D2"].value == 200.0
    fuel.write_text("ref,vehicle,day,litres,km\nf2,bus-9,2025-02-01,20,250\n")
    assert greenguard(["report", "import", "fuel", "--file", str(fuel), *common]) == 2
    assert "row 2.vehicle: unknown vehicle" in capsys.readouterr().err
    fuel.write_bytes("ref,vehicle,day,litres,km,note\nf3,car-1,2025-02-02,20,250,中石化加油站\n"
                     .encode("gbk"))  # as Chinese Excel saves "CSV (逗号分隔)"
    assert greenguard(["report", "import", "fuel", "--file", str(fuel), *common]) == 0
    assert "1 inserted, 0 updated, 0 unchanged (read as gb18030)" in capsys.readouterr().out


def test_cli_reads_one_institution_of_a_config_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The central's `--config` may be a directory; `greenguard report` then needs
    `--institution` and uses that institution's own ledger file, as the central does."""
    db = tmp_path / "central.sqlite"
    with Store(db) as store:
        populate(store)
    configs = tmp_path / "institutions"
    configs.mkdir()
    (configs / "a.yaml").write_text(yaml.safe_dump(SCHOOL, allow_unicode=True),
                                    encoding="utf-8")
    other = {**SCHOOL, "institution": {**SCHOOL["institution"], "id": "other-school"},
             "meters": [], "vehicles": []}
    (configs / "b.yaml").write_text(yaml.safe_dump(other, allow_unicode=True),
                                    encoding="utf-8")
    school_id = SCHOOL["institution"]["id"]
    common = ["--config", str(configs), "--db", str(db)]
    assert greenguard(["report", "ledger", "--year", "2025", *common]) == 2
    err = capsys.readouterr().err
    assert "--institution" in err
    assert school_id in err
    assert "other-school" in err
    assert greenguard(["report", "ledger", "--institution", "nobody", *common]) == 2
    assert "not one of" in capsys.readouterr().err
    fuel = tmp_path / "fuel.csv"
    fuel.write_text("ref,vehicle,day,litres,km\nf1,car-1,2025-02-01,200,2500\n")
    assert greenguard(["report", "import", "fuel", "--file", str(fuel),
                       "--institution", school_id, *common]) == 0
    assert (tmp_path / f"central.{school_id}.ledger.sqlite").is_file()
    out = tmp_path / "ledger.xlsx"
    assert greenguard(["report", "ledger", "--year", "2025", "--institution", school_id,
                       "-o", str(out), *common]) == 0
    assert openpyxl.load_workbook(out)["公务用车"]["D2"].value == 200.0


def test_monthly_pdf_and_xlsx_carry_the_rule_savings(tmp_path: Path,
                                                     profile: CoefficientProfile) -> None:
    """规则节约（估算） (docs/savings.md) in the monthly PDF, as pdftotext reads it, and in
    its XLSX: a vacancy switch-off of an AC unit rated 2 kW at 12:00 on Friday 14 March,
    held until the end of the working day (18:00): 12 kWh."""
    from central.ledger import SqliteLedger
    from central.report_output import produce
    from protocols.wire import Event, Severity

    school = parse_institution({**SCHOOL, "savings": {
        "loads": [{"edge": "edge-1", "device": "ac-101", "rated_w": 2000}]}})
    write = Event(1, local_ms(2025, 3, 14, 12), "audit.write", Severity.INFO, "ac-101",
                  {"rule": "vacancy", "source": "rule", "reason": "zone empty",
                   "point": "on", "before": True, "after": False, "dry_run": False})
    ledger = SqliteLedger(":memory:")
    with Store(tmp_path / "central.sqlite") as store:
        store.store_batch(batch([write], after=0), "s", now=NOW)
        pdf, _, _ = produce(store, ledger, school, profile, report="monthly", fmt="pdf",
                            year=2025, number=3, now=NOW)
        xlsx, _, _ = produce(store, ledger, school, profile, report="monthly", fmt="xlsx",
                             year=2025, number=3, now=NOW)
    ledger.close()
    _, text = render_pages(pdf, tmp_path)
    assert "规则节约（估算）" in text
    line = next(x for x in text.splitlines() if x.strip().startswith("vacancy"))
    assert line.split()[1:4] == ["1", "12.0", "1.47"]  # writes, kWh, kgce (× 0.1229)
    (tmp_path / "m.xlsx").write_bytes(xlsx)
    sheet = openpyxl.load_workbook(tmp_path / "m.xlsx")["规则节约（估算）"]
    rows = {r[0]: r for r in sheet.iter_rows(values_only=True) if r and r[0]}
    assert rows["vacancy"][1:3] == (1, 12.0)
