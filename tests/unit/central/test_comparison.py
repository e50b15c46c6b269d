"""同比 / 环比 and the 14th FYP progress against a hand-computed base year (issue 18).

The institution: buildings A 7,000 m² + B 5,000 m² = 12,000 m² in 2020; A grows to 8,000 m²
on 2021-01-01 → 13,000 m². 用能人数 120 staff + 1,500 students = 1,620 in 2020; 1,800
students from 2021-01-01 → 1,920. Electricity 0.1229 kgce/kWh (national profile).

Base year 2020, monthly bills (building-less, as a utility bills the institution):

    month     electricity kWh   water m³
    2020-01   33,000            930
    2020-02   26,000            350 (a bill for 1–14 Feb only: water half covered)
    2020-03   30,000            900

2021, metered (6-hour intervals on every day): meter-a + meter-b per day, water-a per day

    2021-01   600 + 400 = 1,000 kWh × 31 = 31,000     28 m³ × 31 = 868
    2021-02   500 + 400 =   900 kWh × 28 = 25,200     25 m³ × 28 = 700
    2021-03   600 + 400 = 1,000 kWh × 31 = 31,000     28 m³ × 31 = 868
    2021-04-01 … 04-10  1,000 kWh a day (no 2020 April bill: 同比 "—")

Hand-computed 同比 for March 2021 against March 2020:
    electricity   31,000 ÷ 30,000 − 1                       = +0.0333333 (1/30)
    kgce          the same ratio (electricity only)          = +0.0333333
    kgce/m²       (31,000 / 13,000) ÷ (30,000 / 12,000) − 1  = 372/390 − 1 = −0.0461538
    kgce/person   (31,000 / 1,920) ÷ (30,000 / 1,620) − 1    = 0.871875 − 1 = −0.128125
    water/person  (868 / 1,920) ÷ (900 / 1,620) − 1          = 0.81375 − 1 = −0.18625
环比 March 2021 against February 2021: electricity 31,000 ÷ 25,200 − 1 = 58/252 = +0.2301587.
14th FYP, year to date 2021-01-01 … 03-31 against 2020-01-01 … 03-31:
    electricity 87,200 vs 89,000 kWh
    kgce/m²       (87,200 × 12,000) ÷ (89,000 × 13,000) − 1 = −0.0955920 (required −1 %)
    kgce/person   (87,200 × 1,620) ÷ (89,000 × 1,920) − 1   = −0.1733146 (required −1.2 %)
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from central.baseline import Baseline, DegreeDays
from central.baseyear import comparisons_for, span_for
from central.comparison import (
    DaySpan,
    FigureSet,
    TypeCoverage,
    compare,
    degree_days,
    previous_span,
    required_change,
    weather_factor,
    year_earlier,
)
from central.energy import EnergyType
from central.institution import InstitutionConfig, parse_institution
from central.ledger import Bill, EntryKind, SqliteLedger
from central.profile import load_profile
from central.store import Store
from tests.unit.central.central_helpers import INSTITUTION, batch, interval, local_ms

SIX_H_MS = 6 * 3_600_000


def school() -> dict[str, Any]:
    data = copy.deepcopy(INSTITUTION)
    data["buildings"][0]["floor_area_changes"] = [{"since": "2021-01-01",
                                                   "floor_area_m2": 8000}]
    data["headcount"] = {"staff": 120, "students_daily_avg": 1500, "changes": [
        {"since": "2021-01-01", "staff": 120, "students_daily_avg": 1800}]}
    return data


BILLS = [  # (month, kWh, first day, last day, m³)
    (1, 33_000.0, 1, 31, 930.0), (2, 26_000.0, 1, 14, 350.0), (3, 30_000.0, 1, 31, 900.0)]
# (first day, last day, meter-a kWh/day, meter-b kWh/day, water m³/day)
METERED = [(date(2021, 1, 1), date(2021, 1, 31), 600.0, 400.0, 28.0),
           (date(2021, 2, 1), date(2021, 2, 28), 500.0, 400.0, 25.0),
           (date(2021, 3, 1), date(2021, 4, 10), 600.0, 400.0, 28.0)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Store, SqliteLedger, InstitutionConfig]]:
    inst = parse_institution(school())
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    month_ends = {1: 31, 2: 29, 3: 31}
    bills = []
    for month, kwh, w0, w1, m3 in BILLS:
        bills.append(Bill(ref=f"e-2020-{month:02}", energy="electricity",
                          period_start=date(2020, month, 1),
                          period_end=date(2020, month, month_ends[month]), quantity=kwh))
        bills.append(Bill(ref=f"w-2020-{month:02}", energy="water",
                          period_start=date(2020, month, w0),
                          period_end=date(2020, month, w1), quantity=m3))
    ledger.put(EntryKind.BILL, bills)
    edge1: list[Any] = []
    edge2: list[Any] = []
    for first, last, a, b, water in METERED:
        t = local_ms(first.year, first.month, first.day)
        end = local_ms(last.year, last.month, last.day) + 4 * SIX_H_MS
        while t < end:
            edge1.append(interval(len(edge1) + 1, start=t, quantity=a / 4,
                                  duration_s=6 * 3600))
            edge1.append(interval(len(edge1) + 1, start=t, quantity=water / 4,
                                  device="water-a", point="water_m3", unit="m3",
                                  duration_s=6 * 3600))
            edge2.append(interval(len(edge2) + 1, start=t, quantity=b / 4, device="meter-b",
                                  duration_s=6 * 3600))
            t += SIX_H_MS
    store = Store(tmp_path / "s.sqlite")
    store.store_batch(batch(edge1, after=0), "s")
    store.store_batch(batch(edge2, after=0, edge="edge-2"), "s")
    yield store, ledger, inst
    store.close()
    ledger.close()


def test_golden_year_on_year_against_hand_computed_base_year(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    store, ledger, inst = world
    span = span_for("month", 2021, 3, date(2021, 4, 1))
    c = comparisons_for(store, ledger, inst, load_profile("national"), span, "month",
                        today=date(2021, 4, 1))
    assert (c.current.days, c.year_on_year.previous.days) == (31, 31)
    yoy = c.year_on_year
    assert yoy.line("electricity_kwh").current == pytest.approx(31_000)
    assert yoy.line("electricity_kwh").previous == pytest.approx(30_000)
    assert yoy.line("electricity_kwh").change == pytest.approx(1 / 30)
    assert yoy.line("energy_kgce").change == pytest.approx(1 / 30)
    assert yoy.line("energy_kgce").previous == pytest.approx(30_000 * 0.1229)
    assert yoy.line("kgce_per_m2").change == pytest.approx(372 / 390 - 1)
    assert yoy.line("kgce_per_person").change == pytest.approx(-0.128125)
    assert yoy.line("water_m3_per_person").change == pytest.approx(-0.18625)
    assert yoy.line("kgce_per_m2").arrow == "↓"
    assert {x.status for x in yoy.lines} == {"ok"}
    # 环比: February 2021, whole.
    pop = c.period_on_period
    assert (pop.previous.first_day, pop.previous.end_day) == (date(2021, 2, 1),
                                                              date(2021, 3, 1))
    assert pop.line("electricity_kwh").change == pytest.approx(58 / 252)
    assert pop.line("energy_kgce").arrow == "↑"


def test_partial_base_water_is_no_comparison_but_energy_is(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    """February 2020's water bill covers 14 of 29 days: water 同比 is "—" with the reason;
    electricity (billed every day) compares, a 28-day February against a 29-day one."""
    store, ledger, inst = world
    span = span_for("month", 2021, 2, date(2021, 4, 1))
    yoy = comparisons_for(store, ledger, inst, load_profile("national"), span, "month",
                          today=date(2021, 4, 1)).year_on_year
    water = yoy.line("water_m3_per_person")
    assert (water.change, water.status, water.arrow) == (None, "incomplete", "—")
    assert "previous water 14/29" in (water.reason or "")
    assert water.reason_zh == "数据覆盖不足 100%：对比期水 14/29 天"
    assert water.previous == pytest.approx(350 / 1620)  # shown, never compared
    assert yoy.line("electricity_kwh").change == pytest.approx(25_200 / 26_000 - 1)


def test_missing_base_year_data_is_a_dash(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    """April 2021 so far (10 days metered) has no April 2020 bill: every 同比 is "—"; its
    环比 is the first 10 days of March."""
    store, ledger, inst = world
    span = span_for("month", 2021, 4, date(2021, 4, 11))
    c = comparisons_for(store, ledger, inst, load_profile("national"), span, "month",
                        today=date(2021, 4, 11))
    assert span == DaySpan(date(2021, 4, 1), date(2021, 4, 11))
    for line in c.year_on_year.lines:
        assert (line.change, line.status, line.arrow) == (None, "no_data", "—")
        assert line.previous in (0.0, None) or line.figure.endswith(("m2", "person"))
    assert c.period_on_period.previous.days == 10
    assert c.period_on_period.line("electricity_kwh").change == pytest.approx(0.0)


def test_fyp_progress_year_to_date_against_the_base_year(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    store, ledger, inst = world
    span = span_for("month", 2021, 3, date(2021, 4, 1))
    profile = load_profile("national")
    c = comparisons_for(store, ledger, inst, profile, span, "month", today=date(2021, 4, 1))
    assert c.targets is not None
    t = {x.figure: x for x in c.targets.lines}
    assert (c.targets.base.first_day, c.targets.base.end_day) == (date(2020, 1, 1),
                                                                  date(2020, 4, 1))
    assert t["kgce_per_m2"].change == pytest.approx(87_200 * 12_000 / (89_000 * 13_000) - 1)
    assert t["kgce_per_m2"].required_change == pytest.approx(-0.01)
    assert t["kgce_per_m2"].status == "on_track"
    assert t["kgce_per_m2"].target_value == pytest.approx(89_000 * 0.1229 / 12_000 * 0.99)
    assert t["kgce_per_person"].change == pytest.approx(87_200 * 1_620 / (89_000 * 1_920) - 1)
    assert t["kgce_per_person"].required_change == pytest.approx(-0.012)
    assert t["co2_per_m2"].status == "awaiting_emission_factors"
    # water: February 2020 half billed, so the year to date has no comparison
    assert (t["water_m3_per_person"].change, t["water_m3_per_person"].status) == (
        None, "incomplete")

    def co2(energy: EnergyType, quantity: float, _s: float, _e: float) -> float | None:
        return quantity * 0.5703 if energy is EnergyType.ELECTRICITY else None

    c2 = comparisons_for(store, ledger, inst, profile, span, "month",
                         today=date(2021, 4, 1), co2=co2)
    assert c2.targets is not None
    co2_line = next(x for x in c2.targets.lines if x.figure == "co2_per_m2")
    assert co2_line.change == pytest.approx(87_200 * 12_000 / (89_000 * 13_000) - 1)
    assert co2_line.required_change == pytest.approx(-0.014)
    assert co2_line.status == "on_track"


def _set(hdd: float | None, cdd: float | None, kwh: float) -> FigureSet:
    return FigureSet(first_day=date(2021, 3, 1), end_day=date(2021, 4, 1), days=31,
                     types=[TypeCoverage(energy=EnergyType.ELECTRICITY, covered_days=31,
                                         quantity=kwh)],
                     energy_kgce=kwh * 0.1229, energy_kgce_for_area=kwh * 0.1229,
                     electricity_kwh=kwh, water_m3=0.0, floor_area_m2=12_000,
                     energy_users=1_620, hdd=hdd, cdd=cdd)


def test_degree_day_normalisation() -> None:
    """heating_share 0.3, HDD 250 this March against 300 in the base March: the current
    figure restated at the base weather is × (0.7 + 0.3 × 300/250) = × 1.06; so 31,000 kWh
    against 30,000 is +3.33 % raw and 31,000 × 1.06 / 30,000 − 1 = +9.53 % adjusted (a mild
    March flattered the raw figure)."""
    dd = DegreeDays(heating_share=0.3, hdd={2020: [0, 0, 300, *[0] * 9],
                                            2021: [0, 0, 250, *[0] * 9]})
    march_21, march_20 = DaySpan(date(2021, 3, 1), date(2021, 4, 1)), DaySpan(
        date(2020, 3, 1), date(2020, 4, 1))
    assert degree_days(dd.hdd, march_21) == pytest.approx(250)
    # pro-rated by days: 15 of March's 31 days
    assert degree_days(dd.hdd, DaySpan(date(2021, 3, 1), date(2021, 3, 16))) == \
        pytest.approx(250 * 15 / 31)
    assert degree_days(dd.hdd, DaySpan(date(2019, 3, 1), date(2019, 4, 1))) is None
    cur = _set(degree_days(dd.hdd, march_21), None, 31_000)
    ref = _set(degree_days(dd.hdd, march_20), None, 30_000)
    assert weather_factor(cur, ref, dd) == pytest.approx(1.06)
    line = compare("electricity_kwh", cur, ref, degree=dd)
    assert line.change == pytest.approx(1 / 30)
    assert line.change_weather_adjusted == pytest.approx(31_000 * 1.06 / 30_000 - 1)
    assert compare("water_m3", cur, ref, degree=dd).change_weather_adjusted is None
    # a summer month without heating degree days: nothing to restate (ratio 1)
    assert weather_factor(_set(0.0, None, 1), _set(12.0, None, 1), dd) == pytest.approx(1.0)
    # degree days missing for one side: no adjusted change
    assert weather_factor(_set(None, None, 1), ref, dd) is None


def test_periods() -> None:
    feb29 = DaySpan(date(2024, 2, 1), date(2024, 3, 1))
    assert year_earlier(feb29) == DaySpan(date(2023, 2, 1), date(2023, 3, 1))
    assert year_earlier(DaySpan(date(2024, 2, 29), date(2024, 3, 1))) == DaySpan(
        date(2023, 2, 28), date(2023, 3, 1))
    assert previous_span(DaySpan(date(2025, 3, 1), date(2025, 4, 1)), "month") == DaySpan(
        date(2025, 2, 1), date(2025, 3, 1))
    # March so far (30 days) against February: clipped to February's 28 days
    assert previous_span(DaySpan(date(2025, 3, 1), date(2025, 3, 31)), "month") == DaySpan(
        date(2025, 2, 1), date(2025, 3, 1))
    assert previous_span(DaySpan(date(2025, 4, 1), date(2025, 7, 1)), "quarter") == DaySpan(
        date(2025, 1, 1), date(2025, 4, 1))
    assert previous_span(DaySpan(date(2025, 1, 1), date(2025, 1, 8)), "days") == DaySpan(
        date(2024, 12, 25), date(2025, 1, 1))
    ytd = DaySpan(date(2021, 1, 1), date(2021, 4, 1))  # a year so far: last year's same days
    assert previous_span(ytd, "year") == year_earlier(ytd) == DaySpan(date(2020, 1, 1),
                                                                       date(2020, 4, 1))
    assert required_change(5, 2023, 2020, 2025) == pytest.approx(-0.03)
    assert required_change(5, 2027, 2020, 2025) == pytest.approx(-0.05)


def test_baseline_config_errors_name_the_field() -> None:
    from central.errors import ConfigError

    data = school()
    data["baseline"] = {"base_year": 2020, "target_year": 2019}
    with pytest.raises(ConfigError, match="target_year must be after base_year"):
        parse_institution(data)
    data["baseline"] = {"degree_days": {"hdd": {2020: [1, 2, 3]}}}
    with pytest.raises(ConfigError, match=r"baseline\.degree_days\.hdd"):
        parse_institution(data)
    assert parse_institution(school()).baseline == Baseline()
    assert Baseline().targets_pct.kgce_per_m2 == 5.0


async def test_api_comparisons_route(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    import httpx

    from central.api import Tenant, create_app
    from protocols.clock import VirtualClock
    from tests.unit.central.central_helpers import authenticator, bearer, local_ts

    store, ledger, inst = world
    auth = authenticator()
    app = create_app(store, [Tenant(inst, load_profile("national"), ledger)],
                     VirtualClock(local_ts(2021, 4, 1, 9)), auth)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 headers=bearer(auth, "viewer", ["demo-school"])) as client:
        base = "/api/v1/institutions/demo-school/comparisons"
        default = (await client.get(base)).json()  # the month holding yesterday: March
        explicit = (await client.get(base, params={"period": "month", "year": 2021,
                                                   "number": 3})).json()
        assert default == explicit
        lines = {x["figure"]: x for x in explicit["year_on_year"]["lines"]}
        assert lines["kgce_per_person"]["change"] == pytest.approx(-0.128125)
        assert lines["kgce_per_person"]["arrow"] == "↓"
        targets = {x["figure"]: x for x in explicit["targets"]["lines"]}
        assert targets["kgce_per_m2"]["status"] == "on_track"
        feb = (await client.get(base, params={"year": 2021, "number": 2})).json()
        water = {x["figure"]: x for x in feb["year_on_year"]["lines"]}["water_m3"]
        assert (water["change"], water["status"], water["arrow"]) == (None, "incomplete", "—")
        bad = await client.get(base, params={"period": "quarter", "number": 5})
        assert bad.status_code == 422
        assert "number" in bad.text
        gym = await client.get(base, params={"building": "gym"})
        assert gym.status_code == 422
        assert "building: unknown building (got 'gym')" in gym.text
        one = (await client.get(base, params={"building": "A"})).json()
        assert one["building"] == "A"
        assert "kgce_per_person" not in {x["figure"] for x in one["year_on_year"]["lines"]}


def test_reports_carry_the_comparisons(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    """The quarterly report of Q1 2021: the 同比 table, the FYP section and each month's
    同比 in the HTML; the ledger XLSX's sheet 同比与目标 with the ratios as numbers."""
    import io
    import json

    import openpyxl

    from central.report_output import produce
    from tests.unit.central.central_helpers import local_ts

    store, ledger, inst = world
    profile = load_profile("national")
    now = local_ts(2021, 4, 1, 9)
    html, _, _ = produce(store, ledger, inst, profile, report="quarterly", fmt="html",
                         year=2021, number=1, now=now)
    text = html.decode()
    assert "同比与环比" in text
    assert "“十四五”目标进度（2021 年累计对比 2020 年同期）" in text
    assert "进度达标" in text
    # March 2021: electricity +3.3 % on March 2020; February's water is "—" (half billed)
    assert "<td>2021-03</td><td>+3.3% ↑</td><td>+3.3% ↑</td><td>-3.6% ↓</td>" in text
    assert "<td>2021-02</td><td>-3.1% ↓</td><td>-3.1% ↓</td><td>—</td>" in text
    body, _, _ = produce(store, ledger, inst, profile, report="quarterly", fmt="json",
                         year=2021, number=1, now=now)
    period = json.loads(body)["comparisons"]["period"]
    assert period["year_on_year"]["previous"]["first_day"] == "2020-01-01"
    xlsx, _, _ = produce(store, ledger, inst, profile, report="ledger", fmt="xlsx",
                         year=2021, now=now)
    book = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    rows = list(book["同比与目标"].iter_rows(values_only=True))
    by_month = {r[0]: r for r in rows[1:] if r and isinstance(r[0], str) and r[0][:4] == "2021"}
    assert sorted(by_month) == ["2021-01", "2021-02", "2021-03"]
    march = by_month["2021-03"]
    assert march[1] == pytest.approx(31_000 * 0.1229)  # kgce, full precision
    assert march[3] == pytest.approx(1 / 30)  # 同比 kgce as a ratio
    feb = by_month["2021-02"]
    assert feb[-1] == "—"  # water per person: February 2020 half billed
    assert any(r and "进度达标" in r for r in rows)


