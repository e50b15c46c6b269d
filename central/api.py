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
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from central.compliance import ComplianceReport, year_window
from central.config import InstitutionConfig
from central.entries import add_entries, import_file
from central.errors import EntryError, ReportError, StoreError
from central.ingest import IngestStats
from central.ledger import EntryKind, Ledger, SqliteLedger
from central.metrics import PeriodMetrics, hazardous_balance, period_metrics, waste_monthly
from central.overview import Overview, build_overview, compliance_for
from central.page import load_template, render_page
from central.profile import CoefficientProfile, check_profile
from central.prom import add_metrics_route
from central.report_output import produce
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
    ledger: Ledger | None = None,
) -> FastAPI:
    """Build the app. Raises `ProfileError` if a configured meter cannot be converted.

    `ledger` holds bills, fuel and waste entries; without one the app keeps them in memory
    (tests, a demo), which the service never does."""
    check_profile(institution, profile)
    book: Ledger = ledger if ledger is not None else SqliteLedger(":memory:")
    tz = institution.institution.tz
    template = load_template()
    app = FastAPI(title="greenguard central", version=API_VERSION,
                  description="Compliance figures and live overview of one institution.")
    app.state.store = store

    def ingest_counters() -> dict[str, Any] | None:
        return ingest_stats.as_dict() if ingest_stats is not None else None

    def overview(db: Store) -> Overview:
        return build_overview(db, institution, profile, now=clock.now(),
                              ingest=ingest_counters(), ledger=book)

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
        return compliance_for(db, institution, profile, now=now, year=year, ledger=book)

    @app.get(f"/api/{API_VERSION}/metrics")
    def get_metrics(
        db: StoreDep,
        start: Annotated[date, Query(description="first local day")],
        end: Annotated[date, Query(description="day after the last (exclusive)")],
        building: str | None = None,
    ) -> PeriodMetrics:
        if end <= start:
            raise ReportError(f"end: must be after start (got {end.isoformat()})")
        if building is not None and building not in {b.id for b in institution.buildings}:
            raise ReportError(f"building: unknown building (got {building!r})")
        s = datetime(start.year, start.month, start.day, tzinfo=tz).timestamp()
        e = datetime(end.year, end.month, end.day, tzinfo=tz).timestamp()
        return period_metrics(db, book, institution, profile, start=s,
                              end=min(e, max(s, clock.now())), building=building)

    @app.post(f"/api/{API_VERSION}/ledger/{{kind}}")
    def post_entries(kind: EntryKind,
                     entries: Annotated[list[dict[str, Any]], Body()]) -> dict[str, int]:
        result = add_entries(book, kind, entries, institution, profile)
        return {"inserted": result.inserted, "updated": result.updated,
                "unchanged": result.unchanged}

    @app.post(f"/api/{API_VERSION}/ledger/{{kind}}/import")
    async def import_entries(kind: EntryKind, request: Request,
                             format: Literal["csv", "xlsx"] = "csv") -> dict[str, int]:
        data = await request.body()
        result = import_file(book, kind, data, format, institution, profile,
                             source=f"{kind} import")
        return {"inserted": result.inserted, "updated": result.updated,
                "unchanged": result.unchanged}

    @app.get(f"/api/{API_VERSION}/waste")
    def get_waste(year: Annotated[int, Query(ge=2000, le=2100)]) -> dict[str, Any]:
        s, e = year_window(tz, year)
        e = min(e, max(s, clock.now()))
        clearances = book.clearances(s, e)
        return {"year": year,
                "monthly": [w.model_dump() for w in waste_monthly(clearances, tz)],
                "hazardous": [h.model_dump() for h in hazardous_balance(book.hazardous(s, e))],
                "clearances": [c.model_dump(mode="json") for c in clearances]}

    @app.get(f"/api/{API_VERSION}/reports/{{report}}")
    def get_report(
        db: StoreDep,
        report: Literal["monthly", "quarterly", "annual", "ledger", "scoring"],
        year: Annotated[int, Query(ge=2000, le=2100)],
        number: Annotated[int | None, Query(ge=1, le=12,
                                            description="month or quarter")] = None,
        lang: Literal["zh", "en"] = "zh",
        format: Literal["html", "pdf", "xlsx", "json"] = "html",
    ) -> Response:
        content, media, name = produce(db, book, institution, profile, report=report,
                                       fmt=format, year=year, number=number, lang=lang,
                                       now=clock.now())
        return Response(content, media_type=media, headers={
            "Content-Disposition": f'inline; filename="{name}"'})

    @app.get(f"/api/{API_VERSION}/overview")
    def get_overview(db: StoreDep) -> Overview:
        return overview(db)

    @app.get("/", response_class=HTMLResponse)
    def page(db: StoreDep) -> HTMLResponse:
        return HTMLResponse(render_page(template, overview(db)),
                            headers={"Cache-Control": "no-store"})

    add_metrics_route(app, ingest_stats, store)  # GET /metrics (central/prom.py)
    return app
