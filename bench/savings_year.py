"""The savings estimate (central/savings.py) on a year of audit writes, against a plain SQL
read of the same rows.

    python -m bench.savings_year [--small] [--days N] [--repeat 2] [--db PATH]

Builds (or reuses, with --db) a store of one institution with 20 AC units (each with a meter
on its circuit) and 20 plugs on 4 edges, for `days` days of 2025:

- 15-minute samples of every AC unit's `on` and `setpoint_c`, its circuit meter's `power_w`,
  and every plug's `on` and `power_w` (100 series × 35,040 = 3.5 million rows for a year);
- audit writes on every working day: each AC unit clamped at 09:00 (22 → 26 °C), switched
  off for vacancy at 12:20 and after hours at 17:40, each plug switched off at 17:40
  (80 writes a working day, about 20,000 a year).

Rows are written with executemany into the store's own schema (a fixture, not a
measurement; its time is printed). Timed `--repeat` times (best and worst printed):

- savings: `central.savings.savings_for` over the year through the institution's
  `TenantReader` (read the audit writes, each unit's samples around its writes, estimate,
  roll up);
- of which the pure part: `estimate` + `roll_up` on data already read;
- ceiling: plain SQL reading the data into Python the simple way (the audit events with
  their JSON decoded, and the whole series of the same points of the same units over the
  year), no arithmetic.

The ratio savings / ceiling says what the estimate costs against merely reading its data.
(`savings_for` reads each unit's samples only around its writes, so it reads fewer rows than
the ceiling; where writes cover every hour, as the AC units' here, about as many.)
Timings are never asserted in tests; figures are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.timing import timed
from central.institution import InstitutionConfig, parse_institution
from central.period import Period
from central.profile import load_profile
from central.reader import TenantReader
from central.savings import (
    WorkingTime,
    audit_writes,
    estimate,
    read_occupancy,
    read_units,
    roll_up,
    savings_for,
)
from central.store import Store
from protocols.workcalendar import WorkingCalendar

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2025
EDGES = 4
AC_UNITS = 20
PLUGS = 20
STEP_MS = 900_000


def institution() -> InstitutionConfig:
    return parse_institution({
        "institution": {"id": "bench-school", "name": "基准学校", "type": "school"},
        "buildings": [{"id": f"b{b}", "name": f"楼 {b}", "floor_area_m2": 5000}
                      for b in range(EDGES)],
        "headcount": {"staff": 200},
        "working_hours": {"start": "08:00", "end": "17:30"},
        "ac_units": [{"edge": f"edge-{u % EDGES}", "device": f"ac{u}", "building":
                      f"b{u % EDGES}", "zone": f"z{u}"} for u in range(AC_UNITS)],
        "plugs": [{"edge": f"edge-{p % EDGES}", "device": f"plug{p}", "building":
                   f"b{p % EDGES}"} for p in range(PLUGS)],
        "savings": {"loads": [{"edge": f"edge-{u % EDGES}", "device": f"ac{u}",
                               "meter": f"ac{u}-power"} for u in range(AC_UNITS)]},
    })


def _working(ts: int, days: WorkingCalendar) -> bool:
    local = datetime.fromtimestamp(ts / 1000, TZ)
    return days.is_working_day(local.date()) and 8 <= local.hour < 18


def build(path: Path, n_days: int) -> tuple[int, int]:
    """Writes the fixture; returns (samples, audit writes)."""
    Store(path).close()
    start = int(datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() * 1000)
    steps = n_days * 96
    cal = WorkingCalendar()
    working = [_working(start + k * STEP_MS, cal) for k in range(steps)]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # building the fixture, not measuring it
    sample_sql = ("INSERT INTO samples (stream_edge, stream_epoch, seq, ts, device, point, "
                  "value, vtype, unit, synced) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, 1)")
    latest_sql = ("INSERT OR REPLACE INTO latest (edge, device, point, ts, value, vtype, unit, "
                  "stream_epoch, seq) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)")
    event_sql = ("INSERT INTO events (stream_edge, stream_epoch, seq, ts, name, severity, "
                 "device, data, synced) VALUES (?, 1, ?, ?, 'audit.write', 'info', ?, ?, 1)")
    seqs = {f"edge-{e}": 0 for e in range(EDGES)}
    samples = 0

    def series(edge: str, device: str, point: str, vtype: str,
               value: Callable[[int], float | bool]) -> None:
        nonlocal samples
        first = seqs[edge]

        def rows() -> Iterator[tuple[Any, ...]]:
            for k in range(steps):
                yield edge, first + k + 1, start + k * STEP_MS, device, point, value(k), \
                    vtype, ""

        conn.execute("BEGIN")
        conn.executemany(sample_sql, rows())
        conn.execute(latest_sql, (edge, device, point, start + (steps - 1) * STEP_MS,
                                  value(steps - 1), vtype, "", first + steps))
        conn.execute("COMMIT")
        seqs[edge] += steps
        samples += steps

    for u in range(AC_UNITS):
        edge = f"edge-{u % EDGES}"
        series(edge, f"ac{u}", "on", "b", lambda k: working[k])
        series(edge, f"ac{u}", "setpoint_c", "n", lambda k: 26.0)
        def power(k: int, u: int = u) -> float:
            return (1200.0 + 10 * u) if working[k] else 0.0
        series(edge, f"ac{u}-power", "power_w", "n", power)
    for p in range(PLUGS):
        edge = f"edge-{p % EDGES}"
        series(edge, f"plug{p}", "on", "b", lambda k: working[k])
        series(edge, f"plug{p}", "power_w", "n", lambda k: 80.0 if working[k] else 0.0)

    def audit(rule: str, point: str, before: Any, after: Any) -> str:
        return json.dumps({"rule": rule, "source": "rule", "reason": rule, "point": point,
                           "before": before, "after": after, "dry_run": False})

    writes = 0
    conn.execute("BEGIN")
    first_day = datetime(YEAR, 1, 1, tzinfo=TZ).date()
    for day in (first_day + timedelta(days=d) for d in range(n_days)):
        if not cal.is_working_day(day):
            continue
        at = {hm: int(datetime(day.year, day.month, day.day, *hm, 5, tzinfo=TZ).timestamp()
                      * 1000) for hm in ((9, 0), (12, 20), (17, 40))}
        rows = []
        for u in range(AC_UNITS):
            edge = f"edge-{u % EDGES}"
            rows += [(edge, at[(9, 0)], f"ac{u}", audit("ac-26", "setpoint_c", 22.0, 26.0)),
                     (edge, at[(12, 20)], f"ac{u}", audit("vacancy", "on", True, False)),
                     (edge, at[(17, 40)], f"ac{u}", audit("after-hours", "on", True, False))]
        for p in range(PLUGS):
            rows.append((f"edge-{p % EDGES}", at[(17, 40)], f"plug{p}",
                         audit("after-hours", "on", True, False)))
        for edge, ts, device, data in rows:
            seqs[edge] += 1
            conn.execute(event_sql, (edge, seqs[edge], ts, device, data))
        writes += len(rows)
    conn.execute("COMMIT")
    conn.close()
    Store(path).close()
    return samples, writes


def ceiling(path: Path, start: float, end: float, keys: list[tuple[str, str, str]],
            horizon: float) -> int:
    """Plain SQL: the audit events (JSON decoded) and the same series, into Python."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        n = 0
        for (data,) in conn.execute(
                "SELECT data FROM events WHERE name = 'audit.write' AND ts >= ? AND ts < ? "
                "ORDER BY ts", (round(start * 1000), round(end * 1000))):
            json.loads(data)
            n += 1
        for edge, device, point in keys:
            rows = conn.execute(
                "SELECT ts, value FROM samples WHERE stream_edge = ? AND device = ? AND "
                "point = ? AND ts >= ? AND ts < ? ORDER BY ts",
                (edge, device, point, round((start - 3600) * 1000),
                 round(horizon * 1000))).fetchall()
            n += len(rows)
        return n
    finally:
        conn.close()



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="30 days")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--db", type=Path, help="reuse (or build) the store here")
    args = parser.parse_args()
    days = 30 if args.small else args.days
    inst = institution()
    profile = load_profile("national")
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "savings.sqlite"
        if not path.exists():
            t0 = time.perf_counter()
            samples, built = build(path, days)
            print(f"built {samples:,} samples and {built:,} audit writes in "
                  f"{time.perf_counter() - t0:.1f} s")
        first = datetime(YEAR, 1, 1, tzinfo=TZ).date()
        period = Period.days(first, first + timedelta(days=days - 1), TZ)
        horizon = period.end + inst.savings.max_hold_h * 3600
        store = Store(path, readonly=True)
        try:
            reader = TenantReader(store, inst)
            report = savings_for(reader, inst, profile, period)
            n_writes = report.total.writes
            full = timed(lambda: savings_for(reader, inst, profile, period), args.repeat)
            writes, _ = audit_writes(reader, period.start, period.end)
            units = read_units(reader, inst, {(w.edge, w.device) for w in writes},
                               period.start, horizon, inst.savings,
                               {(w.edge, w.device) for w in writes if w.point == "setpoint_c"})
            occ = read_occupancy(reader, inst.savings, period.start, horizon)
            hours = WorkingTime.of(inst)
            pure = timed(lambda: roll_up(estimate(writes, units, occ, hours, inst.savings),
                                         kgce_per_kwh=0.1229, tz=TZ), args.repeat)
        finally:
            store.close()
        keys = []
        for u in range(AC_UNITS):
            e = f"edge-{u % EDGES}"
            keys += [(e, f"ac{u}-power", "power_w"), (e, f"ac{u}", "on"),
                     (e, f"ac{u}", "setpoint_c")]
        for p in range(PLUGS):
            e = f"edge-{p % EDGES}"
            keys += [(e, f"plug{p}", "power_w"), (e, f"plug{p}", "on")]
        raw = timed(lambda: ceiling(path, period.start, period.end, keys, horizon),
                    args.repeat)
    print(f"{days} days, {n_writes:,} audit writes estimated "
          f"({report.total.kwh:,.0f} kWh, {len(report.per_rule)} rules)")
    print(f"ceiling (plain SQL read of the same rows): best {min(raw):.3f} s, "
          f"worst {max(raw):.3f} s")
    print(f"savings_for: best {min(full):.3f} s, worst {max(full):.3f} s "
          f"(ratio {min(full) / min(raw):.2f} × the ceiling)")
    print(f"  of which estimate + roll_up: best {min(pure):.3f} s "
          f"({n_writes / min(pure):,.0f} writes/s)")


if __name__ == "__main__":
    main()
