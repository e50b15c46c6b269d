"""The XLSX statistics ledger's per-building sheets equal the API's /metrics?building=
figures; the scoring sheet names its evidence; a backfilled day changes every report figure
exactly once however often, and in whatever pieces, it is replayed."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from central.api import Tenant, create_app
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.metrics import building_summary
from central.profile import CoefficientProfile, load_profile
from central.report_xlsx import render_xlsx, sheet_title
from central.reports import ReportData, gather
from central.store import Store
from protocols.clock import VirtualClock
from protocols.wire import Event, IntervalRecord, Severity
from tests.unit.central.central_helpers import authenticator, batch, bearer, local_ms, local_ts
from tests.unit.central.registry_helpers import SCHOOL

pytestmark = pytest.mark.integration

NOW = local_ts(2025, 4, 1)
HOUR = 3_600_000


def school_with_bins() -> dict[str, Any]:
    return {**SCHOOL, "bins": [
        {"edge": "edge-1", "device": f"bin-{c}", "building": "A", "category": c,
         "capacity_l": 240} for c in ("recyclable", "hazardous", "kitchen", "other")]}


@pytest.fixture
def school() -> InstitutionConfig:
    return parse_institution(school_with_bins())


@pytest.fixture
def profile() -> CoefficientProfile:
    return load_profile("national")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "central.sqlite") as s:
        yield s


def hourly(seq0: int, day: tuple[int, int, int], device: str, kwh: float,
           point: str = "energy_import_kwh", unit: str = "kWh") -> list[IntervalRecord]:
    t0 = local_ms(*day)
    return [IntervalRecord(seq=seq0 + h, device=device, point=point, start=t0 + h * HOUR,
                           duration_s=3600, quantity=kwh, unit=unit) for h in range(24)]


def march_without_the_15th(store: Store) -> None:
    """1–31 March except the 15th: A 10 kWh/h and 0.5 m³/h of water, B 4 kWh/h."""
    seq_a = seq_b = 0
    for d in range(1, 32):
        if d == 15:
            seq_a += 48
            seq_b += 24
            continue
        recs_a = (hourly(seq_a + 1, (2025, 3, d), "meter-a", 10.0)
                  + hourly(seq_a + 25, (2025, 3, d), "water-a", 0.5, "water_m3", "m3"))
        store.store_batch(batch(recs_a, after=seq_a), "s", now=NOW)
        seq_a += 48
        recs_b = hourly(seq_b + 1, (2025, 3, d), "meter-b", 4.0)
        store.store_batch(batch(recs_b, after=seq_b, edge="edge-2"), "s", now=NOW)
        seq_b += 24


def backfill_15th() -> tuple[list[IntervalRecord], list[IntervalRecord]]:
    """The edge's outbox resends the 15th with its original seqs."""
    seq_a, seq_b = 14 * 48, 14 * 24
    return ((hourly(seq_a + 1, (2025, 3, 15), "meter-a", 10.0)
             + hourly(seq_a + 25, (2025, 3, 15), "water-a", 0.5, "water_m3", "m3")),
            hourly(seq_b + 1, (2025, 3, 15), "meter-b", 4.0))


def figures(store: Store, school: InstitutionConfig, profile: CoefficientProfile,
            ledger: SqliteLedger) -> tuple[ReportData, dict[str, list[tuple[Any, ...]]]]:
    data = gather(store, ledger, school, profile, kind="monthly", year=2025, number=3, now=NOW)
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(data)), data_only=True)
    sheets = {name: [tuple(r) for r in book[name].iter_rows(values_only=True)]
              for name in book.sheetnames}
    return data, sheets


def test_a_backfilled_day_changes_the_report_exactly_once(
        store: Store, school: InstitutionConfig, profile: CoefficientProfile) -> None:
    ledger = SqliteLedger(":memory:")
    march_without_the_15th(store)
    before, _ = figures(store, school, profile, ledger)
    assert before.period.electricity_kwh == pytest.approx(30 * 24 * 14.0)
    day_a, day_b = backfill_15th()
    store.store_batch(batch(day_a, after=day_a[0].seq - 1), "s", now=NOW)
    store.store_batch(batch(day_b, after=day_b[0].seq - 1, edge="edge-2"), "s", now=NOW)
    once, sheets_once = figures(store, school, profile, ledger)
    assert once.period.electricity_kwh - before.period.electricity_kwh == pytest.approx(
        24 * 14.0, abs=1e-9)
    assert once.period.water_m3 - before.period.water_m3 == pytest.approx(12.0, abs=1e-9)
    assert once.ytd.energy_kgce - before.ytd.energy_kgce == pytest.approx(
        24 * 14.0 * 0.1229, abs=1e-9)
    by_building = {b.id: b.total for b in once.buildings}
    assert by_building["A"].electricity_kwh == pytest.approx(31 * 24 * 10.0)
    assert by_building["B"].electricity_kwh == pytest.approx(31 * 24 * 4.0)
    # Replays: the same batches again, the day split into pieces delivered backwards, and a
    # copy from an older installation epoch with other quantities. Nothing changes.
    for _ in range(3):
        store.store_batch(batch(day_a, after=day_a[0].seq - 1), "s", now=NOW)
    for i in reversed(range(0, len(day_b), 5)):
        piece = day_b[i:i + 5]
        store.store_batch(batch(piece, after=piece[0].seq - 1, edge="edge-2"), "s", now=NOW)
    stale = [IntervalRecord(seq=r.seq, device=r.device, point=r.point, start=r.start,
                            duration_s=r.duration_s, quantity=r.quantity * 7, unit=r.unit)
             for r in day_a]
    store.store_batch(batch(stale, after=stale[0].seq - 1, epoch=0), "s", now=NOW)
    again, sheets_again = figures(store, school, profile, ledger)
    assert again == once
    assert sheets_again == sheets_once


