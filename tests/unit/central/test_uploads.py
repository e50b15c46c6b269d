"""Uploads that cannot freeze or exhaust the central (central/uploads.py, entries.py): size
limits before parsing, authentication before the body, streamed imports with the row cap
and the zip-bomb check while reading, and GBK/GB18030 CSV from Chinese Excel."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from central import entries
from central.api import Tenant, create_app
from central.errors import EntryError
from central.institution import InstitutionConfig, parse_institution
from central.ledger import SqliteLedger
from central.profile import CoefficientProfile
from central.store import Store
from central.uploads import UploadLimits
from protocols.clock import VirtualClock
from tests.unit.central.central_helpers import authenticator, bearer, local_ts
from tests.unit.central.registry_helpers import SCHOOL
from tests.uploadfiles import many_rows_xlsx

BASE = f"/api/v1/institutions/{SCHOOL['institution']['id']}/"
IMPORT = BASE + "ledger/fuel/import"
FUEL_CSV = "ref,vehicle,day,litres,km,note\nr-1,car-1,2025-02-03,120,1500,加油站 中石化\n"


@pytest.fixture
def app(store: Store, profile: CoefficientProfile) -> Any:
    school: InstitutionConfig = parse_institution(SCHOOL)
    auth = authenticator()
    application = create_app(store, [Tenant(school, profile, SqliteLedger(":memory:"))],
                             VirtualClock(local_ts(2025, 4, 1)), auth,
                             upload_limits=UploadLimits.of(default=4096, imports=64 * 1024))
    application.state.test_headers = bearer(auth)
    return application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test", headers=app.state.test_headers) as c:
        yield c


async def raw_asgi(app: Any, path: str, headers: list[tuple[bytes, bytes]],
                   body_size: int) -> tuple[int, dict[str, Any], int]:
    """POST through the ASGI interface with a body that counts how much of it was read."""
    read = 0
    chunks = [b"x" * 65536] * (body_size // 65536)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        if chunks:
            chunk = chunks.pop()
            read += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"format=csv", "root_path": "",
             "headers": [(b"host", b"test"), *headers], "client": ("127.0.0.1", 1),
             "server": ("test", 80)}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body), read


async def test_a_large_body_without_a_token_is_refused_before_it_is_read(app: Any) -> None:
    size = 84 * 1024 * 1024
    status, body, read = await raw_asgi(app, IMPORT, [
        (b"content-length", str(size).encode())], size)
    assert (status, read) == (401, 0)  # from the headers alone
    assert body["detail"] == "unauthorised: missing bearer token"
    token = app.state.test_headers["Authorization"].encode()
    status, body, read = await raw_asgi(app, IMPORT, [
        (b"authorization", token), (b"content-length", str(size).encode())], size)
    assert (status, read) == (413, 0)  # the size is known from the header
    assert "at most 65536 bytes" in body["detail"]
    status, body, read = await raw_asgi(app, BASE + "ledger/fuel", [
        (b"authorization", b"Bearer not-a-token")], 8 * 65536)
    assert (status, read) == (401, 0)  # chunked, no length: still no body read
    assert body["detail"] == "unauthorised: malformed token"


async def test_streamed_bodies_are_cut_at_the_limit(client: httpx.AsyncClient) -> None:
    async def chunks(n: int) -> AsyncIterator[bytes]:
        for _ in range(n):
            yield b"ref,vehicle\n" * 1000

    r = await client.post(IMPORT, content=chunks(100), params={"format": "csv"})
    assert r.status_code == 413, r.text
    assert "at most 65536 bytes" in r.json()["detail"]
    r = await client.post(BASE + "ledger/fuel", content=chunks(10),
                          headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text  # a JSON route: FastAPI's reader passes it on
    r = await client.post(BASE + "ledger/fuel", content=b"[" + b" " * 5000 + b"]",
                          headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "Content-Length 5002" in r.json()["detail"]


async def test_gbk_csv_from_chinese_excel_is_accepted_and_reported(
        client: httpx.AsyncClient) -> None:
    r = await client.post(IMPORT, content=FUEL_CSV.encode("gbk"), params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"inserted": 1, "updated": 0, "unchanged": 0, "rows": 1,
                        "encoding": "gb18030"}
    r = await client.post(IMPORT, content=b"\xef\xbb\xbf" + FUEL_CSV.encode(),
                          params={"format": "csv"})
    assert r.json()["encoding"] == "utf-8-sig"
    assert r.json()["unchanged"] == 1  # the same row, read the same either way
    r = await client.post(IMPORT, content=b"ref,vehicle\n\x81\x20\xff,car-1\n",
                          params={"format": "csv"})
    assert r.status_code == 422
    assert "UTF-8 or GBK/GB18030" in r.json()["detail"]


def test_the_row_cap_stops_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entries, "MAX_ROWS", 5)
    read = []

    class Counting(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            data = super().read(n)
            read.append(len(data))
            return data

    data = ("ref,vehicle\n" + "r,car-1\n" * 200_000).encode()
    _, rows = entries.iter_csv(Counting(data), "fuel import")
    sniffed = sum(read)
    with pytest.raises(EntryError, match="more than 5 rows"):
        list(rows)
    assert sum(read) - sniffed < len(data)  # parsing stopped long before the end
    with pytest.raises(EntryError, match="more than 5 rows"):
        entries.parse_xlsx(many_rows_xlsx(50), "fuel import")


def test_a_zip_bomb_workbook_is_refused_before_parsing() -> None:
    bomb = many_rows_xlsx(1_000_000)
    assert len(bomb) < 400_000
    with pytest.raises(EntryError, match="possible zip bomb") as exc:
        entries.parse_xlsx(bomb, "fuel import")
    assert "xl/worksheets/sheet1.xml" in str(exc.value)
