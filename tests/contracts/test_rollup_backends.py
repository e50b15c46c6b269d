"""The rollups equal a recomputation from the stored intervals, exactly, on both backends,
whatever replays, late data, reordering and corrections the intervals arrive with; period
sums and hour totals read from them equal the raw interval sums. On PostgreSQL also: the
migration that creates the rollups fills them from a populated database, and two workers
writing the same rollup rows at once lose nothing."""

from __future__ import annotations

import math
import random
import threading
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central import migrations, pgrollup
from central.institution import MeterKey
from central.pgstore import PgStore
from central.rollup import NANO, Rollup
from central.store import Store
from protocols.wire import Batch, IntervalRecord, StreamId
from tests.contracts.pg import APP_PASSWORD, PgServer
from tests.unit.central.central_helpers import local_ms
from tests.unit.central.test_compliance_rollup import METERS, MIDNIGHT, TZ, deliveries

HOUR = 3_600_000
Rows = dict[str, list[tuple[object, ...]]]


def recomputed(intervals: list[tuple[object, ...]], zone: str) -> Rows:
    """Both rollups from the final interval rows by the splitting rule of central/rollup.py,
    non-zero buckets only."""
    rollup = Rollup(zone)
    daily: dict[tuple[str, str, str, int], int] = defaultdict(int)
    hourly: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for e, d, p, st_, du, q, *_ in intervals:
        rollup.contributions(str(e), str(d), str(p), int(st_),  # type: ignore[call-overload]
                             int(du), float(q), 1, daily, hourly)  # type: ignore[arg-type]
    return {"interval_daily": sorted((*k, v) for k, v in daily.items() if v),
            "interval_hourly": sorted((*k, v) for k, v in hourly.items() if v)}


def nonzero(rows: Rows) -> Rows:
    return {t: sorted(r for r in rs if r[-1] != 0) for t, rs in rows.items()}


class Backends:
    """A fresh, empty store per hypothesis example: SQLite in memory, or one PostgreSQL
    database of the test emptied between examples."""

    def __init__(self, backend: str, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.pg: PgStore | None = None
        if backend == "postgres":
            server: PgServer = request.getfixturevalue("pg_server")
            self.pg = PgStore(server.dsn(server.create_database("rollup")),
                              password=APP_PASSWORD)

    def fresh(self) -> tuple[Store | PgStore, str]:
        if self.pg is None:
            return Store(":memory:"), "Asia/Shanghai"
        with self.pg._db.use("test") as conn:
            conn.execute("TRUNCATE streams, pending, samples, latest, intervals, events, "
                          "edges, interval_daily, interval_hourly")
        return self.pg, pgrollup.DAY_ZONE

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()


@pytest.fixture
def backends(backend: str, request: pytest.FixtureRequest) -> Iterator[Backends]:
    b = Backends(backend, request)
    yield b
    b.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delivery=deliveries(), window=st.tuples(st.integers(-8, 40), st.integers(1, 40)))
