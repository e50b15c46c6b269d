"""CO₂ figures (central/carbon.py): golden values computed by hand, the pro-rata split at a
factor change, the factor table's validation and its content-hash cache."""

from __future__ import annotations

import copy
import math
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from central.carbon import EmissionFactors, MissingFactorError
from central.carbon_factors import FactorError, load_table, parse_table, shipped_table
from central.errors import ConfigError
from central.institution import parse_institution
from central.ledger import Bill, EntryKind, FuelEntry, SqliteLedger
from central.metrics import period_metrics
from central.profile import load_profile
from central.store import Store
from tests.unit.central.central_helpers import (
    INSTITUTION,
    SHANGHAI,
    batch,
    interval,
    local_ms,
    local_ts,
)

HOUR_MS = 3_600_000


def _hours(device: str, day: tuple[int, int, int], hours: int, kwh: float,
           seq0: int) -> list[Any]:
    t0 = local_ms(*day, 8)
    return [interval(seq0 + i, start=t0 + i * HOUR_MS, quantity=kwh, device=device,
                     duration_s=3600) for i in range(hours)]


def _table(factors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"table": "emission_factors", "version": "t1",
            "regions": {"national": {"zh": "全国", "en": "National"},
                        "east": {"zh": "华东", "en": "East"}},
            "factors": factors}


def _f(energy: str, value: float, start: str, end: str | None = None, *, unit: str = "kWh",
       region: str = "national") -> dict[str, Any]:
    return {"energy": energy, "region": region, "unit": unit, "kg_co2_per_unit": value,
            "valid_from": start, "valid_to": end, "source": "test"}


# -- the public co2_kg ------------------------------------------------------------------


def test_co2_kg_splits_a_span_pro_rata_at_a_factor_change() -> None:
    table = parse_table(_table([_f("electricity", 0.5, "2025-01-01", "2025-06-30"),
                                _f("electricity", 0.4, "2025-07-01")]), "t")
    ef = EmissionFactors(table, tz=SHANGHAI)
    # 30 days of June and 31 of July: 610 kWh spread evenly → 300 kWh × 0.5 + 310 × 0.4.
    kg = ef.co2_kg("electricity", 610.0, local_ts(2025, 6, 1), local_ts(2025, 8, 1))
    assert math.isclose(kg, 300 * 0.5 + 310 * 0.4)
    # Wholly inside one factor; an instant takes the factor of the instant.
    assert math.isclose(ef.co2_kg("electricity", 10.0, local_ts(2025, 2, 1),
                                  local_ts(2025, 2, 2)), 5.0)
    assert math.isclose(ef.co2_kg("electricity", 10.0, local_ts(2025, 7, 1),
                                  local_ts(2025, 7, 1)), 4.0)
    with pytest.raises(MissingFactorError, match="2024-12-31"):
        ef.co2_kg("electricity", 1.0, local_ts(2024, 12, 31), local_ts(2025, 1, 2))
    with pytest.raises(MissingFactorError):
        ef.co2_kg("natural_gas", 1.0, local_ts(2025, 2, 1), local_ts(2025, 2, 2))
    with pytest.raises(ValueError, match="'coal'"):
        ef.co2_kg("coal", 1.0, local_ts(2025, 2, 1), local_ts(2025, 2, 2))


def test_layers_own_factor_then_region_then_national() -> None:
    table = parse_table(_table([_f("electricity", 0.6, "2022-01-01"),
                                _f("electricity", 0.55, "2023-01-01", region="east")]), "t")
    from central.carbon_factors import EmissionFactor
    own = EmissionFactor.model_validate(_f("electricity", 0.3, "2024-01-01", "2024-12-31"))
    ef = EmissionFactors(table, tz=SHANGHAI, region="east", overrides=[own])
    at = {y: ef.factor_at("electricity", local_ts(y, 6, 1)) for y in (2022, 2023, 2024, 2025)}
    assert {y: f.kg_co2_per_unit if f else None for y, f in at.items()} == {
        2022: 0.6, 2023: 0.55, 2024: 0.3, 2025: 0.55}


