"""`/docs` (Swagger UI) and `/redoc` served entirely by the central, for closed networks.

FastAPI's own pages load their scripts from a CDN and ReDoc's fonts from Google: on an
institution intranet they stay blank. Here the assets come from the `fastapi-offline`
package (used only for its files: swagger-ui-bundle.js, swagger-ui.css,
redoc.standalone.js, favicon.png) and are served under `/docs-assets/`. A
Content-Security-Policy limits both pages to this origin, so a page that tried to reach
elsewhere would fail in the browser as it would on the intranet, not only there.

Hook: `create_app` passes `docs_url=None, redoc_url=None` to FastAPI and calls
`add_offline_docs(app)`.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

ASSET_PREFIX = "/docs-assets"
ASSETS: dict[str, str] = {  # file of fastapi_offline/static → media type
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# Both pages start their viewer with an inline script, and ReDoc runs its search in a blob:
# worker; nothing may come from, or go to, another origin.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
       "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' "
       "blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}


# ReDoc's menu footer shows a "docs by Redocly" logo from their CDN: the one remote request
# the bundle makes. Served here with the logo pointing at our own icon instead.
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def read_asset(name: str) -> bytes:
    data = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    if name == "redoc.standalone.js":
        data = data.replace(REDOC_LOGO, f"{ASSET_PREFIX}/favicon.png".encode())
    return data


def add_offline_docs(app: FastAPI) -> None:
    """Add `/docs`, `/redoc` and their assets to an app created with docs_url=None and
    redoc_url=None. The assets are read once, here, so a broken install fails at start."""
    assets = {name: read_asset(name) for name in ASSETS}
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title

    def page(html: HTMLResponse) -> HTMLResponse:
        html.headers.update(HEADERS)
        return html

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return page(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} — API",
            swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{ASSET_PREFIX}/favicon.png",
            oauth2_redirect_url=None,
            # No badge from validator.swagger.io when the central is not on localhost.
            swagger_ui_parameters={"validatorUrl": None}))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return page(get_redoc_html(
            openapi_url=openapi_url, title=f"{title} — API",
            redoc_js_url=f"{ASSET_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSET_PREFIX}/favicon.png", with_google_fonts=False))

    @app.get(ASSET_PREFIX + "/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(status_code=404, detail=f"name: no such asset (got {name!r})")
        return Response(assets[name], media_type=ASSETS[name],
                        headers={**HEADERS, "Cache-Control": "public, max-age=86400"})
