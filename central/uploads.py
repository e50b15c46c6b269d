"""Request bodies that cannot freeze or exhaust the central (issue 20, item 4).

An ASGI middleware in front of the whole app, so it acts before FastAPI reads or parses
anything:

1. **Authentication before the body.** A request with a body to `/api/v1/…` is answered
   401 from its `Authorization` header alone: an 84 MB body without a valid token is never
   read. The verified principal is handed on (`request.state.principal`), so the route's
   `authorize()` dependency does not verify twice; roles and institution scope stay there.
2. **A size limit per route**, checked against `Content-Length` before a byte of the body
   is read, and counted while the body streams in (chunked requests, or a client that
   lies): 413 with the limit and the route in the message.

The ledger import itself (central/entries.py) then spools the body to a temporary file and
parses it in a worker thread with streaming readers, the row cap and the XLSX
decompression check enforced while reading.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from fastapi import HTTPException, Request

from central.auth import Authenticator, AuthError
from central.entries import ImportResult, import_rows
from central.institution import InstitutionConfig
from central.ledger import EntryKind, Ledger
from central.profile import CoefficientProfile

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MiB = 1 << 20
DEFAULT_BODY_LIMIT = 2 * MiB  # JSON bodies: 10,000 ledger entries fit several times
DEFAULT_IMPORT_LIMIT = 32 * MiB  # CSV/XLSX imports: 100,000 rows of a few fields
IMPORT_ROUTE = r"^/api/v1/institutions/[^/]+/ledger/[^/]+/import$"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class UploadLimits:
    """Bytes allowed per request body: the first pattern matching the path wins, else
    `default`. Patterns are regular expressions on the URL path."""

    default: int = DEFAULT_BODY_LIMIT
    routes: tuple[tuple[str, int], ...] = ((IMPORT_ROUTE, DEFAULT_IMPORT_LIMIT),)
    protected_prefix: str = "/api/v1/"
    _compiled: list[tuple[re.Pattern[str], int]] = field(default_factory=list, init=False,
                                                         repr=False, compare=False)

    @classmethod
    def of(cls, default: int = DEFAULT_BODY_LIMIT, imports: int = DEFAULT_IMPORT_LIMIT,
           extra: Iterable[tuple[str, int]] = ()) -> UploadLimits:
        return cls(default=default, routes=(*extra, (IMPORT_ROUTE, imports)))

    def limit_for(self, path: str) -> int:
        if not self._compiled:
            self._compiled.extend((re.compile(p), n) for p, n in self.routes)
        for pattern, limit in self._compiled:
            if pattern.search(path):
                return limit
        return self.default


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the streamed body passes the limit. An HTTPException, so
    FastAPI's body reader passes it on (it turns other errors into a 400) and the app
    answers 413; the middleware answers itself if the exception reaches it."""

    def __init__(self, limit: int, path: str) -> None:
        super().__init__(status_code=413, detail=_too_large(limit, path, None)["detail"])
        self.limit = limit
        self.path = path


def _too_large(limit: int, path: str, length: int | None) -> dict[str, Any]:
    got = "" if length is None else f" (Content-Length {length})"
    return {"detail": f"request body too large{got}: at most {limit} bytes "
                      f"({limit / MiB:.1f} MiB) for {path}; split the file or raise the "
                      "limit (GREENGUARD_HTTP_MAX_IMPORT_BYTES / "
                      "GREENGUARD_HTTP_MAX_BODY_BYTES)"}


async def _answer(send: Send, status: int, body: dict[str, Any],
                  headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": payload})


class UploadGuard:
    """The middleware. `auth` is looked up on the app state at request time when not
    given (the app sets `state.auth`)."""

    def __init__(self, app: ASGIApp, limits: UploadLimits,
                 auth: Callable[[], Authenticator | None] = lambda: None) -> None:
        self.app = app
        self.limits = limits
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limits.limit_for(path)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        length: int | None = None
        raw_length = headers.get(b"content-length")
        if raw_length is not None:
            try:
                length = int(raw_length)
            except ValueError:
                await _answer(send, 400, {"detail": f"Content-Length: not a number "
                                                    f"(got {raw_length[:20]!r})"})
                return
        if path.startswith(self.limits.protected_prefix):
            refused = self._authenticate(scope, headers)
            if refused is not None:
                await _answer(send, 401, {"detail": f"unauthorised: {refused}"},
                              [(b"www-authenticate", b'Bearer realm="greenguard"')])
                return
        if length is not None and length > limit:
            await _answer(send, 413, _too_large(limit, path, length))
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit, path)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except BodyTooLarge as exc:
            if not started:
                await _answer(send, 413, _too_large(exc.limit, exc.path, None))

    def _authenticate(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        """None if the bearer token is valid (the principal goes to `scope["state"]`),
        else the reason for the 401."""
        auth = self.auth()
        if auth is None:
            app = scope.get("app")
            auth = getattr(getattr(app, "state", None), "auth", None)
        if auth is None:
            return None  # nothing to check against: the route's dependency decides
        value = headers.get(b"authorization", b"").decode("latin-1").strip()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "missing bearer token"
        try:
            principal = auth.verify(token.strip())
        except AuthError as exc:
            return exc.reason
        scope.setdefault("state", {})["principal"] = principal
        return None


SPOOL_IN_MEMORY = 1 * MiB  # larger bodies go to a temporary file while they arrive


async def import_upload(request: Request, ledger: Ledger, kind: EntryKind, fmt: str,
                        institution: InstitutionConfig, profile: CoefficientProfile
                        ) -> ImportResult:
    """Spool the body (already size-checked by `UploadGuard`) to a temporary file, then
    read, validate and store it in a worker thread: the event loop, which also runs MQTT
    ingest and its acks, only copies bytes."""
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        body = cast(BinaryIO, spool)  # file-like enough for csv, zipfile and openpyxl
        return await asyncio.to_thread(import_rows, ledger, kind, body, fmt,
                                       institution, profile, source=f"{kind} import")
