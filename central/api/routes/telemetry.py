"""Downsampled samples and interval records of the institution's edges."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from central.api.deps import ReaderDep
from central.api.models import ID_PATTERN, POINT_PATTERN, IntervalOut, Series
from central.api.params import MAX_BUCKETS, MAX_ROWS, downsample, window
from central.institution import MeterKey

router = APIRouter(prefix="/api/v1/institutions/{iid}", tags=["telemetry"])


@router.get("/series")
def get_series(
    reader: ReaderDep,
    edge: Annotated[str, Query(pattern=ID_PATTERN, examples=["edge-1"])],
    device: Annotated[str, Query(pattern=ID_PATTERN, examples=["meter-a"])],
    point: Annotated[str, Query(pattern=POINT_PATTERN, examples=["power_w"])],
    start: Annotated[datetime, Query(description="ISO time; without an offset, the "
                                     "institution's local time",
                                     examples=["2025-07-02T00:00:00"])],
    end: Annotated[datetime, Query(examples=["2025-07-03T00:00:00"])],
    bucket_s: Annotated[int, Query(ge=1, le=366 * 86400, examples=[900])] = 900,
) -> Series:
    """Samples of one point downsampled on the server: per bucket of `bucket_s` the
    average, minimum and maximum of the numeric values and the last value."""
    if not reader.owns(edge):
        raise HTTPException(status_code=404, detail=f"edge: {edge!r} is not an edge of "
                            f"institution {reader.id!r}")
    s, e = window(start, end, reader.institution.institution.tz)
    if (e - s) / (bucket_s * 1000) > MAX_BUCKETS:
        raise HTTPException(status_code=422, detail=f"bucket_s: {bucket_s} gives more than "
                            f"{MAX_BUCKETS} buckets over this window; use a larger one")
    rows = reader.sample_series(MeterKey(edge, device, point), s, e)
    return Series(edge=edge, device=device, point=point, start=s, end=e, bucket_s=bucket_s,
                  buckets=downsample(rows, s, e, bucket_s * 1000))


@router.get("/intervals")
def get_intervals(
    reader: ReaderDep,
    start: Annotated[datetime, Query(examples=["2025-07-02T00:00:00"])],
    end: Annotated[datetime, Query(examples=["2025-07-03T00:00:00"])],
    edge: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    device: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    point: Annotated[str | None, Query(pattern=POINT_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000,
) -> list[IntervalOut]:
    """Interval records (consumption per interval, with estimated/gap/reset flags) whose
    start lies in [start, end), oldest first."""
    s, e = window(start, end, reader.institution.institution.tz)
    rows = reader.interval_records(None if edge is None else [edge], s, e, device=device,
                                   point=point, limit=limit)
    return [IntervalOut(edge=r.edge, device=r.device, point=r.point, start=r.start,
                        duration_s=r.duration_s, quantity=r.quantity, unit=r.unit,
                        flags=list(r.flags), synced=r.synced) for r in rows]
