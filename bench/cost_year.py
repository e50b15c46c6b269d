"""Cost figures of a year of 1-minute interval records, against a plain SQL scan.

    python -m bench.cost_year [--small] [--days N] [--buildings B] [--repeat 2] [--db PATH]

Builds (or reuses, with --db) a store holding `days` days of 2025 of one institution with
`buildings` buildings, each with a main electricity meter, a main water meter and two 分项
sub-meters (4 meters per building; 5 buildings = 20 meters = 10.5 million 1-minute interval
records for a year). Rows are written with executemany into the store's own schema; opening
the store fills the hourly and daily rollups with its own code (central/rollup.py). The
build is a fixture, not a measurement; its time is printed.

Timed, each `--repeat` times (best printed) beside a ceiling measured in the same run:

- ceiling: a plain SQL scan reading every interval of the year (start, duration, quantity)
  into Python, no arithmetic: what any cost computed from the raw records must at least pay;
- year cost (hourly): `central.cost.period_cost` of the year with the shipped sample tariff
  (periods on the hour: the hourly rollup prices exactly), with its 12 monthly rows,
  per building, per item, water tiers and coverage;
- year cost (raw): the same with a tariff whose periods change at half past (11:30):
  every interval is read and split by `TariffBook`;
- pricing only: `TariffBook.electricity_cost` over the main meters' raw intervals held in
  memory (intervals per second).

Timings are never asserted in tests; figures and the machine are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from central.cost import period_cost, tariff_book
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.profile import load_profile
from central.store import Store
from central.tariff import shipped

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
MIN_MS = 60_000


def meters(buildings: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for b in range(buildings):
        base = {"edge": f"edge-{b}", "building": f"b{b}"}
        out += [{**base, "device": f"e{b}", "energy": "electricity", "role": "main"},
                {**base, "device": f"w{b}", "energy": "water", "role": "main",
                 "point": "water_m3"},
                {**base, "device": f"ac{b}", "energy": "electricity", "role": "sub",
                 "item": "01B00"},
                {**base, "device": f"lt{b}", "energy": "electricity", "role": "sub",
                 "item": "01A10"}]
    return out


def institution(buildings: int, tariff: dict[str, Any]) -> InstitutionConfig:
    return parse_institution({
        "institution": {"id": "bench", "name": "基准学校", "type": "school"},
        "buildings": [{"id": f"b{i}", "name": f"楼{i}", "floor_area_m2": 10_000}
                      for i in range(buildings)],
        "headcount": {"staff": 200, "students_daily_avg": 2_000},
        "meters": meters(buildings), "tariff": tariff})


def half_past_tariff() -> dict[str, Any]:
    """The shipped sample with its 11:00–13:00 flat span split at 11:30: not on the hour."""
    data = shipped("cn-sample-general-ic").model_dump(mode="json")
    for version in data["electricity"]:
        for season in version["seasons"]:
            table = season["working_day"]
            for i, span in enumerate(list(table)):
                if span["start"] == "11:00":
                    table[i:i + 1] = [{**span, "end": "11:30"},
                                      {**span, "start": "11:30", "period": "peak"}]
    return {"electricity": data["electricity"], "water": data["water"]}


def build(path: Path, days: int, buildings: int) -> int:
    Store(path).close()
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('max_interval_s', '60')")
    conn.execute("DELETE FROM meta WHERE key = 'rollup'")  # rebuilt by the next open
    sql = ("INSERT INTO intervals (edge, device, point, start, duration_s, quantity, unit, "
           "flags, synced, stream_epoch, seq) VALUES (?, ?, ?, ?, 60, ?, ?, '', 1, 1, ?)")
    n = days * 1440
    rows = 0
    seqs: dict[str, int] = {}
    for m in meters(buildings):
        edge, device = m["edge"], m["device"]
        point = m.get("point", "energy_import_kwh")
        unit = "m3" if point == "water_m3" else "kWh"
        size = 0.002 if unit == "m3" else 0.5 if m["role"] == "main" else 0.1
        first = seqs.get(edge, 0)
        conn.execute("BEGIN")
        conn.executemany(sql, ((edge, device, point, start + k * MIN_MS,
                                size * (0.4 + (k % 1440) / 1440), unit, first + k + 1)
                               for k in range(n)))
        conn.execute("COMMIT")
        seqs[edge] = first + n
        rows += n
    conn.close()
    Store(path).close()  # fills the rollups
    return rows


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="7 days")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--buildings", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    days = 7 if args.small else args.days
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.sqlite"
        if not path.exists():
            t0 = time.perf_counter()
            rows = build(path, days, args.buildings)
            print(f"built {rows:,} 1-minute intervals ({days} days, "
                  f"{len(meters(args.buildings))} meters) in {time.perf_counter() - t0:.1f} s")
        start = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp()
        end = start + days * 86_400
        profile = load_profile("national")
        hourly = institution(args.buildings, {"use": "cn-sample-general-ic"})
        raw = institution(args.buildings, half_past_tariff())
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite")
        with Store(path, readonly=True) as store:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

            def ceiling() -> int:
                count = 0
                for _row in conn.execute(
                        "SELECT edge, device, point, start, duration_s, quantity FROM intervals "
                        "WHERE start >= ? AND start < ?", (int(start * 1000), int(end * 1000))):
                    count += 1
                return count

            scan = best(ceiling, args.repeat)
            total = ceiling()
            print(f"ceiling: plain SQL scan of {total:,} intervals: {scan:.2f} s")
            cost = period_cost(store, ledger, hourly, profile, start=start, end=end)
            t = best(lambda: period_cost(store, ledger, hourly, profile, start=start,
                                         end=end), args.repeat)
            print(f"year cost, hourly rollup: {t:.2f} s = {t / scan:.3f} × the scan "
                  f"(total {cost.total_yuan:,.2f} 元, {len(cost.months)} months)")
            cost_raw = period_cost(store, ledger, raw, profile, start=start, end=end)
            t_raw = best(lambda: period_cost(store, ledger, raw, profile, start=start,
                                             end=end), args.repeat)
            print(f"year cost, raw intervals (11:30 boundary): {t_raw:.2f} s = "
                  f"{t_raw / scan:.2f} × the scan (total {cost_raw.total_yuan:,.2f} 元)")
            keys = [m.key for m in hourly.main_meters() if m.energy.value == "electricity"]
            items = [(st / 1000, st / 1000 + du, q) for _k, st, du, q in store.interval_rows(
                int(start * 1000), int(end * 1000), keys)]

            def price() -> float:
                book = tariff_book(hourly)  # a new book: its day tables built in the run
                assert book is not None
                return book.electricity_cost(items)

            t_price = best(price, args.repeat)
            print(f"pricing only: {len(items):,} intervals in {t_price:.2f} s = "
                  f"{len(items) / t_price:,.0f} intervals/s")
            conn.close()
        ledger.close()


if __name__ == "__main__":
    main()
