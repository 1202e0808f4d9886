"""Attacks on identity over HTTP: every bad token is a 401 that says why (never repeating the
token), another user's path is 403, another user's task is 404 and stays untouched, and JWKS keys
cannot be confused with secrets.

Runs against the real app on SQLite and PostgreSQL (the `client` fixture's backends).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from fastapi import FastAPI

from tests.conftest import SQL_BACKENDS, TEST_SECRET, Caller, SqlStore, api_client, bearer
from tests.jwt_tools import JwksServer, SigningKey, b64url, b64url_json, forge
from todo_core.errors import CredentialProblem as Why

PROBLEM_JSON = "application/problem+json"
#: What a 401's `detail` (and its challenge's `error_description`) says, for each reason.
SAYS: dict[Why, str] = {
    Why.MISSING: r"No bearer token: send the header `Authorization: Bearer <token>`\.",
    Why.MALFORMED: r"The bearer token is malformed: .*",
    Why.ALGORITHM_NOT_ALLOWED: r"The token's algorithm \(alg\) is not allowed.*",
    Why.UNKNOWN_KEY: r"The token's key id \(kid\) is missing or names no key the identity provider publishes\.",
    Why.BAD_SIGNATURE: r"The token's signature does not verify.*",
    Why.EXPIRED: r"The token expired at (?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\.",
    Why.NOT_YET_VALID: r"The token is not valid before (?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\.",
    Why.WRONG_ISSUER: r"The token's issuer \(iss\) is missing or not the one this service trusts\.",
    Why.WRONG_AUDIENCE: r"The token's audience \(aud\) is missing or does not name this service\.",
    Why.MISSING_CLAIM: r"The token has no exp claim.*",
    Why.NO_USER: r"The token's sub claim names no user.*",
}
#: RFC 6750 §3: what an `error_description` may hold (printable ASCII but `"` and `\`).
DESCRIPTION_CHARACTERS = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
FORBIDDEN = {
    "type": "/problems/forbidden",
    "title": "Forbidden",
    "status": 403,
    "detail": "This token does not grant access to this user's resources.",
}
LEEWAY_SECONDS = 30  # the Settings default the `app` fixture runs with
ISSUER = "https://issuer.todo.test"
AUDIENCE = "https://api.todo.test"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


# --- Helpers: tokens as an attacker would build them -----------------------------------------


def claims_for(user_id: str, **changes: Any) -> dict[str, Any]:
    """Valid claims for `user_id`; a change to None removes that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iat": now, "exp": now + 900}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def hs256(claims: dict[str, Any], secret: str = TEST_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def with_token(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: httpx.Response, why: Why, *, at: int | None = None) -> None:
    """A 401 whose detail says `why` (and when: `at`, POSIX seconds), in the same words as its
    `WWW-Authenticate` challenge (RFC 6750 §3), which has no error code when no token came (§3.1)."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert {name: body[name] for name in ("type", "title", "status")} == {
        "type": "/problems/invalid-token",
        "title": "Unauthorized",
        "status": 401,
    }
    said = re.fullmatch(SAYS[why], body["detail"])
    assert said, f"{body['detail']!r} does not say {why}"
    if at is not None:
        assert said["at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    if why is Why.MISSING:
        assert response.headers["www-authenticate"] == "Bearer"
    else:
        assert DESCRIPTION_CHARACTERS.fullmatch(body["detail"]), body["detail"]
        challenge = f'Bearer error="invalid_token", error_description="{body["detail"]}"'
        assert response.headers["www-authenticate"] == challenge


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == FORBIDDEN
    assert "www-authenticate" not in response.headers


async def tasks_of(caller: Caller, headers: dict[str, str]) -> httpx.Response:
    return await caller.client.get(caller.url("/tasks"), headers=headers)


# --- Who gets in: the control case -----------------------------------------------------------


async def test_valid_token_for_the_path_user_lists_their_tasks(alice: Caller) -> None:
    response = await alice.request("GET", "/tasks")

    assert response.status_code == 200, response.text


async def test_bearer_scheme_is_case_insensitive(alice: Caller) -> None:
    token = alice.headers["Authorization"].split(" ", 1)[1]

    response = await tasks_of(alice, {"Authorization": f"bearer {token}"})

    assert response.status_code == 200, response.text


# --- 401: no token, or a token that cannot be trusted ----------------------------------------


async def test_request_without_authorization_header_is_401(alice: Caller) -> None:
    assert_unauthorized(await tasks_of(alice, {}), Why.MISSING)


async def test_basic_scheme_is_401(alice: Caller) -> None:
    credentials = base64.b64encode(f"{alice.id}:password".encode()).decode()

    assert_unauthorized(await tasks_of(alice, {"Authorization": f"Basic {credentials}"}), Why.MISSING)


async def test_basic_scheme_carrying_a_valid_jwt_is_401(alice: Caller) -> None:
    token = alice.headers["Authorization"].split(" ", 1)[1]

    assert_unauthorized(await tasks_of(alice, {"Authorization": f"Basic {token}"}), Why.MISSING)


@pytest.mark.parametrize("value", ["Bearer", "Bearer ", "Bearer    "], ids=["no-space", "one-space", "spaces"])
async def test_bearer_with_empty_token_is_401(alice: Caller, value: str) -> None:
    assert_unauthorized(await tasks_of(alice, {"Authorization": value}), Why.MALFORMED)


async def test_valid_token_in_the_query_string_is_ignored(alice: Caller) -> None:
    token = alice.headers["Authorization"].split(" ", 1)[1]

    response = await alice.client.get(alice.url("/tasks"), params={"access_token": token})

    assert_unauthorized(response, Why.MISSING)


async def test_valid_token_in_a_cookie_is_ignored(alice: Caller) -> None:
    token = alice.headers["Authorization"].split(" ", 1)[1]
    cookie = f"access_token={token}; token={token}; better-auth.session_token={token}"

    assert_unauthorized(await tasks_of(alice, {"Cookie": cookie}), Why.MISSING)


async def test_unsigned_token_with_alg_none_is_401(alice: Caller) -> None:
    token = forge({"alg": "none", "typ": "JWT"}, claims_for(alice.id))

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.ALGORITHM_NOT_ALLOWED)


@pytest.mark.parametrize("alg", ["None", "NONE", "nOnE"])
async def test_unsigned_token_with_alg_none_in_any_case_is_401(alice: Caller, alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, claims_for(alice.id))

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.ALGORITHM_NOT_ALLOWED)


async def test_hs256_token_signed_with_another_secret_is_401(alice: Caller) -> None:
    token = hs256(claims_for(alice.id), secret="another-secret-that-is-also-long-enough-for-hs256")

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.BAD_SIGNATURE)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_hs512_token_signed_with_the_right_secret_is_401(alice: Caller) -> None:
    token = jwt.encode(claims_for(alice.id), TEST_SECRET, algorithm="HS512")

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.ALGORITHM_NOT_ALLOWED)


async def test_token_expired_beyond_the_leeway_is_401(alice: Caller) -> None:
    now = int(time.time())
    expired = now - LEEWAY_SECONDS - 60
    token = hs256(claims_for(alice.id, iat=now - 3600, exp=expired))

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.EXPIRED, at=expired)


async def test_token_without_exp_is_401(alice: Caller) -> None:
    token = hs256(claims_for(alice.id, exp=None))

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.MISSING_CLAIM)


async def test_token_not_valid_before_a_future_nbf_is_401(alice: Caller) -> None:
    valid_from = int(time.time()) + LEEWAY_SECONDS + 120
    token = hs256(claims_for(alice.id, nbf=valid_from))

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.NOT_YET_VALID, at=valid_from)


async def test_payload_tampered_after_signing_is_401(alice: Caller, bob: Caller) -> None:
    # Bob holds a genuine token of his own and rewrites its subject to Alice.
    header, _, signature = bob.headers["Authorization"].split(" ", 1)[1].split(".")
    token = f"{header}.{b64url_json(claims_for(alice.id))}.{signature}"

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.BAD_SIGNATURE)


async def test_signature_stripped_from_a_valid_token_is_401(alice: Caller) -> None:
    header, payload, _ = alice.headers["Authorization"].split(" ", 1)[1].split(".")

    assert_unauthorized(await tasks_of(alice, with_token(f"{header}.{payload}.")), Why.BAD_SIGNATURE)


async def test_token_without_sub_is_401(alice: Caller) -> None:
    token = hs256(claims_for(alice.id, sub=None))

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.NO_USER)


@pytest.mark.parametrize(
    "subject", [123, 12.5, True, ["user"], {"id": "user"}], ids=["int", "float", "bool", "list", "object"]
)
async def test_token_with_non_string_sub_is_401(caller: Callable[[], Caller], subject: Any) -> None:
    victim = caller()
    token = hs256(claims_for(victim.id, sub=subject))
    path = f"/api/{subject}/tasks" if isinstance(subject, int | float) else victim.url("/tasks")

    assert_unauthorized(await victim.client.get(path, headers=with_token(token)), Why.NO_USER)


@pytest.mark.parametrize("subject", ["", " ", "\t"], ids=["empty", "space", "tab"])
async def test_token_with_empty_sub_is_401(alice: Caller, subject: str) -> None:
    token = hs256(claims_for(alice.id, sub=subject))

    assert_unauthorized(await tasks_of(alice, with_token(token)), Why.NO_USER)


async def test_token_whose_sub_holds_a_nul_byte_is_401_not_500(client: httpx.AsyncClient) -> None:
    subject = f"user-{uuid.uuid4().hex[:8]}\x00x"
    path = f"/api/{subject.replace(chr(0), '%00')}/tasks"

    assert_unauthorized(await client.get(path, headers=with_token(hs256(claims_for(subject)))), Why.NO_USER)


@pytest.mark.alone
async def test_token_of_100_kb_is_401_and_answered_fast(alice: Caller) -> None:
    padding = "x" * 100_000
    token = hs256(claims_for(alice.id, padding=padding))
    assert len(token) > 100_000

    started = time.perf_counter()
    response = await tasks_of(alice, with_token(token))
    elapsed = time.perf_counter() - started

    assert response.status_code not in (431, 500)
    assert_unauthorized(response, Why.MALFORMED)
    assert elapsed < 0.5, f"a 100 KB token took {elapsed:.3f} s"


async def test_garbage_of_100_kb_is_401_and_answered_fast(alice: Caller) -> None:
    started = time.perf_counter()
    response = await tasks_of(alice, with_token("A" * 100_000))
    elapsed = time.perf_counter() - started

    assert_unauthorized(response, Why.MALFORMED)
    assert elapsed < 0.5, f"a 100 KB token took {elapsed:.3f} s"


#: A readable header is followed by the signature's check, before the claims are read: a made-up
#: signature under it fails first.
GARBAGE: list[tuple[str, str, Why]] = [
    ("word", "not-a-jwt", Why.MALFORMED),
    ("three-dots", "a.b.c", Why.MALFORMED),
    ("empty-parts", "..", Why.MALFORMED),
    ("two-parts", "a.b", Why.MALFORMED),
    ("five-parts", "a.b.c.d.e", Why.MALFORMED),
    ("not-base64", "%%%.%%%.%%%", Why.MALFORMED),
    ("payload-not-base64", b64url_json({"alg": "HS256"}) + ".!!!." + b64url(b"sig"), Why.MALFORMED),
    ("header-not-json", b64url(b"not json") + "." + b64url_json({"sub": "x"}) + "." + b64url(b"sig"), Why.MALFORMED),
    (
        "header-not-object",
        b64url_json(["HS256"]) + "." + b64url_json({"sub": "x"}) + "." + b64url(b"sig"),
        Why.MALFORMED,
    ),
    (
        "payload-not-object",
        b64url_json({"alg": "HS256"}) + "." + b64url_json(["not", "an", "object"]) + "." + b64url(b"sig"),
        Why.BAD_SIGNATURE,
    ),
    ("non-ascii", "\u00e9\u00e9\u00e9.\u00e9\u00e9\u00e9.\u00e9\u00e9\u00e9", Why.MALFORMED),
]


@pytest.mark.parametrize(("token", "why"), [(token, why) for _, token, why in GARBAGE], ids=[n for n, _, _ in GARBAGE])
async def test_garbage_that_is_not_a_jwt_is_401(alice: Caller, token: str, why: Why) -> None:
    headers = with_token(token)
    encoded = {name: value.encode() for name, value in headers.items()}  # non-ASCII as raw bytes

    assert_unauthorized(await alice.client.get(alice.url("/tasks"), headers=encoded), why)


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ({"alg": "HS256", "kid": 7}, Why.MALFORMED),
        ({"alg": "HS256", "kid": ["a"]}, Why.MALFORMED),
        ({"alg": "RS256"}, Why.ALGORITHM_NOT_ALLOWED),
        ({"alg": "XX999"}, Why.ALGORITHM_NOT_ALLOWED),
        ({"alg": 1}, Why.ALGORITHM_NOT_ALLOWED),
    ],
    ids=["kid-int", "kid-list", "rs256-with-secret", "unknown-alg", "alg-int"],
)
async def test_token_with_a_hostile_header_is_401(alice: Caller, header: dict[str, Any], why: Why) -> None:
    token = forge({**header, "typ": "JWT"}, claims_for(alice.id), hmac_key=TEST_SECRET.encode())

    assert_unauthorized(await tasks_of(alice, with_token(token)), why)


async def test_a_401_never_repeats_the_token(alice: Caller) -> None:
    now = int(time.time())
    secret_looking = "s3cr3t-" + uuid.uuid4().hex
    tokens = [
        forge({"alg": "none"}, claims_for(alice.id, jti=secret_looking)),
        hs256(claims_for(alice.id, jti=secret_looking), secret="x" * 40),
        hs256(claims_for(alice.id, jti=secret_looking, exp=now - 3600)),
        hs256(claims_for(alice.id, jti=secret_looking, sub="")),
        secret_looking,
    ]

    for token in tokens:
        response = await tasks_of(alice, with_token(token))
        assert response.status_code == 401
        shown = response.text + "".join(f"{name}: {value}" for name, value in response.headers.items())
        for part in {token, *token.split("."), secret_looking} - {""}:
            assert part not in shown


async def test_every_api_operation_without_a_token_is_401(app: FastAPI, client: httpx.AsyncClient) -> None:
    # Every operation the app documents, so a route added later is covered without editing this.
    operations = [
        (method.upper(), template)
        for template, item in app.openapi()["paths"].items()
        if template.startswith("/api/")
        for method in item
        if method in HTTP_METHODS
    ]
    assert len(operations) >= 14, operations

    for method, template in operations:
        path = template.replace("{user_id}", "user-x")
        for name in ("task_id", "category_id"):
            path = path.replace(f"{{{name}}}", str(uuid.uuid4()))
        response = await client.request(method, path, json={"title": "t", "name": "n"})
        assert response.status_code == 401, f"{method} {template}: {response.status_code} {response.text}"
        assert_unauthorized(response, Why.MISSING)


# --- Wrong issuer or audience: an app that checks both ---------------------------------------


@pytest.fixture(params=SQL_BACKENDS)
def backend(request: pytest.FixtureRequest) -> SqlStore:
    """One SQL backend's migrated database, with the session's engine and pools on it."""
    store: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return store


def serve(backend: SqlStore, **overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """A client of the real app on `backend`, its settings changed by `overrides`."""
    return api_client(backend, **overrides)


@pytest.fixture
async def checking_client(backend: SqlStore) -> AsyncIterator[httpx.AsyncClient]:
    """The app configured to require `iss` == ISSUER and `aud` == AUDIENCE."""
    async with serve(backend, jwt_issuer=ISSUER, jwt_audience=AUDIENCE) as http:
        yield http


def new_user_id() -> str:
    return f"user-{uuid.uuid4().hex[:16]}"


async def test_token_with_the_configured_issuer_and_audience_is_accepted(checking_client: httpx.AsyncClient) -> None:
    user = new_user_id()
    token = hs256(claims_for(user, iss=ISSUER, aud=AUDIENCE))

    response = await checking_client.get(f"/api/{user}/tasks", headers=with_token(token))

    assert response.status_code == 200, response.text


async def test_token_from_another_issuer_is_401(checking_client: httpx.AsyncClient) -> None:
    user = new_user_id()
    token = hs256(claims_for(user, iss="https://evil.example", aud=AUDIENCE))

    assert_unauthorized(await checking_client.get(f"/api/{user}/tasks", headers=with_token(token)), Why.WRONG_ISSUER)


async def test_token_without_an_issuer_is_401_when_one_is_configured(checking_client: httpx.AsyncClient) -> None:
    user = new_user_id()
    token = hs256(claims_for(user, aud=AUDIENCE))

    assert_unauthorized(await checking_client.get(f"/api/{user}/tasks", headers=with_token(token)), Why.WRONG_ISSUER)


async def test_token_for_another_audience_is_401(checking_client: httpx.AsyncClient) -> None:
    user = new_user_id()
    token = hs256(claims_for(user, iss=ISSUER, aud="https://other-api.example"))

    assert_unauthorized(await checking_client.get(f"/api/{user}/tasks", headers=with_token(token)), Why.WRONG_AUDIENCE)


async def test_token_without_an_audience_is_401_when_one_is_configured(checking_client: httpx.AsyncClient) -> None:
    user = new_user_id()
    token = hs256(claims_for(user, iss=ISSUER))

    assert_unauthorized(await checking_client.get(f"/api/{user}/tasks", headers=with_token(token)), Why.WRONG_AUDIENCE)


# --- 403: a valid token on another user's path -----------------------------------------------


@dataclass(frozen=True)
class Victim:
    caller: Caller
    task: dict[str, Any]
    category: dict[str, Any]


@pytest.fixture
async def victim(bob: Caller) -> Victim:
    """Bob, with one task and one category of his own."""
    category = await bob.request("POST", "/categories", json={"name": f"Work {uuid.uuid4().hex[:6]}"})
    assert category.status_code == 201, category.text
    task = await bob.create_task(title="Bob's secret", description="private", tags=["mine"])
    return Victim(bob, task, category.json())


CROSS_USER_OPERATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/tasks", None),
    ("POST", "/tasks", {"title": "planted"}),
    ("GET", "/tasks/{task}", None),
    ("PUT", "/tasks/{task}", {"title": "hijacked"}),
    ("PATCH", "/tasks/{task}", {"title": "hijacked"}),
    ("DELETE", "/tasks/{task}", None),
    ("PATCH", "/tasks/{task}/complete", None),
    ("PATCH", "/tasks/{task}/complete", {"completed": True}),
    ("GET", "/categories", None),
    ("POST", "/categories", {"name": "planted"}),
    ("GET", "/categories/{category}", None),
    ("PATCH", "/categories/{category}", {"name": "hijacked"}),
    ("DELETE", "/categories/{category}", None),
    ("GET", "/tags", None),
    ("GET", "/reminders", None),
]


@pytest.mark.parametrize(
    ("method", "template", "body"),
    CROSS_USER_OPERATIONS,
    ids=[
        f"{method} {template}{'' if body is None else ' with body'}" for method, template, body in CROSS_USER_OPERATIONS
    ],
)
async def test_valid_token_on_another_users_path_is_403_and_changes_nothing(
    alice: Caller, victim: Victim, method: str, template: str, body: dict[str, Any] | None
) -> None:
    bob = victim.caller
    path = bob.url(template.format(task=victim.task["id"], category=victim.category["id"]))
    kwargs: dict[str, Any] = {} if body is None else {"json": body}

    response = await alice.client.request(method, path, headers=alice.headers, **kwargs)

    assert_forbidden(response)
    task = await bob.request("GET", f"/tasks/{victim.task['id']}")
    assert task.status_code == 200
    assert task.json() == victim.task
    category = await bob.request("GET", f"/categories/{victim.category['id']}")
    assert category.json() == victim.category
    listed = await bob.request("GET", "/tasks")
    assert [item["id"] for item in listed.json()] == [victim.task["id"]]
    categories = await bob.request("GET", "/categories")
    assert [item["id"] for item in categories.json()] == [victim.category["id"]]


async def test_forbidden_answer_does_not_depend_on_whether_the_task_exists(alice: Caller, victim: Victim) -> None:
    bob = victim.caller
    existing = await alice.client.get(bob.url(f"/tasks/{victim.task['id']}"), headers=alice.headers)
    missing = await alice.client.get(bob.url(f"/tasks/{uuid.uuid4()}"), headers=alice.headers)

    assert_forbidden(existing)
    assert_forbidden(missing)
    assert existing.content == missing.content


# --- 404: another user's task id through one's own path --------------------------------------

OWN_PATH_OPERATIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PUT", "", {"title": "hijacked"}),
    ("PATCH", "", {"title": "hijacked", "completed": True}),
    ("DELETE", "", None),
    ("PATCH", "/complete", None),
    ("PATCH", "/complete", {"completed": True}),
]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    OWN_PATH_OPERATIONS,
    ids=[
        f"{method} /tasks/{{id}}{suffix}{'' if body is None else ' with body'}"
        for method, suffix, body in OWN_PATH_OPERATIONS
    ],
)
async def test_another_users_task_through_ones_own_path_is_404_and_unchanged(
    alice: Caller, victim: Victim, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    unknown = await alice.request(method, f"/tasks/{uuid.uuid4()}{suffix}", **kwargs)

    response = await alice.request(method, f"/tasks/{victim.task['id']}{suffix}", **kwargs)

    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.content == unknown.content  # exactly what a made-up id gets: nothing revealed
    assert "etag" not in response.headers
    after = await victim.caller.request("GET", f"/tasks/{victim.task['id']}")
    assert after.status_code == 200
    assert after.json()["version"] == victim.task["version"]
    assert after.json() == victim.task


async def test_another_users_task_does_not_show_in_ones_own_list(alice: Caller, victim: Victim) -> None:
    await alice.create_task(title="Alice's own")

    listed = await alice.request("GET", "/tasks", params={"q": "secret"})
    everything = await alice.request("GET", "/tasks")

    assert listed.json() == []
    assert [item["title"] for item in everything.json()] == ["Alice's own"]


async def test_another_users_category_through_ones_own_path_is_404(alice: Caller, victim: Victim) -> None:
    response = await alice.request("GET", f"/categories/{victim.category['id']}")

    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == PROBLEM_JSON


# --- Algorithm confusion against an app that trusts a JWKS -----------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey("rsa-1", "RS256", rsa.generate_private_key(65537, 2048))


@pytest.fixture(scope="module")
def ed25519_key() -> SigningKey:
    return SigningKey("ed-1", "EdDSA", ed25519.Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def jwks_server(rsa_key: SigningKey, ed25519_key: SigningKey) -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish(rsa_key, ed25519_key)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def jwks_client(backend: SqlStore, jwks_server: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """The app trusting the JWKS server's keys (`settings_for` also sets a shared secret: unused)."""
    async with serve(backend, jwks_url=jwks_server.url) as http:
        yield http


