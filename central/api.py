"""The central's HTTP API v1 and the built-in page's shell (FastAPI).

One central serves several institutions; every institution-scoped route has the
institution id in its path (`/api/v1/institutions/{iid}/...`). Every `/api/v1` route is
mounted on one router secured by `central.auth.authorize()`: bearer token, institution scope
(404 for an institution outside the token's list, the same answer as for one that does not
exist) and role (viewer reads, engineer writes, admin manages tokens). Public: the page's
HTML shell at `/` (no data in it), `/healthz`, the OpenAPI schema and its viewers, and
`/metrics` (left free for the Prometheus exporter).

Routes are plain `def`, so FastAPI runs them in its thread pool and a slow year-to-date
query never stalls MQTT ingest on the event loop. Given a database path, every request
opens its own read-only SQLite connection (WAL readers never block the writer); given a
`Store`, requests share it through its lock (tests, in-memory use).

"Now", "today" and "this year" come from the injected clock, never from the wall clock,
so a simulated institution shows simulated days. Token expiry is wall-clock time.

An institution's telemetry is what its edges sent: the edges named by its meters and AC
units. Two institutions sharing an edge would see each other's data from that edge, so
`create_app` refuses such a configuration.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from central.admission import CENTRAL_EDGE
from central.auth import (
    Authenticator,
    Principal,
    Role,
    authorize,
    require_all_institutions,
)
from central.commands import CommandRequest, CommandService, CommandUnavailableError, CommandView
from central.compliance import ComplianceReport, year_window
from central.config import InstitutionConfig, MeterKey
from central.dashboard import dashboard_router
from central.entries import add_entries, import_file
from central.errors import ConfigError, EntryError, ReportError, StoreError
from central.ingest import IngestStats
from central.ledger import EntryKind, Ledger, SqliteLedger
from central.metrics import PeriodMetrics, period_metrics, waste_for
from central.overview import Overview, build_overview, compliance_for
from central.page import page_router
from central.profile import CoefficientProfile, check_profile
from central.prom import add_metrics_route
from central.report_output import produce
from central.store import Store, StoredEvent
from central.storeport import StoreReader
from protocols.clock import Clock

API_VERSION = "v1"
PREFIX = f"/api/{API_VERSION}"
MAX_BUCKETS = 5_000
MAX_ROWS = 10_000
ONLINE_WITHIN_S = 300.0  # an edge heard from within this many seconds counts as online

IID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
IidParam = Annotated[str, PathParam(pattern=IID_PATTERN, description="institution id",
                                    examples=["demo-school"])]


@dataclass(frozen=True)
class Tenant:
    """One institution served by the central: its configuration, coefficients and ledger."""

    config: InstitutionConfig
    profile: CoefficientProfile
    ledger: Ledger = field(default_factory=lambda: SqliteLedger(":memory:"))

    @property
    def id(self) -> str:
        return self.config.institution.id

    @property
    def edges(self) -> frozenset[str]:
        return frozenset([m.edge for m in self.config.meters]
                         + [a.edge for a in self.config.ac_units])


# -- response models (OpenAPI) ----------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class InstitutionSummary(_Out):
    id: str = Field(examples=["demo-school"])
    name: str = Field(examples=["示范中学 Demo Middle School"])
    type: str = Field(examples=["school"])
    timezone: str = Field(examples=["Asia/Shanghai"])
    buildings: int = Field(examples=[2])
    meters: int = Field(examples=[6])


class BuildingOut(_Out):
    id: str = Field(examples=["A"])
    name: str = Field(examples=["教学楼 Teaching"])
    floor_area_m2: float = Field(examples=[7000.0])
    quota_class: str | None = None
    meters: int = Field(examples=[3])


class InstitutionDetail(_Out):
    id: str
    name: str
    type: str
    timezone: str
    coefficient_profile: str
    buildings: list[BuildingOut]
    energy_users: float = Field(examples=[1620.0])
    targets: dict[str, dict[str, float]] = Field(
        examples=[{"2025": {"kgce_per_m2": 0.25, "kgce_per_person": 2.0,
                            "water_m3_per_person": 5.0}}])


class PointOut(_Out):
    point: str = Field(examples=["power_w"])
    unit: str | None = Field(examples=["W"])
    ts: int | None = Field(description="last sample, ms since the epoch",
                           examples=[1751428800000])
    value: float | int | bool | str | None = Field(examples=[12000.0])


class DeviceOut(_Out):
    edge: str = Field(examples=["edge-1"])
    device: str = Field(examples=["meter-a"])
    kind: Literal["meter", "ac", "other"] = Field(examples=["meter"])
    building: str | None = Field(examples=["A"])
    zone: str | None = None
    energy: str | None = Field(default=None, examples=["electricity"])
    role: str | None = Field(default=None, examples=["main"])
    item: str | None = Field(default=None, examples=["01B00"])
    points: list[PointOut]


class Bucket(_Out):
    start: int = Field(description="bucket start, ms since the epoch",
                       examples=[1751428800000])
    count: int = Field(examples=[15])
    avg: float | None = Field(examples=[11875.5])
    min: float | None = Field(examples=[9000.0])
    max: float | None = Field(examples=[14000.0])
    last: float | int | bool | str | None = Field(examples=[12000.0])


class Series(_Out):
    edge: str
    device: str
    point: str
    start: int
    end: int
    bucket_s: int
    buckets: list[Bucket]


class IntervalOut(_Out):
    edge: str
    device: str
    point: str
    start: int = Field(examples=[1751428800000])
    duration_s: int = Field(examples=[900])
    quantity: float = Field(examples=[12.5])
    unit: str = Field(examples=["kWh"])
    flags: list[str] = Field(examples=[["estimated"]])
    synced: bool


class EventOut(_Out):
    edge: str = Field(examples=["edge-1"])
    epoch: int
    seq: int
    ts: int = Field(examples=[1751428800000])
    name: str = Field(examples=["alarm.leak"])
    severity: str = Field(examples=["warning"])
    device: str | None = Field(examples=["water-a"])
    data: dict[str, Any] = Field(examples=[{"state": "raised", "rule": "leak",
                                            "point": "flow_m3h", "flow": 0.4}])
    synced: bool


class AlarmOut(_Out):
    name: str = Field(examples=["alarm.leak"])
    edge: str
    device: str | None
    rule: str | None = Field(examples=["leak"])
    state: Literal["raised", "cleared"]
    since: int = Field(description="ts of the event that set the state, ms")
    data: dict[str, Any]


class EdgeHealth(_Out):
    edge: str = Field(examples=["edge-1"])
    site: str | None = Field(examples=["site-1"])
    online: bool = Field(description="birth seen and no death since, and heard from within "
                         f"{ONLINE_WITHIN_S:g} s", examples=[True])
    connected: bool | None = Field(description="MQTT birth/death state; null: never seen")
    last_seen: float | None = Field(description="central's clock, POSIX seconds")
    age_s: float | None = Field(examples=[12.0])
    epoch: int | None
    software: str | None = Field(examples=["0.1.0"])
    clock_synced: bool | None = Field(description="the edge's clock state at its last birth")
    outbox_depth: int | None = Field(description="last reported by the edge (an event with "
                                     "data.outbox_depth), null if never reported")


class TokenOut(_Out):
    id: str = Field(examples=["9f2c4e1a7b3d5f60"])
    name: str = Field(examples=["energy office"])
    role: Role
    institutions: list[str] | None = Field(description="null: every institution",
                                           examples=[["demo-school"]])
    created: float
    expires: float | None
    revoked: float | None


class TokenCreated(TokenOut):
    token: str = Field(description="the bearer token; shown once, never stored")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["energy office"])]
    role: Role = Field(examples=["viewer"])
    institutions: list[Annotated[str, Field(pattern=IID_PATTERN)]] | None = Field(
        default=None, description="null: every institution (central admin)",
        examples=[["demo-school"]])
    ttl_s: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] | None = Field(
        default=None, description="lifetime in seconds; null: until revoked",
        examples=[86400 * 90])


class ErrorOut(_Out):
    detail: str = Field(examples=["unauthorised: token expired"])


class ProblemOut(_Out):
    field: str = Field(examples=["entries[0].quantity"])
    value: Any = Field(examples=[-5])
    reason: str = Field(examples=["Input should be greater than or equal to 0"])


class UnprocessableOut(_Out):
    """A refused request: FastAPI's list of parameter errors (`loc`, `msg`, `input`), or
    one sentence naming the field and value, with `problems` for ledger entries (of
    which none were stored)."""

    detail: str | list[dict[str, Any]] = Field(
        examples=["end: must be after start (got 2025-01-01)"])
    stored: int | None = None
    problems: list[ProblemOut] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "the body is not parseable JSON"},
    422: {"model": UnprocessableOut, "description": "a parameter or entry is invalid; the "
          "answer names the field and the value"},
    401: {"model": ErrorOut, "description": "no token, or a malformed, unsigned, wrongly "
          "signed, expired, unknown or revoked one"},
    403: {"model": ErrorOut, "description": "the token's role is too low"},
    404: {"model": ErrorOut, "description": "no such institution, or not one the token may "
          "see (the same answer, so a token cannot probe for other institutions)"},
    503: {"model": ErrorOut, "description": "the store cannot be read"},
}


class WhoAmI(_Out):
    token_id: str
    name: str
    role: Role
    institutions: list[str] | None


# -- helpers ----------------------------------------------------------------------------


def _open_store(request: Request) -> Iterator[Store]:
    source: Store | str | Path = request.app.state.store
    if not isinstance(source, str | Path):  # an open store (or PgStore): shared
        yield source
        return
    reader = Store(source, readonly=True)
    try:
        yield reader
    finally:
        reader.close()


StoreDep = Annotated[Store, Depends(_open_store)]


def _tenant(request: Request, iid: IidParam) -> Tenant:
    # `authorize` already answered 404 for an unknown or hidden institution.
    tenant: Tenant = request.app.state.tenants[iid]
    return tenant


TenantDep = Annotated[Tenant, Depends(_tenant)]


FIRST_YEAR, LAST_YEAR = 2000, 2100  # the range every date and time parameter must fall in


def _in_range(name: str, moment: date) -> None:
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise HTTPException(status_code=422, detail=f"{name}: must be between {FIRST_YEAR} "
                            f"and {LAST_YEAR} (got {moment.isoformat()})")


def _ms(name: str, moment: datetime, tenant: Tenant) -> int:
    _in_range(name, moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tenant.config.institution.tz)
    return math.floor(moment.timestamp() * 1000)


def _window(start: datetime, end: datetime, tenant: Tenant) -> tuple[int, int]:
    s, e = _ms("start", start, tenant), _ms("end", end, tenant)
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


def _downsample(rows: Sequence[tuple[int, float | int | bool | str]], start: int, end: int,
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


def _event(ev: StoredEvent) -> EventOut:
    try:
        parsed = json.loads(ev.data)
    except ValueError:
        parsed = {"raw": ev.data}
    return EventOut(edge=ev.edge, epoch=ev.epoch, seq=ev.seq, ts=ev.ts, name=ev.name,
                    severity=ev.severity, device=ev.device,
                    data=parsed if isinstance(parsed, dict) else {"value": parsed},
                    synced=ev.synced)


def _events(db: StoreReader, tenant: Tenant, *, names: Sequence[str] | None = None,
            prefix: str | None = None, start_ms: int | None = None,
            end_ms: int | None = None, limit: int, newest_first: bool = True
            ) -> list[EventOut]:
    # CENTRAL_EDGE: the central's own alarms (a foreign edge on the broker), for every tenant
    return [_event(ev) for ev in db.events(tenant.edges | {CENTRAL_EDGE}, names=names,
                                          prefix=prefix,
                                          start_ms=start_ms, end_ms=end_ms, limit=limit,
                                          newest_first=newest_first)]


# -- the app ----------------------------------------------------------------------------


def create_app(
    store: Store | str | Path,
    tenants: Sequence[Tenant],
    clock: Clock,
    auth: Authenticator,
    ingest_stats: IngestStats | None = None,
    commands: CommandService | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the app. Raises `ProfileError` if a configured meter cannot be converted and
    `ConfigError` for duplicate institution ids or an edge shared by two institutions.

    `routers` (other modules' routes) are mounted behind the same `authorize()` dependency:
    a path parameter `iid` is scoped like the built-in routes, GETs need a viewer and writes
    an engineer. Their handlers may depend on `TenantDep` and `StoreDep`."""
    by_id: dict[str, Tenant] = {}
    edge_owner: dict[str, str] = {}
    for t in tenants:
        check_profile(t.config, t.profile)
        if t.id in by_id:
            raise ConfigError("institutions", [("institution.id", t.id, "duplicate id")])
        by_id[t.id] = t
        for e in t.edges:
            if edge_owner.setdefault(e, t.id) != t.id:
                raise ConfigError("institutions", [(
                    f"{t.id}: edge", e, f"already belongs to institution {edge_owner[e]}; "
                    "an edge reports for one institution")])
    if not by_id:
        raise ConfigError("institutions", [("<list>", [], "at least one institution")])
    app = FastAPI(
        title="greenguard central", version=API_VERSION,
        description="Compliance figures, telemetry, alarms and edge health of the "
                    "institutions this central serves. Every /api/v1 route needs "
                    "`Authorization: Bearer <token>`; see docs/api.md.")
    app.state.store = store
    app.state.tenants = by_id
    app.state.institution_ids = frozenset(by_id)
    app.state.auth = auth

    def ingest_counters() -> dict[str, Any] | None:
        return ingest_stats.as_dict() if ingest_stats is not None else None

    @app.exception_handler(EntryError)
    def _entries_refused(request: Request, exc: EntryError) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": str(exc), "stored": 0,
            "problems": [{"field": f, "value": v if isinstance(v, int | float | str | None)
                          else repr(v), "reason": r} for f, v, r in exc.problems]})

    @app.exception_handler(ReportError)
    def _report_refused(request: Request, exc: ReportError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(StoreError)
    def _store_unavailable(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.exception_handler(CommandUnavailableError)
    def _command_unsent(request: Request, exc: CommandUnavailableError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/healthz", tags=["public"])
    def healthz(db: StoreDep) -> dict[str, Any]:
        """Liveness for load balancers; names no institution."""
        db.ping()
        return {"status": "ok", "time": clock.now(),
                "mqtt_connected": ingest_stats.connected if ingest_stats else None}

    app.include_router(page_router())  # the page's shell and assets: public, no data

    api = APIRouter(prefix=PREFIX, dependencies=[Depends(authorize())], responses=ERRORS)
    scoped = "/institutions/{iid}"

    @api.get("/whoami", tags=["auth"])
    def whoami(principal: Annotated[Principal, Depends(authorize())]) -> WhoAmI:
        """The calling token: its role and the institutions it may see."""
        return WhoAmI(token_id=principal.token_id, name=principal.name, role=principal.role,
                      institutions=None if principal.institutions is None
                      else sorted(principal.institutions))

    @api.get("/institutions", tags=["institutions"])
    def list_institutions(
            principal: Annotated[Principal, Depends(authorize())]) -> list[InstitutionSummary]:
        """The institutions the token may see."""
        return [InstitutionSummary(
            id=t.id, name=t.config.institution.name, type=t.config.institution.type.value,
            timezone=t.config.institution.timezone, buildings=len(t.config.buildings),
            meters=len(t.config.meters)) for t in by_id.values() if principal.sees(t.id)]

    def building_out(t: Tenant) -> list[BuildingOut]:
        return [BuildingOut(id=b.id, name=b.name, floor_area_m2=b.floor_area_m2,
                            quota_class=b.quota_class,
                            meters=sum(1 for m in t.config.meters if m.building == b.id))
                for b in t.config.buildings]

    @api.get(scoped, tags=["institutions"])
    def get_institution(t: TenantDep) -> InstitutionDetail:
        info = t.config.institution
        return InstitutionDetail(
            id=info.id, name=info.name, type=info.type.value, timezone=info.timezone,
            coefficient_profile=info.coefficient_profile, buildings=building_out(t),
            energy_users=t.config.energy_users,
            targets={str(y): v.model_dump() for y, v in t.config.targets.items()})

    @api.get(scoped + "/buildings", tags=["institutions"])
    def get_buildings(t: TenantDep) -> list[BuildingOut]:
        return building_out(t)

    def points_of(db: Store, t: Tenant) -> dict[tuple[str, str], list[PointOut]]:
        out: dict[tuple[str, str], list[PointOut]] = {}
        for key, s in sorted(db.latest_samples().items()):
            if key.edge in t.edges:
                out.setdefault((key.edge, key.device), []).append(
                    PointOut(point=key.point, unit=s.unit, ts=s.ts, value=s.value))
        return out

    @api.get(scoped + "/devices", tags=["devices"])
    def get_devices(db: StoreDep, t: TenantDep) -> list[DeviceOut]:
        """Configured meters and AC units, then any other device its edges reported, each
        with the latest sample of every point."""
        seen = points_of(db, t)
        out: list[DeviceOut] = []
        done: set[tuple[str, str]] = set()
        for m in t.config.meters:
            if (m.edge, m.device) in done:
                continue
            done.add((m.edge, m.device))
            out.append(DeviceOut(edge=m.edge, device=m.device, kind="meter",
                                 building=m.building, zone=m.zone, energy=m.energy.value,
                                 role=m.role.value, item=m.item,
                                 points=seen.get((m.edge, m.device), [])))
        for a in t.config.ac_units:
            if (a.edge, a.device) in done:
                continue
            done.add((a.edge, a.device))
            out.append(DeviceOut(edge=a.edge, device=a.device, kind="ac", building=a.building,
                                 zone=a.zone, points=seen.get((a.edge, a.device), [])))
        for (edge, device), points in seen.items():
            if (edge, device) not in done:
                out.append(DeviceOut(edge=edge, device=device, kind="other", building=None,
                                     points=points))
        return out

    @api.get(scoped + "/series", tags=["telemetry"])
    def get_series(
        db: StoreDep, t: TenantDep,
        edge: Annotated[str, Query(pattern=IID_PATTERN, examples=["edge-1"])],
        device: Annotated[str, Query(pattern=IID_PATTERN, examples=["meter-a"])],
        point: Annotated[str, Query(pattern=r"^[a-z][a-z0-9_.]{0,63}$", examples=["power_w"])],
        start: Annotated[datetime, Query(description="ISO time; without an offset, the "
                                         "institution's local time",
                                         examples=["2025-07-02T00:00:00"])],
        end: Annotated[datetime, Query(examples=["2025-07-03T00:00:00"])],
        bucket_s: Annotated[int, Query(ge=1, le=366 * 86400, examples=[900])] = 900,
    ) -> Series:
        """Samples of one point downsampled on the server: per bucket of `bucket_s` the
        average, minimum and maximum of the numeric values and the last value."""
        if edge not in t.edges:
            raise HTTPException(status_code=404, detail=f"edge: {edge!r} is not an edge of "
                                f"institution {t.id!r}")
        s, e = _window(start, end, t)
        if (e - s) / (bucket_s * 1000) > MAX_BUCKETS:
            raise HTTPException(status_code=422, detail=f"bucket_s: {bucket_s} gives more than "
                                f"{MAX_BUCKETS} buckets over this window; use a larger one")
        rows = db.sample_series(MeterKey(edge, device, point), s, e)
        return Series(edge=edge, device=device, point=point, start=s, end=e, bucket_s=bucket_s,
                      buckets=_downsample(rows, s, e, bucket_s * 1000))

    @api.get(scoped + "/intervals", tags=["telemetry"])
    def get_intervals(
        db: StoreDep, t: TenantDep,
        start: Annotated[datetime, Query(examples=["2025-07-02T00:00:00"])],
        end: Annotated[datetime, Query(examples=["2025-07-03T00:00:00"])],
        edge: Annotated[str | None, Query(pattern=IID_PATTERN)] = None,
        device: Annotated[str | None, Query(pattern=IID_PATTERN)] = None,
        point: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_.]{0,63}$")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 1000,
    ) -> list[IntervalOut]:
        """Interval records (consumption per interval, with estimated/gap/reset flags) whose
        start lies in [start, end), oldest first."""
        s, e = _window(start, end, t)
        edges = t.edges if edge is None else t.edges & {edge}
        rows = db.interval_records(edges, s, e, device=device, point=point, limit=limit)
        return [IntervalOut(edge=r.edge, device=r.device, point=r.point, start=r.start,
                            duration_s=r.duration_s, quantity=r.quantity, unit=r.unit,
                            flags=list(r.flags), synced=r.synced) for r in rows]

    @api.get(scoped + "/events", tags=["events"])
    def get_events(
        db: StoreDep, t: TenantDep,
        name: Annotated[str | None, Query(
            pattern=r"^[a-z][a-z0-9_.]{0,63}\*?$",
            description="exact name, or a prefix ending in `*` (e.g. `alarm.*`)",
            examples=["alarm.*"])] = None,
        since: Annotated[datetime | None, Query(examples=["2025-07-01T00:00:00"])] = None,
        until: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200,
    ) -> list[EventOut]:
        """Events from the institution's edges, newest first."""
        names = prefix = None
        if name is not None:
            if name.endswith("*"):
                prefix = name[:-1]
            else:
                names = [name]
        return _events(db, t, names=names, prefix=prefix,
                       start_ms=None if since is None else _ms("since", since, t),
                       end_ms=None if until is None else _ms("until", until, t), limit=limit)

    @api.get(scoped + "/audit", tags=["events"])
    def get_audit(
        db: StoreDep, t: TenantDep,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200,
    ) -> list[EventOut]:
        """The audit trail: every device-changing decision (`audit.write` events) and every
        command's result (`command.result`), newest first."""
        return _events(db, t, names=["audit.write", "command.result"], limit=limit)

    @api.get(scoped + "/alarms", tags=["events"])
    def get_alarms(
        db: StoreDep, t: TenantDep,
        state: Annotated[Literal["raised", "cleared", "all"],
                         Query(description="raised: only alarms still active")] = "raised",
    ) -> list[AlarmOut]:
        """The current state of every alarm (`alarm.<kind>` per device and rule): the
        latest raised/cleared event of each decides."""
        events = _events(db, t, prefix="alarm.", limit=MAX_ROWS * 10, newest_first=False)
        current: dict[tuple[str, str, str | None, str | None], AlarmOut] = {}
        for ev in events:
            st = ev.data.get("state")
            if st not in ("raised", "cleared"):
                continue
            rule = ev.data.get("rule")
            rule = rule if isinstance(rule, str) else None
            current[(ev.name, ev.edge, ev.device, rule)] = AlarmOut(
                name=ev.name, edge=ev.edge, device=ev.device, rule=rule, state=st,
                since=ev.ts, data=ev.data)
        return [a for a in current.values() if state in ("all", a.state)]

    @api.get(scoped + "/edges", tags=["devices"])
    def get_edges(db: StoreDep, t: TenantDep) -> list[EdgeHealth]:
        """Health of the institution's edges: online, last seen, clock, outbox depth."""
        now = clock.now()
        states = {e.edge: e for e in db.edges()}
        out = []
        for edge in sorted(t.edges):
            r = states.get(edge)
            latest = db.latest_event_with(edge, "outbox_depth")
            v = None if latest is None else latest["outbox_depth"]
            depth = int(v) if isinstance(v, int | float) and math.isfinite(v) else None
            if r is None:
                out.append(EdgeHealth(edge=edge, site=None, online=False, connected=None,
                                      last_seen=None, age_s=None, epoch=None, software=None,
                                      clock_synced=None, outbox_depth=depth))
                continue
            age = None if r.last_seen is None else max(0.0, now - float(r.last_seen))
            connected = r.online
            out.append(EdgeHealth(
                edge=edge, site=r.site, connected=connected,
                online=connected is not False and age is not None and age <= ONLINE_WITHIN_S,
                last_seen=r.last_seen, age_s=age, epoch=r.epoch, software=r.software,
                clock_synced=r.synced, outbox_depth=depth))
        return out

    @api.get(scoped + "/compliance", tags=["compliance"])
    def get_compliance(
        db: StoreDep, t: TenantDep,
        year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    ) -> ComplianceReport:
        """Year-to-date compliance figures against the year's targets, with the score."""
        now = clock.now()
        if year is None:
            year = datetime.fromtimestamp(now, t.config.institution.tz).year
        return compliance_for(db, t.config, t.profile, now=now, year=year, ledger=t.ledger)

    @api.get(scoped + "/metrics", tags=["compliance"])
    def get_metrics(
        db: StoreDep, t: TenantDep,
        start: Annotated[date, Query(description="first local day", examples=["2025-01-01"])],
        end: Annotated[date, Query(description="day after the last (exclusive)",
                                   examples=["2025-07-01"])],
        building: Annotated[str | None, Query(max_length=64)] = None,
    ) -> PeriodMetrics:
        """Every compliance metric over a period of local days (分项, PUE, quotas, ...)."""
        tz = t.config.institution.tz
        _in_range("start", start)
        _in_range("end", end)
        if end <= start:
            raise ReportError(f"end: must be after start (got {end.isoformat()})")
        if building is not None and building not in {b.id for b in t.config.buildings}:
            raise ReportError(f"building: unknown building (got {building!r})")
        s = datetime(start.year, start.month, start.day, tzinfo=tz).timestamp()
        e = datetime(end.year, end.month, end.day, tzinfo=tz).timestamp()
        return period_metrics(db, t.ledger, t.config, t.profile, start=s,
                              end=min(e, max(s, clock.now())), building=building)

    @api.post(scoped + "/ledger/{kind}", tags=["ledger"])
    def post_entries(t: TenantDep, kind: EntryKind,
                     entries: Annotated[list[dict[str, Any]], Body()]) -> dict[str, int]:
        """Add or update bills, fuel, clearance or hazardous-waste entries (all or none)."""
        result = add_entries(t.ledger, kind, entries, t.config, t.profile)
        return {"inserted": result.inserted, "updated": result.updated,
                "unchanged": result.unchanged}

    @api.post(scoped + "/ledger/{kind}/import", tags=["ledger"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "text/csv": {"schema": {"type": "string"}},
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                      "schema": {"type": "string", "format": "binary"}}}}})
    async def import_entries(request: Request, t: TenantDep, kind: EntryKind,
                             format: Literal["csv", "xlsx"] = "csv") -> dict[str, int]:
        """Import a CSV or XLSX file of entries (the request body); all rows or none."""
        data = await request.body()
        result = import_file(t.ledger, kind, data, format, t.config, t.profile,
                             source=f"{kind} import")
        return {"inserted": result.inserted, "updated": result.updated,
                "unchanged": result.unchanged}

    @api.get(scoped + "/waste", tags=["compliance"])
    def get_waste(db: StoreDep, t: TenantDep,
                  year: Annotated[int, Query(ge=2000, le=2100)]) -> dict[str, Any]:
        """The year's clearance ledger (manual entries merged with clearances derived from
        bin-fill drops), monthly volumes by category, the hazardous-waste store balance and
        log, and the bins' latest fill levels."""
        s, e = year_window(t.config.institution.tz, year)
        now = clock.now()
        view = waste_for(db, t.ledger, t.config, start=s, end=min(e, max(s, now)), now=now)
        return {"year": year, **view.model_dump(mode="json")}

    @api.get(scoped + "/reports/{report}", tags=["compliance"],
             response_class=Response, responses={200: {"content": {
                 "text/html": {}, "application/pdf": {}, "application/json": {},
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}})
    def get_report(
        db: StoreDep, t: TenantDep,
        report: Literal["monthly", "quarterly", "annual", "ledger", "scoring"],
        year: Annotated[int, Query(ge=2000, le=2100)],
        number: Annotated[int | None, Query(ge=1, le=12,
                                            description="month or quarter")] = None,
        lang: Literal["zh", "en"] = "zh",
        format: Literal["html", "pdf", "xlsx", "json"] = "html",
    ) -> Response:
        """A report as HTML, PDF, XLSX or JSON (see docs/reports.md)."""
        content, media, name = produce(db, t.ledger, t.config, t.profile, report=report,
                                       fmt=format, year=year, number=number, lang=lang,
                                       now=clock.now())
        return Response(content, media_type=media, headers={
            "Content-Disposition": f'inline; filename="{name}"'})

    @api.get(scoped + "/overview", tags=["compliance"])
    def get_overview(db: StoreDep, t: TenantDep) -> Overview:
        """What the built-in page shows: live power, today's energy, compliance, edges."""
        return build_overview(db, t.config, t.profile, now=clock.now(),
                              ingest=ingest_counters(), ledger=t.ledger)

    def command_service() -> CommandService:
        if commands is None:
            raise HTTPException(status_code=503, detail="commands are not enabled on this "
                                "central")
        return commands

    @api.post(scoped + "/commands", tags=["commands"], status_code=202)
    def post_command(
        db: StoreDep, t: TenantDep, request: CommandRequest,
        principal: Annotated[Principal, Depends(authorize(Role.ENGINEER))],
    ) -> CommandView:
        """Send an override to an edge (engineer). 202: published with QoS 1; the status
        becomes the edge's answer (`applied`, `rejected`, ...) once its `command.result`
        event is ingested. 503 if the broker is unreachable (the command is kept as
        `unsent`)."""
        service = command_service()
        if request.edge not in t.edges:
            raise HTTPException(status_code=404, detail=f"edge: {request.edge!r} is not an "
                                f"edge of institution {t.id!r}")
        site = next((e.site for e in db.edges() if e.edge == request.edge), None)
        if site is None:
            raise HTTPException(status_code=409, detail=f"edge: {request.edge!r} has never "
                                "connected, so its site (the command topic) is unknown")
        row = service.send(institution=t.id, site=site, request=request,
                           created_by=principal.name, now_ms=int(clock.now() * 1000))
        (view,) = service.views(db, t.id, now_ms=int(clock.now() * 1000), command_id=row.id)
        return view

    @api.get(scoped + "/commands", tags=["commands"])
    def list_commands(db: StoreDep, t: TenantDep,
                      limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200
                      ) -> list[CommandView]:
        """Commands sent to the institution's edges with their status, newest first."""
        return command_service().views(db, t.id, now_ms=int(clock.now() * 1000), limit=limit)

    @api.get(scoped + "/commands/{command_id}", tags=["commands"])
    def get_command(db: StoreDep, t: TenantDep,
                    command_id: Annotated[str, PathParam(pattern=r"^c-[0-9a-f]{16}$")]
                    ) -> CommandView:
        found = command_service().views(db, t.id, now_ms=int(clock.now() * 1000),
                                        command_id=command_id)
        if not found:
            raise HTTPException(status_code=404, detail=f"command_id: no command "
                                f"{command_id!r} in institution {t.id!r}")
        return found[0]

    admin = Depends(require_all_institutions)

    @api.get("/tokens", tags=["auth"], dependencies=[admin])
    def list_tokens() -> list[TokenOut]:
        """Every token (never its secret form). Needs an admin of every institution."""
        return [TokenOut(**i.as_dict()) for i in auth.tokens.all()]

    @api.post("/tokens", tags=["auth"], dependencies=[admin], status_code=201)
    def create_token(request: TokenRequest) -> TokenCreated:
        """Create a token; the response holds the bearer token, shown only this once."""
        if request.institutions is not None:
            unknown = sorted(set(request.institutions) - set(by_id))
            if unknown:
                raise HTTPException(status_code=422, detail=f"institutions: unknown "
                                    f"institution {unknown[0]!r}")
        info, raw = auth.issue(request.name, request.role, request.institutions,
                               ttl_s=request.ttl_s)
        return TokenCreated(**info.as_dict(), token=raw)

    @api.delete("/tokens/{token_id}", tags=["auth"], dependencies=[admin])
    def revoke_token(token_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{1,64}$")]
                     ) -> TokenOut:
        """Revoke a token; it is refused from the next request on."""
        if not auth.tokens.revoke(token_id, now=time.time()):
            raise HTTPException(status_code=404, detail=f"token_id: no token {token_id!r}")
        info = auth.tokens.get(token_id)
        assert info is not None
        return TokenOut(**info.as_dict())

    app.include_router(api)
    for router in (dashboard_router(clock, ingest_counters, _open_store), *routers):
        app.include_router(router, dependencies=[Depends(authorize())], responses=ERRORS)
    add_metrics_route(app, ingest_stats, store)  # GET /metrics (central/prom.py)
    return app
