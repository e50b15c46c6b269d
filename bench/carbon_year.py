"""CO₂ figures of a year of 1-minute interval data, against a plain SQL scan of the same rows.

    python -m bench.carbon_year [--days N] [--meters N] [--repeat 2] [--db PATH]

Builds (or reuses, with --db) a store holding `days` days of 2025 (default 365) of 1-minute
interval records of `meters` main meters (default 10: an electricity and a natural-gas
meter in each of 5 buildings): 10 × 525,600 = 5.3 million rows for a year. Rows are written
with executemany into the store's own schema (the build is a fixture; its time is printed);
opening the store fills the hourly rollups with the store's own code.

Timed, each `--repeat` times (best and worst printed), beside a ceiling measured in the same
run — a plain SQL scan that reads every interval of the year into Python, no arithmetic:

- kgce year: `central.metrics.period_energy` of the year (what the kgce figures already cost);
- CO₂ year: `central.carbon_read.period_carbon` of the year with the shipped factors (one
  factor per energy all year: the year's energy lines are used as they are);
- CO₂ year, factor change: the same with the institution's own factors changing on 1 July
  (the year is cut there and each half read again, `central.carbon.carbon_figures`);
- CO₂ by month: `central.carbon_read.carbon_year` (12 months and the year to date, the
  `/carbon` API);
- dashboard: the built-in page's JSON (`central.dashboard.build_dashboard`, serialised), and
  its CO₂ card alone (`central.carbon_read.carbon_card` given the month's energy and the
  year's compliance report, as the page passes them): what the card adds to the page.

The ratio is best figure ÷ best ceiling. Timings are never asserted in tests; figures and
the machine they ran on are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.timing import scan, timed
from central import metrics
from central.carbon_read import carbon_card, carbon_year, period_carbon
from central.dashboard import build_dashboard
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.metrics import period_energy
from central.profile import load_profile
from central.reader import scoped
from central.store import Store

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
MIN_MS = 60_000
BUILDINGS = 5


def institution(meters: int, *, factor_change: bool = False) -> InstitutionConfig:
    data: dict[str, Any] = {
        "institution": {"id": "bench", "name": "基准机关", "type": "agency"},
        "buildings": [{"id": f"b{i}", "name": f"楼{i}", "floor_area_m2": 10_000}
                      for i in range(BUILDINGS)],
        "headcount": {"staff": 1_000},
        "meters": [{"edge": f"edge-{i % BUILDINGS}", "device": f"m{i}",
                    "building": f"b{i % BUILDINGS}", "role": "main",
                    **({"energy": "electricity"} if (i // BUILDINGS) % 2 == 0 else
                       {"energy": "natural_gas", "point": "gas_m3"})}
                   for i in range(meters)],
    }
    if factor_change:
        data["carbon"] = {"factors": [
            {"energy": "electricity", "unit": "kWh", "kg_co2_per_unit": 0.5306,
             "valid_from": "2025-01-01", "valid_to": "2025-06-30", "source": "bench"},
            {"energy": "electricity", "unit": "kWh", "kg_co2_per_unit": 0.50,
             "valid_from": "2025-07-01", "source": "bench: a corrected factor"}]}
    return parse_institution(data)


def build(path: Path, days: int, meters: int) -> int:
    """Writes the fixture; returns the number of interval rows."""
    inst = institution(meters)
    Store(path).close()  # the store's own schema and indexes
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    per = days * 1440
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture, not measuring it
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('max_interval_s', '60')")
    conn.execute("DELETE FROM meta WHERE key = 'rollup'")  # rebuilt by the next open
    sql = ("INSERT INTO intervals (edge, device, point, start, duration_s, quantity, unit, "
           "flags, synced, stream_epoch, seq) VALUES (?, ?, ?, ?, 60, ?, ?, '', 1, 1, ?)")
    seqs = {f"edge-{b}": 0 for b in range(BUILDINGS)}
    for m in inst.meters:
        gas = m.point == "gas_m3"
        unit, size = ("m3", 0.02) if gas else ("kWh", 0.5)
        first = seqs[m.edge]
        conn.execute("BEGIN")
        conn.executemany(sql, ((m.edge, m.device, m.point, start + k * MIN_MS,
                                size * (0.5 + (k % 1440) / 1440), unit, first + k + 1)
                               for k in range(per)))
        conn.execute("COMMIT")
        seqs[m.edge] += per
    conn.close()
    Store(path).close()  # fills the hourly rollups
    return per * len(inst.meters)





def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--days", type=int, default=365, help="days of 2025 (default 365)")
    parser.add_argument("--meters", type=int, default=10, help="main meters (default 10)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "carbon.sqlite"
        if not path.exists() or path.stat().st_size == 0:
            t0 = time.perf_counter()
            rows = build(path, args.days, args.meters)
            print(f"built {rows:,} 1-minute intervals in {time.perf_counter() - t0:.0f} s "
                  f"({path.stat().st_size / 2**30:.2f} GiB)")
        inst = institution(args.meters)
        changed = institution(args.meters, factor_change=True)
        profile = load_profile("national")
        last = datetime(YEAR, 1, 1, tzinfo=TZ) + timedelta(days=args.days - 1)
        now = last.replace(hour=23, minute=59).timestamp()
        y0 = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp()
        store = Store(path)
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite")
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        s_ms, e_ms = int(y0 * 1000), int(now * 1000)
        reader = scoped(store, inst)
        m0 = datetime(last.year, last.month, 1, tzinfo=TZ).timestamp()
        month = metrics.period_energy(reader, ledger, inst, profile, start=m0, end=now)
        report = metrics.compliance_for(reader, inst, profile, now=now, year=YEAR,
                                        ledger=ledger)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("kgce year", lambda: period_energy(store, None, inst, profile, start=y0,
                                                end=now)),
            ("CO₂ year", lambda: period_carbon(store, None, inst, profile, start=y0,
                                               end=now)),
            ("CO₂ year, factor change", lambda: period_carbon(
                store, None, changed, profile, start=y0, end=now)),
            ("CO₂ by month", lambda: carbon_year(store, None, inst, profile, year=YEAR,
                                                 now=now)),
            ("dashboard", lambda: build_dashboard(reader, ledger, profile,
                                                  now=now).model_dump_json()),
            ("dashboard CO₂ card alone", lambda: carbon_card(
                reader, ledger, inst, profile, now=now, month_start=m0, month_energy=month,
                year_report=report)),
        ]
        rows = scan(conn, s_ms, e_ms)
        ceiling = min(timed(partial(scan, conn, s_ms, e_ms), args.repeat))
        print(f"ceiling: SQL scan of {rows:,} intervals best {ceiling:.3f} s")
        print(f"{'figure':<26} {'best':>9} {'worst':>9} {'ratio':>8}  (best / worst of "
              f"{args.repeat} runs; ratio = best ÷ ceiling)")
        check = period_carbon(store, None, changed, profile, start=y0, end=now)
        for name, fn in cases:
            took = timed(fn, args.repeat)
            print(f"{name:<26} {min(took):>8.3f}s {max(took):>8.3f}s "
                  f"{min(took) / ceiling:>7.3f}×", flush=True)
        print(f"year: {check.t_co2:,.3f} tCO₂ with the factor change "
              f"({', '.join(f'{f.kg_co2_per_unit:g} from {f.used_from}' for f in check.factors)})")
        store.close()
        ledger.close()
        conn.close()


if __name__ == "__main__":
    main()