def test_shipped_table_national_grid_factors() -> None:
    ef = EmissionFactors(shipped_table(), tz=SHANGHAI)
    got = {y: ef.factor_at("electricity", local_ts(y, 6, 1)) for y in (2020, 2021, 2022, 2023,
                                                                       2026)}
    assert {y: f.kg_co2_per_unit if f else None for y, f in got.items()} == {
        2020: None, 2021: 0.5568, 2022: 0.5366, 2023: 0.5306, 2026: 0.5306}
    assert ef.unit_of("heat") == "GJ"
    assert ef.unit_of("natural_gas") == "m3"


# -- golden period figures ----------------------------------------------------------------


def _store_with(tmp_path: Path, records: list[Any], edge: str = "edge-1") -> Store:
    store = Store(tmp_path / "s.sqlite")
    store.store_batch(batch(records, after=0, edge=edge), "s")
    return store


def test_golden_factor_change_mid_year_gas_and_electricity(tmp_path: Path) -> None:
    """A year straddling two factors, by hand:

    electricity  50 kWh on 10 Jan × 0.5 = 25 kg;  30 kWh on 10 Aug × 0.4 = 12 kg
    natural gas  bill 16 Jun–15 Jul, 300 m³: 150 m³ × 2.0 = 300 kg, 150 m³ × 2.2 = 330 kg
    gasoline     40 L on 5 Mar × 0.725 kg/L = 29 kg × 3.0 = 87 kg
    total        754 kg = 0.754 t;  per m² 754 / 12,000;  per person 754 / 1,620
    """
    cfg = copy.deepcopy(INSTITUTION)
    cfg["vehicles"] = [{"id": "car-1", "plate": "浙C·12345", "fuel": "gasoline"}]
    cfg["carbon"] = {"factors": [
        _f("electricity", 0.5, "2025-01-01", "2025-06-30"),
        _f("electricity", 0.4, "2025-07-01"),
        _f("natural_gas", 2.0, "2025-01-01", "2025-06-30", unit="m3"),
        _f("natural_gas", 2.2, "2025-07-01", unit="m3"),
        _f("gasoline", 3.0, "2025-01-01", unit="kg")]}
    inst = parse_institution(cfg)
    profile = load_profile("national")
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.put(EntryKind.BILL, [Bill(ref="gas-1", energy="natural_gas", building="A",
                                     period_start=date(2025, 6, 16),
                                     period_end=date(2025, 7, 15), quantity=300.0)])
    ledger.put(EntryKind.FUEL, [FuelEntry(ref="f-1", vehicle="car-1", day=date(2025, 3, 5),
                                          litres=40.0, km=380.0)])
    records = [*_hours("meter-a", (2025, 1, 10), 10, 5.0, 1),
               *_hours("meter-a", (2025, 8, 10), 10, 3.0, 11)]
    with _store_with(tmp_path, records) as store:
        m = period_metrics(store, ledger, inst, profile, start=local_ts(2025, 1, 1),
                           end=local_ts(2026, 1, 1))
    ledger.close()
    c = m.carbon
    assert c is not None
    assert c.complete
    assert not c.missing
    by = {x.energy.value: x.kg_co2 for x in c.by_energy}
    assert by == pytest.approx({"electricity": 37.0, "natural_gas": 630.0, "gasoline": 87.0})
    assert c.t_co2 == pytest.approx(0.754)
    assert c.kg_co2_per_m2 == pytest.approx(754 / 12_000)
    assert c.kg_co2_per_person == pytest.approx(754 / 1_620)
    assert [(u.energy.value, u.kg_co2_per_unit, u.used_from, u.used_to, u.own)
            for u in c.factors] == [
        ("electricity", 0.5, date(2025, 1, 1), date(2025, 6, 30), True),
        ("electricity", 0.4, date(2025, 7, 1), date(2025, 12, 31), True),
        ("gasoline", 3.0, date(2025, 1, 1), date(2025, 6, 30), True),  # fuel in March only
        ("natural_gas", 2.0, date(2025, 1, 1), date(2025, 6, 30), True),
        ("natural_gas", 2.2, date(2025, 7, 1), date(2025, 12, 31), True)]
    assert c.coverage == m.coverage