def test_empty_and_base_year_periods(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    """A period not begun yet compares nothing; the base year itself has no FYP progress."""
    store, ledger, inst = world
    profile = load_profile("national")
    future = comparisons_for(store, ledger, inst, profile,
                             span_for("month", 2021, 6, date(2021, 4, 11)), "month",
                             today=date(2021, 4, 11))
    assert future.current.days == 0
    assert {x.status for x in future.year_on_year.lines} == {"no_data"}
    base = comparisons_for(store, ledger, inst, profile,
                           span_for("month", 2020, 3, date(2021, 4, 11)), "month",
                           today=date(2021, 4, 11))
    assert base.targets is None
    assert base.period_on_period.line("electricity_kwh").change == pytest.approx(
        30_000 / 26_000 - 1)  # March 2020 against February 2020, both billed


def test_a_silent_main_meter_makes_its_days_partial(tmp_path: Path) -> None:
    """March 2021 metered by meter-a alone (meter-b, the other electricity main meter, sent
    nothing after 10 March): electricity covers 10 of 31 days, so no 同比 — the month's
    total would otherwise look a third lower than March 2020 for no reason."""
    inst = parse_institution(school())
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.put(EntryKind.BILL, [Bill(ref="e-2020-03", energy="electricity",
                                     period_start=date(2020, 3, 1),
                                     period_end=date(2020, 3, 31), quantity=30_000.0)])
    t0 = local_ms(2021, 3, 1)
    a = [interval(i + 1, start=t0 + i * SIX_H_MS, quantity=150.0, duration_s=6 * 3600)
         for i in range(31 * 4)]
    b = [interval(i + 1, start=t0 + i * SIX_H_MS, quantity=100.0, device="meter-b",
                  duration_s=6 * 3600) for i in range(10 * 4)]
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch(a, after=0), "s")
        store.store_batch(batch(b, after=0, edge="edge-2"), "s")
        c = comparisons_for(store, ledger, inst, load_profile("national"),
                            span_for("month", 2021, 3, date(2021, 4, 1)), "month",
                            today=date(2021, 4, 1))
    ledger.close()
    line = c.year_on_year.line("electricity_kwh")
    assert (line.change, line.status) == (None, "incomplete")
    assert line.reason is not None
    assert "current electricity 10/31" in line.reason
    assert line.current == pytest.approx(31 * 600 + 10 * 400)  # shown, not compared


