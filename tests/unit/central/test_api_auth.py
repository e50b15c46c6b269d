"""The authorisation matrix (RELIABILITY.md scenario 20), generated from the app's route
table: every route × every role × own / other / missing institution, and every way a token
can be bad (none, malformed, `alg=none`, HS512 with the right secret, wrong signature,
expired, unknown id, revoked, not a Bearer scheme). A route added without the auth
dependency, or with a parameter this test cannot fill, fails here."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from central.api import Tenant, TenantDep, create_app
from central.auth import Authenticator, Role, TokenStore
from central.commands import CommandBook, CommandRequest, CommandService
from central.institution import InstitutionConfig, parse_institution
from central.notify.config import parse_notify
from central.notify.notifier import AlarmSignal, Notifier
from central.notify.queue import NotifyQueue
from central.profile import CoefficientProfile
from central.store import Store
from protocols.clock import VirtualClock
from tests.unit.central.central_helpers import INSTITUTION, TEST_SECRET, local_ts

NOW = local_ts(2025, 7, 2, 12, 0)
OWN, OTHER, MISSING = "demo-school", "other-school", "no-such-school"
# Reachable without a token, on purpose: the page shell, liveness, the schema and viewers.
# /metrics is the Prometheus exporter's (central/prom.py), mounted by the lead.
PUBLIC = {"/", "/district", "/assets/{name}", "/healthz", "/metrics", "/openapi.json", "/docs",
          "/redoc", "/docs-assets/{name}",
          "/notify/ack/{episode}"}  # the signed acknowledgement link (central/notify/routes.py)
# A valid value for every parameter a route may require; a new required parameter that is
# missing here fails the test instead of being skipped.
SAMPLE_PARAMS: dict[str, Any] = {
    "name": "dashboard.js",  # /assets/{name}: the page's script, public like the page
    "year": 2025, "number": 1, "start": "2025-07-01", "end": "2025-07-02",
    "edge": "edge-1", "device": "meter-a", "point": "power_w", "kind": "bill",
    "report": "monthly", "period": "2025-07",
}
SAMPLE_BODIES: dict[str, Any] = {
    "/api/v1/tokens": {"name": "matrix", "role": "viewer", "institutions": [OWN]},
    "/api/v1/institutions/{iid}/commands": {
        "edge": "edge-1", "name": "override.clear", "args": {"override_id": "c-1"}},
    "/api/v1/institutions/{iid}/notify/mutes": {
        "edge": "edge-1", "device": "meter-a", "minutes": 60, "reason": "matrix"},
}
EDGES = {OWN: "edge-1", OTHER: "edge-9", MISSING: "edge-1"}


class Recorder:
    def publish(self, site: str, edge: str, command: object) -> None:
        pass


def other_institution() -> InstitutionConfig:
    doc = json.loads(json.dumps(INSTITUTION))
    doc["institution"] = {"id": OTHER, "name": "另一所学校 Other School", "type": "school"}
    for m in doc["meters"]:
        m["edge"] = "edge-9"
    return parse_institution(doc)


@dataclass
class World:
    app: FastAPI
    auth: Authenticator
    client: httpx.AsyncClient
    command_ids: dict[str, str]
    episode_ids: dict[str, str]

    def token(self, role: Role, institutions: list[str] | None) -> str:
        return self.auth.issue(f"matrix {role}", role, institutions)[1]


def matrix_notifier(tmp_path: Path) -> tuple[Notifier, dict[str, str]]:
    """A notifier with one alarm episode per institution (for the notification routes)."""
    notifier = Notifier(parse_notify({}), {}, NotifyQueue(tmp_path / "notify.sqlite"),
                        VirtualClock(NOW), link_secret=TEST_SECRET.encode())
    ids = {}
    for iid in (OWN, OTHER):
        notifier.observe([AlarmSignal(institution=iid, edge=EDGES[iid], device="meter-a",
                                      kind="leak", state="raised", ts_ms=int(NOW * 1000))])
        [episode] = notifier.queue.episodes(iid)
        ids[iid] = episode.id
    ids[MISSING] = ids[OWN]
    return notifier, ids


@pytest.fixture
async def world(store: Store, institution: InstitutionConfig, profile: CoefficientProfile,
                tmp_path: Path) -> AsyncIterator[World]:
    auth = Authenticator(TEST_SECRET, TokenStore(":memory:"), now=lambda: NOW)
    book = CommandBook(":memory:")
    commands = CommandService(book, Recorder())
    command_ids = {iid: commands.send(
        institution=iid, site="site-1", created_by="matrix", now_ms=int(NOW * 1000),
        request=CommandRequest.model_validate({**SAMPLE_BODIES[
            "/api/v1/institutions/{iid}/commands"], "edge": EDGES[iid]})).id
        for iid in (OWN, OTHER)}
    command_ids[MISSING] = command_ids[OWN]
    app = create_app(store, [Tenant(institution, profile), Tenant(other_institution(), profile)],
                     VirtualClock(NOW), auth, commands=commands)
    app.state.notifier, episode_ids = matrix_notifier(tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        yield World(app, auth, c, command_ids, episode_ids)
    app.state.notifier.close()
    auth.tokens.close()
    book.close()


@dataclass(frozen=True)
class Route:
    path: str  # as served, router prefixes included
    api: APIRoute  # the declared route: its parameters


def routes(app: FastAPI) -> list[tuple[str, str, Route]]:
    """Every (method, path) the app serves, from FastAPI's effective route table (routers
    included); the schema viewers are plain Starlette routes and count too."""
    out = []
    for ctx in iter_route_contexts(app.routes):
        path, methods = ctx.path, ctx.methods or set()
        assert path is not None
        original = ctx.original_route
        if not isinstance(original, APIRoute):
            assert path in PUBLIC, f"{path}: a non-API route outside the public list"
            continue
        out.extend((m, path, Route(path, original)) for m in sorted(methods - {"HEAD"}))
    return out


def required_role(method: str, path: str) -> Role:
    """The matrix's own statement of who may do what (not read from the app)."""
    if path.startswith("/api/v1/tokens"):
        return Role.ADMIN
    if path.endswith(("/notify/deliveries", "/notify/audit")):  # recipients' addresses
        return Role.ENGINEER
    return Role.ENGINEER if method in ("POST", "PUT", "PATCH", "DELETE") else Role.VIEWER


