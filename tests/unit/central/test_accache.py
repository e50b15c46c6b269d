"""The per-day AC compliance cache (central/accache.py) gives exactly the uncached sweep: for
random sample streams written in random order (late and replayed samples, holds across
midnight, periods cut anywhere), after a late sample for a closed day, and after a rule
change; and it really serves closed days without reading their samples."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from central import accache
from central.institution import MeterKey
from central.store import Store
from central.sweeps import AcPoints, AcRule, Samples
from protocols.wire import Sample, StreamId
from tests.unit.central.central_helpers import SHANGHAI, local_ms

MIN = 60_000
DAY = 86_400_000
HOUR = 3_600_000
DAY0 = local_ms(2025, 7, 1, 0, 0)
UNITS = [AcPoints("edge-1", "ac-1", "setpoint_c", "mode", "on"),
         AcPoints("edge-1", "ac-2", "setpoint_c", "mode", None)]
RULE = AcRule(26.0, 20.0, ("cool", "dry"), ("heat",), 30 * MIN)

Value = float | int | bool | str
_point_values: dict[str, st.SearchStrategy[Value]] = {
    "setpoint_c": st.sampled_from([24.0, 26.0, 26.0, 27.5, 18.0, 20]),
    "mode": st.sampled_from(["cool", "cool", "heat", "fan"]),
    "on": st.sampled_from([True, True, False]),
}
# Times from a day before DAY0 to four days after, on a 53-minute grid with odd milliseconds,
# so samples fall on both sides of local midnights and holds (up to a day) cross them.
_ts = st.integers(min_value=-27, max_value=110).map(lambda k: DAY0 + k * 53 * MIN + k % 3)
_sample = st.tuples(st.sampled_from(["ac-1", "ac-2"]),
                    st.sampled_from(["setpoint_c", "mode", "on"]), _ts).flatmap(
    lambda t: _point_values[t[1]].map(lambda v: (t[0], t[1], t[2], v)))

class Writer:
    """Writes samples to a store in batches of one stream, keeping the sequence."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.seq = 0
        self.sent: list[tuple[int, list[Sample]]] = []

    def write(self, rows: Sequence[tuple[str, str, int, Value]]) -> None:
        if not rows:
            return
        records = [Sample(seq=self.seq + i + 1, ts=ts, device=d, point=p, value=v, unit="")
                   for i, (d, p, ts, v) in enumerate(rows)]
        self.store.store_records(StreamId("edge-1", 1), self.seq, self.seq + len(records),
                                 records, site="s", now=0.0)
        self.sent.append((self.seq, records))
        self.seq += len(records)

    def replay(self, k: int) -> None:
        after, records = self.sent[k % len(self.sent)]
        self.store.store_records(StreamId("edge-1", 1), after, after + len(records),
                                 records, site="s", now=0.0)


def cached(store: Store, s: int, e: int, rule: AcRule = RULE) -> tuple[int, int]:
    return store.ac_seconds(UNITS, s, e, rule, SHANGHAI)


def uncached(store: Store, s: int, e: int, rule: AcRule = RULE) -> tuple[int, int]:
    return accache.uncached(store.sample_series, UNITS, s, e, rule)


@settings(max_examples=80, deadline=None)
@given(first=st.lists(_sample, min_size=20, max_size=150), late=st.lists(_sample, max_size=30),
       replay=st.integers(min_value=0, max_value=5),
       start=st.integers(min_value=-24, max_value=48).map(lambda h: h * HOUR + h % 7 * 13),
       length=st.integers(min_value=0, max_value=96).map(lambda h: h * HOUR - h % 5 * MIN),
       hold=st.sampled_from([3 * 60 * MIN, 53 * MIN + 1, 7 * 60 * MIN, DAY]))
def test_cached_equals_uncached_with_late_and_replayed_samples(
        first: list[tuple[str, str, int, Value]], late: list[tuple[str, str, int, Value]],
        replay: int, start: int, length: int, hold: int) -> None:
    rule = RULE._replace(max_hold_ms=hold)
    s, e = DAY0 + start, DAY0 + start + length
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
        w = Writer(store)
        w.write(sorted(first, key=lambda r: r[2]))
        assert cached(store, s, e, rule) == uncached(store, s, e, rule)
        # Late samples for closed days (any order), then a replay of an earlier batch.
        w.write(late)
        if w.sent:
            w.replay(replay)
        assert cached(store, s, e, rule) == uncached(store, s, e, rule)
        assert cached(store, s, e, rule) == uncached(store, s, e, rule)  # from the cache


def _month(store: Store) -> Writer:
    """July 2025 for both units every 10 minutes: cooling at 26 °C, on 08:00–18:00."""
    w = Writer(store)
    rows: list[tuple[str, str, int, Value]] = []
    for k in range(31 * 144):
        ts = DAY0 + k * 10 * MIN
        on = 8 * 6 <= k % 144 < 18 * 6
        for device in ("ac-1", "ac-2"):
            rows += [(device, "setpoint_c", ts, 26.0), (device, "mode", ts, "cool"),
                     (device, "on", ts, on)]
    w.write(rows)
    return w