def test_golden_shipped_factors_across_2022_2023_per_building(tmp_path: Path) -> None:
    """Jul 2022–Jun 2023 with the shipped national factors: 100 kWh in Aug 2022 × 0.5366
    + 200 kWh in Mar 2023 × 0.5306 = 159.78 kg; building A alone (7,000 m²)."""
    inst = parse_institution(INSTITUTION)
    records = [*_hours("meter-a", (2022, 8, 3), 10, 10.0, 1),
               *_hours("meter-a", (2023, 3, 3), 10, 20.0, 11)]
    with _store_with(tmp_path, records) as store:
        m = period_metrics(store, None, inst, load_profile("national"),
                           start=local_ts(2022, 7, 1), end=local_ts(2023, 7, 1), building="A")
    c = m.carbon
    assert c is not None
    assert c.t_co2 == pytest.approx(0.15978)
    assert c.kg_co2_per_m2 == pytest.approx(159.78 / 7_000)
    assert c.kg_co2_per_person is None  # 用能人数 is the institution's, not a building's
    assert [u.kg_co2_per_unit for u in c.factors] == [0.5366, 0.5306]


def test_no_data_is_blank_and_missing_factor_is_listed(tmp_path: Path) -> None:
    inst = parse_institution(INSTITUTION)
    profile = load_profile("national")
    records = _hours("meter-a", (2020, 12, 30), 10, 1.0, 1)  # before the first factor
    records += _hours("meter-a", (2021, 1, 5), 10, 2.0, 11)
    with _store_with(tmp_path, records) as store:
        empty = period_metrics(store, None, inst, profile, start=local_ts(2019, 1, 1),
                               end=local_ts(2019, 2, 1))
        straddle = period_metrics(store, None, inst, profile, start=local_ts(2020, 12, 1),
                                  end=local_ts(2021, 2, 1))
    assert empty.carbon is not None
    assert (empty.carbon.t_co2, empty.carbon.kg_co2_per_m2,
            empty.carbon.kg_co2_per_person) == (None, None, None)
    c = straddle.carbon
    assert c is not None
    assert not c.complete
    assert c.t_co2 == pytest.approx(20 * 0.5568 / 1000)  # only the part with a factor
    assert [(x.energy.value, round(x.quantity, 9), x.first_day, x.last_day)
            for x in c.missing] == [("electricity", 10.0, date(2020, 12, 1), date(2020, 12, 31))]


# -- validation ---------------------------------------------------------------------------


def _problems(data: dict[str, Any]) -> list[tuple[str, Any]]:
    with pytest.raises(FactorError) as err:
        parse_table(data, "factors.yaml")
    return [(f, v) for f, v, _ in err.value.problems]


def test_table_validation_names_field_and_value() -> None:
    got = _problems(_table([
        _f("electricity", 0.5, "2025-01-01", "2025-12-31"),
        _f("electricity", 0.4, "2025-07-01"),                 # overlaps [0]
        _f("coal", 1.0, "2025-01-01", unit="kg"),             # unknown energy
        _f("natural_gas", -2.0, "2025-01-01", unit="m3"),     # negative
        _f("diesel", 3.0, "2025-05-01", "2025-04-01", unit="kg"),  # ends before it starts
        _f("electricity", 500.0, "2020-01-01", "2020-12-31", unit="MWh"),  # second unit
        _f("water", 0.1, "2025-01-01", unit="m3"),            # water is not energy
        _f("heat", 110.0, "2025-01-01", unit="GJ", region="mars"),  # unknown region
    ]))
    assert got == [("factors[2].energy", "coal"), ("factors[3].kg_co2_per_unit", -2.0),
                   ("factors[4].valid_to", "2025-04-01"), ("factors[5].unit", "MWh"),
                   ("factors[6].energy", "water"), ("factors[7].region", "mars"),
                   ("factors[1].valid_from", "2025-07-01")]
    assert _problems({**_table([]), "version": ""})[0][0] == "version"
    with pytest.raises(FactorError, match="source"):
        parse_table(_table([{k: v for k, v in _f("heat", 1.0, "2025-01-01", unit="GJ").items()
                             if k != "source"}]), "t")