JwksGet = Callable[[str, str], Awaitable[httpx.Response]]


@pytest.fixture
def get_tasks(jwks_client: httpx.AsyncClient) -> JwksGet:
    async def get(user: str, token: str) -> httpx.Response:
        return await jwks_client.get(f"/api/{user}/tasks", headers=with_token(token))

    return get


@pytest.mark.parametrize("key_name", ["rsa_key", "ed25519_key"])
async def test_jwks_token_signed_with_a_published_key_is_accepted(
    request: pytest.FixtureRequest, get_tasks: JwksGet, key_name: str
) -> None:
    key: SigningKey = request.getfixturevalue(key_name)
    user = new_user_id()

    response = await get_tasks(user, key.sign(claims_for(user)))

    assert response.status_code == 200, response.text


async def test_jwks_token_for_another_user_is_403(get_tasks: JwksGet, ed25519_key: SigningKey) -> None:
    assert_forbidden(await get_tasks(new_user_id(), ed25519_key.sign(claims_for(new_user_id()))))


async def test_hs256_token_signed_with_the_rsa_public_key_pem_is_401(get_tasks: JwksGet, rsa_key: SigningKey) -> None:
    user = new_user_id()
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
    token = forge(header, claims_for(user), hmac_key=rsa_key.public_pem())

    assert_unauthorized(await get_tasks(user, token), Why.ALGORITHM_NOT_ALLOWED)


