"""The district view: every institution a token may see, ranked, on one table.

For the bureau that runs one central for a district's schools and offices (a token that sees
every institution). Each row is built from the institution's own read models, through its
own `TenantReader`, with the same functions its page and reports use, so the district table
can never disagree with an institution's page:

- year-to-date figures, coverage, score and projection: `metrics.compliance_for` (the one
  compliance computation; per m² and per person are its normalisations);
- open alarms: `alarms.alarm_states` over the institution's own edges (the central's
  foreign-edge alarm is shown on each page, but is nobody's in a ranking);
- edges offline: `edgehealth.edge_health`.

A token scoped to some institutions gets the rows of those only, ranked among themselves:
a rank among all would tell it how the others do. Where an institution has no data for a
figure the figure is null ("—" on the page), never 0, and it sorts last whatever the order.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from central.alarms import alarm_states, read_alarm_events
from central.compliance import ComplianceReport, ScoreKey
from central.edgehealth import edge_health
from central.institution import InstitutionType
from central.ledger import Ledger
from central.metrics import compliance_for
from central.profile import CoefficientProfile
from central.reader import TenantReader
from central.view import View

__all__ = ["SORT_KEYS", "DistrictRow", "DistrictView", "RowCache", "SortKey", "build_district",
           "district_row"]

SortKey = Literal["score", "kgce_per_m2", "kgce_per_person", "water_m3_per_person",
                  "coverage", "open_alarms", "edges_offline", "name"]
SORT_KEYS: tuple[SortKey, ...] = ("score", "kgce_per_m2", "kgce_per_person",
                                  "water_m3_per_person", "coverage", "open_alarms",
                                  "edges_offline", "name")
# The better end first: a high score, low consumption, full coverage, few alarms.
DESCENDING: frozenset[SortKey] = frozenset({"score", "coverage"})


class DistrictRow(View):
    institution: str = Field(examples=["d001-school"])
    name: str
    type: InstitutionType
    district: str | None = Field(description="district / county name (institution.district)")
    region_code: str | None = Field(description="6-digit 行政区划代码")
    rank: int = Field(description="position under the chosen sort, 1 = first")
    floor_area_m2: float
    energy_users: float
    energy_kgce: float | None = Field(description="综合能耗 year to date; null without data")
    kgce_per_m2: float | None
    kgce_per_person: float | None
    water_m3_per_person: float | None
    target_kgce_per_m2: float | None
    target_kgce_per_person: float | None
    target_water_m3_per_person: float | None
    projected_kgce_per_m2: float | None
    projected_kgce_per_person: float | None
    projected_water_m3_per_person: float | None
    projection_status: str = Field(description="insufficient | provisional | final")
    coverage: float | None = Field(description="share of the year's days so far with a "
                                   "record of a main meter (0–1); null before the year began")
    days: int = Field(description="local days of the year so far")
    days_with_data: int
    meters: int
    meters_reporting: int
    score: float | None = Field(description="null until there is enough data to project")
    max_score: float
    open_alarms: int
    edges: int
    edges_offline: int


class DistrictView(View):
    as_of: datetime
    year: int
    sort: SortKey
    type: InstitutionType | None
    region: str | None
    count: int
    institutions: list[DistrictRow]


@dataclass(frozen=True)
class Member:
    """One institution of the district as the view reads it."""

    reader: TenantReader
    profile: CoefficientProfile
    ledger: Ledger | None


def _item(report: ComplianceReport, key: ScoreKey) -> tuple[float | None, float | None]:
    """(target, projected) of one scored item."""
    for item in report.items:
        if item.key is key:
            return item.target, item.projected
    return None, None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def district_row(member: Member, *, now: float, year: int) -> DistrictRow:
    """One institution's row (rank 0 until ranked)."""
    reader = member.reader
    config = reader.institution
    info = config.institution
    report = compliance_for(reader, config, member.profile, now=now, year=year,
                            ledger=member.ledger)
    coverage = report.coverage
    has_data = coverage.has_data if coverage is not None else report.data_since is not None
    until = int(now * 1000) + 1
    open_alarms = sum(1 for a in alarm_states(read_alarm_events(reader, until), until)
                      if a.state == "raised" and reader.owns(a.edge))
    health = edge_health(reader, now)
    target = {k: _item(report, k) for k in ScoreKey}

    def figure(value: float) -> float | None:
        return _finite(value) if has_data else None

    return DistrictRow(
        institution=info.id, name=info.name, type=info.type, district=info.district,
        region_code=info.region_code, rank=0, floor_area_m2=report.floor_area_m2,
        energy_users=report.energy_users, energy_kgce=figure(report.energy_kgce),
        kgce_per_m2=figure(report.kgce_per_m2),
        kgce_per_person=figure(report.kgce_per_person),
        water_m3_per_person=figure(report.water_m3_per_person),
        target_kgce_per_m2=target[ScoreKey.KGCE_PER_M2][0],
        target_kgce_per_person=target[ScoreKey.KGCE_PER_PERSON][0],
        target_water_m3_per_person=target[ScoreKey.WATER_M3_PER_PERSON][0],
        projected_kgce_per_m2=_finite(target[ScoreKey.KGCE_PER_M2][1]),
        projected_kgce_per_person=_finite(target[ScoreKey.KGCE_PER_PERSON][1]),
        projected_water_m3_per_person=_finite(target[ScoreKey.WATER_M3_PER_PERSON][1]),
        projection_status=report.projection.status,
        coverage=(coverage.days_with_data / coverage.days
                  if coverage is not None and coverage.days > 0 else None),
        days=coverage.days if coverage is not None else 0,
        days_with_data=coverage.days_with_data if coverage is not None else 0,
        meters=coverage.meters if coverage is not None else len(config.main_meters()),
        meters_reporting=coverage.meters_reporting if coverage is not None else 0,
        score=_finite(report.score), max_score=report.max_score,
        open_alarms=open_alarms, edges=len(health),
        edges_offline=sum(1 for e in health if not e.online))


