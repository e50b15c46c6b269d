"""What every year benchmark times with: wall-clock runs of a figure, and the raw ceiling of
reading a period's intervals from the SQLite store into Python (no arithmetic)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of each of `repeat` runs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def scan(conn: sqlite3.Connection, s_ms: int, e_ms: int) -> int:
    """The raw ceiling: every interval of [s_ms, e_ms) read into Python."""
    return len(conn.execute("SELECT edge, device, point, start, duration_s, quantity FROM "
                            "intervals WHERE start >= ? AND start < ?", (s_ms, e_ms)).fetchall())
