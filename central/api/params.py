"""Checking and converting the API's time parameters, and server-side downsampling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import HTTPException

from central.api.models import Bucket

FIRST_YEAR, LAST_YEAR = 2000, 2100  # the range every date and time parameter must fall in
MAX_BUCKETS = 5_000
MAX_ROWS = 10_000


def in_range(name: str, moment: date) -> None:
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise HTTPException(status_code=422, detail=f"{name}: must be between {FIRST_YEAR} "
                            f"and {LAST_YEAR} (got {moment.isoformat()})")


def to_ms(name: str, moment: datetime, tz: ZoneInfo) -> int:
    """Epoch ms of an ISO time; without an offset, local to the institution."""
    in_range(name, moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return math.floor(moment.timestamp() * 1000)


def window(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[int, int]:
    s, e = to_ms("start", start, tz), to_ms("end", end, tz)
    if e <= s:
        raise HTTPException(status_code=422, detail=f"end: must be after start "
                            f"(got start={start.isoformat()}, end={end.isoformat()})")
    return s, e


def _number(v: float | int | bool | str) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v) if math.isfinite(v) else None
    return None


def downsample(rows: Sequence[tuple[int, float | int | bool | str]], start: int, end: int,
               bucket_ms: int) -> list[Bucket]:
    """Buckets of [start, end) with avg/min/max over numeric samples and the last value."""
    out: list[Bucket] = []
    current: int | None = None
    values: list[float] = []
    count = 0
    last: float | int | bool | str | None = None

    def close() -> None:
        if current is not None and count:
            out.append(Bucket(start=current, count=count,
                              avg=math.fsum(values) / len(values) if values else None,
                              min=min(values) if values else None,
                              max=max(values) if values else None, last=last))

    for ts, value in rows:
        if ts < start or ts >= end:
            continue  # sample_series leads with the value in force before the window
        b = start + (ts - start) // bucket_ms * bucket_ms
        if b != current:
            close()
            current, values, count = b, [], 0
        count += 1
        last = value
        n = _number(value)
        if n is not None:
            values.append(n)
    close()
    return out
