"""The page shell and its assets (central/page.py, central/web/): public, data-free, served
from the package under a strict Content-Security-Policy, and both languages complete."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from central.api import Tenant, create_app
from central.institution import InstitutionConfig
from central.page import ASSETS, read_asset
from central.profile import CoefficientProfile
from central.store import Store
from protocols.clock import VirtualClock
from tests.unit.central.central_helpers import authenticator


@pytest.fixture
async def client(store: Store, institution: InstitutionConfig,
                 profile: CoefficientProfile) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(store, [Tenant(institution, profile)], VirtualClock(1_750_000_000.0),
                     authenticator())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test") as c:
        yield c


async def test_the_shell_is_public_and_carries_no_data(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "'unsafe-inline'" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "示范中学" not in r.text  # the institution's name comes with the data
    assert '<script src="assets/dashboard.js" defer></script>' in r.text
    assert not re.search(r"<script>(?!\s*$)", r.text)  # no inline script (the CSP forbids it)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text)  # nothing from the net


@pytest.mark.parametrize("name", sorted(ASSETS))
async def test_assets_are_served_from_the_package(client: httpx.AsyncClient,
                                                  name: str) -> None:
    r = await client.get(f"/assets/{name}")
    assert r.status_code == 200
    assert r.headers["content-type"] == ASSETS[name]
    assert r.content == read_asset(name)
    body = r.text.replace("http://www.w3.org/2000/svg", "")
    assert "http://" not in body
    assert "https://" not in body


@pytest.mark.parametrize("name", ["index.html", "../api.py", "nope.js", "dashboard.JS"])
async def test_anything_else_under_assets_is_not_found(client: httpx.AsyncClient,
                                                       name: str) -> None:
    r = await client.get(f"/assets/{name}")
    assert r.status_code == 404


def _dictionary(js: str, lang: str) -> set[str]:
    start = js.index(f"    {lang}: {{")
    end = js.index("\n    }", start)
    return set(re.findall(r"(?:^|[{,\s])([a-z_]+):\s*\"", js[start + 8:end], re.M))


def test_both_languages_have_every_text_the_page_uses() -> None:
    js = read_asset("dashboard.js").decode()
    html = read_asset("index.html").decode()
    zh, en = _dictionary(js, "zh"), _dictionary(js, "en")
    assert len(zh) > 80
    assert zh == en, (zh ^ en)
    used = set(re.findall(r"\bt\(\"([a-z_]+)\"", js))
    used |= set(re.findall(r"empty\(\"[a-z-]+\", \"([a-z_]+)\"\)", js))
    used |= set(re.findall(r'data-i18n="([a-z_]+)"', html))
    used |= set(re.findall(r'setStatus\("([a-z_]+)"', js))
    assert used, "no text found: the patterns above are stale"
    assert "kind_" in used  # built from the alarm's kind: every contracted kind has a text
    used = {u for u in used if not u.endswith("_")}
    used |= {f"kind_{k}" for k in ("leak", "lights_on", "bin_full", "actuation_failed")}
    assert used <= zh, used - zh
