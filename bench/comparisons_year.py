"""同比 / 环比 and the 14th FYP progress on a year of 1-minute interval data, against a plain
SQL scan of the same intervals.

    python -m bench.comparisons_year [--days N] [--repeat 2] [--db PATH]

Builds (or reuses, with --db) a store holding `days` days of 2025 (default 365) of
**1-minute interval records** of 10 main meters (electricity and water of 5 buildings:
10 × 525,600 = 5.3 million rows for a year), written with executemany into the store's own
schema; opening the store then fills the rollups with the store's own code. The ledger has
monthly electricity and water bills for the base year 2020 and for 2024, so every
comparison has its other side.

"Now" is 13:45 on the last day. Each case is timed `--repeat` times beside a ceiling
measured in the same run: a plain SQL scan reading the period's intervals of the 10 meters
into Python (no arithmetic), so the ratio says what a comparison costs above merely reading
its current period's data once:

- year: `comparisons_for` of the year to date (current, 同比, 环比, 14th FYP progress);
- month: `comparisons_for` of the last month so far;
- report: `report_comparison.gather_comparisons` of the annual report (the year's
  comparisons and each month's 同比: 12 + 12 more figure sets).

Timings are never asserted in tests; figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import calendar
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.timing import scan, timed
from central.baseyear import comparisons_for, span_for
from central.institution import InstitutionConfig, parse_institution
from central.ledger import Bill, EntryKind, SqliteLedger
from central.profile import load_profile
from central.report_comparison import gather_comparisons
from central.store import Store

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
MIN_MS = 60_000
BUILDINGS = 5


def institution() -> InstitutionConfig:
    meters = []
    for b in range(BUILDINGS):
        meters += [
            {"edge": f"edge-{b}", "device": f"elec{b}", "building": f"b{b}",
             "energy": "electricity", "role": "main"},
            {"edge": f"edge-{b}", "device": f"water{b}", "building": f"b{b}",
             "energy": "water", "role": "main"}]
    return parse_institution({
        "institution": {"id": "bench", "name": "基准机关", "type": "agency"},
        "buildings": [{"id": f"b{i}", "name": f"楼{i}", "floor_area_m2": 10_000}
                      for i in range(BUILDINGS)],
        "headcount": {"staff": 1_000}, "meters": meters})


def build(path: Path, days: int) -> int:
    """Writes the intervals; returns how many."""
    inst = institution()
    Store(path).close()
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture, not measuring it
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('max_interval_s', '60')")
    conn.execute("DELETE FROM meta WHERE key = 'rollup'")  # rebuilt by the next open
    sql = ("INSERT INTO intervals (edge, device, point, start, duration_s, quantity, unit, "
           "flags, synced, stream_epoch, seq) VALUES (?, ?, ?, ?, 60, ?, ?, '', 1, 1, ?)")
    n = days * 1440
    for m in inst.meters:
        unit, size = ("m3", 0.002) if m.point == "water_m3" else ("kWh", 0.5)
        conn.execute("BEGIN")
        conn.executemany(sql, ((m.edge, m.device, m.point, start + k * MIN_MS,
                                size * (0.5 + (k % 1440) / 1440), unit, k + 1)
                               for k in range(n)))
        conn.execute("COMMIT")
    conn.close()
    Store(path).close()  # fills the rollups (central/rollup.py)
    return n * len(inst.meters)


def bills() -> list[Bill]:
    out = []
    for year, factor in ((2020, 1.08), (2024, 1.02)):
        for month in range(1, 13):
            first = date(year, month, 1)
            last = date(year, month, calendar.monthrange(year, month)[1])
            days = (last - first).days + 1
            out += [Bill(ref=f"e-{year}-{month}", energy="electricity", period_start=first,
                         period_end=last, quantity=5 * 0.5 * 1440 * days * factor),
                    Bill(ref=f"w-{year}-{month}", energy="water", period_start=first,
                         period_end=last, quantity=5 * 0.002 * 1440 * days * factor)]
    return out



def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--days", type=int, default=365, help="days of 2025 (default 365)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "comparisons.sqlite"
        if not path.exists() or path.stat().st_size == 0:
            t0 = time.perf_counter()
            rows = build(path, args.days)
            print(f"built {rows:,} 1-minute intervals in {time.perf_counter() - t0:.0f} s "
                  f"({path.stat().st_size / 2**20:,.0f} MiB)")
        inst = institution()
        profile = load_profile("national")
        ledger = SqliteLedger(Path(tmp) / "ledger.sqlite")
        ledger.put(EntryKind.BILL, bills())
        last = date(YEAR, 1, 1) + timedelta(days=args.days - 1)
        now = datetime(last.year, last.month, last.day, 13, 45, tzinfo=TZ).timestamp()
        today = last
        store = Store(path, readonly=True)
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        year_span = span_for("year", YEAR, None, today)
        month_span = span_for("month", YEAR, last.month, today)

        def ms(d: date) -> int:
            return int(datetime(d.year, d.month, d.day, tzinfo=TZ).timestamp() * 1000)

        cases: list[tuple[str, Callable[[], object], date, date]] = [
            ("year", lambda: comparisons_for(store, ledger, inst, profile, year_span, "year",
                                             today=today), year_span.first, year_span.end),
            ("month", lambda: comparisons_for(store, ledger, inst, profile, month_span,
                                              "month", today=today),
             month_span.first, month_span.end),
            ("report", lambda: gather_comparisons(store, ledger, inst, profile,
                                                  kind="annual", year=YEAR, number=None,
                                                  until=now), year_span.first, year_span.end),
        ]
        print(f"{'case':<7} {'best':>9} {'worst':>9} {'ceiling':>8} {'rows':>11} {'ratio':>7}"
              f"  (best / worst of {args.repeat}; ratio = best ÷ best ceiling)")
        for name, fn, first, end in cases:
            rows = scan(conn, ms(first), ms(end))
            ceiling = min(timed(partial(scan, conn, ms(first), ms(end)), args.repeat))
            took = timed(fn, args.repeat)
            print(f"{name:<7} {min(took):>8.3f}s {max(took):>8.3f}s {ceiling:>7.3f}s "
                  f"{rows:>11,} {min(took) / ceiling:>6.3f}×", flush=True)
        c = comparisons_for(store, ledger, inst, profile, year_span, "year", today=today)
        line = c.year_on_year.line("energy_kgce")
        print(f"check: 同比 kgce {line.change if line.change is None else f'{line.change:+.4f}'}"
              f" ({line.status}); 14th FYP kgce/m² "
              f"{c.targets.lines[0].status if c.targets else '—'}")
        store.close()
        ledger.close()
        conn.close()


if __name__ == "__main__":
    main()
