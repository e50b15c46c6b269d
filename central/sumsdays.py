"""An optional store read: a period's per-meter sums and per-group daily totals together.

`central.metrics.compliance_for` needs, for the main meters, both the year-to-date sums
(`StoreReader.period_sums`) and the projection's daily rates (`StoreReader.day_totals`, per
group of meters of one energy type and factor). On PostgreSQL both come from the same daily
rollup rows, and each read costs a probe of the asked meters per row: a store that can read
the rows once for both offers `sums_and_day_totals` (central/pgstore.py,
central/pgrollup.py), and the tenant reader passes it through. A store without it (SQLite,
where the two reads already meet the aim) keeps the two reads; so does any call the method
declines (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from central.institution import MeterKey

SumsAndDays = tuple[dict[MeterKey, float], list[dict[date, float]]]


@runtime_checkable
class SumsAndDayTotals(Protocol):
    def sums_and_day_totals(self, start_ms: int, end_ms: int, tz: ZoneInfo,
                            keys: Sequence[MeterKey], groups: Sequence[int]
                            ) -> SumsAndDays | None:
        """(`period_sums(start_ms, end_ms, tz, keys)`, and for each group g in 0..max(groups)
        `day_totals` of the keys with groups[i] == g over the whole hours of [start_ms,
        end_ms)), exactly as those two reads give them; None when not served (the caller
        makes the two reads)."""
        ...