class RowCache:
    """Rows kept for `ttl_s` of the central's clock, per (institution, year).

    Why: a row is an institution's whole year-to-date compliance (its projection reads every
    day of the year), about 20–70 ms each; a district of 200 polled by several pages would
    recompute the same figures every minute. The figures move slowly (a quarter-hour
    interval at a time), so the table may be up to `ttl_s` old; filters, sort and rank are
    applied to the cached rows on every request, and a token only ever receives rows of
    institutions it sees (the cache is keyed by institution, never by caller). Bounded: one
    entry per institution and year asked (years 2000–2100)."""

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self._rows: dict[tuple[str, int], tuple[float, DistrictRow]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def row(self, member: Member, *, now: float, year: int) -> DistrictRow:
        key = (member.reader.id, year)
        with self._lock:
            hit = self._rows.get(key)
        if hit is not None and 0 <= now - hit[0] < self.ttl_s:
            self.hits += 1
            return hit[1]
        self.misses += 1
        fresh = district_row(member, now=now, year=year)
        with self._lock:
            self._rows[key] = (now, fresh)
        return fresh


def _sort_value(row: DistrictRow, key: SortKey) -> float | str | None:
    if key == "name":
        return row.name
    value: float | int | None = getattr(row, key)
    return value


def rank(rows: Iterable[DistrictRow], key: SortKey) -> list[DistrictRow]:
    """Sorted by `key`, the better end first, nulls last; ties by institution id."""
    rows = list(rows)
    present = [r for r in rows if _sort_value(r, key) is not None]
    absent = sorted((r for r in rows if _sort_value(r, key) is None),
                    key=lambda r: r.institution)
    by_id = sorted(present, key=lambda r: r.institution)
    ordered = sorted(by_id, key=lambda r: _sort_value(r, key),  # type: ignore[arg-type,return-value]
                     reverse=key in DESCENDING)
    return [r.model_copy(update={"rank": i}) for i, r in
            enumerate([*ordered, *absent], start=1)]


def matches(config_type: InstitutionType, district: str | None, region_code: str | None, *,
            type_: InstitutionType | None, region: str | None) -> bool:
    """The filters: an institution type, and a region given as a district name or a
    region code (a prefix of the 6-digit code selects a city or province)."""
    if type_ is not None and config_type is not type_:
        return False
    if region is None:
        return True
    return region == district or (region_code is not None and region.isdigit()
                                  and region_code.startswith(region))


def build_district(members: Sequence[Member], *, now: float, year: int | None = None,
                   sort: SortKey = "score", type_: InstitutionType | None = None,
                   region: str | None = None,
                   row: Callable[..., DistrictRow] = district_row) -> DistrictView:
    """The ranked table of `members` (the caller passes only the institutions the token
    sees) passing the filters."""
    chosen = [m for m in members if matches(
        m.reader.institution.institution.type, m.reader.institution.institution.district,
        m.reader.institution.institution.region_code, type_=type_, region=region)]
    tz = chosen[0].reader.institution.institution.tz if chosen else UTC
    as_of = datetime.fromtimestamp(now, tz)
    y = year if year is not None else as_of.year
    rows = rank((row(m, now=now, year=y) for m in chosen), sort)
    return DistrictView(as_of=as_of, year=y, sort=sort, type=type_, region=region,
                        count=len(rows), institutions=rows)