def request_for(world: World, method: str, route: Route, iid: str) -> dict[str, Any]:
    path = route.path
    for name in route.api.param_convertors:
        if name == "iid":
            value = iid
        elif name == "command_id":
            value = world.command_ids[iid]
        elif name == "episode":
            value = world.episode_ids[iid]
        elif name == "token_id":
            value = world.auth.issue("victim", Role.VIEWER, [OWN])[0].id
        else:
            assert name in SAMPLE_PARAMS, f"{route.path}: no sample value for {{{name}}}"
            value = SAMPLE_PARAMS[name]
        path = path.replace(f"{{{name}}}", str(value))
    query = {}
    for p in route.api.dependant.query_params:
        if p.field_info.is_required():
            assert p.name in SAMPLE_PARAMS, f"{route.path}: no sample value for ?{p.name}"
            query[p.name] = SAMPLE_PARAMS[p.name]
            if p.name == "edge":
                query[p.name] = EDGES[iid]
        elif p.name in ("number",):
            query[p.name] = SAMPLE_PARAMS[p.name]
    kwargs: dict[str, Any] = {"method": method, "url": path, "params": query}
    if method == "POST":
        if route.path in SAMPLE_BODIES:
            kwargs["json"] = SAMPLE_BODIES[route.path]
            if "edge" in kwargs["json"]:
                kwargs["json"] = {**kwargs["json"], "edge": EDGES[iid]}
        elif route.path.endswith("/import"):
            kwargs["content"] = b"ref,vehicle,day,litres,km\n"
        else:
            kwargs["json"] = []
    return kwargs


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(world: World) -> dict[str, dict[str, str]]:
    admin_info, _ = world.auth.issue("to be forged", Role.ADMIN)
    claims = {"jti": admin_info.id, "sub": "x", "iat": int(NOW)}
    revoked_info, revoked = world.auth.issue("revoked", Role.ADMIN)
    world.auth.tokens.revoke(revoked_info.id, now=NOW)
    expired = Authenticator(TEST_SECRET, world.auth.tokens, now=lambda: NOW - 7200).issue(
        "expired", Role.ADMIN, ttl_s=3600)[1]
    forms = {
        "malformed": "not-a-jwt",
        "garbage segments": "a.b.c",
        "alg=none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.",
        "alg=none, signature kept": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
                                    + jwt.encode(claims, TEST_SECRET).split(".")[2],
        "HS512 with the right secret": jwt.encode(claims, TEST_SECRET, algorithm="HS512"),
        "wrong secret": jwt.encode(claims, "another-" + TEST_SECRET, algorithm="HS256"),
        "unsigned claims tampered": jwt.encode(claims, TEST_SECRET).rsplit(".", 1)[0] + ".",
        "expired": expired,
        "unknown id": jwt.encode({**claims, "jti": "feedfacecafe0000"}, TEST_SECRET),
        "revoked": revoked,
    }
    headers = {name: {"Authorization": f"Bearer {raw}"} for name, raw in forms.items()}
    headers["no header"] = {}
    headers["basic scheme"] = {"Authorization": f"Basic {base64.b64encode(b'a:b').decode()}"}
    headers["empty bearer"] = {"Authorization": "Bearer "}
    return headers


