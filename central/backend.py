"""Open the configured store and ledger: embedded SQLite (default) or PostgreSQL.

One place for the choice, so the service, the report command and anything else that reads
figures open the same backend from the same settings (`--store`, GREENGUARD_STORE ...).
"""

from __future__ import annotations

from central.config import CentralSettings
from central.errors import ConfigError
from central.ledger import Ledger, SqliteLedger
from central.store import Store
from central.storeport import FullStore, StoreReader


def _postgres(settings: CentralSettings) -> tuple[str, str | None]:
    assert settings.postgres_dsn is not None  # backend_problems() refuses postgres without
    return settings.postgres_dsn, settings.postgres_secret()


def open_ingest_store(settings: CentralSettings, *,
                      rollup_timezone: str | None = None) -> FullStore:
    """The writer ingest stores batches through; applies PostgreSQL migrations.
    `rollup_timezone`: the zone of the SQLite store's daily rollup (central/rollup.py)."""
    if settings.store == "postgres":
        from central.pgstore import PgStore

        dsn, password = _postgres(settings)
        return PgStore(dsn, password=password)
    return Store(settings.database, rollup_timezone=rollup_timezone)


def open_reader(settings: CentralSettings) -> StoreReader:
    """A read-only store for the API, compliance and reports: either adapter behind the
    port's reads (the contract suite in tests/contracts checks both)."""
    if settings.store == "postgres":
        from central.pgstore import PgStore

        dsn, password = _postgres(settings)
        return PgStore(dsn, password=password, readonly=True, migrate=False)
    return Store(settings.database, readonly=True)


def open_ledger(settings: CentralSettings, institution: str | None = None, *,
                only: bool = True) -> Ledger:
    """The ledger of `institution`: one SQLite file per institution when the central serves
    several (`ledger_path_for`). The PostgreSQL ledger has no institution column yet, so a
    PostgreSQL central serves one institution (refused with `ConfigError` otherwise)."""
    if settings.store == "postgres":
        if not only:
            raise ConfigError("store", [("store", "postgres", "the PostgreSQL ledger serves "
                                         "one institution per database; run one central per "
                                         "institution or use the SQLite store")])
        from central.pgledger import PgLedger

        dsn, password = _postgres(settings)
        return PgLedger(dsn, password=password)
    if institution is None:
        return SqliteLedger(settings.ledger_path)
    return SqliteLedger(settings.ledger_path_for(institution, only=only))
