"""The demo's base-year bills make its last complete year comparable (同比 and 14th FYP)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from central.baseyear import comparisons_for, span_for
from central.institution import parse_institution
from central.ledger import EntryKind, SqliteLedger
from central.profile import load_profile
from central.store import Store
from simulators.configs import institution_config
from simulators.demo_history import FACTORS, history_bills
from simulators.scenario import load_scenario


def test_demo_history_gives_the_last_year_its_comparisons(tmp_path: Path) -> None:
    doc = institution_config(load_scenario("school"))
    bills = history_bills(doc, now_year=2026)
    assert {b.period_start.year for b in bills} == {2020, 2024, 2025}
    assert {b.period_start.year for b in history_bills(doc, now_year=2021)} == {2019, 2020}
    inst = parse_institution(doc)
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    ledger.put(EntryKind.BILL, bills)
    with Store(tmp_path / "s.sqlite") as store:
        c = comparisons_for(store, ledger, inst, load_profile("national"),
                            span_for("year", 2025, None, date(2026, 12, 4)), "year",
                            today=date(2026, 12, 4))
    ledger.close()
    yoy = c.year_on_year.line("electricity_kwh")
    assert yoy.change == pytest.approx(FACTORS[1]["electricity"] / FACTORS[2]["electricity"]
                                       - 1, abs=1e-4)  # monthly bills are rounded to kWh
    assert c.targets is not None
    per_m2 = next(x for x in c.targets.lines if x.figure == "kgce_per_m2")
    assert per_m2.change == pytest.approx(FACTORS[1]["electricity"] - 1, abs=1e-4)
    assert per_m2.status == "on_track"  # −7 % against the −5 % due by 2025