def test_rollups_equal_recomputation_after_any_delivery(
        backends: Backends, delivery: list[Batch], window: tuple[int, int]) -> None:
    store, zone = backends.fresh()
    try:
        for b in delivery:
            store.store_batch(b, "site", now=0.0)
        intervals = store.rows("intervals")
        assert nonzero(store.rollup_rows()) == recomputed(intervals, zone)
        s = MIDNIGHT + window[0] * 1_800_000
        e = s + window[1] * 1_800_000
        keys = [MeterKey(edge, d, "energy_import_kwh") for edge, d in METERS]
        fast = store.period_sums(s, e, TZ, keys)
        slow = store.interval_sums(s, e, keys)
        assert fast == {k: pytest.approx(v, abs=1e-6) for k, v in slow.items()}
        every = store.period_sums(s, e, TZ)  # no keys: every meter with data
        assert every == {k: pytest.approx(v, abs=1e-6)
                         for k, v in store.interval_sums(s, e).items() if k in every}
        # (A meter whose share rounds to 0 nano-units has no rollup row, hence no entry.)
        assert {k for k, v in store.interval_sums(s, e).items() if abs(v) > 1e-6} <= set(every)
        h0, h1 = s // HOUR, -(-e // HOUR)
        hours = store.hour_totals(keys, h0, h1)
        assert hours is not None
        if all(int(r[4]) <= 86_400 and abs(float(r[5])) <= 1e5  # type: ignore[arg-type]
               for r in intervals):  # unrolled intervals are not in the hourly totals
            for h in range(h0, h1):
                raw = math.fsum(store.interval_sums(h * HOUR, (h + 1) * HOUR, keys).values())
                assert hours.get(h, 0.0) == pytest.approx(raw, abs=1e-6)
        # Per local day: whole days from the daily rollup equal their hours exactly.
        per_day = store.day_totals(keys, h0 - 48, h1 + 30, TZ)
        assert per_day is not None
        wide = store.hour_totals(keys, h0 - 48, h1 + 30)
        assert wide is not None
        want: dict[date, int] = defaultdict(int)
        for h, q in wide.items():
            want[datetime.fromtimestamp(h * 3600, TZ).date()] += round(q * NANO)
        assert {d: round(q * NANO) for d, q in per_day.items() if round(q * NANO)} == {
            d: n for d, n in want.items() if n}
        if isinstance(store, PgStore):  # the one-pass read equals the two reads, exactly
            lo, hi = s - 48 * HOUR + 1, e + 30 * HOUR - 1  # partial hours at both ends
            groups = [0, 1, 0]
            both = store.sums_and_day_totals(lo, hi, TZ, keys, groups)
            assert both is not None
            assert both[0] == store.period_sums(lo, hi, TZ, keys)
            assert both[1] == [store.day_totals([k for k, g in zip(keys, groups, strict=True)
                                                 if g == i], -(-lo // HOUR), hi // HOUR, TZ)
                               for i in (0, 1)]
            assert store.sums_and_day_totals(s, s + HOUR, TZ, keys, groups) is None
    finally:
        if backends.pg is None:
            store.close()


def test_corrections_and_stale_copies_change_only_the_difference(backends: Backends) -> None:
    store, zone = backends.fresh()
    key = MeterKey("edge-1", "m1", "energy_import_kwh")

    def iv(seq: int, start: int, q: float) -> IntervalRecord:
        return IntervalRecord(seq=seq, device="m1", point="energy_import_kwh", start=start,
                              duration_s=900, quantity=q, unit="kWh")

    try:
        store.store_batch(Batch(StreamId("edge-1", 1), 0, 0, True,
                                (iv(1, MIDNIGHT, 0.1), iv(2, MIDNIGHT + 900_000, 0.2))), "s")
        store.store_batch(Batch(StreamId("edge-1", 1), 2, 0, True, (iv(3, MIDNIGHT, 0.3),)),
                          "s")
        store.store_batch(Batch(StreamId("edge-1", 0), 0, 0, True, (iv(9, MIDNIGHT, 99.0),)),
                          "s")
        store.store_batch(Batch(StreamId("edge-1", 1), 0, 0, True,  # a replay
                                (iv(1, MIDNIGHT, 0.1), iv(2, MIDNIGHT + 900_000, 0.2))), "s")
        day = Rollup(zone).days.day_of(MIDNIGHT)
        assert nonzero(store.rollup_rows())["interval_daily"] == [
            ("edge-1", "m1", "energy_import_kwh", day, 500_000_000)]
        assert store.period_sums(MIDNIGHT, MIDNIGHT + 86_400_000, TZ, [key]) == {key: 0.5}
    finally:
        if backends.pg is None:
            store.close()


# -- PostgreSQL only ---------------------------------------------------------------------

def _old_database(pg_server: PgServer) -> str:
    """A database at the schema before the rollups (version 3), as an older central left
    it."""
    dsn = pg_server.dsn(pg_server.create_database("premig"))
    with psycopg.connect(dsn, password=APP_PASSWORD, autocommit=True) as conn:
        assert migrations.apply(conn, "store", target=3) == 3
    return dsn


def test_migration_fills_the_rollups_of_a_populated_database(pg_server: PgServer) -> None:
    dsn = _old_database(pg_server)
    rnd = random.Random(19)
    rows = []
    for m in range(12):
        edge, device = f"edge-{m % 3}", f"m{m}"
        start = local_ms(2025, 3, 29) + rnd.randrange(0, 96) * 300_000
        for k in range(120):
            duration = rnd.choice([60, 900, 900, 3600, 5400, 86_400, 90_000])
            quantity = rnd.choice([rnd.uniform(0, 40), -rnd.uniform(0, 5), 0.1, 0.3, 2.5e-9,
                                   3.5e-9, 1e-9, 2e5, 0.0])
            rows.append((edge, device, "energy_import_kwh", start, duration, quantity, "kWh",
                         "", 1, 1, k + 1))
            start += rnd.choice([duration * 1000, 900_000, 3_600_000 + 17])
    with psycopg.connect(dsn, password=APP_PASSWORD, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO intervals (edge, device, point, start, duration_s, quantity, unit,"
                " flags, synced, stream_epoch, seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s) ON CONFLICT DO NOTHING", rows)
        conn.execute("UPDATE interval_bound SET seconds = 90000")
    with PgStore(dsn, password=APP_PASSWORD) as store:  # applies 0004
        intervals = store.rows("intervals")
        assert len(intervals) > 1000
        want = recomputed(intervals, pgrollup.DAY_ZONE)
        assert nonzero(store.rollup_rows()) == want
        assert len(want["interval_daily"]) > 12
        assert len(want["interval_hourly"]) > 1000
        keys = sorted({MeterKey(str(r[0]), str(r[1]), str(r[2])) for r in intervals})
        s, e = local_ms(2025, 3, 29) + 7 * 60_000, local_ms(2025, 4, 3) + 5 * HOUR + 11
        fast = store.period_sums(s, e, TZ, keys)
        assert fast == {k: pytest.approx(v, abs=1e-6)
                        for k, v in store.interval_sums(s, e, keys).items()}


def test_two_workers_adding_to_the_same_rollup_rows_lose_nothing(pg_server: PgServer) -> None:
    """Two epochs of one edge (two streams, two workers) correct the same intervals at
    once: the stream locks do not serialise them, the edge lock and additive deltas do."""
    dsn = pg_server.dsn(pg_server.create_database("race"))
    PgStore(dsn, password=APP_PASSWORD).close()
    errors: list[BaseException] = []

    def worker(epoch: int) -> None:
        try:
            with PgStore(dsn, password=APP_PASSWORD) as store:
                seq = 0
                for b in range(25):
                    records = []
                    for k in range(8):
                        seq += 1
                        records.append(IntervalRecord(
                            seq=seq, device=f"m{(b * 8 + k) % 40 % 3}", point="energy_import_kwh",
                            start=MIDNIGHT + ((b * 8 + k) % 40) * 900_000, duration_s=900,
                            quantity=round(0.1 * epoch + 0.01 * seq, 6), unit="kWh"))
                    store.store_batch(Batch(StreamId("edge-1", epoch), seq - 8, 0, True,
                                            tuple(records)), "s")
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(epoch,)) for epoch in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors
    with PgStore(dsn, password=APP_PASSWORD) as store:
        intervals = store.rows("intervals")
        assert len(intervals) == 40
        assert {r[9] for r in intervals} == {2}
        assert nonzero(store.rollup_rows()) == recomputed(intervals, pgrollup.DAY_ZONE)
        total = sum(round(float(r[5]) * NANO) for r in intervals)  # type: ignore[arg-type]
        assert sum(int(r[-1]) for r in store.rollup_rows()["interval_daily"]) == total
