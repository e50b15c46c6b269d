"""Bearer tokens for the central's API: signed, scoped per institution, revocable.

A token is an HS256 JWT carrying only its id (`jti`), a name (`sub`), issue time and an
optional expiry; its role and institutions live in the central's token table (a SQLite file,
or the database a PostgreSQL central's workers share), read on every request. So revoking a
token (or the whole table being lost) takes effect on the next request, and a token cannot
grant itself more than its row says.

What is refused, always with 401 and no detail beyond the reason class: no token, a token
that is not a JWT, a header naming any algorithm but HS256 (`alg=none` included), a wrong
signature, an expired token, an unknown or revoked id.

Scoping: a token lists the institutions it may see, or none for "all of them" (an admin of
the central). A request for an institution outside the token's list gets 404, exactly like
an institution that does not exist: a token for school A cannot even learn that B is served
by the same central. Within its institutions, a token below the route's role gets 403.

The check is a FastAPI dependency (`authorize`), so an `APIRouter(dependencies=[...])`
secures every route mounted on it, and route code never handles scoping or roles.
"""

from __future__ import annotations

import enum
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from central.errors import ConfigError, StoreError
from central.sqlitefile import SqliteFile

ALGORITHM = "HS256"
MIN_SECRET_LENGTH = 32
# Strings that mark a secret copied from an example instead of generated.
_PLACEHOLDERS = ("change", "placeholder", "example", "secret", "insecure", "default", "xxxx",
                 "your", "todo", "password")


class Role(enum.StrEnum):
    """viewer < engineer < admin: reads, writes and commands, token management."""

    VIEWER = "viewer"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 1, Role.ENGINEER: 2, Role.ADMIN: 3}


class AuthError(Exception):
    """A token that does not authenticate; `reason` is safe to show to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    name: str
    role: Role
    institutions: tuple[str, ...] | None  # None: every institution of the central
    created: float
    expires: float | None
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None and (self.expires is None or self.expires > time.time())

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role.value,
                "institutions": None if self.institutions is None else list(self.institutions),
                "created": self.created, "expires": self.expires, "revoked": self.revoked}


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request, after the token was verified and found active."""

    token_id: str
    name: str
    role: Role
    institutions: frozenset[str] | None

    def sees(self, institution: str) -> bool:
        return self.institutions is None or institution in self.institutions


def check_secret(secret: str | None, *, source: str = "settings") -> str:
    """The signing secret, or `ConfigError` if it is missing, short or a placeholder."""
    field = "auth_secret"
    if secret is None or not secret.strip():
        raise ConfigError(source, [(field, None, "missing: set GREENGUARD_AUTH_SECRET or "
                                    "--auth-secret-file to a generated value, e.g. the output "
                                    "of `openssl rand -base64 48`")])
    lowered = secret.lower()
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(source, [(field, f"<{len(secret)} characters>",
                                    f"too short: at least {MIN_SECRET_LENGTH} characters")])
    if any(p in lowered for p in _PLACEHOLDERS) or len(set(secret)) < 12:
        raise ConfigError(source, [(field, "<hidden>", "looks like a placeholder, not a "
                                    "generated secret; generate one with "
                                    "`openssl rand -base64 48`")])
    return secret


def generate_secret() -> str:
    while True:  # a random draw may, very rarely, contain a placeholder word
        candidate = secrets.token_urlsafe(48)
        try:
            return check_secret(candidate)
        except ConfigError:
            continue


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, institutions TEXT,
    created REAL NOT NULL, expires REAL, revoked REAL);
"""


class TokenTable(Protocol):
    """Where tokens live: `TokenStore` (a SQLite file of one central) or, for the workers of
    a PostgreSQL central, which must all know every token, `central.pgstate.PgTokenStore`."""

    def add(self, info: TokenInfo) -> None: ...
    def get(self, token_id: str) -> TokenInfo | None: ...
    def all(self) -> list[TokenInfo]: ...
    def revoke(self, token_id: str, *, now: float) -> bool:
        """Mark revoked; False if there is no such token. Twice keeps the first time."""
        ...
    def close(self) -> None: ...


def token_info(row: Sequence[Any]) -> TokenInfo:
    """A token from its row (id, name, role, institutions JSON, created, expires, revoked)."""
    tid, name, role, inst, created, expires, revoked = row
    return TokenInfo(id=tid, name=name, role=Role(role),
                     institutions=None if inst is None else tuple(json.loads(inst)),
                     created=created, expires=expires, revoked=revoked)


def token_row(info: TokenInfo) -> tuple[Any, ...]:
    """The row of `info`, in `token_info`'s column order."""
    return (info.id, info.name, info.role.value,
            None if info.institutions is None else json.dumps(list(info.institutions)),
            info.created, info.expires, info.revoked)