def test_institution_carbon_section_is_checked() -> None:
    cfg = copy.deepcopy(INSTITUTION)
    cfg["carbon"] = {"grid_region": "atlantis",
                     "factors": [_f("electricity", 0.5, "2025-01-01", unit="MWh")]}
    with pytest.raises(ConfigError) as err:
        parse_institution(cfg)
    assert [(f, v) for f, v, _ in err.value.problems] == [
        ("carbon.grid_region", "atlantis"), ("carbon.factors[0].unit", "MWh")]
    cfg["carbon"] = {"grid_region": "east"}
    assert EmissionFactors.for_institution(parse_institution(cfg)).factor_at(
        "electricity", local_ts(2023, 5, 1)).kg_co2_per_unit == 0.55  # type: ignore[union-attr]


def test_table_cache_is_keyed_on_content(tmp_path: Path) -> None:
    """An edited factor file is read again: no figure is computed with a stale factor."""
    import yaml
    path = tmp_path / "factors.yaml"
    path.write_text(yaml.safe_dump(_table([_f("electricity", 0.5, "2025-01-01")]),
                                   allow_unicode=True), encoding="utf-8")
    first = load_table(path)
    assert load_table(path) is first  # unchanged content: the parsed table is reused
    path.write_text(yaml.safe_dump(_table([_f("electricity", 0.45, "2025-01-01")]),
                                   allow_unicode=True), encoding="utf-8")
    second = load_table(path)
    assert second.content_hash != first.content_hash
    assert EmissionFactors(second, tz=SHANGHAI).co2_kg(
        "electricity", 100.0, local_ts(2025, 3, 1), local_ts(2025, 3, 2)) == pytest.approx(45.0)


def test_units_convert_through_the_profile_and_vehicle_fuel_per_m2() -> None:
    """Heat metered in MJ against a factor per GJ, diesel from the fuel log in L against a
    factor per kg (the profile's density, 0.83 kg/L), by hand:

    heat    5,000 MJ = 5 GJ × 110 = 550 kg
    diesel  100 L × 0.83 = 83 kg × 3.0959 = 256.9597 kg (vehicle fuel)
    """
    from central.carbon import carbon_figures
    from central.compliance import EnergyLine
    from central.energy import EnergyType

    ef = EmissionFactors(shipped_table(), tz=SHANGHAI)
    lines = [EnergyLine(energy=EnergyType.HEAT, unit="MJ", quantity=5_000.0,
                        kgce_per_unit=0.03412, kgce=170.6, meters=1),
             EnergyLine(energy=EnergyType.DIESEL, unit="L", quantity=100.0,
                        kgce_per_unit=1.4571 * 0.83, kgce=120.9, meters=0, source="vehicle")]
    start, end = local_ts(2025, 3, 1), local_ts(2025, 4, 1)

    def no_cut(_s: float, _e: float) -> list[EnergyLine]:
        raise AssertionError("no factor changes in March 2025: no second read")

    for profile, for_area in ((load_profile("national"), 806.9597),
                              (load_profile("provincial-example"), 550.0)):
        c = carbon_figures(ef, profile, start=start, end=end, lines=lines, segment_lines=no_cut,
                           floor_area_m2=1_000.0, energy_users=10.0, coverage=None)
        assert {x.energy.value: (x.unit, round(x.quantity, 9), round(x.kg_co2, 9))
                for x in c.by_energy} == {"heat": ("GJ", 5.0, 550.0),
                                          "diesel": ("kg", 83.0, 256.9597)}
        assert c.t_co2 == pytest.approx(0.8069597)
        # The provincial example excludes official-vehicle fuel from energy per m²: CO₂ too.
        assert c.kg_co2_per_m2 == pytest.approx(for_area / 1_000)
        assert c.kg_co2_per_person == pytest.approx(80.69597)


def test_a_region_without_a_factor_for_a_day_uses_the_national_one() -> None:
    ef = EmissionFactors(shipped_table(), tz=SHANGHAI, region="south")
    by_year = {y: ef.factor_at("electricity", local_ts(y, 6, 1)) for y in (2021, 2022, 2025)}
    assert {y: (f.region, f.kg_co2_per_unit) if f else None for y, f in by_year.items()} == {
        2021: ("national", 0.5568), 2022: ("south", 0.3869), 2025: ("south", 0.3869)}
