"""The built-in dashboard's page shell and its assets, served from the package.

The shell at `/` is public and carries no data: the page's script reads the figures from
`/api/v1/institutions/{iid}/dashboard` (central/dashboard.py) with `fetch()`, sending
`Authorization: Bearer` when it has a token (given once as `#token=…` in the address, then
kept in localStorage).

Everything the page needs is in central/web/ and served here, never from a CDN: institution
networks are often closed. The Content-Security-Policy makes that a rule the browser
enforces: scripts, styles and requests only from this origin, no inline script.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

ASSETS: dict[str, str] = {  # file in central/web/ → media type
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
    "counters.html": "text/html; charset=utf-8",  # what the ingest counters mean
    "district.js": "text/javascript; charset=utf-8",  # the district view (/district)
    "district.css": "text/css; charset=utf-8",
}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def read_asset(name: str) -> bytes:
    return resources.files("central").joinpath("web", name).read_bytes()


@functools.cache
def _files() -> tuple[bytes, dict[str, bytes]]:
    """The shell and the assets, read once per process."""
    return read_asset("index.html"), {name: read_asset(name) for name in ASSETS}


@functools.cache
def _district() -> bytes:
    return read_asset("district.html")


router = APIRouter(tags=["page"])


@router.get("/", include_in_schema=False)
def page() -> Response:
    return Response(_files()[0], media_type="text/html; charset=utf-8",
                    headers={**HEADERS, "Cache-Control": "no-cache"})


@router.get("/district", include_in_schema=False)
def district_page() -> Response:
    """The district view's shell (central/district.py): no data, like `/`."""
    return Response(_district(), media_type="text/html; charset=utf-8",
                    headers={**HEADERS, "Cache-Control": "no-cache"})


@router.get("/assets/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    assets = _files()[1]
    if name not in assets:
        raise HTTPException(status_code=404, detail=f"name: no such asset (got {name!r})")
    return Response(assets[name], media_type=ASSETS[name],
                    headers={**HEADERS, "Cache-Control": "no-cache"})