class TokenStore(SqliteFile):
    """The token table in its own SQLite file (the central's state directory)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA, "token store")

    _info = staticmethod(token_info)

    def add(self, info: TokenInfo) -> None:
        self._run("INSERT INTO tokens (id, name, role, institutions, created, expires, revoked)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)", token_row(info))

    def get(self, token_id: str) -> TokenInfo | None:
        rows = self._run("SELECT id, name, role, institutions, created, expires, revoked "
                         "FROM tokens WHERE id = ?", (token_id,))
        return self._info(rows[0]) if rows else None

    def all(self) -> list[TokenInfo]:
        return [self._info(r) for r in self._run(
            "SELECT id, name, role, institutions, created, expires, revoked FROM tokens "
            "ORDER BY created, id")]

    def revoke(self, token_id: str, *, now: float) -> bool:
        """Mark revoked; False if there is no such token. Revoking twice keeps the first time."""
        with self._lock:
            try:
                cur = self._conn.execute(
                    "UPDATE tokens SET revoked = COALESCE(revoked, ?) WHERE id = ?",
                    (now, token_id))
            except sqlite3.Error as exc:
                raise StoreError("token store", str(exc)) from exc
            return cur.rowcount > 0


class Authenticator:
    """Issues and verifies tokens. Expiry is wall-clock time (not the simulated clock of the
    demo): a token's lifetime is about people, not about the data."""

    def __init__(self, secret: str, tokens: TokenTable,
                 now: Callable[[], float] = time.time) -> None:
        self._secret = check_secret(secret)
        self.tokens = tokens
        self._now = now

    def issue(self, name: str, role: Role, institutions: Iterable[str] | None = None, *,
              ttl_s: float | None = None) -> tuple[TokenInfo, str]:
        """Store a new token and return it with its signed form (shown once, never stored)."""
        now = self._now()
        scope = None if institutions is None else tuple(sorted(set(institutions)))
        info = TokenInfo(id=secrets.token_hex(8), name=name, role=role, institutions=scope,
                         created=now, expires=None if ttl_s is None else now + ttl_s,
                         revoked=None)
        self.tokens.add(info)
        claims: dict[str, Any] = {"jti": info.id, "sub": name, "iat": int(now)}
        if info.expires is not None:
            claims["exp"] = int(info.expires)
        return info, jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, raw: str) -> Principal:
        try:
            claims = jwt.decode(raw, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["jti", "iat"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError("algorithm not allowed (only HS256)") from None
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        jti = claims.get("jti")
        info = self.tokens.get(jti) if isinstance(jti, str) else None
        if info is None:
            raise AuthError("unknown token")
        if info.revoked is not None:
            raise AuthError("token revoked")
        if info.expires is not None and info.expires <= self._now():
            raise AuthError("token expired")
        return Principal(token_id=info.id, name=info.name, role=info.role,
                         institutions=None if info.institutions is None
                         else frozenset(info.institutions))


# -- FastAPI dependency -------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="A token from `greenguard central "
                    "token create` or POST /api/v1/tokens.")
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INSTITUTION_PARAM = "iid"


def _unauthorised(reason: str) -> HTTPException:
    return HTTPException(status_code=401, detail=f"unauthorised: {reason}",
                         headers={"WWW-Authenticate": 'Bearer realm="greenguard"'})


def not_found(iid: str) -> HTTPException:
    """The same answer for an institution that does not exist and one the token cannot see."""
    return HTTPException(status_code=404, detail=f"institution {iid!r} not found")


def authorize(role: Role | None = None) -> Callable[..., Principal]:
    """A dependency that authenticates the bearer token, hides institutions outside its
    scope (404 for the path parameter `iid`) and demands `role` (403 below it). Without a
    role, reads (GET, HEAD) need a viewer and writes (POST, PUT, PATCH, DELETE) an engineer.

    The app must have `state.auth` (an `Authenticator`) and `state.institution_ids`."""

    def dependency(request: Request,
                   credentials: Annotated[HTTPAuthorizationCredentials | None,
                                          Depends(bearer)]) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            if credentials is None or credentials.scheme.lower() != "bearer":
                raise _unauthorised("missing bearer token")
            auth: Authenticator = request.app.state.auth
            try:
                principal = auth.verify(credentials.credentials)
            except AuthError as exc:
                raise _unauthorised(exc.reason) from None
            request.state.principal = principal
        iid = request.path_params.get(INSTITUTION_PARAM)
        if iid is not None and (iid not in request.app.state.institution_ids
                                or not principal.sees(iid)):
            raise not_found(iid)
        needed = role if role is not None else (
            Role.ENGINEER if request.method in _WRITE_METHODS else Role.VIEWER)
        if not principal.role.allows(needed):
            raise HTTPException(status_code=403,
                                detail=f"forbidden: needs role {needed.value}, "
                                       f"token has {principal.role.value}")
        return principal

    return dependency


def require_all_institutions(
        principal: Annotated[Principal, Depends(authorize(Role.ADMIN))]) -> Principal:
    """Token management: an admin of the whole central, not of one institution (an
    institution admin could otherwise mint a token for another institution)."""
    if principal.institutions is not None:
        raise HTTPException(status_code=403, detail="forbidden: needs an admin token for "
                            "every institution of the central")
    return principal
