"""Open the configured store and ledger: embedded SQLite (default) or PostgreSQL.

One place for the choice, so the service, the report command and anything else that reads
figures open the same backend from the same settings (`--store`, GREENGUARD_STORE ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from central.config import CentralSettings
from central.ledger import Ledger, SqliteLedger
from central.store import Store
from central.storeport import FullStore, StoreReader

if TYPE_CHECKING:
    from central.auth import TokenTable
    from central.commands import CommandTable


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
    several (`ledger_path_for`); on PostgreSQL that institution's rows of the one shared
    ledger (central/pgledger.py; `only`: rows from before institutions are its own)."""
    if settings.store == "postgres":
        if institution is None:
            raise ValueError("a PostgreSQL ledger is opened for one institution")
        from central.pgledger import PgLedger

        dsn, password = _postgres(settings)
        return PgLedger(dsn, institution, password=password,
                        legacy_owner=institution if only else None)
    if institution is None:
        return SqliteLedger(settings.ledger_path)
    return SqliteLedger(settings.ledger_path_for(institution, only=only))


def open_ledgers(settings: CentralSettings, institutions: Sequence[str]) -> list[Ledger]:
    """The ledger of each institution the central serves, in order; on PostgreSQL they
    share one connection."""
    if settings.store == "postgres":
        from central.pgledger import PgLedger

        dsn, password = _postgres(settings)
        return list(PgLedger.open_many(dsn, institutions, password=password))
    return [open_ledger(settings, iid, only=len(institutions) == 1) for iid in institutions]


def open_tokens(settings: CentralSettings) -> TokenTable:
    """The API's token table: `auth_path` on SQLite; on PostgreSQL the shared database, so
    every worker knows every token (central/pgstate.py), with the tokens of an older
    central's SQLite file copied in."""
    if settings.store == "postgres":
        from central.pgstate import PgTokenStore

        dsn, password = _postgres(settings)
        return PgTokenStore(dsn, password=password, adopt=settings.auth_path)
    from central.auth import TokenStore

    return TokenStore(settings.auth_path)


def open_commands(settings: CentralSettings) -> CommandTable:
    """The sent commands: `<db>.commands.sqlite`, or the shared PostgreSQL database (that
    file's commands copied in)."""
    if settings.store == "postgres":
        from central.pgstate import PgCommandBook

        dsn, password = _postgres(settings)
        return PgCommandBook(dsn, password=password, adopt=_commands_file(settings))
    from central.commands import CommandBook

    return CommandBook(_commands_file(settings))


def _commands_file(settings: CentralSettings) -> Path:
    return settings.database.with_name(settings.database.stem + ".commands.sqlite")
