"""`/docs` and `/redoc` work on a closed network: every script, style and image they name
is served by the central itself, and their Content-Security-Policy allows no other origin."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from central.api import Tenant, create_app
from central.apidocs import ASSETS
from central.institution import InstitutionConfig
from central.profile import CoefficientProfile
from central.store import Store
from protocols.clock import VirtualClock
from tests.unit.central.central_helpers import authenticator
from tests.unit.central.test_api import NOW, http


@pytest.fixture
async def client(store: Store, institution: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, [Tenant(institution, profile)], VirtualClock(NOW), authenticator())
    async with http(app) as c:
        yield c


@pytest.mark.parametrize(("page", "script"), [("/docs", "swagger-ui-bundle.js"),
                                              ("/redoc", "redoc.standalone.js")])
async def test_the_api_pages_load_only_from_the_central(
        client: httpx.AsyncClient, page: str, script: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    html = r.text
    # No absolute URL anywhere in the page (no CDN, no Google Fonts, no remote favicon).
    assert re.findall(r"(?:https?:)?//[\w.-]+", html) == []
    referenced = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    referenced += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
    assert f"/docs-assets/{script}" in referenced
    assert "/openapi.json" in html
    for url in referenced:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0, url


async def test_every_asset_is_served_with_its_type(client: httpx.AsyncClient) -> None:
    for name, media in ASSETS.items():
        r = await client.get(f"/docs-assets/{name}")
        assert r.status_code == 200
        assert r.headers["content-type"] == media
    missing = await client.get("/docs-assets/../../etc/passwd")
    assert missing.status_code == 404
    assert (await client.get("/docs-assets/nope.js")).status_code == 404


async def test_the_viewers_request_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    redoc = (await client.get("/docs-assets/redoc.standalone.js")).content
    assert b"cdn.redoc.ly" not in redoc
    assert '"validatorUrl": null' in (await client.get("/docs")).text
