"""Historical interval series (a base year's 15-minute or hourly data exported from the
utility's or an old system's portal) imported as interval records of one configured meter.

Files (CSV or XLSX, the first sheet) have a header row: `start` (an ISO time; without a zone
it is local to the institution), `quantity` (the meter's unit), and `end` or `duration_s`
(either per row; `--duration` gives a default); `unit` is optional and must be the meter's.
Rows are numbered as a spreadsheet shows them (the header is row 1).

How the rows enter the store, and why:

- Through the ingest port (`IngestStore.store_many`), as one batch of a dedicated stream:
  the meter's edge with installation epoch 0 (`HISTORY_EPOCH`). Edges' epochs are their
  installation times in milliseconds, so every record an edge sends, of any installation,
  orders above an imported one: where the edge metered an interval, its record wins and the
  imported row is kept out (counted as `kept`), whatever the order they arrive in. The
  stream's watermark advances as for any batch, and the rollups are kept in the same
  transaction; the edge's last-seen time is not moved (the batch's `now` is 0).
- All or nothing: every row is validated (shape, unit, order, overlaps) before one
  transaction writes them; one bad row refuses the file with every problem as
  `row N.field` with the value.
- Idempotent: a row equal to the stored interval (start, duration, quantity) is `unchanged`
  and not written again; a changed quantity replaces an earlier import of the same interval
  (a corrected file) but never an edge's record.
- Never counted twice: a row overlapping a stored interval of another start or length
  (for example hourly history over 15-minute metering) is refused.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from central.entries import MAX_ROWS, read_rows
from central.errors import EntryError, Problem
from central.institution import InstitutionConfig, Meter
from central.profile import CoefficientProfile
from central.storeport import BatchWrite, FullStore
from protocols.wire import IntervalRecord, StreamId

HISTORY_EPOCH = 0  # below every edge's installation epoch (ms since 1970)
MAX_DURATION_S = 31 * 86_400  # a monthly reading at most; bills are for longer spans
MAX_QUANTITY = 1e9


@dataclass(frozen=True, slots=True)
class HistoryRow:
    row: int
    start_ms: int
    duration_s: int
    quantity: float


@dataclass(frozen=True, slots=True)
class HistoryResult:
    rows: int
    inserted: int
    updated: int
    unchanged: int
    kept: int  # rows of intervals the edge metered: its record stays
    encoding: str | None


def find_meter(institution: InstitutionConfig, spec: str) -> Meter:
    """The meter `EDGE/DEVICE/POINT` (or `EDGE/DEVICE` when the device has one meter)."""
    parts = spec.split("/")
    matches = [m for m in institution.meters
               if len(parts) in (2, 3) and (m.edge, m.device) == (parts[0], parts[1])
               and (len(parts) == 2 or m.point == parts[2])]
    if len(matches) != 1:
        known = ", ".join(f"{m.edge}/{m.device}/{m.point}" for m in institution.meters)
        reason = ("several meters on this device; add /POINT" if len(matches) > 1
                  else f"no such meter (configured: {known or 'none'})")
        raise EntryError("--meter", [("meter", spec, reason)])
    return matches[0]


def _time(value: Any, institution: InstitutionConfig) -> datetime | None:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(
        tzinfo=institution.institution.tz)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_rows(rows: Iterable[Mapping[str, Any]], institution: InstitutionConfig,
               unit: str, *, default_duration_s: int | None = None) -> list[HistoryRow]:
    """Every row validated, or `EntryError` with every problem (`row N.field`, value)."""
    problems: list[Problem] = []
    out: list[HistoryRow] = []
    for i, raw in enumerate(rows):
        if i >= MAX_ROWS:
            raise EntryError("history", [("<rows>", f"more than {MAX_ROWS}",
                                          f"more than {MAX_ROWS} rows; split the file")])
        n = i + 2
        r = {str(k).strip(): v for k, v in raw.items()
             if k is not None and v is not None and not (isinstance(v, str) and not v.strip())}
        where = f"row {n}"
        bad = len(problems)
        start = _time(r.get("start"), institution)
        if start is None:
            problems.append((f"{where}.start", r.get("start"),
                             "a time is required (2020-03-01T00:15, local unless it names "
                             "its zone)"))
        quantity = _number(r.get("quantity"))
        if quantity is None or not math.isfinite(quantity) or not 0 <= quantity < MAX_QUANTITY:
            problems.append((f"{where}.quantity", r.get("quantity"),
                             f"a number from 0 to {MAX_QUANTITY:g} is required"))
        if "unit" in r and str(r["unit"]).strip() != unit:
            problems.append((f"{where}.unit", r["unit"], f"the meter counts in {unit}"))
        duration: float | None
        if "end" in r:
            end = _time(r["end"], institution)
            duration = None if end is None or start is None else (
                end - start) / timedelta(seconds=1)
            if end is None:
                problems.append((f"{where}.end", r["end"], "not a time"))
        elif "duration_s" in r:
            duration = _number(r["duration_s"])
        else:
            duration = default_duration_s
        if (duration is None or not math.isfinite(duration) or duration != int(duration) \
                or not 0 < duration <= MAX_DURATION_S) and not (start is None and "end" in r):
            problems.append((f"{where}.{'end' if 'end' in r else 'duration_s'}",
                             r.get("end", r.get("duration_s")),
                             f"the interval must last whole seconds, 1 to "
                             f"{MAX_DURATION_S} (give end or duration_s)"))
        if len(problems) > bad or start is None or quantity is None or duration is None:
            continue
        out.append(HistoryRow(n, math.floor(start.timestamp() * 1000), int(duration),
                              quantity))
    ordered = sorted(out, key=lambda h: h.start_ms)
    for a, b in itertools.pairwise(ordered):
        if b.start_ms < a.start_ms + a.duration_s * 1000:
            problems.append((f"row {b.row}.start", _label(b.start_ms, institution),
                             f"overlaps row {a.row} ({_label(a.start_ms, institution)}, "
                             f"{a.duration_s} s)"))
    if problems:
        raise EntryError("history", problems)
    return ordered


def _label(ms: int, institution: InstitutionConfig) -> str:
    return datetime.fromtimestamp(ms / 1000, institution.institution.tz).isoformat()


def store_history(store: FullStore, institution: InstitutionConfig, meter: Meter,
                  rows: list[HistoryRow], unit: str, *, encoding: str | None = None
                  ) -> HistoryResult:
    """Write the rows as one batch of the meter's history stream (module docstring)."""
    if not rows:
        return HistoryResult(0, 0, 0, 0, 0, encoding)
    lo = rows[0].start_ms
    hi = max(r.start_ms + r.duration_s * 1000 for r in rows)
    stored = {st: (du, q) for _k, st, du, q in store.interval_rows(lo, hi, [meter.key])}
    spans = sorted((st, st + du * 1000) for st, (du, _q) in stored.items())
    problems: list[Problem] = []
    new: list[HistoryRow] = []
    existed = 0
    for r in rows:
        have = stored.get(r.start_ms)
        if have is not None:
            if have == (r.duration_s, r.quantity):
                continue
            if have[0] != r.duration_s:
                problems.append((f"row {r.row}.duration_s", r.duration_s,
                                 f"the stored interval at this start lasts {have[0]} s"))
                continue
            existed += 1
            new.append(r)
            continue
        end = r.start_ms + r.duration_s * 1000
        clash = next(((a, b) for a, b in spans if a < end and r.start_ms < b), None)
        if clash is not None:
            problems.append((f"row {r.row}.start", _label(r.start_ms, institution),
                             f"overlaps an interval already stored for this meter from "
                             f"{_label(clash[0], institution)}: it would be counted twice"))
            continue
        new.append(r)
    if problems:
        raise EntryError("history", problems)
    unchanged = len(rows) - len(new)
    if not new:
        return HistoryResult(len(rows), 0, 0, unchanged, 0, encoding)
    stream = StreamId(meter.edge, HISTORY_EPOCH)
    site = next((e.site for e in store.edges() if e.edge == meter.edge),
                institution.institution.id)
    w = store.watermark(stream)
    records = [IntervalRecord(seq=w + i + 1, device=meter.device, point=meter.point,
                              start=r.start_ms, duration_s=r.duration_s, quantity=r.quantity,
                              unit=unit) for i, r in enumerate(new)]
    [result] = store.store_many([BatchWrite(stream, w, w + len(records), records, site)],
                                now=0.0)
    kept = len(new) - result.inserted
    return HistoryResult(len(rows), len(new) - existed, existed - kept, unchanged, kept,
                         encoding)


def import_history(store: FullStore, institution: InstitutionConfig,
                   profile: CoefficientProfile, meter_spec: str, data: bytes | BinaryIO,
                   fmt: str, *, source: str, default_duration_s: int | None = None
                   ) -> HistoryResult:
    meter = find_meter(institution, meter_spec)
    unit = profile.unit_of(meter)
    encoding, rows = read_rows(data, fmt, source)
    try:
        parsed = parse_rows(rows, institution, unit, default_duration_s=default_duration_s)
        return store_history(store, institution, meter, parsed, unit, encoding=encoding)
    except EntryError as exc:
        raise EntryError(source, exc.problems) from None