def test_a_late_sample_for_a_closed_day_changes_the_month_as_a_recomputation_would(
        tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        w = _month(store)
        s, e = DAY0, DAY0 + 31 * DAY - 5 * 3_600_000  # "now" is 19:00 on the 31st
        before = cached(store, s, e)
        assert before == uncached(store, s, e)
        assert before[0] == before[1] > 0
        assert store.ac_days is not None
        assert len(store.ac_days.rows()) == 2 * 30
        # A setpoint of 24 °C arrives late for 10:05 on the 10th: it holds until the next
        # sample at 10:10: five minutes of that unit no longer compliant.
        w.write([("ac-1", "setpoint_c", DAY0 + 9 * DAY + 10 * 3_600_000 + 5 * MIN, 24.0)])
        after = cached(store, s, e)
        assert after == uncached(store, s, e)
        assert after == (before[0], before[1] - 5 * MIN)


def test_a_late_sample_in_a_days_seed_window_recomputes_that_day(tmp_path: Path) -> None:
    """A hold of 20 h: a day's sweep is seeded with samples back to 20 h before its local
    midnight (16:00 UTC the day before), so from an earlier UTC day. A late sample there
    changes the day after its own, which must be recomputed too."""
    rule = RULE._replace(max_hold_ms=20 * HOUR)
    with Store(tmp_path / "s.sqlite") as store:
        w = Writer(store)
        rows: list[tuple[str, str, int, Value]] = []
        for k in range(5 * 24):  # hourly, silent from 17 h before the 3rd's midnight to 01:00
            ts = DAY0 + k * HOUR
            if DAY0 + 2 * DAY - 17 * HOUR < ts < DAY0 + 2 * DAY + HOUR:
                continue
            rows += [("ac-2", "setpoint_c", ts, 26.0), ("ac-2", "mode", ts, "cool")]
        w.write(rows)
        s, e = DAY0, DAY0 + 4 * DAY
        before = cached(store, s, e, rule)
        assert before == uncached(store, s, e, rule)
        late = DAY0 + 2 * DAY - 17 * HOUR + 1  # 07:00 UTC on the 1st (local 15:00)
        w.write([("ac-2", "setpoint_c", late, 24.0)])
        after = cached(store, s, e, rule)
        assert after == uncached(store, s, e, rule)
        # 24 °C from the late sample to 01:00 on the 3rd: 18 h minus 1 ms not compliant.
        assert after == (before[0], before[1] - (18 * HOUR - 1))


def test_closed_days_are_served_without_reading_their_samples(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _month(store)
        assert store.ac_days is not None
        s, e = DAY0, DAY0 + 20 * DAY + 13 * 3_600_000
        reads: list[tuple[int, int]] = []

        def read(key: MeterKey, a: int, b: int) -> Samples:
            reads.append((a, b))
            return store.sample_series(key, a, b)

        first = store.ac_days.seconds(read, UNITS, s, e, RULE, SHANGHAI)
        assert first == uncached(store, s, e)
        reads.clear()
        assert store.ac_days.seconds(read, UNITS, s, e, RULE, SHANGHAI) == first
        # Only the open day (from the 21st's midnight, seeded with the hold before it).
        assert reads
        assert all(a >= DAY0 + 20 * DAY - RULE.max_hold_ms for a, _ in reads)


def test_a_rule_change_is_not_served_from_the_old_rule(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        _month(store)
        s, e = DAY0, DAY0 + 10 * DAY
        assert cached(store, s, e) == uncached(store, s, e)
        strict = RULE._replace(summer_min=27.0)
        assert cached(store, s, e, strict) == uncached(store, s, e, strict)
        assert cached(store, s, e, strict)[1] == 0 < cached(store, s, e)[1]


def test_a_store_written_before_the_cache_starts_it_on_open(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        _month(store)
    conn = sqlite3.connect(path)
    with conn:  # as a store from before the cache: no fingerprints, no meta key
        conn.execute("DELETE FROM sample_days")
        conn.execute("DELETE FROM meta WHERE key = 'ac_days'")
    conn.close()
    with Store(path, readonly=True) as reader:
        assert reader.ac_days is None  # a reader does not write; it sweeps uncached
        s, e = DAY0, DAY0 + 12 * DAY
        expected = uncached(reader, s, e)
        assert reader.ac_seconds(UNITS, s, e, RULE, SHANGHAI) == expected
    with Store(path) as store:
        assert cached(store, s, e) == expected
        # A late sample after the rebuild is seen.
        w = Writer(store)
        w.seq = 10**6
        w.write([("ac-2", "setpoint_c", DAY0 + 3 * DAY + 12 * 3_600_000 + 1, 18.0)])
        assert cached(store, s, e) == uncached(store, s, e) != expected
    with Store(path, readonly=True) as reader:  # a reader of a store with the cache uses it
        assert reader.ac_days is not None
        strict = RULE._replace(summer_min=27.0)
        assert reader.ac_seconds(UNITS, s, e, strict, SHANGHAI) == uncached(reader, s, e,
                                                                           strict)
        # ... and saves the days it computed (the API reads through such a reader).
        assert sum(1 for r in reader.ac_days.rows() if '27.0' in r[3]) == 2 * 12
