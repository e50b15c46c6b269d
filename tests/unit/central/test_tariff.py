"""Tariffs as data (central/tariff.py): golden yuan computed by hand for a time-of-use day
crossing every period, rest days and 调休 make-up workdays, a tariff change mid-period,
tier boundaries of water and gas, fixed charges; and the validation errors."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from central.errors import ConfigError
from central.institution import parse_institution
from central.tariff import TariffBook, TariffError, TariffSet, parse_tariffs, shipped
from central.workcalendar import WorkingCalendar
from tests.unit.central.central_helpers import INSTITUTION, SHANGHAI, local_ts

WORKING = [  # 24 h: valley 10 h, flat 2 + 7 + 1 h, peak 1.5 + 2 h, sharp 0.5 h
    {"start": "22:00", "end": "08:00", "period": "valley"},
    {"start": "08:00", "end": "10:00", "period": "flat"},
    {"start": "10:00", "end": "11:30", "period": "peak"},
    {"start": "11:30", "end": "12:00", "period": "sharp"},
    {"start": "12:00", "end": "19:00", "period": "flat"},
    {"start": "19:00", "end": "21:00", "period": "peak"},
    {"start": "21:00", "end": "22:00", "period": "flat"},
]
REST = [  # valley 10 h, flat 2 + 8 h, deep valley 4 h
    {"start": "22:00", "end": "08:00", "period": "valley"},
    {"start": "08:00", "end": "10:00", "period": "flat"},
    {"start": "10:00", "end": "14:00", "period": "deep_valley"},
    {"start": "14:00", "end": "22:00", "period": "flat"},
]
PRICES = {"sharp": 1.2, "peak": 0.9, "flat": 0.6, "valley": 0.3, "deep_valley": 0.2}
TOU: dict[str, Any] = {
    "id": "golden",
    "electricity": [{
        "valid_from": "2025-01-01", "prices": PRICES,
        "seasons": [{"name": "all", "months": list(range(1, 13)), "working_day": WORKING,
                     "rest_day": REST}]}],
    "water": [{"valid_from": "2025-01-01", "basis": "month",
               "tiers": [{"upto": 1000, "price": 4.8}, {"upto": 1500, "price": 6.3},
                         {"price": 7.8}]}],
    "natural_gas": [{"valid_from": "2025-01-01", "basis": "year",
                     "tiers": [{"upto": 50000, "price": 3.6}, {"price": 3.95}]}],
}


def book(data: dict[str, Any] | None = None, capacity_kva: float | None = None) -> TariffBook:
    return TariffBook(parse_tariffs(data or TOU, "test"), tz=SHANGHAI,
                      is_working_day=WorkingCalendar().is_working_day,
                      capacity_kva=capacity_kva)


def day(y: int, m: int, d: int, kwh: float = 24.0) -> tuple[float, float, float]:
    return (local_ts(y, m, d), local_ts(y, m, d) + 86_400, kwh)


def test_a_working_day_crossing_every_period() -> None:
    b = book()
    # 1 kWh per hour on Wednesday 2 July 2025: valley 10 × 0.3 + flat 10 × 0.6
    # + peak 3.5 × 0.9 + sharp 0.5 × 1.2 = 3.0 + 6.0 + 3.15 + 0.6 = 12.75 yuan.
    assert b.electricity_cost([day(2025, 7, 2)]) == pytest.approx(12.75)
    split = b.electricity_split([day(2025, 7, 2)])
    assert {p.value: round(v[0], 9) for p, v in split.by_period.items()} == {
        "valley": 10.0, "flat": 10.0, "peak": 3.5, "sharp": 0.5}
    # The same energy as 96 quarter-hour intervals: the same yuan.
    t0 = local_ts(2025, 7, 2)
    quarters = [(t0 + i * 900, t0 + (i + 1) * 900, 0.25) for i in range(96)]
    assert b.electricity_cost(quarters) == pytest.approx(12.75)
    # An interval across a boundary is split pro rata: 07:30–08:30, 2 kWh = 1 valley + 1 flat.
    assert b.electricity_cost([(local_ts(2025, 7, 2, 7, 30), local_ts(2025, 7, 2, 8, 30),
                                2.0)]) == pytest.approx(0.3 + 0.6)
    # 11:15–11:45 crosses peak → sharp at 11:30: 0.5 × 0.9 + 0.5 × 1.2.
    assert b.electricity_cost([(local_ts(2025, 7, 2, 11, 15), local_ts(2025, 7, 2, 11, 45),
                                1.0)]) == pytest.approx(1.05)
    # Across midnight into Thursday, both valley: 23:00–01:00, 4 kWh.
    assert b.electricity_cost([(local_ts(2025, 7, 2, 23), local_ts(2025, 7, 3, 1),
                                4.0)]) == pytest.approx(1.2)


def test_rest_days_and_makeup_workdays_follow_the_working_calendar() -> None:
    b = book()
    # Saturday 5 July 2025: valley 10 × 0.3 + flat 10 × 0.6 + deep valley 4 × 0.2 = 9.8.
    assert b.electricity_cost([day(2025, 7, 5)]) == pytest.approx(9.8)
    # Sunday 28 September 2025 is a 调休 working day: the working table, 12.75.
    assert b.electricity_cost([day(2025, 9, 28)]) == pytest.approx(12.75)
    # Wednesday 1 October 2025, National Day: the rest-day table.
    assert b.electricity_cost([day(2025, 10, 1)]) == pytest.approx(9.8)


def test_a_tariff_change_mid_period_prices_each_day_by_the_tariff_in_force() -> None:
    flat_day = [{"start": "00:00", "end": "24:00", "period": "flat"}]
    data = {"electricity": [
        {"valid_from": "2025-07-01", "valid_to": "2025-07-15", "prices": {"flat": 0.5},
         "seasons": [{"name": "all", "months": list(range(1, 13)), "working_day": flat_day}]},
        {"valid_from": "2025-07-16", "prices": {"flat": 0.8},
         "surcharges_per_kwh": {"基金": 0.05},
         "seasons": [{"name": "all", "months": list(range(1, 13)), "working_day": flat_day}]},
    ]}
    b = book(data)
    # 15 July 12:00 → 16 July 12:00, 24 kWh: 12 × 0.5 + 12 × (0.8 + 0.05) = 6.0 + 10.2.
    assert b.electricity_cost([(local_ts(2025, 7, 15, 12), local_ts(2025, 7, 16, 12),
                                24.0)]) == pytest.approx(16.2)
    # Before the first version: unpriced, never 0.
    with pytest.raises(TariffError, match="2025-06-30"):
        b.electricity_cost([day(2025, 6, 30)])
    split = b.electricity_split([day(2025, 6, 30), day(2025, 7, 1)])
    assert split.unpriced_kwh == pytest.approx(24.0)
    assert split.yuan == pytest.approx(12.0)


def test_water_tier_boundary_within_a_month_and_a_new_month() -> None:
    b = book()
    # July: 900 m³ then 200 m³; the tier limit 1,000 falls inside the second interval:
    # 1,000 × 4.8 + 100 × 6.3 = 5,430. August starts again at the first tier.
    first = (local_ts(2025, 7, 1), local_ts(2025, 7, 11), 900.0)
    second = (local_ts(2025, 7, 11), local_ts(2025, 7, 21), 200.0)
    assert b.water_cost([second, first]) == pytest.approx(5430.0)  # any order given
    assert b.water_cost([first, second, day(2025, 8, 3, 100.0)]) == pytest.approx(5910.0)
    # Beyond the second tier: 1,600 m³ in one month = 4,800 + 500 × 6.3 + 100 × 7.8.
    assert b.water_cost([day(2025, 9, 1, 1600.0)]) == pytest.approx(8730.0)
    # A month's interval split across two months is split pro rata, each month its tiers:
    # 2,000 m³ over 30 June – 2 July (3 days) → 666.67 m³ in June, 1,333.33 in July.
    cross = (local_ts(2025, 6, 30), local_ts(2025, 7, 3), 2000.0)
    june, july = 2000.0 / 3, 4000.0 / 3
    assert b.water_cost([cross]) == pytest.approx(
        june * 4.8 + 1000 * 4.8 + (july - 1000) * 6.3)


def test_gas_tiers_count_the_whole_year() -> None:
    b = book()
    # 30,000 m³ in January and 30,000 in June: 50,000 × 3.6 + 10,000 × 3.95 = 219,500.
    assert b.gas_cost([day(2025, 1, 10, 30000.0), day(2025, 6, 10, 30000.0)]) == \
        pytest.approx(219500.0)
    # The next year starts at the first tier again.
    assert b.gas_cost([day(2026, 1, 10, 10000.0)]) == pytest.approx(36000.0)


def test_fixed_charges_per_month_and_per_kva() -> None:
    data = copy.deepcopy(TOU)
    data["electricity"][0]["fixed"] = [{"name": "计量服务费", "yuan_per_month": 100.0},
                                       {"name": "基本电费", "yuan_per_kva_month": 25.0}]
    whole_july = (local_ts(2025, 7, 1), local_ts(2025, 8, 1))
    # Without a capacity the per-kVA charge is not applied, and says so.
    yuan, skipped = book(data).fixed_cost(*whole_july)
    assert yuan == pytest.approx(100.0)
    assert skipped == ["基本电费"]
    # 630 kVA × 25 = 15,750 per month; half of July (15 of 31 days) of both charges.
    yuan, skipped = book(data, capacity_kva=630).fixed_cost(local_ts(2025, 7, 1),
                                                            local_ts(2025, 7, 16))
    assert skipped == []
    assert yuan == pytest.approx((100.0 + 15750.0) * 15 / 31)


def test_the_shipped_sample_tariff_validates_and_prices_its_own_change() -> None:
    t = shipped("cn-sample-general-ic")
    b = TariffBook(t, tz=SHANGHAI, is_working_day=WorkingCalendar().is_working_day)
    assert b.hour_aligned()
    # Wednesday 2 July 2025, 15:00–16:00 is sharp: 1.12 + 0.03 per kWh; in 2026: 1.18 + 0.03.
    assert b.electricity_cost([(local_ts(2025, 7, 2, 15), local_ts(2025, 7, 2, 16), 10.0)]) \
        == pytest.approx(11.5)
    assert b.electricity_cost([(local_ts(2026, 7, 1, 15), local_ts(2026, 7, 1, 16), 10.0)]) \
        == pytest.approx(12.1)


# -- validation ---------------------------------------------------------------------------


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_tariffs(data, "t.yaml")
    return str(err.value)


def with_working(table: list[dict[str, str]]) -> dict[str, Any]:
    data = copy.deepcopy(TOU)
    data["electricity"][0]["seasons"][0]["working_day"] = table
    return data


def test_a_gap_or_overlap_in_the_24h_table_is_named() -> None:
    gap = [s for s in WORKING if s["start"] != "12:00"]
    assert "12:00–19:00 not covered by any span" in problems(with_working(gap))
    twice = [*WORKING, {"start": "18:00", "end": "20:00", "period": "peak"}]
    text = problems(with_working(twice))
    assert "18:00–19:00 covered twice (spans 4, 7)" in text
    assert "19:00–20:00 covered twice (spans 5, 7)" in text


def test_an_unknown_period_or_an_unpriced_period_is_named() -> None:
    table = copy.deepcopy(WORKING)
    table[3]["period"] = "super_peak"
    text = problems(with_working(table))
    assert "working_day[3].period" in text
    assert "super_peak" in text
    data = copy.deepcopy(TOU)
    del data["electricity"][0]["prices"]["sharp"]
    assert "uses period(s) sharp without a price" in problems(data)


def test_overlapping_or_gapped_validity_is_named() -> None:
    data = copy.deepcopy(TOU)
    v = data["electricity"][0]
    data["electricity"] = [{**v, "valid_to": "2025-06-30"}, {**v, "valid_from": "2025-06-15"}]
    assert "electricity[1].valid_from: overlaps electricity[0]" in problems(data)
    data["electricity"] = [{**v, "valid_to": "2025-06-30"}, {**v, "valid_from": "2025-07-02"}]
    assert "leaves a gap after electricity[0]" in problems(data)
    data["electricity"] = [v, {**v, "valid_from": "2026-01-01"}]
    assert "has no valid_to" in problems(data)


def test_seasons_must_cover_each_month_once_and_tiers_must_increase() -> None:
    data = copy.deepcopy(TOU)
    data["electricity"][0]["seasons"][0]["months"] = [1, 2, 3]
    assert "months [4, 5, 6, 7, 8, 9, 10, 11, 12] are in no season" in problems(data)
    data = copy.deepcopy(TOU)
    data["water"][0]["tiers"] = [{"upto": 1500, "price": 4.8}, {"upto": 1000, "price": 6.3},
                                 {"price": 7.8}]
    assert "upto 1000.0 follows upto 1500.0" in problems(data)
    data["water"][0]["tiers"] = [{"upto": 1500, "price": -1}, {"price": 7.8}]
    assert "water[0].tiers[0].price" in problems(data)


def test_the_institution_tariff_section_names_an_unknown_tariff_and_bad_inline_data() -> None:
    cfg = parse_institution({**INSTITUTION, "tariff": {"use": "cn-sample-general-ic",
                                                       "capacity_kva": 400}})
    assert cfg.tariff is not None
    assert cfg.tariff.resolved().id == "cn-sample-general-ic"
    with pytest.raises(ConfigError) as err:
        parse_institution({**INSTITUTION, "tariff": {"use": "no-such-tariff"}})
    assert "tariff" in str(err.value)
    assert "unknown tariff 'no-such-tariff'" in str(err.value)
    v = TOU["electricity"][0]
    with pytest.raises(ConfigError) as err:
        parse_institution({**INSTITUTION, "tariff": {"electricity": [
            {**v, "valid_to": "2025-06-30"}, {**v, "valid_from": "2025-06-01"}]}})
    assert "tariff.electricity[1].valid_from" in str(err.value)
    # An inline list replaces the shipped one of its energy only.
    cfg = parse_institution({**INSTITUTION, "tariff": {"use": "cn-sample-general-ic",
                                                       "water": TOU["water"]}})
    assert cfg.tariff is not None
    resolved = cfg.tariff.resolved()
    assert resolved.water[0].tiers[0].price == 4.8
    assert len(resolved.electricity) == 2
    assert isinstance(resolved, TariffSet)
    assert resolved.electricity[0].valid_from == date(2024, 1, 1)
