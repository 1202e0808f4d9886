"""Every problem `type` the service answers with can be opened, and says what it means and what
to do (RFC 9457, 3.1.1); a problem the code can emit but the registry does not explain fails here."""

from __future__ import annotations

import ast
import inspect
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from pathlib import Path

import httpx
import pytest

import todo_api
from tests.api.assertions import problem
from tests.conftest import Caller, SqlStore, api_client, bearer
from todo_api import problems
from todo_api.docs import ASSETS_URL
from todo_api.problem_types import PROBLEM_TYPES, ProblemType

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.fixture
async def http(sqlite_store: SqlStore) -> AsyncIterator[httpx.AsyncClient]:
    """The app, without a token: the pages do not touch the database, one backend will do."""
    async with api_client(sqlite_store) as client:
        yield client


@pytest.mark.parametrize("name", list(PROBLEM_TYPES))
async def test_each_problem_type_explains_itself_to_a_program(http: httpx.AsyncClient, name: str) -> None:
    registered = PROBLEM_TYPES[name]
    response = await http.get(registered.uri)  # no token: the pages are public
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["vary"] == "Accept"
    assert response.json() == {
        "type": f"/problems/{name}",
        "name": name,
        "status": registered.status,
        "title": HTTPStatus(registered.status).phrase,
        "meaning": registered.meaning,
        "remedy": registered.remedy,
    }


@pytest.mark.parametrize("name", list(PROBLEM_TYPES))
async def test_each_problem_type_explains_itself_to_a_browser_and_a_terminal(
    http: httpx.AsyncClient, name: str
) -> None:
    registered = PROBLEM_TYPES[name]
    page = await http.get(registered.uri, headers={"Accept": BROWSER_ACCEPT})
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert f"{registered.status} {HTTPStatus(registered.status).phrase}: {name}</h1>" in page.text
    assert page.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    text = await http.get(registered.uri, headers={"Accept": "text/plain"})
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.text.startswith(f"{name}: {registered.status} ")
    assert registered.meaning in text.text
    assert registered.remedy in text.text


async def test_the_list_names_every_problem_type(http: httpx.AsyncClient) -> None:
    listed = await http.get("/problems")
    assert [item["name"] for item in listed.json()] == list(PROBLEM_TYPES)
    page = (await http.get("/problems", headers={"Accept": BROWSER_ACCEPT})).text
    for registered in PROBLEM_TYPES.values():
        assert f'<a href="{registered.uri}">{registered.name}</a>' in page
    text = (await http.get("/problems", headers={"Accept": "text/plain"})).text
    assert len(text.splitlines()) == len(PROBLEM_TYPES)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        (BROWSER_ACCEPT, "text/html"),
        ("text/*", "text/html"),
        ("text/plain", "text/plain"),
        ("text/plain, */*", "text/plain"),
        ("application/json;q=0.5, text/plain;q=0.9", "text/plain"),
        ("text/html;q=0, */*", "application/json"),
        ("image/png", "application/json"),  # nothing acceptable: JSON rather than a 406
        ("text/html;q=nonsense, text/plain", "text/plain"),
    ],
)
async def test_the_representation_follows_accept(http: httpx.AsyncClient, accept: str | None, media_type: str) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = await http.get("/problems/conflict", headers=headers)
    assert response.headers["content-type"].split(";")[0] == media_type


async def test_a_page_escapes_what_it_shows(http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = ProblemType("hostile", 400, "<script>alert(1)</script> & `<b>code</b>`", 'Say "no" <img src=x>.')
    monkeypatch.setitem(PROBLEM_TYPES, "hostile", hostile)
    page = (await http.get("/problems/hostile", headers={"Accept": "text/html"})).text
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; <code>&lt;b&gt;code&lt;/b&gt;</code>" in page
    listing = (await http.get("/problems", headers={"Accept": "text/html"})).text
    assert "<script>" not in listing


async def test_an_unknown_problem_type_is_a_404_problem(http: httpx.AsyncClient) -> None:
    body = problem(await http.get("/problems/no-such-problem"), 404)
    assert body["type"] == "/problems/not-found"


def test_every_domain_error_has_a_documented_type() -> None:
    for status, slug in problems._DOMAIN_STATUSES.values():
        assert slug in PROBLEM_TYPES, slug
        assert PROBLEM_TYPES[slug].status == status, slug


# Functions that pass problem_response a slug computed at run time; each is covered below.
_COMPUTED_SLUGS = {"domain_problem", "_http_error"}


def test_every_problem_the_code_builds_is_documented() -> None:
    """Every `problem_response(status, "slug", ...)` in todo_api names a registered type of that status."""
    package = Path(inspect.getfile(todo_api)).parent
    found = []
    for module in sorted(package.rglob("*.py")):
        for function in ast.walk(ast.parse(module.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "problem_response"):
                    continue
                where = f"{module.name}:{call.lineno}"
                status, slug = call.args[:2]
                if isinstance(slug, ast.Constant):
                    assert isinstance(status, ast.Constant), where
                    assert slug.value in PROBLEM_TYPES, f"{where}: /problems/{slug.value} is not in problem_types.py"
                    assert PROBLEM_TYPES[slug.value].status == status.value, where
                    found.append(slug.value)
                else:
                    assert function.name in _COMPUTED_SLUGS, f"{where}: a computed problem type; test its values"
    assert {"malformed-json", "validation-error", "internal-error"} <= set(found)


async def test_every_problem_type_the_app_answers_with_resolves(
    client: httpx.AsyncClient, caller: Callable[[], Caller]
) -> None:
    """The framework's own errors (no route, wrong method, a body it cannot read) too."""
    alice, bob = caller(), caller()
    task = await alice.create_task()
    answers = [
        await client.get("/no/such/route"),
        await client.post("/healthz"),
        await client.get(f"{ASSETS_URL}/no-such-file.js"),
        await client.post(f"{ASSETS_URL}/swagger-ui.css"),
        await client.get(alice.url("/tasks")),
        await client.get(alice.url("/tasks"), headers=bearer(bob.id)),
        await alice.request("POST", "/tags"),
        await alice.request("GET", f"/tasks/{task['id']}0"),
        await alice.request("GET", "/tasks/00000000-0000-0000-0000-000000000000"),
        await alice.request("GET", "/tasks", params={"cursor": "not-a-cursor"}),
        await alice.request("GET", "/changes", params={"since": "not-a-token"}),
        await alice.request("POST", "/tasks", json={"title": ""}),
        await alice.request("POST", "/tasks", content=b"{", headers={"Content-Type": "application/json"}),
        await alice.request(
            "POST", "/tasks", content=b'{"title": "\xff"}', headers={"Content-Type": "application/json"}
        ),
        await alice.request("PUT", f"/tasks/{task['id']}", json={"title": "t"}, headers={"If-Match": '"99"'}),
        await alice.request("POST", "/tasks", content=b"x" * 10_000_000, headers={"Content-Type": "application/json"}),
    ]
    types = {}
    for answer in answers:
        assert answer.status_code >= 400, answer.request.url
        assert answer.headers["content-type"] == "application/problem+json", answer.request.url
        types[answer.json()["type"]] = answer.status_code
    for uri, status in types.items():
        explained = await client.get(uri)
        assert explained.status_code == 200, f"{uri} does not resolve"
        assert explained.json()["status"] == status, uri
    assert len(types) >= 10
