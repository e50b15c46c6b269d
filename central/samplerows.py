"""A batch of samples decoded as columns (`protocols.wire.SampleColumns`) straight into the
stores' rows, and the checks ingest makes on every batch, without a `Sample` object or a
Python loop per reading.

Profiling the central's ingest (docs/benchmarks.md, "Ingest throughput") showed that once
JSON parsing is done in C, the time went into Python work per reading: building a `Sample`,
then a row tuple from it, then a latest-value candidate, a day bucket for the AC cache and
two timestamp checks. Here each of those is done once per column, with the builtins that
loop in C (`zip`, `map`, `max`, `dict`), so a reading costs a few tuple slots. Records of
any other batch (intervals, events, mixed batches) take the general per-record path;
both paths produce the same rows (tests/unit/central/test_samplerows.py).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

from protocols.wire import IntervalRecord, Record, SampleColumns

_VTYPE = {int: "n", float: "n", bool: "b", str: "s"}
_NUMBERS = frozenset({int, float})


def max_ts(records: Sequence[Record]) -> int:
    """The latest timestamp of the records (an interval's start); records must not be empty."""
    if isinstance(records, SampleColumns):
        return max(records.ts)
    return max(r.start if isinstance(r, IntervalRecord) else r.ts for r in records)


def clock_counts(records: Sequence[Record], floor_ms: int) -> tuple[int, int]:
    """(records taken with an unsynced clock, records stamped before `floor_ms`)."""
    if isinstance(records, SampleColumns):
        ts = records.ts
        far_past = sum(map(floor_ms.__gt__, ts)) if min(ts) < floor_ms else 0
        return records.unsynced(), far_past
    unsynced = far_past = 0
    for r in records:
        if not r.synced:
            unsynced += 1
        if (r.start if isinstance(r, IntervalRecord) else r.ts) < floor_ms:
            far_past += 1
    return unsynced, far_past


def vtypes(values: Sequence[Any]) -> Sequence[str]:
    """The stored value type of each value: n(umber), b(oolean) or s(tring)."""
    if set(map(type, values)) <= _NUMBERS:
        return list(repeat("n", len(values)))
    return list(map(_VTYPE.__getitem__, map(type, values)))


def synced_ints(cols: SampleColumns) -> Sequence[int]:
    if cols.synced is None:
        return list(repeat(1, len(cols)))
    return list(map(int, cols.synced))


def newest_per_point(cols: SampleColumns) -> list[int]:
    """Index of the newest sample, by (ts, seq), of each (device, point) of the batch.

    Seqs increase along the batch, so when timestamps do not decrease either the last
    occurrence of a point is its newest (a dict keeps the last index per key, in C);
    otherwise each point's maximum is looked for explicitly."""
    keys = zip(cols.device, cols.point, strict=True)
    ts = cols.ts
    if all(map(operator.le, ts, ts[1:])):
        return list(dict(zip(keys, range(len(ts)), strict=False)).values())
    best: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        j = best.get(key)
        if j is None or ts[i] >= ts[j]:  # equal ts: the later one has the higher seq
            best[key] = i
    return list(best.values())


def sqlite_rows(edge: str, epoch: int, cols: SampleColumns
                ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(sample rows, latest-value rows) in central/store.py's column order; booleans are
    stored as 0/1 with vtype b, as the per-record path stores them."""
    vt = vtypes(cols.value)
    values: Sequence[Any] = cols.value
    if "b" in vt:
        values = [int(v) if type(v) is bool else v for v in values]
    samples = list(zip(repeat(edge), repeat(epoch), cols.seq, cols.ts, cols.device,
                       cols.point, values, vt, cols.unit, synced_ints(cols)))
    latest = [(edge, cols.device[i], cols.point[i], cols.ts[i], values[i], vt[i],
               cols.unit[i], epoch, cols.seq[i]) for i in newest_per_point(cols)]
    return samples, latest


def pg_columns(cols: SampleColumns, text: Callable[[str], str]
               ) -> tuple[list[list[Any]], list[list[Any]]]:
    """The arrays of central/pgstore.py's sample insert (seq, ts, device, point, num, txt,
    vtype, unit, synced) and latest-value upsert (device, point, ts, num, txt, vtype, unit,
    seq); `text` makes a string storable (PostgreSQL text cannot hold NUL)."""
    n = len(cols)
    values = cols.value
    num: list[float | None]
    txt: list[str | None]
    if set(map(type, values)) <= _NUMBERS:
        num, txt, vt = list(map(float, values)), [None] * n, ["n"] * n
    else:
        num, txt, vt = [], [], []
        for v in values:
            if type(v) is str:
                num.append(None)
                txt.append(text(v))
                vt.append("s")
            else:
                num.append(float(v))
                txt.append(None)
                vt.append("b" if type(v) is bool else "n")
    units = list(cols.unit)
    if any("\x00" in u for u in set(units)):
        units = list(map(text, units))
    seq, ts, device, point = list(cols.seq), list(cols.ts), list(cols.device), list(cols.point)
    samples: list[list[Any]] = [seq, ts, device, point, num, txt, vt, units,
                                list(synced_ints(cols))]
    newest = newest_per_point(cols)
    latest: list[list[Any]] = [[column[i] for i in newest] for column in (
        device, point, ts, num, txt, vt, units, seq)]
    return samples, latest
