"""Open the configured store and ledger: embedded SQLite (default) or PostgreSQL.

One place for the choice, so the service, the report command and anything else that reads
figures open the same backend from the same settings (`--store`, GREENGUARD_STORE ...).
"""

from __future__ import annotations

from typing import cast

from central.config import CentralSettings
from central.ledger import Ledger, SqliteLedger
from central.store import Store
from central.storeport import IngestStore


def _postgres(settings: CentralSettings) -> tuple[str, str | None]:
    assert settings.postgres_dsn is not None  # backend_problems() refuses postgres without
    return settings.postgres_dsn, settings.postgres_secret()


def open_ingest_store(settings: CentralSettings) -> IngestStore:
    """The writer ingest stores batches through; applies PostgreSQL migrations."""
    if settings.store == "postgres":
        from central.pgstore import PgStore

        dsn, password = _postgres(settings)
        return PgStore(dsn, password=password)
    return Store(settings.database)


def open_reader(settings: CentralSettings) -> Store:
    """A read-only store for the API, compliance and reports. PgStore has every read of
    `Store` (the contract suite in tests/contracts checks both); the compliance code still
    annotates `Store`, hence the cast."""
    if settings.store == "postgres":
        from central.pgstore import PgStore

        dsn, password = _postgres(settings)
        return cast(Store, PgStore(dsn, password=password, readonly=True, migrate=False))
    return Store(settings.database, readonly=True)


def open_ledger(settings: CentralSettings) -> Ledger:
    if settings.store == "postgres":
        from central.pgledger import PgLedger

        dsn, password = _postgres(settings)
        return PgLedger(dsn, password=password)
    return SqliteLedger(settings.ledger_path)
