"""The days with data of a period (coverage, comparisons) come from the daily rollup where
it serves; they must be exactly the days the hourly rollup gives: a write's day part is the
sum of its same-signed hour parts, so a day has a row exactly when one of its hours has.
Checked on intervals crossing midnight, tiny quantities split into zero-valued hour parts,
corrections to zero, and a second epoch replacing a record."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from central.institution import MeterKey
from central.metrics import data_days
from central.period import Period
from central.store import Store
from tests.unit.central.central_helpers import batch, interval, local_ms

TZ = ZoneInfo("Asia/Shanghai")


class HoursOnly:
    """The same store without its daily-rollup read: the hourly path of `data_days`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def day_totals(self, *_args: Any) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_days_from_the_daily_rollup_equal_days_from_hours(tmp_path: Path) -> None:
    rng = random.Random(7)
    t0 = local_ms(2025, 3, 1)
    records = []
    for seq in range(1, 400):
        start = t0 + rng.randrange(0, 40 * 96) * 900_000 + rng.choice([0, 0, 450_000])
        quantity = rng.choice([0.0, 1e-9, 2e-9, 0.5, 3.0, -0.25])
        duration = rng.choice([900, 3600, 7200, 86_400])
        records.append(interval(seq, start=start, quantity=quantity, duration_s=duration,
                                device=rng.choice(["meter-a", "meter-b"])))
    with Store(tmp_path / "s.sqlite") as store:
        store.store_batch(batch(records, after=0), "s")
        # a second epoch rewrites some starts (corrections, some to zero)
        again = [interval(i + 1, start=r.start, quantity=rng.choice([0.0, 1.0]),
                          duration_s=r.duration_s, device=r.device)
                 for i, r in enumerate(records[:120])]
        store.store_batch(batch(again, after=0, epoch=2), "s")
        keys = [MeterKey("edge-1", d, "energy_import_kwh") for d in ("meter-a", "meter-b")]
        hours_only = HoursOnly(store)
        periods = [Period.month(2025, 3, TZ), Period.month(2025, 4, TZ),
                   Period(local_ms(2025, 3, 5) / 1000, local_ms(2025, 3, 20, 13) / 1000, TZ)]
        seen: set[date] = set()
        for period in periods:
            for some in ([keys[0]], [keys[1]], keys):
                got = data_days(store, some, period)
                assert got == data_days(hours_only, some, period)  # type: ignore[arg-type]
                seen |= got
    assert len(seen) > 20  # the data covers many days: the comparison is not vacuous
