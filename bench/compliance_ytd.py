"""Year-to-date compliance for a large institution against a plain SQL aggregate.

    python -m bench.compliance_ytd [--meters 1000] [--days 365] [--db PATH]
    python -m bench.compliance_ytd --store postgres [--meters 1000] [--days 365]

Builds (or reuses, with --db) a store holding `meters` electricity meters with 15-minute
interval records for `days` days of 2025 (1,000 × 365 days = 35,040,000 rows), written
directly with executemany; opening the store then fills its daily and hourly rollups from
them (central/rollup.py, the same splitting code as the write path). "Now" is 13:45 on the
last day, so the call reads whole days, whole hours and a partial hour. Times in the same
run:

- ceiling: `SELECT edge, device, point, SUM(quantity) ... GROUP BY edge, device, point` over
  the same rows (what any hand-written report query would cost);
- `central.metrics.compliance_for`: the API's /compliance call for the year (rollup sums,
  first-interval lookup, denominators, score);
- the interval write path (`Store.store_batch`, 15-minute intervals in batches of 500) with
  and without rollup maintenance, on a separate small store.

Prints the best of `--repeat` runs of each and their ratio. Timings are never asserted in
tests; see docs/benchmarks.md.

`--store postgres` runs the same on a throwaway PostgreSQL cluster (bench/pgcluster.py):
the schema is migrated to the version before the rollups (3), the same interval rows are
generated server-side (`INSERT … SELECT … FROM generate_series`, no Python per row), then
the rollup migration 0004 runs and fills the rollups from them (its time is printed: the
upgrade of a populated database). The store read is `PgStore` read-only, as the API's; the
write path is `PgStore.store_batch` on a separate database, with and without
`central.pgrollup.roll_up`.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from central.institution import InstitutionConfig, parse_institution
from central.metrics import compliance_for
from central.profile import load_profile
from central.store import Store
from protocols.wire import Batch, IntervalRecord, StreamId

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
STEP_MS = 900_000


def institution(meters: int) -> InstitutionConfig:
    buildings = max(1, meters // 100)
    return parse_institution({
        "institution": {"id": "bench", "name": "Benchmark", "type": "agency"},
        "buildings": [{"id": f"b{i}", "name": f"B{i}", "floor_area_m2": 10_000}
                      for i in range(buildings)],
        "headcount": {"staff": 2_000},
        "targets": {YEAR: {"kgce_per_m2": 10, "kgce_per_person": 400,
                           "water_m3_per_person": 50}},
        "meters": [{"edge": f"edge-{i // 100}", "device": f"m{i}", "building": f"b{i % buildings}",
                    "energy": "electricity", "role": "main"} for i in range(meters)],
    })


def build(path: Path, meters: int, days: int) -> int:
    Store(path).close()  # the store's own schema and indexes
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    per_meter = days * 96
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture, not measuring it
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('max_interval_s', '900')")
    # Bulk load without the start index (random inserts into it dominate), then let the
    # store recreate it from its own schema with one sort.
    conn.execute("DROP INDEX IF EXISTS intervals_by_start")
    # Rows written behind the store's back: have the next open rebuild the rollups.
    conn.execute("DELETE FROM meta WHERE key = 'rollup'")
    sql = ("INSERT INTO intervals (edge, device, point, start, duration_s, quantity, unit, "
           "flags, synced, stream_epoch, seq) VALUES (?, ?, 'energy_import_kwh', ?, 900, ?, "
           "'kWh', '', 1, 1, ?)")
    for i in range(meters):
        edge, device = f"edge-{i // 100}", f"m{i}"
        conn.execute("BEGIN")
        conn.executemany(sql, ((edge, device, start + k * STEP_MS, 0.25 + (k % 96) / 384,
                                i * per_meter + k) for k in range(per_meter)))
        conn.execute("COMMIT")
    conn.close()
    t0 = time.perf_counter()
    Store(path).close()  # recreates the start index and fills the rollups
    print(f"index and rollups built in {time.perf_counter() - t0:.0f} s")
    return meters * per_meter


def write_path(tmp: Path, rollup: bool, batches: int = 60) -> float:
    """Intervals per second through `Store.store_batch`, 500 per batch (50 meters × 10)."""
    store = Store(tmp / f"write-{rollup}.sqlite")
    if not rollup:
        store._rollup = None  # what the upsert cost before rollups
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    seq = 0
    t0 = time.perf_counter()
    for b in range(batches):
        records = []
        for m in range(50):
            for k in range(10):
                seq += 1
                records.append(IntervalRecord(
                    seq=seq, device=f"m{m}", point="energy_import_kwh",
                    start=start + (b * 10 + k) * STEP_MS, duration_s=900, quantity=0.25,
                    unit="kWh"))
        store.store_batch(Batch(StreamId("edge-0", 1), seq - 500, 0, True, tuple(records)),
                          "bench")
    elapsed = time.perf_counter() - t0
    store.close()
    return batches * 500 / elapsed


def best(fn: object, repeat: int) -> tuple[float, object]:
    assert callable(fn)
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def build_postgres(cluster: str, meters: int, days: int) -> str:
    """The database of `meters` × `days` intervals, rollups filled by migration 0004."""
    import psycopg

    from bench.pgcluster import create_database
    from central import migrations

    dsn = create_database(cluster, "ytd")
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    per_meter = days * 96
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrations.apply(conn, "store", target=3)
        conn.execute("DROP INDEX intervals_by_start")  # recreated after the load, sorted once
        t0 = time.perf_counter()
        for edge in range(-(-meters // 100)):
            conn.execute(
                "INSERT INTO intervals (edge, device, point, start, duration_s, quantity, "
                "unit, flags, synced, stream_epoch, seq) SELECT 'edge-' || (i / 100), "
                "'m' || i, 'energy_import_kwh', %s::bigint + k::bigint * %s, 900, "
                "0.25::float8 + (k %% 96)::float8 / 384, 'kWh', '', 1, 1, i * %s::bigint + k "
                "FROM generate_series(%s::int, %s::int) AS i, generate_series(0, %s::int) AS k",
                (start, STEP_MS, per_meter, edge * 100, min(meters, edge * 100 + 100) - 1,
                 per_meter - 1))
        conn.execute("CREATE INDEX intervals_by_start ON intervals (start)")
        conn.execute("UPDATE interval_bound SET seconds = 900")
        conn.execute("VACUUM ANALYZE intervals")
        print(f"built {meters * per_meter:,} interval rows in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        migrations.apply(conn, "store")
        print(f"migration 0004 filled the rollups in {time.perf_counter() - t0:.0f} s")
        conn.execute("VACUUM ANALYZE")
    return dsn


def write_path_postgres(cluster: str, rollup: bool, batches: int = 60) -> float:
    """Intervals per second through `PgStore.store_batch`, 500 per batch (50 meters × 10)."""
    from unittest import mock

    from bench.pgcluster import create_database
    from central import pgrollup
    from central.pgstore import PgStore

    store = PgStore(create_database(cluster, f"write_{int(rollup)}"))
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    seq = 0
    with contextlib.ExitStack() as stack:
        if not rollup:  # what the upsert costs without rollup maintenance
            stack.enter_context(mock.patch.object(pgrollup, "roll_up", return_value=None))
        t0 = time.perf_counter()
        for b in range(batches):
            records = []
            for m in range(50):
                for k in range(10):
                    seq += 1
                    records.append(IntervalRecord(
                        seq=seq, device=f"m{m}", point="energy_import_kwh",
                        start=start + (b * 10 + k) * STEP_MS, duration_s=900, quantity=0.25,
                        unit="kWh"))
            store.store_batch(Batch(StreamId("edge-0", 1), seq - 500, 0, True,
                                    tuple(records)), "bench")
        elapsed = time.perf_counter() - t0
    store.close()
    return batches * 500 / elapsed


def main_postgres(meters: int, days: int, repeat: int) -> None:
    import psycopg

    from bench.pgcluster import throwaway_postgres
    from central.pgstore import PgStore

    with throwaway_postgres() as cluster:
        dsn = build_postgres(cluster, meters, days)
        inst = institution(meters)
        profile = load_profile("national")
        y0 = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
        now = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() + days * 86_400 - 10.25 * 3600
        with PgStore(dsn, readonly=True, migrate=False) as store, \
                psycopg.connect(dsn, autocommit=True) as conn:

            def plain() -> float:
                rows = conn.execute(
                    "SELECT edge, device, point, SUM(quantity) FROM intervals "
                    "WHERE start >= %s AND start < %s GROUP BY edge, device, point",
                    (y0, int(now * 1000))).fetchall()
                return sum(r[3] for r in rows) * 0.1229

            def engine() -> float:
                return compliance_for(store, inst, profile, now=now, year=YEAR).energy_kgce

            raw_s, raw_kgce = best(plain, repeat)
            eng_s, eng_kgce = best(engine, repeat)
        assert isinstance(raw_kgce, float)
        assert isinstance(eng_kgce, float)
        assert abs(raw_kgce - eng_kgce) <= 1e-6 * raw_kgce, (raw_kgce, eng_kgce)
        print(f"postgres meters={meters} days={days} rows={meters * days * 96:,}")
        print(f"plain SQL aggregate : {raw_s * 1000:9.1f} ms")
        print(f"compliance_for      : {eng_s * 1000:9.1f} ms  "
              f"(ratio {eng_s / raw_s:.4f} × the SQL ceiling, {raw_s / eng_s:,.0f}× faster; "
              f"kgce {eng_kgce:,.1f})")
        with_rollup = write_path_postgres(cluster, rollup=True)
        without = write_path_postgres(cluster, rollup=False)
        print(f"store_batch intervals: {without:,.0f}/s without rollups, {with_rollup:,.0f}/s "
              f"with (ratio {with_rollup / without:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    if args.store == "postgres":
        main_postgres(args.meters, args.days, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.sqlite"
        if not path.exists() or path.stat().st_size == 0:
            t0 = time.perf_counter()
            rows = build(path, args.meters, args.days)
            print(f"built {rows:,} interval rows in {time.perf_counter() - t0:.0f} s "
                  f"({path.stat().st_size / 2**30:.1f} GiB)")
        inst = institution(args.meters)
        profile = load_profile("national")
        y0 = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
        now = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() + args.days * 86_400 - 10.25 * 3600
        Store(path).close()  # a reused file written before rollups gets them here
        with Store(path, readonly=True) as store:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)

            def plain() -> float:
                rows = conn.execute(
                    "SELECT edge, device, point, SUM(quantity) FROM intervals "
                    "WHERE start >= ? AND start < ? GROUP BY edge, device, point",
                    (y0, int(now * 1000))).fetchall()
                return sum(r[3] for r in rows) * 0.1229

            def engine() -> float:
                return compliance_for(store, inst, profile, now=now, year=YEAR).energy_kgce

            raw_s, raw_kgce = best(plain, args.repeat)
            eng_s, eng_kgce = best(engine, args.repeat)
            conn.close()
        assert isinstance(raw_kgce, float)
        assert isinstance(eng_kgce, float)
        assert abs(raw_kgce - eng_kgce) <= 1e-6 * raw_kgce, (raw_kgce, eng_kgce)
        print(f"meters={args.meters} days={args.days} rows={args.meters * args.days * 96:,}")
        print(f"plain SQL aggregate : {raw_s * 1000:9.1f} ms")
        print(f"compliance_for      : {eng_s * 1000:9.1f} ms  "
              f"(ratio {eng_s / raw_s:.4f} × the SQL ceiling, {raw_s / eng_s:,.0f}× faster; "
              f"kgce {eng_kgce:,.1f})")
        with_rollup = write_path(Path(tmp), rollup=True)
        without = write_path(Path(tmp), rollup=False)
        print(f"store_batch intervals: {without:,.0f}/s without rollups, {with_rollup:,.0f}/s "
              f"with (ratio {with_rollup / without:.2f})")


if __name__ == "__main__":
    main()
