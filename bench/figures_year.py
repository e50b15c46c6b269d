"""The figures an energy office asks for, on a year of 1-minute data, against plain SQL scans.

    python -m bench.figures_year [--small] [--days N] [--repeat 2] [--db PATH]
    python -m bench.figures_year --store postgres [--small] [--days N] [--repeat 2]

Builds (or reuses, with --db) a store holding `days` days of 2025 for one institution of
5 buildings with 30 AC units and 100 meters:

- 1-minute samples: every AC unit's `setpoint_c`, `mode` and `on` (3 points, 90 series) and
  every meter's live point (`power_w` or `flow_m3h`, 100 series) — 190 × 525,600 =
  99.9 million rows for a year;
- 15-minute interval records of every meter (100 × 35,040 = 3.5 million rows).

Rows are written with executemany into the store's own schema, series by series in index
order (the build is a fixture, not a measurement; its time is printed); opening the store
then fills the interval rollups with the store's own code (central/rollup.py). `--small` is
a quick run of 7 days.

"Now" is 13:45 on the last day. Each figure is timed `--repeat` times (best and worst
printed) beside a ceiling measured in the same run: a plain SQL scan that reads the same
rows into Python (the AC samples and the intervals of the period; no arithmetic), so the
ratio says what the figures cost above merely reading their data:

- dashboard: the page's JSON (`central.dashboard.build_dashboard`, serialised), month to date;
- month metrics: `central.metrics.period_metrics` of the last (local) month;
- monthly report: `central.report_output.produce` monthly HTML of that month;
- quarterly report: quarterly PDF of the last quarter;
- annual report: annual PDF and the ledger XLSX of the year.

The store is opened for writing, as the central's own store is: AC setpoint compliance of
closed days is cached in it (central/accache.py). Before the timed runs, the year's metrics
are computed once, which fills that cache for every closed day; its time is printed apart
(the cost of a first read of a year, paid once; later reads sweep only the open day).

`--store postgres`: the same fixture is built in SQLite, then copied row by row with COPY
into a throwaway PostgreSQL cluster (bench/pgcluster.py) whose schema stands at the version
before the rollups; the rollup migration (0004) then fills the rollups from the copied
intervals, as it would for a central upgraded in place. The figures read a writable
`PgStore` (PostgreSQL keeps no AC day cache: AC compliance sweeps the samples); the ceiling
is the same scan on PostgreSQL; the ledger stays SQLite (empty, as in the SQLite run).

Timings are never asserted in tests; figures and the machine they ran on are in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from bench.pgcluster import create_database, throwaway_postgres
from bench.timing import timed
from central.dashboard import build_dashboard
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.metrics import period_metrics
from central.pgstore import PgStore
from central.profile import load_profile
from central.reader import scoped
from central.report_output import produce
from central.store import Store

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
MIN_MS = 60_000
STEP_MS = 900_000
BUILDINGS = 5
AC_UNITS = 30
METERS = 100
SUB_ITEMS = ("01A10", "01B20", "01C10", "01C20", "01D30")


def _meter(i: int) -> dict[str, Any]:
    """Per building of 20 meters: main electricity, main water, the data centre and its IT
    load in building 0, the rest electricity sub-meters of 分项 items."""
    b, k = i % BUILDINGS, i // BUILDINGS
    base = {"edge": f"edge-{b}", "device": f"m{i}", "building": f"b{b}"}
    if k == 0:
        return {**base, "energy": "electricity", "role": "main", "live_point": "power_w"}
    if k == 1:
        return {**base, "energy": "water", "role": "main", "point": "water_m3",
                "live_point": "flow_m3h"}
    if b == 0 and k == 2:
        return {**base, "energy": "electricity", "role": "sub", "item": "01D10",
                "live_point": "power_w"}
    if b == 0 and k == 3:
        return {**base, "energy": "electricity", "role": "sub", "it_load": True,
                "live_point": "power_w"}
    return {**base, "energy": "electricity", "role": "sub",
            "item": SUB_ITEMS[k % len(SUB_ITEMS)], "live_point": "power_w"}


def institution() -> InstitutionConfig:
    return parse_institution({
        "institution": {"id": "bench", "name": "基准机关", "type": "agency",
                        "climate_zone": "hot_summer_cold_winter"},
        "buildings": [{"id": f"b{i}", "name": f"楼{i}", "floor_area_m2": 10_000,
                       "quota_class": "B-government"} for i in range(BUILDINGS)],
        "headcount": {"staff": 1_000},
        "targets": {YEAR: {"kgce_per_m2": 10, "kgce_per_person": 400,
                           "water_m3_per_person": 50}},
        "meters": [_meter(i) for i in range(METERS)],
        "ac_units": [{"edge": f"edge-{u % BUILDINGS}", "device": f"ac{u}",
                      "building": f"b{u % BUILDINGS}"} for u in range(AC_UNITS)],
    })


def _ac_values(ts: int, unit: int) -> tuple[float, str, bool]:
    """Working days 08:00–18:00 on; cooling April–October, else heating; a few units at
    a setpoint that breaks the rule."""
    local = datetime.fromtimestamp(ts / 1000, TZ)
    on = local.weekday() < 5 and 8 <= local.hour < 18
    cooling = 4 <= local.month <= 10
    bad = unit % 7 == 0
    setpoint = (24.0 if bad else 26.0) if cooling else (22.0 if bad else 20.0)
    return setpoint, "cool" if cooling else "heat", on


def build(path: Path, days: int) -> tuple[int, int]:
    """Writes the fixture; returns (samples, intervals)."""
    inst = institution()
    Store(path).close()  # the store's own schema and indexes
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    minutes = days * 24 * 60
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture, not measuring it
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('max_interval_s', '900')")
    conn.execute("DELETE FROM meta WHERE key = 'rollup'")  # rebuilt by the next open
    conn.execute("DELETE FROM meta WHERE key = 'ac_days'")  # the AC day fingerprints too
    sample_sql = ("INSERT INTO samples (stream_edge, stream_epoch, seq, ts, device, point, "
                  "value, vtype, unit, synced) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, 1)")
    latest_sql = ("INSERT OR REPLACE INTO latest (edge, device, point, ts, value, vtype, unit, "
                  "stream_epoch, seq) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)")
    seqs = {f"edge-{b}": 0 for b in range(BUILDINGS)}
    samples = 0

    def series(edge: str, device: str, point: str, vtype: str, unit: str,
               value: Callable[[int, int], float | str | bool]) -> None:
        nonlocal samples
        first = seqs[edge]

        def rows() -> Iterator[tuple[Any, ...]]:
            for k in range(minutes):
                ts = start + k * MIN_MS
                yield edge, first + k + 1, ts, device, point, value(ts, k), vtype, unit

        conn.execute("BEGIN")
        conn.executemany(sample_sql, rows())
        last = start + (minutes - 1) * MIN_MS
        conn.execute(latest_sql, (edge, device, point, last, value(last, minutes - 1), vtype,
                                  unit, first + minutes))
        conn.execute("COMMIT")
        seqs[edge] += minutes
        samples += minutes

    for u in range(AC_UNITS):
        edge, device = f"edge-{u % BUILDINGS}", f"ac{u}"
        for index, (point, vtype, unit) in enumerate((("setpoint_c", "n", "°C"),
                                                      ("mode", "s", ""), ("on", "b", ""))):
            def ac(ts: int, _k: int, u: int = u, index: int = index) -> float | str | bool:
                return _ac_values(ts, u)[index]
            series(edge, device, point, vtype, unit, ac)
    for m in inst.meters:
        point = m.live_point or "power_w"

        def live(_ts: int, k: int, scale: float = 2.0 if point == "flow_m3h" else 20_000.0
                 ) -> float:
            return scale * (0.3 + (k % 1440) / 2880)
        series(m.edge, m.device, point, "n", "m3/h" if point == "flow_m3h" else "W", live)
    interval_sql = ("INSERT INTO intervals (edge, device, point, start, duration_s, quantity, "
                    "unit, flags, synced, stream_epoch, seq) VALUES (?, ?, ?, ?, 900, ?, ?, "
                    "'', 1, 1, ?)")
    intervals = 0
    for m in inst.meters:
        unit = "m3" if m.point == "water_m3" else "kWh"
        size = (0.1 if m.point == "water_m3" else 10.0 if m.role == "main"
                else 0.6 if m.it_load else 1.0)
        per = days * 96
        edge, device, point, first = m.edge, m.device, m.point, seqs[m.edge]
        conn.execute("BEGIN")
        conn.executemany(interval_sql, (
            (edge, device, point, start + k * STEP_MS, size * (0.5 + (k % 96) / 96), unit,
             first + k + 1)
            for k in range(per)))
        conn.execute("COMMIT")
        seqs[m.edge] += per
        intervals += per
    conn.close()
    Store(path).close()  # fills the rollups and the AC day fingerprints (central/accache.py)
    return samples, intervals


def copy_to_postgres(path: Path, dsn: str) -> None:
    """The fixture's samples, latest values and intervals into a PostgreSQL store at schema
    version 3 (before the rollups), then migration 0004 fills the rollups."""
    import psycopg

    from central import migrations

    src = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        migrations.apply(conn, "store", target=3)
        with conn.cursor() as cur:
            with cur.copy("COPY samples (stream_edge, stream_epoch, seq, ts, device, point, "
                          "num, txt, vtype, unit, synced) FROM STDIN") as copy:
                for e, ep, sq, ts, d, p, v, vt, u, sy in src.execute(
                        "SELECT stream_edge, stream_epoch, seq, ts, device, point, value, "
                        "vtype, unit, synced FROM samples"):
                    copy.write_row((e, ep, sq, ts, d, p, None if vt == "s" else float(v),
                                    v if vt == "s" else None, vt, u, sy))
            with cur.copy("COPY latest (edge, device, point, ts, num, txt, vtype, unit, "
                          "stream_epoch, seq) FROM STDIN") as copy:
                for e, d, p, ts, v, vt, u, ep, sq in src.execute("SELECT * FROM latest"):
                    copy.write_row((e, d, p, ts, None if vt == "s" else float(v),
                                    v if vt == "s" else None, vt, u, ep, sq))
            with cur.copy("COPY intervals FROM STDIN") as copy:
                for row in src.execute("SELECT * FROM intervals"):
                    copy.write_row(row)
        conn.execute("UPDATE interval_bound SET seconds = 900")
        conn.execute("VACUUM ANALYZE")
        t0 = time.perf_counter()
        migrations.apply(conn, "store")
        print(f"migration 0004 filled the rollups in {time.perf_counter() - t0:.1f} s")
        conn.execute("VACUUM ANALYZE")
    src.close()


def scan_postgres(conn: Any, inst: InstitutionConfig, s_ms: int, e_ms: int) -> int:
    """`scan` on PostgreSQL."""
    n = 0
    for a in inst.ac_units:
        for point in ("setpoint_c", "mode", "on"):
            n += len(conn.execute(
                "SELECT ts, num, txt, vtype FROM samples WHERE stream_edge = %s AND "
                "device = %s AND point = %s AND ts >= %s AND ts < %s ORDER BY ts",
                (a.edge, a.device, point, s_ms, e_ms)).fetchall())
    n += len(conn.execute("SELECT edge, device, point, start, duration_s, quantity FROM "
                          "intervals WHERE start >= %s AND start < %s", (s_ms, e_ms)).fetchall())
    return n



def scan(conn: sqlite3.Connection, inst: InstitutionConfig, s_ms: int, e_ms: int) -> int:
    """The raw ceiling: every AC sample and interval of [s_ms, e_ms) read into Python."""
    n = 0
    for a in inst.ac_units:
        for point in ("setpoint_c", "mode", "on"):
            n += len(conn.execute(
                "SELECT ts, value, vtype FROM samples WHERE stream_edge = ? AND device = ? "
                "AND point = ? AND ts >= ? AND ts < ? ORDER BY ts",
                (a.edge, a.device, point, s_ms, e_ms)).fetchall())
    n += len(conn.execute("SELECT edge, device, point, start, duration_s, quantity FROM "
                          "intervals WHERE start >= ? AND start < ?", (s_ms, e_ms)).fetchall())
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--small", action="store_true", help="7 days instead of 365")
    parser.add_argument("--days", type=int, help="days of 2025 to hold (default 365)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    parser.add_argument("--only", help="comma-separated: dashboard,month,monthly,quarterly,"
                        "annual")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    days = args.days or (7 if args.small else 365)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        path = args.db or Path(tmp) / "figures.sqlite"
        if not path.exists() or path.stat().st_size == 0:
            t0 = time.perf_counter()
            samples, intervals = build(path, days)
            print(f"built {samples:,} samples and {intervals:,} intervals in "
                  f"{time.perf_counter() - t0:.0f} s ({path.stat().st_size / 2**30:.1f} GiB)")
        inst = institution()
        profile = load_profile("national")
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite")
        last = datetime(YEAR, 1, 1, tzinfo=TZ) + timedelta(days=days - 1)
        now = last.replace(hour=13, minute=45).timestamp()
        month = last.month
        m0 = datetime(YEAR, month, 1, tzinfo=TZ).timestamp()
        q = (month - 1) // 3 + 1
        q0 = datetime(YEAR, 3 * q - 2, 1, tzinfo=TZ).timestamp()
        y0 = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp()
        t0 = time.perf_counter()
        store: Store | PgStore
        if args.store == "postgres":
            cluster = stack.enter_context(throwaway_postgres())
            dsn = create_database(cluster, "figures")
            copy_to_postgres(path, dsn)
            print(f"copied into PostgreSQL in {time.perf_counter() - t0:.0f} s")
            store = PgStore(dsn)
            pg = stack.enter_context(psycopg.connect(dsn, autocommit=True))
            ceiling_scan: Callable[[int, int], int] = partial(scan_postgres, pg, inst)
        else:
            # Writable, as the central's own store is: closed days' AC figures are cached
            # in it.
            store = Store(path)
            print(f"opened the store in {time.perf_counter() - t0:.1f} s (a store from "
                  "before the rollups fills them on this first writable open)")
        t0 = time.perf_counter()
        period_metrics(store, ledger, inst, profile, start=y0, end=now)
        print(f"first metrics of the year (fills the AC day cache of every closed day) in "
              f"{time.perf_counter() - t0:.1f} s; the figures below are timed after it")
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        if args.store != "postgres":
            ceiling_scan = partial(scan, conn, inst)

        def ms(x: float) -> int:
            return int(x * 1000)

        cases: list[tuple[str, str, Callable[[], object], float, float]] = [
            ("dashboard", "≤ 0.3 s", lambda: build_dashboard(
                scoped(store, inst), ledger, profile, now=now).model_dump_json(), m0, now),
            ("month", "≤ 1 s", lambda: period_metrics(
                store, ledger, inst, profile, start=m0, end=now), m0, now),
            ("monthly", "≤ 10 s", lambda: produce(
                store, ledger, inst, profile, report="monthly", fmt="html", year=YEAR,
                number=month, now=now), m0, now),
            ("quarterly", "—", lambda: produce(
                store, ledger, inst, profile, report="quarterly", fmt="pdf", year=YEAR,
                number=q, now=now), q0, now),
            ("annual", "≤ 60 s", lambda: (
                produce(store, ledger, inst, profile, report="annual", fmt="pdf", year=YEAR,
                        now=now),
                produce(store, ledger, inst, profile, report="ledger", fmt="xlsx", year=YEAR,
                        now=now)), y0, now),
        ]
        wanted = set(args.only.split(",")) if args.only else None
        print(f"{'figure':<10} {'aim':>7} {'best':>9} {'worst':>9} {'ceiling':>8} "
              f"{'rows':>11} {'ratio':>6}  (best / worst of {args.repeat} runs; ratio = best "
              "figure ÷ best ceiling)")
        for name, aim, fn, s, e in cases:
            if wanted is not None and name not in wanted:
                continue
            rows = ceiling_scan(ms(s), ms(e))
            ceiling = min(timed(partial(ceiling_scan, ms(s), ms(e)), args.repeat))
            took = timed(fn, args.repeat)
            print(f"{name:<10} {aim:>7} {min(took):>8.3f}s {max(took):>8.3f}s {ceiling:>7.3f}s "
                  f"{rows:>11,} {min(took) / ceiling:>6.3f}×", flush=True)
        store.close()
        ledger.close()
        conn.close()


if __name__ == "__main__":
    main()
