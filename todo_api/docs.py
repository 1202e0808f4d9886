"""Interactive documentation, Swagger UI at /docs and ReDoc at /redoc, that needs no network but
the service's own: their scripts and styles come from the `fastapi-offline` package and are
served from here, so the pages work on an intranet and offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from importlib.metadata import version

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# Versioned, so a browser may keep each file for good: an upgrade changes the URLs.
ASSETS_URL = f"/docs/assets/{version('fastapi-offline')}"

_SWAGGER_UI_PARAMETERS = {
    # Keep the pasted token across reloads of the page (in the browser's local storage, for this
    # origin only); tokens are short-lived, and *Logout* forgets it.
    "persistAuthorization": True,
}
#: The security scheme of the OpenAPI document (todo_api/openapi.py) that a demo token fills.
BEARER_SCHEME = "HTTPBearer"
#: Where the page's Swagger UI configuration takes one more option (FastAPI's template).
_SWAGGER_PRESETS = "    presets: ["
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class _ImmutableAssets(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def install_docs(app: FastAPI, demo_token: Callable[[], str] | None = None) -> None:
    """Serve /docs, /redoc and their assets, none in the OpenAPI document and none needing a
    token. The app must be made with `docs_url=None, redoc_url=None`.

    `demo_token`, in development mode only, mints a token that Swagger UI is authorised with as
    soon as it has loaded the document, so that *Try it out* works at once."""
    assets = _ImmutableAssets(packages=[("fastapi_offline", "static")])
    app.mount(ASSETS_URL, GZipMiddleware(assets), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_ui_parameters=_SWAGGER_UI_PARAMETERS,
        )
        if demo_token is not None:
            page = _preauthorized(page, demo_token())
        return _own_origin_only(page)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return _own_origin_only(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return _own_origin_only(
            get_redoc_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )


def _preauthorized(page: HTMLResponse, token: str) -> HTMLResponse:
    """The page, authorised with `token` once Swagger UI has the document (its
    `preauthorizeApiKey` fills any scheme, bearer ones too, and needs the document loaded)."""
    html = bytes(page.body).decode()
    if _SWAGGER_PRESETS not in html:
        raise RuntimeError("Swagger UI's page no longer has the shape this code extends")
    on_complete = f"    onComplete: () => ui.preauthorizeApiKey({json.dumps(BEARER_SCHEME)}, {json.dumps(token)}),\n"
    # A page that holds a token is not kept by any cache.
    return HTMLResponse(
        html.replace(_SWAGGER_PRESETS, on_complete + _SWAGGER_PRESETS, 1), headers={"Cache-Control": "no-store"}
    )


def _root_path(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _own_origin_only(page: HTMLResponse) -> HTMLResponse:
    """Let the page load nothing from elsewhere: ReDoc's bundle shows a logo from its vendor's
    CDN, whatever its options say, and a page that cannot reach the network must not try. Its
    own inline scripts run (by hash); styles may be inline, as both UIs inject them."""
    scripts = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; base-uri 'none'; form-action 'none'"
    )
    return page
