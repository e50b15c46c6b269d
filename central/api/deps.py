"""The API's shared dependencies, as `Annotated` types a route names in its signature.

    SettingsDep   the app's settings and services (`ApiSettings`)
    TenantDep     the institution of the path (`iid`): configuration, coefficients, ledger
    DistrictDep   a tenant-bound reader for each institution the token sees (district view)
    ReaderDep     the store bound to that institution (`central.reader.TenantReader`): the
                  only way a route reads telemetry, events and edges
    PrincipalDep  the caller's verified token (GETs need a viewer, writes an engineer)
    EngineerDep   a caller with at least the engineer role
    CentralAdminDep  an admin of every institution (token management)
    CentralCountersDep  the ingest counters, or null for a token that does not see every
                  institution of the central

`central.auth.authorize()` runs before any of these on every `/api/v1` route, and answers
404 for an institution the token may not see, so `TenantDep` only ever resolves the caller's
own institution. No dependency hands a route the store itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam

from central.api.models import IID_PATTERN
from central.auth import Principal, Role, authorize, require_all_institutions
from central.commands import CommandService
from central.district import Member
from central.ingest import IngestStats
from central.institution import InstitutionConfig
from central.ledger import Ledger, SqliteLedger
from central.profile import CoefficientProfile
from central.reader import TenantReader, edges_of
from central.store import Store
from central.storeport import StoreReader
from protocols.clock import Clock

__all__ = ["ApiSettings", "CentralAdminDep", "CentralCountersDep", "CommandsDep", "DistrictDep",
           "EngineerDep", "IidParam", "PrincipalDep", "ReaderDep", "SettingsDep", "Tenant",
           "TenantDep", "ping_store"]

IidParam = Annotated[str, PathParam(pattern=IID_PATTERN, description="institution id",
                                    examples=["demo-school"])]


@dataclass(frozen=True)
class Tenant:
    """One institution served by the central: its configuration, coefficients and ledger."""

    config: InstitutionConfig
    profile: CoefficientProfile
    ledger: Ledger = field(default_factory=lambda: SqliteLedger(":memory:"))

    def __post_init__(self) -> None:
        if self.ledger.institution not in (None, self.id):  # a ledger bound to another
            raise ValueError(f"tenant {self.id!r} given the ledger of "
                             f"{self.ledger.institution!r}")

    @property
    def id(self) -> str:
        return self.config.institution.id

    @property
    def edges(self) -> frozenset[str]:
        return edges_of(self.config)


@dataclass(frozen=True)
class ApiSettings:
    """What the routes share: the institutions, the clock and services; not the store (a
    route reads through `ReaderDep` only). `metrics_edges`: serve the edges' labels on
    `/metrics` without a token (the operator's choice; see docs/monitoring.md)."""

    tenants: dict[str, Tenant]
    clock: Clock
    ingest_stats: IngestStats | None = None
    commands: CommandService | None = None
    metrics_edges: bool = False

    def ingest(self) -> dict[str, Any] | None:
        return self.ingest_stats.as_dict() if self.ingest_stats is not None else None


def _settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[ApiSettings, Depends(_settings)]


def _open_store(request: Request) -> Iterator[StoreReader]:
    """Given a path, one read-only SQLite connection per request (WAL readers never block
    the writer); given an open store (or PgStore), the shared one. The source is kept apart
    from `ApiSettings` (`app.state.store_source`), out of the routes' reach."""
    source: StoreReader | str | Path = request.app.state.store_source
    if not isinstance(source, str | Path):
        yield source
        return
    reader = Store(source, readonly=True)
    try:
        yield reader
    finally:
        reader.close()


def ping_store(store: Annotated[StoreReader, Depends(_open_store)]) -> None:
    """Liveness: raises `StoreError` (503) when the store cannot be read."""
    store.ping()


def _tenant(settings: SettingsDep, iid: IidParam) -> Tenant:
    return settings.tenants[iid]  # `authorize` already answered 404 for a hidden one


TenantDep = Annotated[Tenant, Depends(_tenant)]


def _reader(store: Annotated[StoreReader, Depends(_open_store)], tenant: TenantDep
            ) -> TenantReader:
    return TenantReader(store, tenant.config)


ReaderDep = Annotated[TenantReader, Depends(_reader)]


def _members(store: Annotated[StoreReader, Depends(_open_store)], settings: SettingsDep,
             principal: Annotated[Principal, Depends(authorize())]) -> list[Member]:
    """The district view's institutions: one tenant-bound reader per institution the token
    sees (central/district.py), never the store."""
    return [Member(TenantReader(store, t.config), t.profile, t.ledger)
            for iid, t in settings.tenants.items() if principal.sees(iid)]


DistrictDep = Annotated[list[Member], Depends(_members)]
PrincipalDep = Annotated[Principal, Depends(authorize())]
EngineerDep = Annotated[Principal, Depends(authorize(Role.ENGINEER))]
CentralAdminDep = Annotated[Principal, Depends(require_all_institutions)]


def _central_counters(settings: SettingsDep, principal: PrincipalDep
                      ) -> dict[str, Any] | None:
    """The ingest counters, to a token that sees every institution of the central: they
    count every institution's messages, so a token of one institution among several gets
    null (it would learn how much the others send)."""
    sees_all = principal.institutions is None or principal.institutions >= settings.tenants.keys()
    return settings.ingest() if sees_all else None


CentralCountersDep = Annotated[dict[str, Any] | None, Depends(_central_counters)]


def commands_of(settings: SettingsDep) -> CommandService:
    if settings.commands is None:
        raise HTTPException(status_code=503, detail="commands are not enabled on this central")
    return settings.commands


CommandsDep = Annotated[CommandService, Depends(commands_of)]
