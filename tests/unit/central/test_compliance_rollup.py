"""The daily and hourly rollups equal a recomputation from the stored intervals exactly,
whatever order, duplication and correction the intervals arrive in; period sums read from
them equal the raw interval sums."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.institution import MeterKey
from central.rollup import NANO, LocalDays, hour_parts, rolled
from central.store import Store
from protocols.wire import Batch, IntervalRecord, StreamId
from tests.unit.central.central_helpers import local_ms

TZ = ZoneInfo("Asia/Shanghai")
MIDNIGHT = local_ms(2025, 3, 1)
HOUR = 3_600_000
METERS = (("edge-1", "m1"), ("edge-1", "m2"), ("edge-2", "m1"))


def recomputed(store: Store) -> dict[str, list[tuple[object, ...]]]:
    """Both rollups from the final interval rows, by the same splitting rule."""
    days = LocalDays(TZ)
    daily: dict[tuple[object, ...], int] = defaultdict(int)
    hourly: dict[tuple[object, ...], int] = defaultdict(int)
    for e, d, p, st_, du, q, *_ in store.rows("intervals"):
        if not rolled(du, q):
            continue
        for day, n in days.parts(st_, du, q):
            daily[(e, d, p, day)] += n
        for hour, n in hour_parts(st_, du, q):
            hourly[(e, d, p, hour)] += n
    return {"interval_daily": sorted((*k, v) for k, v in daily.items()),
            "interval_hourly": sorted((*k, v) for k, v in hourly.items())}


def nonzero(rows: dict[str, list[tuple[object, ...]]]) -> dict[str, list[tuple[object, ...]]]:
    return {t: [r for r in rs if r[-1] != 0] for t, rs in rows.items()}


@st.composite
def deliveries(draw: st.DrawFn) -> list[Batch]:
    """Batches from two epochs of two edges: intervals at and around midnight and hour
    boundaries, of several lengths (some straddling, some too long or too large to roll
    up), corrected by later seqs, then delivered in any order with replays."""
    batches: list[Batch] = []
    for edge in ("edge-1", "edge-2"):
        for epoch in (1, 2):
            seq = 0
            for _ in range(draw(st.integers(0, 3))):
                after = seq
                records = []
                for _ in range(draw(st.integers(1, 5))):
                    seq += draw(st.integers(1, 3))
                    device = draw(st.sampled_from([d for e, d in METERS if e == edge]))
                    slot = draw(st.integers(-6, 30))
                    records.append(IntervalRecord(
                        seq=seq, device=device, point="energy_import_kwh",
                        start=MIDNIGHT + slot * 900_000 - draw(st.sampled_from([0, 0, 300_000])),
                        duration_s=draw(st.sampled_from([900, 900, 3600, 5400, 86_400,
                                                         90_000])),
                        quantity=draw(st.one_of(
                            st.floats(0, 50, allow_nan=False),
                            st.sampled_from([0.1, 0.2, 0.3, 1e-9, 2e5]))),
                        unit="kWh"))
                batches.append(Batch(StreamId(edge, epoch), after, 0, True, tuple(records)))
    extra = draw(st.lists(st.sampled_from(batches), max_size=5)) if batches else []
    return draw(st.permutations(batches + extra))


@settings(max_examples=120, deadline=None)
@given(delivery=deliveries(), window=st.tuples(st.integers(-8, 40), st.integers(1, 40)))
def test_rollups_equal_recomputation_after_any_delivery(
        delivery: list[Batch], window: tuple[int, int]) -> None:
    with Store(":memory:") as store:
        for b in delivery:
            store.store_batch(b, "site", now=0.0)
        assert nonzero(store.rollup_rows()) == nonzero(recomputed(store))
        # Independent of the split: each meter's daily parts add up to its rolled total.
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for e, d, _p, _st, du, q, *_ in store.rows("intervals"):
            if rolled(du, q):
                totals[(e, d)] += round(q * NANO)
        daily: dict[tuple[str, str], int] = defaultdict(int)
        for e, d, _p, _day, n in store.rollup_rows()["interval_daily"]:
            daily[(e, d)] += n
        assert {k: v for k, v in daily.items() if v} == {k: v for k, v in totals.items() if v}
        s = MIDNIGHT + window[0] * 1_800_000
        e = s + window[1] * 1_800_000
        keys = [MeterKey(edge, d, "energy_import_kwh") for edge, d in METERS]
        fast = store.period_sums(s, e, TZ, keys)
        slow = store.interval_sums(s, e, keys)
        assert fast == {k: pytest.approx(v, abs=1e-6) for k, v in slow.items()}


def interval(seq: int, start: int, quantity: float, duration_s: int = 900) -> IntervalRecord:
    return IntervalRecord(seq=seq, device="m1", point="energy_import_kwh", start=start,
                          duration_s=duration_s, quantity=quantity, unit="kWh")


def test_replacement_applies_only_the_difference() -> None:
    key = MeterKey("edge-1", "m1", "energy_import_kwh")
    day = LocalDays(TZ).day_of(MIDNIGHT)
    with Store(":memory:") as store:
        store.store_batch(Batch(StreamId("edge-1", 1), 0, 0, True,
                                (interval(1, MIDNIGHT, 0.1), interval(2, MIDNIGHT + 900_000, 0.2))),
                          "s")
        # A correction of the first interval (newer seq) and a stale copy (older epoch).
        store.store_batch(Batch(StreamId("edge-1", 1), 2, 0, True,
                                (interval(3, MIDNIGHT, 0.3),)), "s")
        store.store_batch(Batch(StreamId("edge-1", 0), 0, 0, True,
                                (interval(9, MIDNIGHT, 99.0),)), "s")
        rows = store.rollup_rows()["interval_daily"]
        assert rows == [("edge-1", "m1", "energy_import_kwh", day, 500_000_000)]
        assert store.period_sums(MIDNIGHT, MIDNIGHT + 86_400_000, TZ, [key]) == {key: 0.5}


def test_an_interval_across_midnight_is_split_by_overlap() -> None:
    days = LocalDays(TZ)
    d = days.day_of(MIDNIGHT)
    # 4 kWh over 23:00–01:00: 2 kWh in each day; 1 kWh over three hours splits 1/3 each.
    assert days.parts(MIDNIGHT - HOUR, 7200, 4.0) == [(d - 1, 2 * NANO), (d, 2 * NANO)]
    parts = hour_parts(MIDNIGHT, 3 * 3600, 1.0)
    assert [n for _, n in parts] == [333_333_333, 333_333_333, 333_333_334]


def test_existing_store_gets_its_rollup_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        store.store_batch(Batch(StreamId("edge-1", 1), 0, 0, True,
                                (interval(1, MIDNIGHT, 1.5), interval(2, MIDNIGHT - HOUR, 2.0,
                                                                       7200))), "s")
        before = store.rollup_rows()
        # Simulate a store written before rollups existed.
        store._conn.execute("DELETE FROM meta WHERE key = 'rollup'")
        store._conn.execute("DROP TABLE interval_daily")
        store._conn.execute("DROP TABLE interval_hourly")
    with Store(path, readonly=True) as reader:
        key = MeterKey("edge-1", "m1", "energy_import_kwh")
        # Without rollups a reader falls back to the interval scan.
        assert reader.period_sums(MIDNIGHT, MIDNIGHT + HOUR, TZ, [key]) == {key: 2.5}
    with Store(path) as store:
        assert store.rollup_rows() == before
    # Another day zone rebuilds the daily rollup on its calendar.
    with Store(path, rollup_timezone="Europe/London") as store:
        london = LocalDays(ZoneInfo("Europe/London"))
        assert {r[3] for r in store.rollup_rows()["interval_daily"]} == {
            london.day_of(MIDNIGHT)}
        assert store.period_sums(MIDNIGHT - HOUR, MIDNIGHT + HOUR, TZ, [key]) == {key: 3.5}


def test_a_shorter_interval_does_not_lower_the_longest_duration() -> None:
    """Regression: the longest-duration bound compared an integer with text, so a 900 s
    interval after a 25 h one set it to 900 and the long one dropped out of period sums."""
    key = MeterKey("edge-1", "m1", "energy_import_kwh")
    with Store(":memory:") as store:
        store.store_batch(Batch(StreamId("edge-1", 1), 0, 0, True,
                                (interval(1, MIDNIGHT - HOUR, 25.0, 90_000),)), "s")
        store.store_batch(Batch(StreamId("edge-1", 1), 1, 0, True,
                                (interval(2, MIDNIGHT, 1.0),)), "s")
        assert store.interval_sums(MIDNIGHT, MIDNIGHT + HOUR, [key]) == {key: 2.0}


@pytest.mark.parametrize("hours", [(8 * 60, 18 * 60), (8 * 60 + 30, 17 * 60 + 30)])
def test_after_hours_from_rollups_equals_the_interval_scan(hours: tuple[int, int]) -> None:
    """Fri 24 Jan – Tue 28 Jan 2025 (Sun 26th a make-up workday, 28th the eve of Spring
    Festival), 15-minute intervals of random size, a window starting and ending mid-hour;
    working hours on the hour (rollup path) and at :30 (falls back to the scan)."""
    import random

    from central.metrics import after_hours, after_hours_for
    from central.workcalendar import WorkingCalendar

    rnd = random.Random(51161)
    t0 = local_ms(2025, 1, 24)
    slots = [(i, d) for i in range(5 * 96) for d in ("m1", "m2")]
    recs = [IntervalRecord(seq=n + 1, device=d, point="energy_import_kwh",
                           start=t0 + i * 900_000, duration_s=900,
                           quantity=round(rnd.uniform(0, 5), 3), unit="kWh")
            for n, (i, d) in enumerate(slots)]
    keys = [MeterKey("edge-1", d, "energy_import_kwh") for d in ("m1", "m2")]
    s, e = t0 + 7 * 60_000 + 3 * HOUR, t0 + 4 * 86_400_000 + 20 * HOUR + 50 * 60_000
    with Store(":memory:") as store:
        for i in range(0, len(recs), 100):
            store.store_batch(Batch(StreamId("edge-1", 1), i, 0, True, tuple(recs[i:i + 100])),
                              "s")
        cal = WorkingCalendar()
        fast = after_hours_for(store, keys, s, e, TZ, cal, hours, "x")
        slow = after_hours(store.interval_rows(s, e, keys), s, e, TZ, cal, hours, "x")
    assert fast.kwh == pytest.approx(slow.kwh, abs=1e-6)
    assert fast.after_hours_kwh == pytest.approx(slow.after_hours_kwh, abs=1e-6)
    assert fast.unknown_calendar_days == slow.unknown_calendar_days == 0
    assert 0 < slow.after_hours_kwh < slow.kwh
