"""Cost figures from metered data and bills (central/cost.py) on a real SQLite store and
ledger: hand-computed yuan per building, 分项 item, month and time-of-use period, the bill
check, the statistics return's 费用 and the report's cost tables."""

from __future__ import annotations

import copy
import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from central.cost import period_cost, return_cost, series
from central.cost_report import cost_tables
from central.energy import EnergyType
from central.institution import InstitutionConfig, parse_institution
from central.ledger import Bill, EntryKind, SqliteLedger
from central.profile import load_profile
from central.reports import gather
from central.statreturn import render_statistics_return
from central.store import Store
from tests.unit.central.central_helpers import INSTITUTION, batch, interval, local_ms, local_ts
from tests.unit.central.test_tariff import TOU

QUARTER_MS = 900_000
PROFILE = load_profile("national")


def institution(tariff: dict[str, Any] | None) -> InstitutionConfig:
    data = copy.deepcopy(INSTITUTION)
    if tariff is not None:
        data["tariff"] = tariff
    return parse_institution(data)


def fill(store: Store) -> None:
    """Wednesday 2 July 2025, every quarter hour: meter-a 0.25 kWh (1 kWh/h), its AC
    sub-meter 0.125, meter-b 0.125; water-a 1,100 m³ over the day's 24 hours."""
    t0 = local_ms(2025, 7, 2)
    records = []
    seq = 0
    for i in range(96):
        for device, q in (("meter-a", 0.25), ("meter-a-ac", 0.125)):
            seq += 1
            records.append(interval(seq, start=t0 + i * QUARTER_MS, quantity=q, device=device))
    for h in range(24):
        seq += 1
        records.append(interval(seq, start=t0 + h * 3_600_000, quantity=1100 / 24,
                                device="water-a", point="water_m3", unit="m3",
                                duration_s=3600))
    store.store_batch(batch(records, after=0), "s")
    store.store_batch(batch([interval(i + 1, start=t0 + i * QUARTER_MS, quantity=0.125,
                                      device="meter-b") for i in range(96)],
                            after=0, edge="edge-2"), "s")


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "s.sqlite") as s:
        fill(s)
        yield s


def test_cost_per_building_item_period_and_month(store: Store, tmp_path: Path) -> None:
    inst = institution({"electricity": TOU["electricity"], "water": TOU["water"]})
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    cost = period_cost(store, ledger, inst, PROFILE, start=local_ts(2025, 7, 1),
                       end=local_ts(2025, 7, 4))
    # Building A 1 kWh/h: 12.75 yuan (test_tariff's golden day); B and the AC sub-meter
    # 0.5 kWh/h: 6.375 each. Water 1,100 m³ in July: 1,000 × 4.8 + 100 × 6.3 = 5,430.
    assert cost.electricity.kwh == pytest.approx(36.0)
    assert cost.electricity.energy_yuan == pytest.approx(19.125)
    assert {p.period.value: round(p.kwh, 6) for p in cost.electricity.by_period} == {
        "valley": 15.0, "flat": 15.0, "peak": 5.25, "sharp": 0.75}
    lines = {b.key: b.yuan for b in cost.buildings}
    assert lines["A"] == pytest.approx(12.75 + 5430.0)
    assert lines["B"] == pytest.approx(6.375)
    assert [i.key for i in cost.items] == ["01B00"]
    assert cost.items[0].yuan == pytest.approx(6.375)
    by_type = {t.energy: t for t in cost.by_type}
    assert by_type[EnergyType.WATER].yuan == pytest.approx(5430.0)
    assert by_type[EnergyType.WATER].source == "tariff"
    assert cost.total_yuan == pytest.approx(19.125 + 5430.0)
    assert cost.complete
    assert cost.coverage is not None
    assert cost.coverage.days_with_data == 1
    assert [m.month for m in cost.months] == ["2025-07"]
    assert cost.months[0].yuan == pytest.approx(19.125 + 5430.0)
    # One building: its meters, and its share of the water account.
    only_b = period_cost(store, ledger, inst, PROFILE, start=local_ts(2025, 7, 1),
                         end=local_ts(2025, 7, 4), building="B")
    assert only_b.total_yuan == pytest.approx(6.375)


