"""Which meters make which 分项 item of which building, and the values of one period (pure).

- An energy category (01000 电, 02000 水, 03000 燃气 …) of a building is the sum of its
  `role: main` meters of that energy type (`energy_type_categories` of the code table);
  sub-meters never add to a category, as in the institution's own totals.
- An electricity sub-item (01A10, 01B2E …) is the sum of the building's meters tagged with
  it. A level-0 item (01A00 …) is the sum of the meters tagged with it directly, or, when
  none is, of the meters tagged with its level-1 children: a level-0 meter measures what its
  children's meters measure, so both are never added.
- Items no meter feeds are not sent (a missing sub-item is not a zero); the city's `items`
  list, when given, keeps only the items it names.

`bucket` cuts interval rows into periods the way the store's `interval_sums` pro-rates an
interval straddling a boundary, and records how much of each period each meter covered, so
that a period is sent only once its data is in (or once it is too old to wait for).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from central import codes
from central.institution import InstitutionConfig, MeterKey, MeterRole
from central.upload.city import BuildingIds, CityConfig


@dataclass(frozen=True)
class BuildingPlan:
    building: str  # the institution's building id
    ids: BuildingIds  # the platform's ids
    items: dict[str, tuple[MeterKey, ...]]  # 分项 code -> meters, codes sorted

    @property
    def keys(self) -> list[MeterKey]:
        return sorted({k for ks in self.items.values() for k in ks})


def plan_items(institution: InstitutionConfig, city: CityConfig) -> list[BuildingPlan]:
    table = codes.items()
    wanted = None if city.items is None else set(city.items)
    plans: list[BuildingPlan] = []
    for name, ids in city.buildings.items():
        items: dict[str, list[MeterKey]] = defaultdict(list)
        tagged: dict[str, list[MeterKey]] = defaultdict(list)
        for m in institution.meters:
            if m.building != name:
                continue
            if m.role is MeterRole.MAIN:
                items[table.energy_type_categories[m.energy]].append(m.key)
            if m.item is not None and m.item in table.electricity_items:
                tagged[m.item].append(m.key)
        for code, keys in tagged.items():
            items[code].extend(keys)
        for code, label in table.electricity_items.items():
            if label.parent is not None and code in tagged and label.parent not in tagged:
                items[label.parent].extend(tagged[code])
        chosen = {c: tuple(dict.fromkeys(items[c])) for c in sorted(items)
                  if wanted is None or c in wanted}
        kept = {c: k for c, k in chosen.items() if k}
        if kept:  # a building no meter feeds has nothing to upload
            plans.append(BuildingPlan(name, ids, kept))
    return plans


def item_values(plan: BuildingPlan, sums: Mapping[MeterKey, float]) -> dict[str, float]:
    return {code: sum(sums.get(k, 0.0) for k in keys) for code, keys in plan.items.items()}


@dataclass
class Buckets:
    """Per period start (ms): each meter's pro-rated quantity and covered milliseconds."""

    sums: dict[int, dict[MeterKey, float]]
    covered: dict[int, dict[MeterKey, int]]


def bucket(rows: Iterable[tuple[MeterKey, int, int, float]], lo: int, hi: int,
           period_ms: int) -> Buckets:
    """Cut (meter, start ms, duration s, quantity) rows into the periods of [lo, hi)."""
    out = Buckets(defaultdict(lambda: defaultdict(float)), defaultdict(lambda: defaultdict(int)))
    for key, start, duration_s, qty in rows:
        end = start + duration_s * 1000
        if duration_s <= 0:
            continue
        p = max(lo, start - (start - lo) % period_ms)
        while p < min(end, hi):
            a, b = max(start, p), min(end, p + period_ms)
            if b > a:
                whole = start >= p and end <= p + period_ms
                out.sums[p][key] += qty if whole else qty * (b - a) / (duration_s * 1000.0)
                out.covered[p][key] += b - a
            p += period_ms
    return out