async def test_every_route_role_institution_and_bad_token(world: World) -> None:
    table = routes(world.app)
    assert len(table) >= 20, "the route table looks empty"
    roles = {r: world.token(r, [OWN]) for r in Role}
    central_admin = world.token(Role.ADMIN, None)
    failures: list[str] = []
    checked = 0

    async def call(kwargs: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        nonlocal checked
        checked += 1
        return await world.client.request(**kwargs, headers=headers)

    for method, path, route in table:
        if path in PUBLIC:
            r = await call(request_for(world, method, route, OWN), {})
            if r.status_code in (401, 403) or r.status_code >= 500:
                failures.append(f"public {method} {path}: {r.status_code}")
            continue
        needed = required_role(method, path)
        for name, headers in bad_tokens(world).items():
            r = await call(request_for(world, method, route, OWN), headers)
            if r.status_code != 401:
                failures.append(f"{method} {path} with {name}: {r.status_code}, not 401")
            elif "WWW-Authenticate" not in r.headers:
                failures.append(f"{method} {path} with {name}: no WWW-Authenticate")
        for role, raw in roles.items():
            auth = {"Authorization": f"Bearer {raw}"}
            r = await call(request_for(world, method, route, OWN), auth)
            allowed = role.allows(needed) and not path.startswith("/api/v1/tokens")
            if allowed and (r.status_code in (401, 403, 404) or r.status_code >= 500):
                failures.append(f"{method} {path} as {role} (own): {r.status_code} {r.text}")
            if not allowed and r.status_code != 403:
                failures.append(f"{method} {path} as {role} (own): {r.status_code}, not 403")
            if "{iid}" in path:
                other = await call(request_for(world, method, route, OTHER), auth)
                missing = await call(request_for(world, method, route, MISSING), auth)
                if other.status_code != 404 or missing.status_code != 404:
                    failures.append(f"{method} {path} as {role}: other institution "
                                    f"{other.status_code}, missing {missing.status_code}")
                elif (other.json()["detail"].replace(OTHER, "?")
                      != missing.json()["detail"].replace(MISSING, "?")):
                    failures.append(f"{method} {path}: other and missing institutions "
                                    "answer differently")
        r = await call(request_for(world, method, route, OTHER),
                       {"Authorization": f"Bearer {central_admin}"})
        if r.status_code in (401, 403, 404) or r.status_code >= 500:
            failures.append(f"{method} {path} as central admin: {r.status_code} {r.text}")
    assert not failures, "\n".join(failures)
    assert checked > 20 * 15


async def test_every_non_public_route_declares_the_bearer_scheme(world: World) -> None:
    schema = (await world.client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            if path in PUBLIC:
                assert "security" not in op, (method, path)
            else:
                assert op.get("security") == [{"HTTPBearer": []}], (method, path)


async def test_revocation_takes_effect_on_the_next_request(world: World) -> None:
    info, raw = world.auth.issue("soon revoked", Role.VIEWER, [OWN])
    headers = {"Authorization": f"Bearer {raw}"}
    url = f"/api/v1/institutions/{OWN}/buildings"
    assert (await world.client.get(url, headers=headers)).status_code == 200
    admin = {"Authorization": f"Bearer {world.token(Role.ADMIN, None)}"}
    r = await world.client.delete(f"/api/v1/tokens/{info.id}", headers=admin)
    assert r.status_code == 200
    assert r.json()["revoked"] is not None
    r = await world.client.get(url, headers=headers)
    assert r.status_code == 401
    assert r.json()["detail"] == "unauthorised: token revoked"


async def test_institution_list_shows_only_the_tokens_institutions(world: World) -> None:
    viewer = {"Authorization": f"Bearer {world.token(Role.VIEWER, [OWN])}"}
    admin = {"Authorization": f"Bearer {world.token(Role.ADMIN, None)}"}
    both = {"Authorization": f"Bearer {world.token(Role.VIEWER, [OWN, OTHER])}"}
    ids = lambda r: [i["id"] for i in r.json()]  # noqa: E731
    assert ids(await world.client.get("/api/v1/institutions", headers=viewer)) == [OWN]
    assert ids(await world.client.get("/api/v1/institutions", headers=admin)) == [OWN, OTHER]
    assert ids(await world.client.get("/api/v1/institutions", headers=both)) == [OWN, OTHER]
    me = (await world.client.get("/api/v1/whoami", headers=viewer)).json()
    assert (me["role"], me["institutions"]) == ("viewer", [OWN])


async def test_token_api_creates_a_working_scoped_token(world: World) -> None:
    admin = {"Authorization": f"Bearer {world.token(Role.ADMIN, None)}"}
    r = await world.client.post("/api/v1/tokens", headers=admin, json={
        "name": "energy office", "role": "engineer", "institutions": [OTHER]})
    assert r.status_code == 201
    created = r.json()
    assert created["institutions"] == [OTHER]
    mine = {"Authorization": f"Bearer {created['token']}"}
    assert (await world.client.get(f"/api/v1/institutions/{OTHER}",
                                   headers=mine)).status_code == 200
    assert (await world.client.get(f"/api/v1/institutions/{OWN}",
                                   headers=mine)).status_code == 404
    listed = (await world.client.get("/api/v1/tokens", headers=admin)).json()
    assert created["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)  # the secret form is never listed
    r = await world.client.post("/api/v1/tokens", headers=admin, json={
        "name": "x", "role": "viewer", "institutions": [MISSING]})
    assert r.status_code == 422
    assert MISSING in r.json()["detail"]
    r = await world.client.post("/api/v1/tokens", headers=admin, json={
        "name": "x", "role": "root"})
    assert r.status_code == 422
    assert "role" in r.text
    assert "root" in r.text


async def test_a_mounted_router_is_secured_by_the_same_dependency(
        store: Store, institution: InstitutionConfig, profile: CoefficientProfile) -> None:
    extra = APIRouter(prefix="/api/v1/institutions/{iid}/extra")

    @extra.get("")
    def read(t: TenantDep) -> dict[str, str]:
        return {"institution": t.id}

    @extra.post("")
    def write(t: TenantDep) -> dict[str, str]:
        return {"institution": t.id}

    auth = Authenticator(TEST_SECRET, TokenStore(":memory:"))
    app = create_app(store, [Tenant(institution, profile), Tenant(other_institution(), profile)],
                     VirtualClock(NOW), auth, routers=[extra])
    viewer = {"Authorization": f"Bearer {auth.issue('v', Role.VIEWER, [OWN])[1]}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        assert (await c.get(f"/api/v1/institutions/{OWN}/extra")).status_code == 401
        r = await c.get(f"/api/v1/institutions/{OWN}/extra", headers=viewer)
        assert r.json() == {"institution": OWN}
        assert (await c.get(f"/api/v1/institutions/{OTHER}/extra",
                            headers=viewer)).status_code == 404
        assert (await c.post(f"/api/v1/institutions/{OWN}/extra",
                             headers=viewer)).status_code == 403
    assert {p for _, p, _ in routes(app)} >= {"/api/v1/institutions/{iid}/extra"}