def test_water_tiers_count_from_the_month_start_for_a_window_inside_it(store: Store) -> None:
    inst = institution({"water": TOU["water"]})
    # 12:00–24:00 of 2 July: 550 m³, of which the first 1,000 − 550 = 450 at 4.8 and 100 at
    # 6.3 (the morning's 550 m³ count toward the tier): 2,160 + 630 = 2,790.
    cost = period_cost(store, None, inst, PROFILE, start=local_ts(2025, 7, 2, 12),
                       end=local_ts(2025, 7, 3))
    water = next(t for t in cost.by_type if t.energy is EnergyType.WATER)
    assert water.yuan == pytest.approx(2790.0)
    # No electricity tariff: electricity has no cost figure, never 0; the total is partial.
    elec = next(t for t in cost.by_type if t.energy is EnergyType.ELECTRICITY)
    assert elec.yuan is None
    assert not cost.complete


def test_hourly_rollup_and_raw_intervals_price_the_same(store: Store) -> None:
    inst = institution({"use": "cn-sample-general-ic"})
    keys = [m.key for m in inst.main_meters() if m.energy is EnergyType.ELECTRICITY]
    s, e = local_ts(2025, 7, 1, 10, 7), local_ts(2025, 7, 3, 2, 53)
    hourly = series(store, keys, s, e, hourly=True)
    raw = series(store, keys, s, e, hourly=False)
    assert len(hourly) < len(raw)
    from central.cost import tariff_book
    book = tariff_book(inst)
    assert book is not None
    assert book.electricity_cost(hourly) == pytest.approx(book.electricity_cost(raw))


def test_no_tariff_gives_no_cost_figures(store: Store) -> None:
    cost = period_cost(store, None, institution(None), PROFILE, start=local_ts(2025, 7, 1),
                       end=local_ts(2025, 7, 4))
    assert not cost.configured
    assert cost.total_yuan is None
    assert cost.electricity.energy_yuan is None
    assert cost_tables(cost, "zh")[0][2] == [["未配置价目，不计费用"]]


def test_bill_check_and_bills_with_amounts(store: Store, tmp_path: Path) -> None:
    inst = institution({"electricity": TOU["electricity"], "water": TOU["water"],
                        "bill_tolerance_pct": 3})
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    ledger.put(EntryKind.BILL, [
        # The utility's electricity bill of 2 July: 2 % above the metered 19.125 → agrees.
        Bill(ref="e-0702", energy=EnergyType.ELECTRICITY, period_start=date(2025, 7, 2),
             period_end=date(2025, 7, 2), quantity=36.5, amount_yuan=19.5075),
        # Water billed at 5,000 for the metered 5,430: metered is 8.6 % above → flagged.
        Bill(ref="w-0702", energy=EnergyType.WATER, building="A",
             period_start=date(2025, 7, 2), period_end=date(2025, 7, 2), quantity=1100,
             amount_yuan=5000.0),
        # Gas is not metered: its bill's amount is its cost, pro rata over its 31 days.
        Bill(ref="g-07", energy=EnergyType.NATURAL_GAS, period_start=date(2025, 7, 1),
             period_end=date(2025, 7, 31), quantity=3100, unit="m3", amount_yuan=12400.0),
    ])
    cost = period_cost(store, ledger, inst, PROFILE, start=local_ts(2025, 7, 1),
                       end=local_ts(2025, 7, 4))
    checks = {c.ref: c for c in cost.bill_checks}
    assert set(checks) == {"e-0702", "w-0702"}  # the gas bill ends after the window
    e = checks["e-0702"]
    assert e.metered_yuan == pytest.approx(19.125)
    assert e.difference_yuan == pytest.approx(19.125 - 19.5075)
    assert e.difference_pct == pytest.approx(-1.9608, abs=1e-3)
    assert not e.flagged
    w = checks["w-0702"]
    assert w.metered_quantity == pytest.approx(1100.0)
    assert w.difference_pct == pytest.approx(8.6)
    assert w.flagged
    gas = next(t for t in cost.by_type if t.energy is EnergyType.NATURAL_GAS)
    assert gas.billed_yuan == pytest.approx(12400.0 * 3 / 31)
    assert gas.source == "bill"
    assert cost.total_yuan == pytest.approx(19.125 + 5430.0 + 1200.0)
    rows = {r[0]: r for r in cost_tables(cost, "zh")[-1][2]}
    assert rows["w-0702"][-1] == "超出容差 (±3%)"
    assert rows["e-0702"][-1] == "一致"
    # The statistics return prefers bill amounts that cover every day of the window.
    gas_yuan, gas_source = return_cost(cost, EnergyType.NATURAL_GAS)
    assert (gas_yuan, gas_source) == (pytest.approx(1200.0), "账单金额")
    elec_yuan, elec_source = return_cost(cost, EnergyType.ELECTRICITY)
    assert elec_yuan == pytest.approx(19.125)
    assert elec_source == "计量×价目"


