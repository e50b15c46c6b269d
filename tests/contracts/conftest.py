"""Contract fixtures: every test here runs once per backend, SQLite and PostgreSQL.

`store` and `ledger` are fresh and empty for each test; `reopen_store` opens the same
database again (a restart). PostgreSQL is one server per session with a new database per
test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from central.ledger import Ledger, SqliteLedger
from central.pgledger import PgLedger
from central.pgstore import PgStore
from central.store import Store
from central.storeport import FullStore
from tests.contracts.pg import APP_PASSWORD, PgServer, postgres_server

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def reopen_store(backend: str, request: pytest.FixtureRequest,
                 tmp_path: Path) -> Iterator[Callable[..., FullStore]]:
    """Opens the test's database (created on first call); closes everything at the end."""
    opened: list[FullStore] = []
    if backend == "sqlite":
        path = tmp_path / "central.sqlite"

        def open_store(readonly: bool = False) -> FullStore:
            s: FullStore = Store(path, readonly=readonly)
            opened.append(s)
            return s
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        dsn = server.dsn(server.create_database())

        def open_store(readonly: bool = False) -> FullStore:
            s = PgStore(dsn, password=APP_PASSWORD, readonly=readonly)
            opened.append(s)
            return s
    yield open_store
    for s in opened:
        s.close()


@pytest.fixture
def store(reopen_store: Callable[..., FullStore]) -> FullStore:
    return reopen_store()


@pytest.fixture
def ledger(backend: str, request: pytest.FixtureRequest) -> Iterator[Ledger]:
    book: Ledger
    if backend == "sqlite":
        book = SqliteLedger(":memory:")
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        book = PgLedger(server.dsn(server.create_database()), "school",
                        password=APP_PASSWORD)
    yield book
    book.close()