async def test_hs256_token_signed_with_the_rsa_public_key_pem_and_no_kid_is_401(
    get_tasks: JwksGet, rsa_key: SigningKey
) -> None:
    user = new_user_id()
    token = forge({"alg": "HS256", "typ": "JWT"}, claims_for(user), hmac_key=rsa_key.public_pem())

    assert_unauthorized(await get_tasks(user, token), Why.UNKNOWN_KEY)


@pytest.mark.parametrize("encoding", ["raw", "pem"])
async def test_hs256_token_signed_with_the_ed25519_public_key_is_401(
    get_tasks: JwksGet, ed25519_key: SigningKey, encoding: str
) -> None:
    user = new_user_id()
    secret = ed25519_key.public_raw() if encoding == "raw" else ed25519_key.public_pem()
    token = forge({"alg": "HS256", "typ": "JWT", "kid": ed25519_key.kid}, claims_for(user), hmac_key=secret)

    assert_unauthorized(await get_tasks(user, token), Why.ALGORITHM_NOT_ALLOWED)


async def test_hs256_token_signed_with_the_jwk_x_value_is_401(get_tasks: JwksGet, ed25519_key: SigningKey) -> None:
    user = new_user_id()
    x = ed25519_key.public_jwk["x"].encode()
    token = forge({"alg": "HS256", "typ": "JWT", "kid": ed25519_key.kid}, claims_for(user), hmac_key=x)

    assert_unauthorized(await get_tasks(user, token), Why.ALGORITHM_NOT_ALLOWED)


