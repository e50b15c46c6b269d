"""`period_energy` (a report's monthly row, read without the month's AC and standby samples)
has exactly the energy figures of `period_metrics`, and the annual report's monthly rows use
it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from central.institution import parse_institution
from central.ledger import Bill, EntryKind, FuelEntry, SqliteLedger
from central.metrics import period_energy, period_metrics
from central.profile import load_profile
from central.reports import gather
from central.store import Store
from tests.unit.central.central_helpers import batch, interval, local_ms, local_ts
from tests.unit.central.registry_helpers import SCHOOL

QUARTER_MS = 900_000


def test_period_energy_equals_period_metrics(tmp_path: Path) -> None:
    inst = parse_institution(SCHOOL)
    profile = load_profile("national")
    t0 = local_ms(2025, 2, 27)
    records = [interval(i + 1, start=t0 + i * QUARTER_MS, quantity=0.1 + (i % 7) / 10,
                        device=("meter-a", "meter-a-ac", "dc-total")[i % 3])
               for i in range(4 * 96)]  # four days across the end of February
    ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    ledger.put(EntryKind.BILL, [Bill(ref="gas-2", energy="natural_gas", building="A",
                                     period_start=date(2025, 2, 15),
                                     period_end=date(2025, 3, 14), quantity=800.0)])
    ledger.put(EntryKind.FUEL, [FuelEntry(ref="f-1", vehicle="car-1", day=date(2025, 2, 28),
                                          litres=40.0, km=380.0)])
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch(records, after=0), "s")
        store.store_batch(batch([interval(i + 1, start=t0 + i * QUARTER_MS, quantity=0.3,
                                          device="meter-b") for i in range(4 * 96)],
                                after=0, edge="edge-2"), "s")
        for building in (None, "A", "B"):
            for start, end in ((local_ts(2025, 2, 1), local_ts(2025, 3, 1)),
                               (local_ts(2025, 2, 28, 10), local_ts(2025, 3, 2, 13))):
                pm = period_metrics(store, ledger, inst, profile, start=start, end=end,
                                    building=building)
                pe = period_energy(store, ledger, inst, profile, start=start, end=end,
                                   building=building)
                assert (pe.energy_by_type, pe.energy_kgce, pe.energy_kgce_for_area,
                        pe.electricity_kwh, pe.water_m3) == (
                    pm.energy_by_type, pm.energy_kgce, pm.energy_kgce_for_area,
                    pm.electricity_kwh, pm.water_m3)
                assert pe.energy_kgce > 0
        data = gather(store, ledger, inst, profile, kind="annual", year=2025, number=None,
                      now=local_ts(2025, 3, 2, 13))
        for point, month in zip(data.months, (1, 2, 3), strict=True):
            pm = period_metrics(store, ledger, inst, profile, start=local_ts(2025, month, 1),
                                end=min(local_ts(2025, month + 1, 1),
                                        local_ts(2025, 3, 2, 13)))
            # A month without data is blank ("—"), never 0 (issue 13): None in the model.
            expected = ((pm.energy_kgce, pm.electricity_kwh, pm.water_m3) if point.has_data
                        else (None, None, None))
            assert (point.energy_kgce, point.electricity_kwh, point.water_m3) == expected
            # The whole row, coverage and quantities included, as from the month's metrics.
            assert (point.has_data, point.quantities, point.coverage) == (
                pm.coverage.has_data if pm.coverage is not None else True, pm.quantities,
                pm.coverage)
    ledger.close()
