"""The central's computed figures as InfluxDB points, for Grafana (schema: docs/influxdb.md).

Grafana must show the figures the institution is scored on, not a second computation of
them in a query language. So the central computes them (`central.metrics`) and writes the
results to the telemetry store as their own measurements; the dashboards only select them.

    figure         tags institution, building (`_all` = the institution), period (day | ytd),
                   type, district (for the district dashboard)
                   fields: kgce, kgce/m², kgce/person, m³/person, kWh, PUE, AC compliance,
                   after-hours share; ytd of the institution adds targets, points, score,
                   coverage and (once there is enough data) the projection
    figure_energy  same tags + energy, source, unit; fields quantity, kgce
    figure_item    same tags + item, label; fields kwh, share (分项, of main-meter electricity)
    status         tags institution, kind (edge | meter), edge[, device, point, building];
                   field silent_s (for the alert rules), time = the publishing minute

Time is local midnight of the day. A `day` point holds that day's figures; a `ytd` point
holds the year to date at the end of that day (at `now` for today), so the ytd series is
the year's trend. A point is identified by measurement, tags and time, so recomputing a day
rewrites the same points (idempotent): a replay or a late batch changes values, never
multiplies points.

`figures_points` is the one place that turns the central's read models into points; it
calls the public `compliance_for` and `period_metrics` only. The projection shown is the
compliance report's (`central.projection`): before its `min_days` of data (30 by default)
`projection_ready` is 0 and no projected, points or score field exists.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from central.carbon import EmissionFactors, changed_since
from central.compliance import ComplianceReport
from central.figures import PeriodMetrics
from central.influx import FieldValue, build_line
from central.institution import InstitutionConfig, MeterKey
from central.ledger import Ledger
from central.metrics import compliance_for, period_metrics
from central.period import Period
from central.profile import CoefficientProfile
from central.reader import edges_of, scoped
from central.storeport import LatestSample, StoreReader
from central.telemetry import SeriesPoint, TelemetryBatch, TelemetryStore
from protocols.clock import Clock
from protocols.wire import IntervalRecord, Sample

log = logging.getLogger(__name__)

ALL = "_all"  # the building tag of institution-wide figures


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    ts_ms: int

    def line(self) -> str:
        return build_line(self.measurement, self.tags, self.fields, self.ts_ms)


def district_tags(institution: InstitutionConfig) -> dict[str, str]:
    """The tags the district dashboard filters on: the institution's type and its district
    (or region code; "—" when the file names neither)."""
    info = institution.institution
    return {"type": info.type.value, "district": info.district or info.region_code or "—"}


def _put(fields: dict[str, FieldValue], name: str, value: float | None) -> None:
    """A float field, left out when the figure does not exist (None or not finite)."""
    if value is not None and math.isfinite(value):
        fields[name] = float(value)


def _metric_fields(m: PeriodMetrics) -> dict[str, FieldValue]:
    out: dict[str, FieldValue] = {}
    _put(out, "kgce", m.energy_kgce)
    _put(out, "kgce_for_area", m.energy_kgce_for_area)
    _put(out, "electricity_kwh", m.electricity_kwh)
    _put(out, "water_m3", m.water_m3)
    _put(out, "floor_area_m2", m.floor_area_m2)
    _put(out, "kgce_per_m2", m.kgce_per_m2)
    _put(out, "energy_users", m.energy_users)
    _put(out, "kgce_per_person", m.kgce_per_person)
    _put(out, "water_m3_per_person", m.water_m3_per_person)
    if m.carbon is not None:  # CO₂ (central/carbon.py): absent, never 0, without data
        _put(out, "t_co2", m.carbon.t_co2)
        _put(out, "kg_co2_per_m2", m.carbon.kg_co2_per_m2)
        _put(out, "kg_co2_per_person", m.carbon.kg_co2_per_person)
    _put(out, "pue", m.data_centre.pue)
    _put(out, "ac_compliance", m.ac.share)
    _put(out, "after_hours_kwh", m.after_hours.after_hours_kwh)
    _put(out, "after_hours_share", m.after_hours.share)
    out["open_alarms"] = float(len(m.alarms.open))
    out["open_leaks"] = float(len(m.alarms.open_leaks))
    return out


def projection_ready(report: ComplianceReport) -> bool:
    """The compliance report's own projection exists (`central.projection`, the one
    projection of the dashboard, the API and the reports: none before `projection.min_days`
    of metering or bills)."""
    return report.projection.status != "insufficient"


def _compliance_fields(report: ComplianceReport) -> dict[str, FieldValue]:
    out: dict[str, FieldValue] = {}
    ready = projection_ready(report)
    start = report.period_start.timestamp()
    days = (report.period_end.timestamp() - start) / 86400
    _put(out, "score", report.score)
    _put(out, "max_score", report.max_score)
    _put(out, "coverage_fraction", report.coverage_fraction)
    _put(out, "coverage_days", report.coverage_fraction * days)
    _put(out, "fraction_elapsed", report.fraction_elapsed)
    out["projection_ready"] = 1.0 if ready else 0.0
    for item in report.items:
        k = item.key.value
        _put(out, k, item.ytd)
        _put(out, f"target_{k}", item.target)
        _put(out, f"prorated_target_{k}", item.prorated_target)
        if ready:  # no points before there is a projection to judge (never a false 0)
            _put(out, f"points_{k}", item.points)
        _put(out, f"max_points_{k}", item.max_points)
        if ready:
            _put(out, f"projected_{k}", item.projected)
    return out


def _breakdown(m: PeriodMetrics, tags: dict[str, str], ts_ms: int) -> list[Point]:
    out = [Point("figure_energy", {**tags, "energy": line.energy.value, "source": line.source,
                                   "unit": line.unit},
                 {"quantity": float(line.quantity), "kgce": float(line.kgce)}, ts_ms)
           for line in m.energy_by_type]
    for item in m.items:
        fields: dict[str, FieldValue] = {"kwh": float(item.kwh)}
        _put(fields, "share", item.share)
        out.append(Point("figure_item", {**tags, "item": item.code,
                                         "label": f"{item.code} {item.label_zh}"},
                         fields, ts_ms))
    return out


def figures_points(reader: StoreReader, institution: InstitutionConfig,
                   profile: CoefficientProfile, ledger: Ledger | None, *, now: float,
                   day: date) -> list[Point]:
    """Every published point of one local `day` (figures of the day, and of the year to
    the end of the day or `now`), institution-wide and per building. Nothing after `now`."""
    tz = institution.institution.tz
    start = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
    nxt = day + timedelta(days=1)
    end = min(datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp(), now)
    if end <= start:
        return []
    reader = scoped(reader, institution)
    year_start = Period.year(day.year, tz).start
    ts_ms = int(start * 1000)
    iid = institution.institution.id
    out: list[Point] = []
    for building in (None, *(b.id for b in institution.buildings)):
        for period, since in (("day", start), ("ytd", year_start)):
            tags = {"institution": iid, "building": building or ALL, "period": period,
                    **district_tags(institution)}
            m = period_metrics(reader, ledger, institution, profile, start=since, end=end,
                               building=building)
            fields = _metric_fields(m)
            if period == "ytd" and building is None:
                report = compliance_for(reader, institution, profile, now=end, year=day.year,
                                        ledger=ledger)
                fields.update(_compliance_fields(report))
            out.append(Point("figure", tags, fields, ts_ms))
            out.extend(_breakdown(m, tags, ts_ms))
    return out


STATUS_LOOKBACK_S = 2 * 86400.0
QUARTER_MS = 900_000


def status_points(reader: StoreReader, institution: InstitutionConfig, *,
                  now: float) -> list[Point]:
    """How long each edge and each configured meter has been silent, as of `now` (for the
    alert rules: an edge offline, a meter without data for a day). `silent_s` is capped at
    `STATUS_LOOKBACK_S` for a meter with no interval in that window; an edge never heard
    from has no point. Time is `now` to the minute, so a tick rewrites its own minute."""
    reader = scoped(reader, institution)
    ts_ms = int(now // 60 * 60_000)
    iid = institution.institution.id
    out = [Point("status", {"institution": iid, "kind": "edge", "edge": e.edge},
                 {"silent_s": max(0.0, now - e.last_seen)}, ts_ms)
           for e in reader.edges() if e.last_seen is not None]
    last_end: dict[MeterKey, int] = {}
    rows = reader.interval_rows(int((now - STATUS_LOOKBACK_S) * 1000), int(now * 1000),
                                [m.key for m in institution.meters])
    for key, start_ms, duration_s, _q in rows:
        last_end[key] = max(last_end.get(key, 0), start_ms + duration_s * 1000)
    for m in institution.meters:
        end = last_end.get(m.key)
        silent = STATUS_LOOKBACK_S if end is None else max(0.0, now - end / 1000)
        out.append(Point("status", {"institution": iid, "kind": "meter", "edge": m.edge,
                                    "device": m.device, "point": m.point,
                                    "building": m.building}, {"silent_s": silent}, ts_ms))
    return out


class LineSink(Protocol):
    def write_lines(self, lines: Sequence[str]) -> None: ...


@dataclass
class Tenancy:
    institution: InstitutionConfig
    profile: CoefficientProfile
    ledger: Ledger | None = None


@dataclass
class FiguresPublisher:
    """Recomputes and writes the figures of the days that changed.

    `touch` marks the local days of a batch's samples and intervals (the ingest path calls
    it through `PublishingTelemetry`); `publish` recomputes those days and, because a late
    day changes every later year-to-date, the ytd points from the earliest of them to
    today; today is always recomputed (the schedule)."""

    reader: StoreReader
    tenants: Sequence[Tenancy]
    sink: LineSink
    dirty: dict[str, set[date]] = field(default_factory=dict)
    points_written: int = 0
    # Days published on the last tick are published once more: a batch is marked before
    # the SQL store commits it, so the first tick may have run before the commit.
    _again: dict[str, set[date]] = field(default_factory=dict)
    # Ingest marks days from its worker thread while `publish` runs in another.
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tenants_of: dict[str, list[Tenancy]] = field(init=False, default_factory=dict)
    # The emission factors each institution's points were last computed with: when the
    # factor file changes, the days it touches are published again (central/carbon.py).
    _factors: dict[str, EmissionFactors] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for t in self.tenants:
            for edge in edges_of(t.institution):
                self._tenants_of.setdefault(edge, []).append(t)

    def touch(self, edge: str, timestamps_ms: Iterable[int]) -> None:
        # Per ingested batch: the stamps collapse to quarter hours first (every UTC offset
        # is a multiple of 15 minutes, so a quarter hour lies in one local day), and the
        # tenants' edges are computed once, not per batch.
        quarters = {ms // QUARTER_MS for ms in timestamps_ms}
        if not quarters:
            return
        for t in self._tenants_of.get(edge, ()):
            tz = t.institution.institution.tz
            touched = {datetime.fromtimestamp(q * QUARTER_MS / 1000, tz).date()
                       for q in quarters}
            with self._lock:
                self.dirty.setdefault(t.institution.institution.id, set()).update(touched)

    def mark_since(self, first: date, now: float) -> None:
        """Mark every day from `first` to today for every institution (a backfill)."""
        for t in self.tenants:
            today = datetime.fromtimestamp(now, t.institution.institution.tz).date()
            starts = {first, *(date(y, 1, 1) for y in range(first.year + 1, today.year + 1))}
            with self._lock:
                self.dirty.setdefault(t.institution.institution.id, set()).update(
                    d for d in starts if d <= today)

    def publish(self, now: float) -> int:
        """Write the points of the changed days and today; the number of points written.
        When the write fails the changed days stay marked for the next run."""
        written = 0
        for t in self.tenants:
            tz = t.institution.institution.tz
            today = datetime.fromtimestamp(now, tz).date()
            iid = t.institution.institution.id
            stale = self._factor_change(t, now)  # before the marks are taken
            with self._lock:
                marked = self.dirty.pop(iid, set())
            changed = marked | self._again.pop(iid, set()) | stale
            days = {today}
            for first in changed:
                last = min(today, date(first.year, 12, 31))
                day = first
                while day <= last:  # the later ytd points rest on the changed day
                    days.add(day)
                    day += timedelta(days=1)
            try:
                lines = [p.line() for p in status_points(self.reader, t.institution,
                                                         now=now)]
                for d in sorted(days):
                    lines.extend(p.line() for p in figures_points(
                        self.reader, t.institution, t.profile, t.ledger, now=now, day=d))
                self.sink.write_lines(lines)
            except Exception:
                with self._lock:
                    self.dirty.setdefault(iid, set()).update(changed)
                raise
            self._again[iid] = marked
            written += len(lines)
        self.points_written += written
        return written

    def _factor_change(self, t: Tenancy, now: float) -> set[date]:
        """The first day (and each later 1 Jan) whose published CO₂ a changed factor
        file makes stale, from the first metered day on; empty when nothing changed."""
        iid = t.institution.institution.id
        new = EmissionFactors.for_institution(t.institution)
        old = self._factors.get(iid)
        since = None if old is None else changed_since(old, new)
        tz = t.institution.institution.tz
        first = None if since is None else scoped(self.reader, t.institution).first_start_of(
            int(Period.day(since, tz).start * 1000), int(now * 1000),
            [m.key for m in t.institution.meters])
        self._factors[iid] = new  # only once the change is marked (a read may raise)
        if since is None:
            return set()
        today = datetime.fromtimestamp(now, tz).date()
        day = (datetime.fromtimestamp(first / 1000, tz).date() if first is not None
               else max(since, date(today.year, 1, 1)))  # no meter data: bills of this year
        return {day, *(date(y, 1, 1) for y in range(day.year + 1, today.year + 1))}

    async def run(self, clock: Clock, every_s: float = 60.0) -> None:
        """Publish on a schedule until cancelled; a failure is logged and retried."""
        while True:
            try:
                await asyncio.to_thread(self.publish, clock.now())
            except Exception:  # the store or InfluxDB is down: try again next tick
                log.exception("publishing figures failed; retrying in %.0f s", every_s)
            await asyncio.sleep(every_s)


class PublishingTelemetry(TelemetryStore):
    """A telemetry store that also tells the publisher which days a batch touched."""

    def __init__(self, inner: TelemetryStore, publisher: FiguresPublisher) -> None:
        self.inner = inner
        self.publisher = publisher

    def write(self, batch: TelemetryBatch) -> None:
        self.inner.write(batch)
        self.publisher.touch(batch.stream.edge, (
            r.start if isinstance(r, IntervalRecord) else r.ts
            for r in batch.records if isinstance(r, IntervalRecord | Sample)))

    def series(self, key: MeterKey, start_ms: int, end_ms: int, step_ms: int
               ) -> list[SeriesPoint]:
        return self.inner.series(key, start_ms, end_ms, step_ms)

    def latest(self, points: Iterable[str] | None = None) -> dict[MeterKey, LatestSample]:
        return self.inner.latest(points)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()

