"""The app factory: checks the institutions, then only wires settings, error answers and
routers. Every route lives in a module of `central.api.routes`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from central import page
from central.api.deps import ApiSettings, Tenant
from central.api.models import ERRORS
from central.api.routes import ROUTERS, health
from central.apidocs import add_offline_docs
from central.auth import Authenticator, authorize
from central.commands import CommandService, CommandUnavailableError
from central.errors import ConfigError, EntryError, ReportError, StoreError
from central.ingest import IngestStats
from central.notify.routes import include_notify
from central.profile import check_profile
from central.prom import add_metrics_route
from central.storeport import StoreReader
from central.uploads import UploadGuard, UploadLimits
from protocols.clock import Clock

API_VERSION = "v1"
PREFIX = f"/api/{API_VERSION}"


def _checked(tenants: Sequence[Tenant]) -> dict[str, Tenant]:
    """Institutions by id; `ConfigError` for a duplicate id, an edge two institutions name
    (an institution's data is its edges' data), or none at all."""
    by_id: dict[str, Tenant] = {}
    edge_owner: dict[str, str] = {}
    for t in tenants:
        check_profile(t.config, t.profile)
        if t.id in by_id:
            raise ConfigError("institutions", [("institution.id", t.id, "duplicate id")])
        by_id[t.id] = t
        for e in sorted(t.edges):
            if edge_owner.setdefault(e, t.id) != t.id:
                raise ConfigError("institutions", [(
                    f"{t.id}: edge", e, f"already belongs to institution {edge_owner[e]}; "
                    "an edge reports for one institution")])
    if not by_id:
        raise ConfigError("institutions", [("<list>", [], "at least one institution")])
    return by_id


def _error_answers(app: FastAPI) -> None:
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


def create_app(
    store: StoreReader | str | Path,
    tenants: Sequence[Tenant],
    clock: Clock,
    auth: Authenticator,
    ingest_stats: IngestStats | None = None,
    commands: CommandService | None = None,
    routers: Sequence[APIRouter] = (),
    *,
    metrics_edges: bool = False,
    upload_limits: UploadLimits | None = None,
) -> FastAPI:
    """Build the app. Raises `ProfileError` if a configured meter cannot be converted and
    `ConfigError` for duplicate institution ids or an edge shared by two institutions.

    `store`: a database path (each request opens its own read-only SQLite connection) or
    an open store shared by the requests (PostgreSQL, tests). Routes never see it: they
    receive a `TenantReader` of the path's institution (`central.api.deps.ReaderDep`).

    `routers` (other modules' routes) are mounted behind the same `authorize()` dependency:
    a path parameter `iid` is scoped like the built-in routes, GETs need a viewer and writes
    an engineer. Their handlers may depend on `TenantDep` and `ReaderDep`.

    `metrics_edges`: `/metrics` lists the edges (site and edge labels) to any caller;
    off by default, when it carries only the central's own counters.

    `upload_limits`: request body limits per route, checked with authentication before any
    body is read (central/uploads.py)."""
    by_id = _checked(tenants)
    app = FastAPI(
        title="greenguard central", version=API_VERSION, docs_url=None, redoc_url=None,
        description="Compliance figures, telemetry, alarms and edge health of the "
                    "institutions this central serves. Every /api/v1 route needs "
                    "`Authorization: Bearer <token>`; see docs/api.md.")
    app.state.settings = ApiSettings(tenants=by_id, clock=clock, ingest_stats=ingest_stats,
                                     commands=commands, metrics_edges=metrics_edges)
    add_offline_docs(app)  # /docs and /redoc with their assets served here (central/apidocs.py)
    app.state.store_source = store  # read by central.api.deps only
    app.state.institution_ids = frozenset(by_id)  # read by central.auth.authorize
    app.state.auth = auth
    _error_answers(app)
    # Body size per route and authentication before any body is read (central/uploads.py).
    app.add_middleware(UploadGuard, limits=upload_limits or UploadLimits())

    app.include_router(health.router)  # public: /healthz
    app.include_router(page.router)  # the page's shell and assets: public, no data
    for router in (*ROUTERS, *routers):
        app.include_router(router, dependencies=[Depends(authorize())], responses=ERRORS)
    metrics = add_metrics_route(app, ingest_stats, store, edges=metrics_edges)  # central/prom.py
    include_notify(app, metrics, ERRORS)  # notifications (central/notify/routes.py)
    return app