def test_the_annual_analysis_uses_covered_comparisons_only(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    """2021 to 31 March against the same days of 2020: electricity (and so kgce) −2.0 %
    (87,200 against 89,000 kWh); water not compared, February 2020 being half billed
    (31 + 14 + 31 = 76 of 91 days); the 14th FYP line with the required −1 %."""
    import json

    from central.report_output import produce
    from tests.unit.central.central_helpers import local_ts

    store, ledger, inst = world
    body, _, _ = produce(store, ledger, inst, load_profile("national"), report="annual",
                         fmt="json", year=2021, now=local_ts(2021, 4, 1, 9))
    zh = " ".join(json.loads(body)["analysis_zh"])
    assert "与上年同期相比，综合能耗下降 2.0%，用电量下降 2.0%。" in zh
    assert "不作同比：用水量（数据覆盖不足 100%：对比期水 76/91 天）。" in zh
    assert ("对比 2020 年同期（“十四五”基准年）：单位建筑面积能耗下降 9.6%"
            "（本年应降 1.0%，进度达标）") in zh


def test_one_building(world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    """Building B (5,000 m² both years): March 2021 metered by meter-b, 400 kWh a day =
    12,400 kWh, against its own March 2020 bill of 12,000 kWh: +3.33 %, and the same per m²;
    no per-person figures. The institution's building-less bills are not B's: building A
    (8,000 m² in 2021, 7,000 in 2020) has no base data at all."""
    store, ledger, inst = world
    ledger.put(EntryKind.BILL, [Bill(ref="b-2020-03", energy="electricity", building="B",
                                     period_start=date(2020, 3, 1),
                                     period_end=date(2020, 3, 31), quantity=12_000.0)])
    # (stored directly: the institution-wide bill of the fixture now overlaps it, which
    # only the institution's figures would see)
    profile = load_profile("national")
    span = span_for("month", 2021, 3, date(2021, 4, 1))
    b = comparisons_for(store, ledger, inst, profile, span, "month", today=date(2021, 4, 1),
                        building="B")
    yoy = b.year_on_year
    assert [x.figure for x in yoy.lines] == ["energy_kgce", "kgce_per_m2", "electricity_kwh",
                                             "water_m3"]
    assert yoy.line("electricity_kwh").change == pytest.approx(12_400 / 12_000 - 1)
    assert yoy.line("kgce_per_m2").change == pytest.approx(12_400 / 12_000 - 1)
    assert yoy.line("water_m3").status == "no_data"  # B has no water meter or bill
    assert b.targets is not None
    assert [x.figure for x in b.targets.lines] == ["kgce_per_m2", "co2_per_m2"]
    a = comparisons_for(store, ledger, inst, profile, span, "month", today=date(2021, 4, 1),
                        building="A")
    assert a.year_on_year.line("electricity_kwh").status == "no_data"


def test_fyp_co2_per_m2_by_the_institutions_emission_factors(
        world: tuple[Store, SqliteLedger, InstitutionConfig]) -> None:
    """The API's and the reports' `co2_factor_for`: the shipped grid factors begin in 2021,
    so a 2020 base year has no CO₂ until the institution enters its own 2020 factor; with
    one, both sides are weighed by the factor valid on their days (2020: the own 0.5810,
    2021: the shipped national 0.5568) and the change is hand-computable."""
    from central.baseyear import co2_factor_for

    store, ledger, inst = world
    span = span_for("month", 2021, 3, date(2021, 4, 1))
    profile = load_profile("national")
    plain = comparisons_for(store, ledger, inst, profile, span, "month",
                            today=date(2021, 4, 1), co2=co2_factor_for(inst))
    assert plain.targets is not None
    line = next(x for x in plain.targets.lines if x.figure == "co2_per_m2")
    assert (line.change, line.status) == (None, "awaiting_emission_factors")
    assert "base year" in (line.reason or "")
    doc = school()
    doc["carbon"] = {"factors": [{
        "energy": "electricity", "unit": "kWh", "kg_co2_per_unit": 0.5810,
        "valid_from": "2020-01-01", "valid_to": "2020-12-31",
        "source": "test: an institution's own 2020 factor"}]}
    own = parse_institution(doc)
    c = comparisons_for(store, ledger, own, profile, span, "month", today=date(2021, 4, 1),
                        co2=co2_factor_for(own))
    assert c.targets is not None
    line = next(x for x in c.targets.lines if x.figure == "co2_per_m2")
    # Year to date: 87,200 kWh on 13,000 m² (2021) against 89,000 kWh on 12,000 m² (2020).
    assert line.change == pytest.approx(
        (87_200 * 0.5568 / 13_000) / (89_000 * 0.5810 / 12_000) - 1)
    assert line.status == "on_track"
