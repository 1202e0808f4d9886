"""Calls from browsers on other origins (CORS), over HTTP as a browser makes them: preflights and
the requests that follow, from listed origins (with credentials), from any origin (`*`, without),
and from origins nobody listed (no CORS header at all). TODO_CORS_ORIGINS as people write it.
tests/system/test_cross_origin_in_a_browser.py runs a page of another origin in Chromium."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from tests.api.assertions import problem
from tests.conftest import TEST_SECRET, Caller, SqlStore, api_client, bearer, build_app
from todo_api.settings import Settings

APP = "http://localhost:3000"
USER = "browser-user"
#: What a front end sends, and what its scripts must be able to read.
SENT = {"authorization", "content-type", "if-match", "if-none-match", "idempotency-key", "x-request-id"}
READ = {"link", "etag", "location", "x-request-id", "idempotent-replayed", "retry-after"}
#: Answers without a token: one that needs one, one that needs the metrics token, a calendar
#: feed (a secret URL), and a path that does not exist.
PATHS = [f"/api/{USER}/tasks", f"/api/{USER}/tasks/some-id/complete", "/metrics", "/feeds/no-such-feed.ics", "/nowhere"]


def preflight_headers(
    origin: str, method: str = "PATCH", headers: str = "authorization,content-type"
) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}


def listed(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


def cors_headers(headers: dict[str, str]) -> set[str]:
    return {name for name in headers if name.lower().startswith("access-control-")}


@pytest.mark.parametrize("path", PATHS)
async def test_a_listed_origins_preflight_is_allowed_with_credentials_and_no_token(
    sqlite_store: SqlStore, path: str
) -> None:
    async with api_client(sqlite_store, cors_origins=[APP], metrics_token="scrape-token") as http:
        response = await http.options(
            path, headers=preflight_headers(APP, headers="authorization,content-type,if-match,idempotency-key")
        )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= {
        m.strip() for m in response.headers["access-control-allow-methods"].split(",")
    }
    assert listed(response.headers["access-control-allow-headers"]) >= SENT
    assert "origin" in listed(response.headers["vary"])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("origins", [[APP], []], ids=["another-origin-listed", "none-listed"])
async def test_a_preflight_from_an_origin_not_listed_is_never_asked_for_a_token_and_allows_nothing(
    sqlite_store: SqlStore, path: str, origins: list[str]
) -> None:
    async with api_client(sqlite_store, cors_origins=origins, metrics_token="scrape-token") as http:
        response = await http.options(path, headers=preflight_headers("https://elsewhere.example"))
    assert response.status_code in {404, 405}, response.text
    problem(response, response.status_code)
    assert "www-authenticate" not in response.headers
    assert cors_headers(dict(response.headers)) == set()


async def test_a_listed_origin_reads_the_answers_headers_with_credentials(sqlite_store: SqlStore) -> None:
    async with api_client(sqlite_store, cors_origins=[APP, "https://app.example"]) as http:
        caller = Caller(http, USER)
        created = await caller.request(
            "POST", "/tasks", json={"title": "from the browser"}, headers={"Origin": APP, "Idempotency-Key": "k-1"}
        )
        listing = await caller.request("GET", "/tasks", headers={"Origin": "https://app.example"})
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == APP
    assert created.headers["access-control-allow-credentials"] == "true"
    assert listed(created.headers["access-control-expose-headers"]) >= READ
    assert "origin" in listed(created.headers["vary"])
    assert listing.status_code == 200
    assert listing.headers["access-control-allow-origin"] == "https://app.example"


async def test_an_error_answer_carries_the_cors_headers_so_the_page_can_read_its_problem(
    sqlite_store: SqlStore,
) -> None:
    async with api_client(sqlite_store, cors_origins=[APP]) as http:
        response = await http.get(f"/api/{USER}/tasks", headers={"Origin": APP})
    problem(response, 401)
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"


async def test_an_origin_not_listed_gets_its_answer_without_any_cors_header(sqlite_store: SqlStore) -> None:
    async with api_client(sqlite_store, cors_origins=[APP]) as http:
        response = await http.get(f"/api/{USER}/tasks", headers={"Origin": "http://localhost:3001", **bearer(USER)})
    assert response.status_code == 200
    assert cors_headers(dict(response.headers)) == set()
    # Whether the headers come depends on the origin: a cache must not hand this one to the app.
    assert "origin" in listed(response.headers["vary"])


async def test_any_origin_is_allowed_without_credentials(sqlite_store: SqlStore) -> None:
    async with api_client(sqlite_store, cors_origins=["*"]) as http:
        preflight = await http.options(f"/api/{USER}/tasks", headers=preflight_headers("https://any.example"))
        answer = await http.get(
            f"/api/{USER}/tasks", headers={"Origin": "https://any.example", "Cookie": "session=1", **bearer(USER)}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert listed(preflight.headers["access-control-allow-headers"]) >= SENT
    assert answer.status_code == 200
    assert listed(answer.headers["access-control-expose-headers"]) >= READ
    for response in (preflight, answer):
        assert "access-control-allow-credentials" not in response.headers
    # Even for a request with a cookie, the origin is never echoed with credentials allowed.
    assert answer.headers["access-control-allow-origin"] in {"*", "https://any.example"}


async def test_a_preflight_asking_for_a_header_not_allowed_is_told_what_is(sqlite_store: SqlStore) -> None:
    """The browser refuses it then, naming the header in its console (a 400 would only say the
    preflight failed)."""
    async with api_client(sqlite_store, cors_origins=[APP]) as http:
        response = await http.options(f"/api/{USER}/tasks", headers=preflight_headers(APP, headers="x-secret-sauce"))
    assert response.status_code == 200
    assert "x-secret-sauce" not in listed(response.headers["access-control-allow-headers"])
    assert response.headers["access-control-allow-origin"] == APP


def settings_with(monkeypatch: pytest.MonkeyPatch, **environment: str) -> Settings:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings(jwt_secret=TEST_SECRET, _env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("written", "origins"),
    [
        ("http://localhost:3000", ["http://localhost:3000"]),
        ("http://localhost:3000,https://app.example", ["http://localhost:3000", "https://app.example"]),
        ("http://localhost:3000, https://app.example", ["http://localhost:3000", "https://app.example"]),
        ("http://localhost:3000 https://app.example", ["http://localhost:3000", "https://app.example"]),
        ('["http://localhost:3000", "https://app.example"]', ["http://localhost:3000", "https://app.example"]),
        # As browsers send `Origin`: lower case, no default port.
        ("HTTPS://App.Example:443 http://[::1]:8080", ["https://app.example", "http://[::1]:8080"]),
        ("capacitor://localhost", ["capacitor://localhost"]),
        ("*", ["*"]),
        ("", []),
    ],
)
def test_cors_origins_are_read_as_people_write_them(
    monkeypatch: pytest.MonkeyPatch, written: str, origins: list[str]
) -> None:
    assert settings_with(monkeypatch, TODO_CORS_ORIGINS=written).cors_origins == origins


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("http://localhost:3000/", "without a path"),
        ("https://app.example/app", "without a path"),
        ("localhost:3000", "scheme://host[:port]"),
        ("http://localhost:99999", "scheme://host[:port]"),
        ("https://user@app.example", "scheme://host[:port]"),
        ("*, https://app.example", "`*` (any origin) must stand alone"),
        ('["http://localhost:3000"', "not a JSON list"),
        ('{"origin": "http://localhost:3000"}', "scheme://host[:port]"),
        ("[3000]", "a JSON list of strings"),
    ],
)
def test_a_malformed_cors_origin_is_refused_saying_what_is_wrong(
    monkeypatch: pytest.MonkeyPatch, written: str, said: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_with(monkeypatch, TODO_CORS_ORIGINS=written)
    (error,) = refused.value.errors()
    assert error["loc"] == ("cors_origins",)
    assert said in error["msg"]


def test_forwarded_headers_are_believed_from_loopback_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_with(monkeypatch).forwarded_allow_ips == ["127.0.0.1", "::1"]
    assert settings_with(monkeypatch, TODO_FORWARDED_ALLOW_IPS="10.0.0.0/8, 192.168.1.5").forwarded_allow_ips == [
        "10.0.0.0/8",
        "192.168.1.5",
    ]
    assert settings_with(monkeypatch, TODO_FORWARDED_ALLOW_IPS="").forwarded_allow_ips == []


@pytest.mark.parametrize("written", ["nginx", "10.0.0.1/8", "*, 10.0.0.1"])
def test_a_proxy_address_that_is_not_one_is_refused(monkeypatch: pytest.MonkeyPatch, written: str) -> None:
    with pytest.raises(ValidationError) as refused:
        settings_with(monkeypatch, TODO_FORWARDED_ALLOW_IPS=written)
    (error,) = refused.value.errors()
    assert error["loc"] == ("forwarded_allow_ips",)


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [(["127.0.0.1"], "https://todo.example"), ([], "http://todo.example"), (["10.0.0.0/8"], "http://todo.example")],
    ids=["the-proxy-is-trusted", "none-trusted", "another-trusted"],
)
async def test_a_feed_url_has_the_scheme_the_proxy_was_asked_with_only_when_the_proxy_is_trusted(
    sqlite_store: SqlStore, trusted: list[str], expected: str
) -> None:
    """The test client connects from 127.0.0.1, as a proxy on the same machine would."""
    async with api_client(sqlite_store, forwarded_allow_ips=trusted) as http:
        response = await Caller(http, USER).request(
            "POST",
            "/calendar-feeds",
            headers={"Host": "todo.example", "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
        )
    assert response.status_code == 201, response.text
    assert response.json()["url"].startswith(f"{expected}/feeds/")


async def test_a_failure_of_ours_is_readable_by_the_page_with_the_request_id_to_report(sqlite_store: SqlStore) -> None:
    app, _ = build_app(sqlite_store, cors_origins=[APP])

    async def fails() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/fails", fails)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        failed = await http.get("/fails", headers={"Origin": APP})
    problem(failed, 500)
    assert failed.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in listed(failed.headers["access-control-expose-headers"])
    assert failed.headers["x-request-id"]