def test_reports_and_the_statistics_return_carry_the_cost(store: Store,
                                                          tmp_path: Path) -> None:
    import openpyxl

    inst = institution({"electricity": TOU["electricity"], "water": TOU["water"]})
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    data = gather(store, ledger, inst, PROFILE, kind="quarterly", year=2025, number=3,
                  now=local_ts(2025, 7, 4))
    assert data.cost is not None
    assert data.cost.total_yuan == pytest.approx(5449.125)
    book = openpyxl.load_workbook(io.BytesIO(render_statistics_return(data, inst)))
    energy = {r[0]: r for r in book["能源消费"].iter_rows(values_only=True) if r and r[0]}
    assert energy["电"][4] == pytest.approx(19.125)
    assert energy["电"][6] == "计量×价目"
    water = {r[0]: r for r in book["水资源消费"].iter_rows(values_only=True) if r and r[0]}
    assert water["用水量"][3] == pytest.approx(5430.0)
    # The report's HTML (what the PDF draws too) and the ledger XLSX's 费用 sheet.
    from central.report_xlsx import render_xlsx
    from central.reports import render_html

    html = render_html(data, "zh")
    assert "能源费用 (inline)" in html
    assert f"{data.cost.total_yuan:,.2f}" in html  # 5,449.12 or .13: 5449.125 in binary
    assert "尖峰" in html
    monthly = gather(store, ledger, inst, PROFILE, kind="monthly", year=2025, number=7,
                     now=local_ts(2025, 7, 4))
    assert "分建筑费用" not in render_html(monthly, "zh")  # the disclosure: by type only
    assert "分建筑费用" in html
    sheet = openpyxl.load_workbook(io.BytesIO(render_xlsx(data, "zh")))["费用"]
    rows = {r[0]: r for r in sheet.iter_rows(values_only=True) if r and r[0]}
    assert rows["合计"][3] == pytest.approx(5449.125, abs=0.006)  # to the fen
    assert rows["水"][3] == pytest.approx(5430.0)


async def test_the_api_returns_the_cost_of_a_month(store: Store, tmp_path: Path) -> None:
    from central.api import Tenant, create_app
    from protocols.clock import VirtualClock
    from tests.unit.central.central_helpers import authenticator, bearer
    from tests.unit.central.test_api import http

    inst = institution({"electricity": TOU["electricity"], "water": TOU["water"]})
    auth = authenticator()
    app = create_app(store, [Tenant(inst, PROFILE, SqliteLedger(tmp_path / "l.sqlite"))],
                     VirtualClock(local_ts(2025, 7, 4)), auth)
    async with http(app, bearer(auth)) as c:
        r = await c.get("/api/v1/institutions/demo-school/cost",
                        params={"year": 2025, "month": 7})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["electricity"]["energy_yuan"] == pytest.approx(19.125)
        assert body["total_yuan"] == pytest.approx(5449.125)
        assert body["coverage"]["days_with_data"] == 1
        # June has no data: no cost figure, never 0.
        june = (await c.get("/api/v1/institutions/demo-school/cost",
                            params={"year": 2025, "month": 6})).json()
        assert june["total_yuan"] is None
        assert (await c.get("/api/v1/institutions/demo-school/cost",
                            params={"year": 2025, "month": 8})).status_code == 422
        assert (await c.get("/api/v1/institutions/demo-school/cost",
                            params={"year": 2025, "building": "Z"})).status_code == 422
        # The dashboard's card is the month so far: the same figure as /cost of July.
        board = (await c.get("/api/v1/institutions/demo-school/dashboard")).json()
        assert board["cost"]["total_yuan"] == pytest.approx(body["total_yuan"])
        assert board["cost"]["electricity"]["yuan_per_kwh"] == pytest.approx(19.125 / 36)
    plain = create_app(store, [Tenant(institution(None), PROFILE)],
                       VirtualClock(local_ts(2025, 7, 4)), auth)
    async with http(plain, bearer(auth)) as c:
        board = (await c.get("/api/v1/institutions/demo-school/dashboard")).json()
        assert board["cost"] is None  # no tariff section: no card figure, never 0


