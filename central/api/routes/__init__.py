"""One module per resource, each with a module-level `router`; `central.api.app` mounts them
behind `authorize()` in the order of `ROUTERS`."""

from __future__ import annotations

from fastapi import APIRouter

from central.api.routes import (
    carbon,
    commands,
    comparisons,
    compliance,
    cost,
    dashboard,
    devices,
    district,
    events,
    institutions,
    ledger,
    reports,
    savings,
    statreturn,
    telemetry,
    tokens,
    upload,
)

ROUTERS: tuple[APIRouter, ...] = (
    institutions.router, devices.router, telemetry.router, events.router, compliance.router,
    ledger.router, reports.router, dashboard.router, commands.router, tokens.router,
    upload.router, statreturn.router, cost.router, carbon.router, savings.router,
    comparisons.router, district.router)

__all__ = ["ROUTERS"]