def test_per_building_sheets_equal_the_metrics(
        store: Store, school: InstitutionConfig, profile: CoefficientProfile) -> None:
    ledger = SqliteLedger(":memory:")
    march_without_the_15th(store)
    data, sheets = figures(store, school, profile, ledger)
    assert [b.id for b in data.buildings] == ["A", "B"]
    for b in school.buildings:
        rows = sheets[sheet_title(f"{b.id} {b.name}", [])]
        total = rows[-1]
        api = building_summary(store, ledger, school, profile, start=local_ts(2025, 3, 1),
                               end=NOW, building=b.id)
        assert total[0] == "合计"
        assert total[1:4] == (pytest.approx(api.electricity_kwh, rel=1e-12),
                              pytest.approx(api.water_m3, rel=1e-12),
                              pytest.approx(api.energy_kgce, rel=1e-12))
        months = [r for r in rows if r and str(r[0]).startswith("2025-")]
        assert sum(r[1] for r in months) == pytest.approx(total[1], rel=1e-12)
    assert sheet_title("A/B:C" * 10, ["A_B_CA_B_CA_B_CA_B_CA_B_CA_B_CA"]) == (
        "A_B_CA_B_CA_B_CA_B_CA_B_CA_ (2)")


@pytest.fixture
async def client(store: Store, school: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    march_without_the_15th(store)
    # A leak raised and cleared, and a kitchen-bin fill drop of 70 % → 5 %.
    events = [Event(seq=1, ts=local_ms(2025, 3, 5, 2), name="alarm.leak", severity=Severity.ALARM,
                    device="water-a", data={"state": "raised", "rule": "night_flow",
                                            "point": "water_m3", "flow": 0.3}),
              Event(seq=2, ts=local_ms(2025, 3, 5, 9), name="alarm.leak", severity=Severity.ALARM,
                    device="water-a", data={"state": "cleared", "rule": "night_flow",
                                            "point": "water_m3"})]
    # The water meter's edge (a new installation epoch: a stream of its own). An alarm of an
    # edge no meter of the institution names is another institution's, never counted here.
    store.store_batch(batch(events, after=0, edge="edge-1", epoch=2), "s", now=NOW)
    ledger = SqliteLedger(":memory:")
    auth = authenticator()
    app = create_app(store, [Tenant(school, profile, ledger)], VirtualClock(NOW), auth)
    iid = school.institution.id
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=f"http://test/api/v1/institutions/{iid}/",
                                 headers=bearer(auth, "viewer", [iid])) as c:
        yield c
    ledger.close()


async def test_xlsx_building_totals_equal_the_api(client: httpx.AsyncClient,
                                                  school: InstitutionConfig) -> None:
    r = await client.get("reports/ledger", params={"year": 2025, "format": "xlsx"})
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.content), data_only=True)
    for b in school.buildings:
        api = (await client.get("metrics", params={
            "start": "2025-01-01", "end": "2026-01-01", "building": b.id})).json()
        total = list(book[sheet_title(f"{b.id} {b.name}", [])].iter_rows(values_only=True))[-1]
        assert total[1] == pytest.approx(api["electricity_kwh"], rel=1e-12)
        assert total[2] == pytest.approx(api["water_m3"], rel=1e-12)
        assert total[3] == pytest.approx(api["energy_kgce"], rel=1e-12)
        assert total[5] == pytest.approx(api["kgce_per_m2"], rel=1e-12)


async def test_scoring_sheet_evidence_for_water_and_bins(client: httpx.AsyncClient) -> None:
    r = await client.get("reports/scoring", params={"year": 2025, "format": "json"})
    lines = {x["id"]: x for x in r.json()}
    assert lines["3.5"]["evidenced"] is True
    assert lines["3.5"]["evidence"] == ("1 water meters; leak alarms raised 1, cleared 1, "
                                        "open 0")
    assert lines["4.5"]["met"] is True
    assert lines["4.5"]["evidence"].endswith("(4 of 4 categories with a sensor bin)")


async def test_analysis_report_shows_standby_and_open_leaks(client: httpx.AsyncClient) -> None:
    r = await client.get("reports/quarterly",
                         params={"year": 2025, "number": 1, "lang": "en"})
    assert r.status_code == 200
    assert "<td>Standby energy after hours</td><td>0.00 kWh</td>" in r.text
    assert "<td>Open leak alarms</td><td>0</td>" in r.text