def test_bills_with_amounts_import_from_csv_and_bad_amounts_are_named(tmp_path: Path) -> None:
    from central.entries import import_rows
    from central.errors import EntryError

    inst = institution({"use": "cn-sample-general-ic"})
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    good = ("ref,energy,building,period_start,period_end,quantity,unit,amount_yuan,supplier\n"
            "elec-2025-07,electricity,,2025-07-01,2025-07-31,18250,kWh,13140.50,国网\n"
            "gas-2025-07,natural_gas,,2025-07-01,2025-07-31,3100,m3,,城燃\n")
    result = import_rows(ledger, EntryKind.BILL, good.encode("gb18030"), "csv", inst, PROFILE,
                         source="bills.csv")
    assert result.put.inserted == 2
    bills = {b.ref: b for b in ledger.bills(date(2025, 7, 1), date(2025, 7, 31))}
    assert bills["elec-2025-07"].amount_yuan == 13140.5
    assert bills["gas-2025-07"].amount_yuan is None  # an empty cell: not entered
    bad = ("ref,energy,period_start,period_end,quantity,amount_yuan\n"
           "e-8,electricity,2025-08-01,2025-08-31,100,-5\n"
           "e-9,electricity,2025-09-01,2025-09-30,100,lots\n")
    with pytest.raises(EntryError) as err:
        import_rows(ledger, EntryKind.BILL, bad.encode(), "csv", inst, PROFILE,
                    source="bad.csv")
    fields = {(f, v) for f, v, _ in err.value.problems}
    assert ("row 2.amount_yuan", "-5") in fields
    assert ("row 3.amount_yuan", "lots") in fields
    assert len(ledger.bills(date(2025, 8, 1), date(2025, 9, 30))) == 0  # nothing stored


def test_water_tiers_on_the_account_and_each_building_its_share(store: Store) -> None:
    data = copy.deepcopy(INSTITUTION)
    data["meters"] += [
        {"edge": "edge-1", "device": "water-a2", "building": "A", "energy": "water",
         "role": "main"},
        {"edge": "edge-2", "device": "water-b", "building": "B", "energy": "water",
         "role": "main"}]
    data["tariff"] = {"electricity": TOU["electricity"], "water": TOU["water"]}
    inst = parse_institution(data)
    t0 = local_ms(2025, 7, 2, 9)
    store.store_batch(batch([interval(1, start=t0, quantity=100.0, device="water-a2",
                                      point="water_m3", unit="m3", duration_s=3600)],
                            after=0, edge="edge-1", epoch=2), "s")
    store.store_batch(batch([interval(1, start=t0, quantity=200.0, device="water-b",
                                      point="water_m3", unit="m3", duration_s=3600)],
                            after=0, edge="edge-2", epoch=2), "s")
    cost = period_cost(store, None, inst, PROFILE, start=local_ts(2025, 7, 1),
                       end=local_ts(2025, 7, 4))
    # 1,100 + 100 + 200 = 1,400 m³ on one account: 1,000 × 4.8 + 400 × 6.3 = 7,320 yuan;
    # A used 1,200 of it, B 200.
    water = next(t for t in cost.by_type if t.energy is EnergyType.WATER)
    assert water.yuan == pytest.approx(7320.0)
    lines = {b.key: b.yuan for b in cost.buildings}
    assert lines["A"] == pytest.approx(12.75 + 7320.0 * 1200 / 1400)
    assert lines["B"] == pytest.approx(6.375 + 7320.0 * 200 / 1400)


def test_day_types_follow_the_official_calendar_not_the_school_vacation(store: Store) -> None:
    """2 July 2025 is a Wednesday: a school's vacation day off for its own after-hours
    figures, but a working day to the utility, unless the tariff section says otherwise."""
    from central.cost import tariff_book

    data = copy.deepcopy(INSTITUTION)
    data["calendar"] = {"holidays": ["2025-07-02"]}
    data["tariff"] = {"electricity": TOU["electricity"]}
    book = tariff_book(parse_institution(data))
    assert book is not None
    day = [(local_ts(2025, 7, 2), local_ts(2025, 7, 3), 24.0)]
    assert book.electricity_cost(day) == pytest.approx(12.75)  # the working-day table
    data["tariff"]["holidays"] = ["2025-07-02"]
    book = tariff_book(parse_institution(data))
    assert book is not None
    assert book.electricity_cost(day) == pytest.approx(9.8)  # the rest-day table
