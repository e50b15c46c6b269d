"""The district view (GET /api/v1/district) for a whole district against a plain SQL aggregate.

    python -m bench.district_view [--institutions 200] [--days 365] [--db PATH]

Builds (or reuses, with --db) a SQLite store holding the institutions of
`simulators.district_plan` (schools and offices with 1–3 buildings, an electricity meter per
building and a water meter) with 15-minute interval records for `days` days of 2025,
written directly with executemany, each edge born and a leak alarm at every tenth
institution; opening the store then fills its daily and hourly rollups (central/rollup.py).
"Now" is 13:45 on the last day. Times in the same run, best of `--repeat`:

- ceiling: one `SELECT edge, device, point, SUM(quantity) … GROUP BY` over every interval of
  the year to date: what reading each meter's year once costs, with no figure computed;
- `central.district.build_district` over every institution, cold: for each, its
  year-to-date compliance (rollup sums, coverage, projection, score), open alarms and edge
  health, through its own tenant-bound reader, then ranked;
- the same with every row in the route's `RowCache` (what a page gets within the minute
  after the first request: filters, sort and rank only).

Prints both, their ratio and the view's time per institution. Timings are never asserted
in tests; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from central.district import Member, RowCache, build_district
from central.institution import parse_institution
from central.profile import load_profile
from central.reader import TenantReader
from central.store import Store
from protocols.wire import Batch, Birth, Event, Severity, StreamId
from simulators.district_plan import SimInstitution, plan_district

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
STEP_MS = 900_000
T = TypeVar("T")


def build(path: Path, plan: list[SimInstitution], days: int, now: float) -> int:
    store = Store(path)  # the store's own schema and indexes
    for n, inst in enumerate(plan):
        stream = StreamId(inst.edge, 1)
        store.record_birth(inst.id, Birth(stream, int(now * 1000), True, "bench"), now=now)
        if n % 10 == 0:
            water = next(m for m in inst.meters if m.energy == "water")
            store.store_batch(Batch(stream, 0, int(now * 1000), True, (Event(
                1, int(now * 1000) - 60_000, "alarm.leak", Severity.ALARM, water.device,
                {"state": "raised", "rule": "leak", "point": "flow_m3h"}),)), inst.id, now=now)
    store.close()
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    per_meter = days * 96
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture, not measuring it
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('max_interval_s', '900')")
    conn.execute("DROP INDEX IF EXISTS intervals_by_start")
    conn.execute("DELETE FROM meta WHERE key = 'rollup'")  # rebuilt by the next open
    sql = ("INSERT INTO intervals (edge, device, point, start, duration_s, quantity, unit, "
           "flags, synced, stream_epoch, seq) VALUES (?, ?, ?, ?, 900, ?, ?, '', 1, 1, ?)")
    rows = 0
    for inst in plan:
        conn.execute("BEGIN")
        for m in inst.meters:
            elec = m.energy == "electricity"
            point, unit = ("energy_import_kwh", "kWh") if elec else ("water_m3", "m3")
            conn.executemany(sql, ((inst.edge, m.device, point, start + k * STEP_MS,
                                    (m.peak if 34 <= k % 96 < 70 else m.base) / 4, unit,
                                    rows + k + 2) for k in range(per_meter)))
            rows += per_meter
        conn.execute("COMMIT")
    conn.close()
    t0 = time.perf_counter()
    Store(path).close()  # recreates the start index and fills the rollups
    print(f"index and rollups built in {time.perf_counter() - t0:.0f} s")
    return rows


def best(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    assert result is not None
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--institutions", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    args = parser.parse_args()
    plan = plan_district(args.institutions, seed=1, year=YEAR)
    now = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() + args.days * 86_400 - 10.25 * 3600
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "district.sqlite"
        if not path.exists() or path.stat().st_size == 0:
            t0 = time.perf_counter()
            rows = build(path, plan, args.days, now)
            print(f"built {rows:,} interval rows in {time.perf_counter() - t0:.0f} s "
                  f"({path.stat().st_size / 2**30:.1f} GiB)")
        profile = load_profile("national")
        configs = [parse_institution(i.config) for i in plan]
        y0 = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
        with Store(path, readonly=True) as store:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
            members = [Member(TenantReader(store, c), profile, None) for c in configs]

            def plain() -> int:
                return len(conn.execute(
                    "SELECT edge, device, point, SUM(quantity) FROM intervals "
                    "WHERE start >= ? AND start < ? GROUP BY edge, device, point",
                    (y0, int(now * 1000))).fetchall())

            def view() -> int:
                return build_district(members, now=now, year=YEAR, sort="kgce_per_m2").count

            cache = RowCache(ttl_s=3600)

            def warm() -> int:
                return build_district(members, now=now, year=YEAR, sort="kgce_per_m2",
                                      row=cache.row).count

            raw_s, meters = best(plain, args.repeat)
            view_s, count = best(view, args.repeat)
            warm()
            warm_s, _ = best(warm, args.repeat)
            conn.close()
            sample = build_district(members[:3], now=now, year=YEAR).institutions[0]
        print(f"institutions={count} meters={meters} days={args.days} "
              f"rows={meters * args.days * 96:,}")
        print(f"plain SQL aggregate : {raw_s * 1000:9.1f} ms")
        print(f"district view       : {view_s * 1000:9.1f} ms  "
              f"({view_s / count * 1000:.1f} ms per institution; ratio "
              f"{view_s / raw_s:.3f} × the SQL ceiling)")
        print(f"district view, kept : {warm_s * 1000:9.1f} ms  (rows in RowCache; ratio "
              f"{warm_s / raw_s:.6f} × the SQL ceiling)")
        print(f"e.g. {sample.institution}: {sample.kgce_per_m2} kgce/m², coverage "
              f"{sample.coverage}, score {sample.score}, {sample.open_alarms} open alarm(s)")


if __name__ == "__main__":
    main()
