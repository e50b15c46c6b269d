"""schemathesis against the API's own OpenAPI schema, over real HTTP (uvicorn on loopback)
with a central admin token: no generated request may produce a server error, and every
response must match the schema (status codes and bodies declared for the operation).

Lean on purpose: a few dozen examples per operation, no stateful phase; under a minute."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from central.api import Tenant, create_app
from central.auth import Authenticator, Role, TokenInfo, TokenStore
from central.commands import CommandBook, CommandService
from central.institution import parse_institution
from central.ledger import SqliteLedger
from central.profile import load_profile
from central.store import Store
from protocols.clock import VirtualClock
from tests.conftest import free_port
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET
from tests.unit.central.test_api import NOW, populate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IID = INSTITUTION["institution"]["id"]


class Recorder:
    """Commands are accepted and dropped: the MQTT path has its own integration test."""

    def publish(self, site: str, edge: str, command: object) -> None:
        pass


def build_app(db: Path, tokens: TokenStore) -> FastAPI:
    institution = parse_institution(INSTITUTION)
    return create_app(db, [Tenant(institution, load_profile("national"),
                                  SqliteLedger(":memory:"))],
                      VirtualClock(NOW), Authenticator(TEST_SECRET, tokens),
                      commands=CommandService(CommandBook(":memory:"), Recorder()))


# A central admin token known before the server starts, so the configuration can send it.
ADMIN = TokenInfo(id="5c4e0d2a9b7f1e36", name="schemathesis", role=Role.ADMIN,
                  institutions=None, created=NOW, expires=None, revoked=None)
ADMIN_TOKEN = jwt.encode({"jti": ADMIN.id, "sub": ADMIN.name, "iat": int(NOW)}, TEST_SECRET,
                         algorithm="HS256")
# The schema is what the app declares; it does not depend on data or tokens.
_SCHEMA_APP = build_app(Path("unused.sqlite"), TokenStore(":memory:"))
CONFIG = SchemathesisConfig.from_dict({
    "headers": {"Authorization": f"Bearer {ADMIN_TOKEN}"},
    "seed": 20251121,
    "suppress-health-check": ["too_slow", "filter_too_much"],
    "generation": {"max-examples": 25, "database": "none"},
    # Most requests target the institution that exists; the matrix test covers the others.
    "parameters": {"path.iid": IID},
})
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
schemathesis.serializer.alias(XLSX, "application/octet-stream")  # send the bytes as they are
schema = schemathesis.openapi.from_dict(_SCHEMA_APP.openapi(), config=CONFIG)


class Server:
    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()),
                                       name="uvicorn", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    work = tmp_path_factory.mktemp("schema")
    store = Store(work / "central.sqlite")
    populate(store)
    store.close()
    tokens = TokenStore(work / "auth.sqlite")
    tokens.add(ADMIN)
    app = build_app(work / "central.sqlite", tokens)
    raw = ADMIN_TOKEN
    with Server(app) as url:
        # The data is there and the token works before any generated request is sent.
        r = httpx.get(f"{url}/api/v1/institutions/{IID}/overview",
                      headers={"Authorization": f"Bearer {raw}"})
        assert r.status_code == 200
        assert r.json()["power_w"] == 20_000.0
        yield url, {"Authorization": f"Bearer {raw}"}
    tokens.close()


@schema.parametrize()
def test_no_server_error_and_responses_match_the_schema(
        case: Any, central: tuple[str, dict[str, str]]) -> None:
    url, _ = central
    case.call_and_validate(base_url=url,
                           checks=[not_a_server_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance])
