"""Liveness for load balancers: public, names no institution."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from central.api.deps import SettingsDep, ping_store

router = APIRouter(tags=["public"])


@router.get("/healthz", dependencies=[Depends(ping_store)])
def healthz(settings: SettingsDep) -> dict[str, Any]:
    """Liveness for load balancers; names no institution."""
    stats = settings.ingest_stats
    return {"status": "ok", "time": settings.clock.now(),
            "mqtt_connected": stats.connected if stats else None}