async def test_hs256_token_signed_with_the_shared_secret_is_401_when_a_jwks_is_configured(get_tasks: JwksGet) -> None:
    user = new_user_id()

    assert_unauthorized(await get_tasks(user, hs256(claims_for(user))), Why.UNKNOWN_KEY)


async def test_token_with_an_unknown_kid_is_401(get_tasks: JwksGet) -> None:
    stranger = SigningKey("stranger", "EdDSA", ed25519.Ed25519PrivateKey.generate())
    user = new_user_id()

    assert_unauthorized(await get_tasks(user, stranger.sign(claims_for(user))), Why.UNKNOWN_KEY)


async def test_token_signed_by_a_stranger_under_a_published_kid_is_401(
    get_tasks: JwksGet, ed25519_key: SigningKey
) -> None:
    stranger = SigningKey(ed25519_key.kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())
    user = new_user_id()

    assert_unauthorized(await get_tasks(user, stranger.sign(claims_for(user))), Why.BAD_SIGNATURE)


async def test_rs256_token_under_the_ed25519_kid_is_401(
    get_tasks: JwksGet, rsa_key: SigningKey, ed25519_key: SigningKey
) -> None:
    user = new_user_id()
    token = rsa_key.sign(claims_for(user), headers={"kid": ed25519_key.kid})

    assert_unauthorized(await get_tasks(user, token), Why.ALGORITHM_NOT_ALLOWED)


