"""The port's `ac_seconds` on both backends: the sweep over the raw samples (SQLite serves
closed days from its cache, PostgreSQL sweeps uncached), the same figure before and after a
late sample, for a writer and a reader of the same database."""

from __future__ import annotations

from collections.abc import Callable

from central import accache
from central.storeport import FullStore
from central.sweeps import AcPoints, AcRule
from protocols.wire import Sample, StreamId
from tests.unit.central.central_helpers import SHANGHAI, local_ms

MIN = 60_000
DAY = 86_400_000
DAY0 = local_ms(2025, 7, 1)
UNITS = [AcPoints("edge-1", "ac-1", "setpoint_c", "mode", "on")]
RULE = AcRule(26.0, 20.0, ("cool",), ("heat",), 30 * MIN)


def test_ac_seconds_is_the_sweep_over_the_samples(
        reopen_store: Callable[..., FullStore]) -> None:
    store = reopen_store()
    records: list[Sample] = []
    for k in range(5 * 48):  # five days every 30 minutes; 24 °C on the third day
        ts = DAY0 + k * 30 * MIN
        setpoint = 24.0 if 2 * 48 <= k < 3 * 48 else 26.0
        records += [Sample(seq=0, ts=ts, device="ac-1", point="setpoint_c", value=setpoint,
                           unit="°C"),
                    Sample(seq=0, ts=ts, device="ac-1", point="mode", value="cool", unit=""),
                    Sample(seq=0, ts=ts, device="ac-1", point="on", value=True, unit="")]
    records = [Sample(seq=i + 1, ts=r.ts, device=r.device, point=r.point, value=r.value,
                      unit=r.unit) for i, r in enumerate(records)]
    store.store_records(StreamId("edge-1", 1), 0, len(records), records, site="s", now=0.0)
    s, e = DAY0 + 6 * 3_600_000, DAY0 + 4 * DAY + 13 * 3_600_000
    expected = accache.uncached(store.sample_series, UNITS, s, e, RULE)
    # Hold 30 min, samples every 30 min: the unit is judged all the time, compliant except
    # on the third day.
    assert expected == (e - s, e - s - DAY)
    assert store.ac_seconds(UNITS, s, e, RULE, SHANGHAI) == expected
    assert store.ac_seconds(UNITS, s, e, RULE, SHANGHAI) == expected  # the cached days
    reader = reopen_store(readonly=True)
    assert reader.ac_seconds(UNITS, s, e, RULE, SHANGHAI) == expected
    # A late sample for a closed day: 24 °C at 10:15 on the second day, until 10:30.
    late = Sample(seq=len(records) + 1, ts=DAY0 + DAY + 10 * 3_600_000 + 15 * MIN,
                  device="ac-1", point="setpoint_c", value=24.0, unit="°C")
    store.store_records(StreamId("edge-1", 1), len(records), len(records) + 1, [late],
                        site="s", now=0.0)
    after = (expected[0], expected[1] - 15 * MIN)
    assert accache.uncached(store.sample_series, UNITS, s, e, RULE) == after
    assert store.ac_seconds(UNITS, s, e, RULE, SHANGHAI) == after
    assert reader.ac_seconds(UNITS, s, e, RULE, SHANGHAI) == after
