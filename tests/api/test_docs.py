"""/docs and /redoc come with everything they load: public, out of the OpenAPI document, and
pointing at no other host. tests/system/test_docs_in_a_browser.py renders them in Chromium."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.assertions import problem
from tests.conftest import SqlStore, api_client, build_app
from todo_api.docs import ASSETS_URL

PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]
_REFERENCE = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture
async def http(sqlite_store: SqlStore) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(sqlite_store) as client:
        yield client


@pytest.mark.parametrize("page", PAGES)
async def test_a_docs_page_loads_nothing_from_another_host(http: httpx.AsyncClient, page: str) -> None:
    response = await http.get(page)  # no token: the pages are public
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert re.findall(r"(?:https?:)?//[\w.-]+", response.text) == []
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_everything_a_docs_page_references_is_served_here(http: httpx.AsyncClient, page: str) -> None:
    references = _REFERENCE.findall((await http.get(page)).text)
    assert references, "the page references no script, style or icon"
    for reference in references:
        asset = await http.get(reference)
        assert asset.status_code == 200, reference
        assert asset.content, reference
    assert any(reference.startswith(ASSETS_URL) and reference.endswith(".js") for reference in references)


async def test_swagger_ui_keeps_the_token_across_reloads(http: httpx.AsyncClient) -> None:
    assert '"persistAuthorization": true' in (await http.get("/docs")).text


async def test_redoc_loads_no_web_fonts(http: httpx.AsyncClient) -> None:
    assert "fonts.googleapis" not in (await http.get("/redoc")).text


async def test_docs_pages_follow_a_proxys_root_path(sqlite_store: SqlStore) -> None:
    app, _ = build_app(sqlite_store)
    transport = httpx.ASGITransport(app=app, root_path="/todo")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        swagger_ui = (await http.get("/todo/docs")).text
        redoc = (await http.get("/todo/redoc")).text
        asset = await http.get(f"/todo{ASSETS_URL}/swagger-ui.css")
    assert f'href="/todo{ASSETS_URL}/swagger-ui.css"' in swagger_ui
    assert "url: '/todo/openapi.json'" in swagger_ui
    assert "oauth2RedirectUrl: window.location.origin + '/todo/docs/oauth2-redirect'" in swagger_ui
    assert f'src="/todo{ASSETS_URL}/redoc.standalone.js"' in redoc
    assert 'spec-url="/todo/openapi.json"' in redoc
    assert asset.status_code == 200


async def test_docs_assets_are_cached_for_good_and_compressed(http: httpx.AsyncClient) -> None:
    asset = await http.get(f"{ASSETS_URL}/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert asset.headers["content-encoding"] == "gzip"
    assert len(asset.content) > 1_000_000  # httpx decoded it
    raw = await http.get(f"{ASSETS_URL}/swagger-ui.css", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers


async def test_an_unknown_asset_is_a_404_problem(http: httpx.AsyncClient) -> None:
    problem(await http.get(f"{ASSETS_URL}/no-such-file.js"), 404)
    problem(await http.get("/docs/assets/0.0.0/swagger-ui-bundle.js"), 404)
