"""The central's HTTP API and built-in page (FastAPI).

Routes are plain `def`, so FastAPI runs them in its thread pool and a slow year-to-date
query never stalls MQTT ingest on the event loop. Given a database path, every request
opens its own read-only SQLite connection (WAL readers never block the writer); given a
`Store`, requests share it through its lock (tests, in-memory use).

"Now", "today" and "this year" come from the injected clock, never from the wall clock,
so a simulated institution shows simulated days.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from central.compliance import ComplianceReport
from central.config import InstitutionConfig
from central.errors import StoreError
from central.ingest import IngestStats
from central.overview import Overview, build_overview, compliance_for
from central.page import load_template, render_page
from central.profile import CoefficientProfile, check_profile
from central.store import Store
from protocols.clock import Clock

API_VERSION = "v1"


def _open_store(request: Request) -> Iterator[Store]:
    source: Store | str | Path = request.app.state.store
    if isinstance(source, Store):
        yield source
        return
    reader = Store(source, readonly=True)
    try:
        yield reader
    finally:
        reader.close()


StoreDep = Annotated[Store, Depends(_open_store)]


def create_app(
    store: Store | str | Path,
    institution: InstitutionConfig,
    profile: CoefficientProfile,
    clock: Clock,
    ingest_stats: IngestStats | None = None,
) -> FastAPI:
    """Build the app. Raises `ProfileError` if a configured meter cannot be converted."""
    check_profile(institution, profile)
    template = load_template()
    app = FastAPI(title="greenguard central", version=API_VERSION,
                  description="Compliance figures and live overview of one institution.")
    app.state.store = store

    def ingest_counters() -> dict[str, Any] | None:
        return ingest_stats.as_dict() if ingest_stats is not None else None

    def overview(db: Store) -> Overview:
        return build_overview(db, institution, profile, now=clock.now(),
                              ingest=ingest_counters())

    @app.exception_handler(StoreError)
    def _store_unavailable(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/healthz")
    def healthz(db: StoreDep) -> dict[str, Any]:
        db.ping()
        return {"status": "ok", "time": clock.now(), "institution": institution.institution.id,
                "mqtt_connected": ingest_stats.connected if ingest_stats else None}

    @app.get(f"/api/{API_VERSION}/compliance")
    def get_compliance(
        db: StoreDep,
        year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    ) -> ComplianceReport:
        now = clock.now()
        if year is None:
            year = datetime.fromtimestamp(now, institution.institution.tz).year
        return compliance_for(db, institution, profile, now=now, year=year)

    @app.get(f"/api/{API_VERSION}/overview")
    def get_overview(db: StoreDep) -> Overview:
        return overview(db)

    @app.get("/", response_class=HTMLResponse)
    def page(db: StoreDep) -> HTMLResponse:
        return HTMLResponse(render_page(template, overview(db)),
                            headers={"Cache-Control": "no-store"})

    return app