async def test_jwks_token_with_alg_none_under_a_published_kid_is_401(get_tasks: JwksGet, rsa_key: SigningKey) -> None:
    user = new_user_id()
    token = forge({"alg": "none", "typ": "JWT", "kid": rsa_key.kid}, claims_for(user))

    assert_unauthorized(await get_tasks(user, token), Why.ALGORITHM_NOT_ALLOWED)


@pytest.fixture
async def checking_jwks_client(backend: SqlStore, jwks_server: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    """The app trusting the JWKS server's keys and requiring `iss` == ISSUER and `aud` == AUDIENCE,
    as a Better Auth deployment is configured."""
    async with serve(backend, jwks_url=jwks_server.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE) as http:
        yield http


def better_auth_claims(user: str, **changes: Any) -> dict[str, Any]:
    return claims_for(user, **{"iss": ISSUER, "aud": AUDIENCE, **changes})


async def test_each_refusal_of_a_jwks_token_says_why(
    checking_jwks_client: httpx.AsyncClient, ed25519_key: SigningKey, rsa_key: SigningKey
) -> None:
    user = new_user_id()
    now = int(time.time())
    stranger = SigningKey("stranger", "EdDSA", ed25519.Ed25519PrivateKey.generate())
    impostor = SigningKey(ed25519_key.kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())
    header, payload, signature = ed25519_key.sign(better_auth_claims(user)).split(".")
    cases: list[tuple[str, Why, int | None]] = [
        (ed25519_key.sign(better_auth_claims(user, exp=now - 3600)), Why.EXPIRED, now - 3600),
        (ed25519_key.sign(better_auth_claims(user, nbf=now + 3600)), Why.NOT_YET_VALID, now + 3600),
        (ed25519_key.sign(better_auth_claims(user, nbf=now - 60, iat=now + 7200)), Why.NOT_YET_VALID, now + 7200),
        (impostor.sign(better_auth_claims(user)), Why.BAD_SIGNATURE, None),
        (f"{header}.{b64url_json(better_auth_claims(new_user_id()))}.{signature}", Why.BAD_SIGNATURE, None),
        (stranger.sign(better_auth_claims(user)), Why.UNKNOWN_KEY, None),
        (ed25519_key.sign(better_auth_claims(user, iss="https://evil.example")), Why.WRONG_ISSUER, None),
        (ed25519_key.sign(better_auth_claims(user, iss=None)), Why.WRONG_ISSUER, None),
        (ed25519_key.sign(better_auth_claims(user, aud="https://other.example")), Why.WRONG_AUDIENCE, None),
        (ed25519_key.sign(better_auth_claims(user, aud=None)), Why.WRONG_AUDIENCE, None),
        (ed25519_key.sign(better_auth_claims(user, exp=None)), Why.MISSING_CLAIM, None),
        (rsa_key.sign(better_auth_claims(user), headers={"kid": ed25519_key.kid}), Why.ALGORITHM_NOT_ALLOWED, None),
        (forge({"alg": "none", "kid": ed25519_key.kid}, better_auth_claims(user)), Why.ALGORITHM_NOT_ALLOWED, None),
        (f"{header}.{payload}", Why.MALFORMED, None),
    ]

    for token, why, at in cases:
        response = await checking_jwks_client.get(f"/api/{user}/tasks", headers=with_token(token))
        assert_unauthorized(response, why, at=at)
    accepted = await checking_jwks_client.get(
        f"/api/{user}/tasks", headers=with_token(ed25519_key.sign(better_auth_claims(user)))
    )
    assert accepted.status_code == 200, accepted.text


# --- Public routes and the OpenAPI document --------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs", "/openapi.json"])
async def test_public_route_answers_200_without_a_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 200, response.text


async def test_openapi_declares_http_bearer_security_on_every_api_operation(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    bearer_names = {
        name for name, scheme in schemes.items() if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    }
    assert bearer_names, schemes

    api_operations = {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    assert len(api_operations) >= 14, sorted(api_operations)
    for name, operation in api_operations.items():
        used = {scheme for requirement in operation.get("security", []) for scheme in requirement}
        assert used & bearer_names, f"{name} declares no bearer security: {operation.get('security')}"
        assert "401" in operation["responses"], f"{name} does not document 401"
    for path in ("/healthz", "/readyz"):
        assert document["paths"][path]["get"]["security"] == []  # public, said out loud


async def test_bearer_helper_from_conftest_still_matches_the_app(alice: Caller) -> None:
    # Guards the suite itself: the shared helper mints what this module's 401s are measured against.
    response = await alice.client.get(alice.url("/tasks"), headers=bearer(alice.id))

    assert response.status_code == 200


async def test_a_caller_without_a_token_learns_nothing_from_the_body(alice: Caller) -> None:
    malformed = {"content": b'{"title": ', "headers": {"Content-Type": "application/json"}}
    assert_unauthorized(await alice.client.post(alice.url("/tasks"), **malformed), Why.MISSING)  # type: ignore[arg-type]
    assert_unauthorized(await alice.client.post(alice.url("/tasks"), json={"title": ""}), Why.MISSING)


async def test_another_users_token_with_a_malformed_body_is_403(alice: Caller, bob: Caller) -> None:
    response = await bob.client.post(
        alice.url("/tasks"), content=b"{", headers={**bob.headers, "Content-Type": "application/json"}
    )
    assert_forbidden(response)
