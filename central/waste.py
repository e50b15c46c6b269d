"""Waste figures from bin-fill sensors and the clearance ledger (STANDARDS.md §6). Pure: no
I/O, no clock reads.

Why it looks like this:

- Sensor clearances are derived from the stored fill samples every time they are read, not
  written into the ledger. Samples are deduplicated by (stream, seq), so a replay changes
  nothing, and a late sample simply takes part in the next derivation: there is no stale
  derived entry to correct or delete. Each derived entry has a deterministic `ref`
  (`sensor:<edge>/<device>@<ms>`), so the same clearance keeps its name across reads.
- A manual entry for the same bin (its `point` is the bin id or device) within the detection
  window of a derived one replaces it: the manual line carries hauler, vehicle and weight,
  and the clearance is counted once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from central import codes
from central.institution import ClearanceDetection, WasteBin
from central.ledger import Clearance
from central.view import View

SampleValue = float | int | bool | str



class FillDrop(View):
    high_ms: int
    high_pct: float
    low_ms: int
    low_pct: float


class BinLevel(View):
    """The latest fill of one configured bin: the one bin-level model (page, API, reports)."""

    bin: str  # edge/device
    edge: str
    device: str
    name: str | None
    building: str
    category: str
    label_zh: str
    label_en: str
    hazardous: bool
    capacity_l: float
    fill_pct: float | None  # None: no numeric reading yet
    at: datetime | None
    age_s: float | None
    stale: bool


def fill_drops(samples: Sequence[tuple[int, SampleValue]], rule: ClearanceDetection
               ) -> list[FillDrop]:
    """Drops from ≥ full_pct to ≤ empty_pct within window_s, in time order. The latest
    sample at or above full_pct is the drop's start; after a drop a new one needs the bin to
    fill up again."""
    window_ms = rule.window_s * 1000
    out: list[FillDrop] = []
    high: tuple[int, float] | None = None
    for ts, value in sorted(samples, key=lambda s: s[0]):
        if isinstance(value, bool | str) or not math.isfinite(float(value)):
            continue
        pct = float(value)
        if pct >= rule.full_pct:
            high = (ts, pct)
        elif pct <= rule.empty_pct and high is not None:
            if ts - high[0] <= window_ms:
                out.append(FillDrop(high_ms=high[0], high_pct=high[1], low_ms=ts,
                                    low_pct=pct))
            high = None
    return out


def sensor_clearances(bin_: WasteBin, drops: Iterable[FillDrop], tz: ZoneInfo
                      ) -> list[Clearance]:
    """One ledger line per drop: volume = capacity × (high − low) / 100, at the low sample."""
    return [Clearance(
        ref=f"sensor:{bin_.id}@{d.low_ms}",
        time=datetime.fromtimestamp(d.low_ms / 1000, tz), category=bin_.category,
        building=bin_.building, point=bin_.id, bins=1,
        volume_l=bin_.capacity_l * (d.high_pct - d.low_pct) / 100.0,
        notes=f"fill {d.high_pct:g}% → {d.low_pct:g}%", source="sensor") for d in drops]


def merge_clearances(manual: Iterable[Clearance], sensor: Iterable[Clearance],
                     bins: Iterable[WasteBin], window_s: int) -> list[Clearance]:
    """The clearance ledger: manual entries, plus sensor entries no manual entry of the same
    bin and category covers within window_s; in time order."""
    names = {b.id: {b.id, b.device} for b in bins}
    manual = list(manual)
    out = list(manual)
    for s in sensor:
        aliases = names.get(s.point or "", {s.point})
        covered = any(m.point in aliases and m.category == s.category
                      and abs((m.time - s.time).total_seconds()) <= window_s for m in manual)
        if not covered:
            out.append(s)
    return sorted(out, key=lambda c: (c.time, c.ref))


def bin_level(bin_: WasteBin, reading: tuple[int, SampleValue] | None, now: float,
              stale_after_s: float, tz: ZoneInfo) -> BinLevel:
    category = codes.waste().categories.get(bin_.category)
    pct: float | None = None
    at = age = None
    if reading is not None and not isinstance(reading[1], bool | str):
        pct = float(reading[1])
        at = datetime.fromtimestamp(reading[0] / 1000, tz)
        age = now - reading[0] / 1000
    return BinLevel(
        bin=bin_.id, edge=bin_.edge, device=bin_.device, name=bin_.name,
        building=bin_.building, category=bin_.category,
        label_zh=category.zh if category else bin_.category,
        label_en=category.en if category else bin_.category,
        hazardous=bool(category and category.hazardous), capacity_l=bin_.capacity_l,
        fill_pct=pct, at=at, age_s=age, stale=age is None or age > stale_after_s)
