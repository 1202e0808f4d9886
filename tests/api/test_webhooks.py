"""Webhooks over HTTP on SQLite and PostgreSQL: endpoints registered through the API, events
written with the changes, delivered to a real receiver on loopback that checks every signature
with the Standard Webhooks reference verifier (`standardwebhooks`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from dependency_injector import providers
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from tests.api.assertions import field_errors, problem
from tests.asgi_requests import read_request
from tests.conftest import Caller, SqlStore, build_app, settings_for
from tests.event_streams import StreamingASGITransport, open_events
from tests.sent_statements import SentStatements
from todo_adapters.clock import SystemClock
from todo_adapters.webhook_delivery import HttpWebhookSender, WebhookDestinationsChecker
from todo_api.app import create_app
from todo_api.cli import migrate
from todo_api.container import Container
from todo_api.maintenance import deliver_once, deliver_periodically
from todo_core.errors import StorageUnavailable
from todo_core.use_cases.webhooks import deliver_due

#: Rounds of delivery a test runs at most while it waits for what it expects.
ROUNDS_MAX = 20


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> SqlStore:
    found: SqlStore = request.getfixturevalue(f"{request.param}_store")
    return found


class ShiftedClock:
    """The system's clock, moved forward by the test (to make a retry due)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return SystemClock().now() + self.offset


@dataclass
class Receiver:
    """An HTTP server on loopback that records what it is sent, answering each request with the
    next of `statuses` (200 once they run out)."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers, body = await read_request(scope, receive)
        self.received.append((headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    server = uvicorn.Server(uvicorn.Config(found, host="127.0.0.1", port=0, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 5
    while not server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        await asyncio.sleep(0.01)
    found.port = server.servers[0].sockets[0].getsockname()[1]
    yield found
    server.should_exit = True
    await asyncio.wait_for(serving, 5)


@dataclass
class Service:
    client: httpx.AsyncClient
    container: Container
    clock: ShiftedClock

    def user(self) -> Caller:
        return Caller(self.client, f"user-{uuid.uuid4().hex[:16]}")

    async def deliver_until(self, receiver: Receiver, count: int) -> None:
        """Run delivery rounds until the receiver has `count` requests (other tests' deliveries,
        due in the same database, may come first), a bounded number of rounds."""
        for _ in range(ROUNDS_MAX):
            if len(receiver.received) >= count:
                return
            await deliver_once(self.container)
        assert len(receiver.received) >= count, f"{len(receiver.received)} deliveries, not {count}"

    async def drain(self) -> None:
        """Run delivery rounds until none is due."""
        for _ in range(ROUNDS_MAX):
            if (await deliver_once(self.container)).attempted == 0:
                return
        raise AssertionError("deliveries are still due")


async def _service(store: SqlStore, **overrides: Any) -> AsyncIterator[Service]:
    app, container = build_app(store, **overrides)
    clock = ShiftedClock()
    container.clock.override(providers.Object(clock))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            yield Service(client, container, clock)
    finally:
        await container.webhook_sender().aclose()


@pytest.fixture
async def service(store: SqlStore) -> AsyncIterator[Service]:
    """The app, free to send webhooks to loopback (where the test's receiver listens)."""
    async for made in _service(store, webhooks_allow_private_networks=True):
        yield made


@pytest.fixture
async def strict_service(store: SqlStore) -> AsyncIterator[Service]:
    """The app as deployed: webhooks only to public addresses."""
    async for made in _service(store, max_webhooks=2):
        yield made


async def register(caller: Caller, url: str, **fields: Any) -> dict[str, Any]:
    response = await caller.request("POST", "/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def verified(secret: str, request: tuple[dict[str, str], bytes]) -> dict[str, Any]:
    """The event, as the reference verifier reads it (it raises if the signature is wrong)."""
    headers, body = request
    payload: dict[str, Any] = Verifier(secret).verify(body, headers)
    return payload


async def test_an_event_arrives_signed_as_standard_webhooks_verify(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url, description="my hook")
    assert webhook["secret"].startswith("whsec_")
    assert len(__import__("base64").b64decode(webhook["secret"].removeprefix("whsec_"))) >= 24
    assert webhook["events"] == ["task.created", "task.updated", "task.completed", "task.deleted", "reminder.due"]
    task = await alice.create_task(title="Buy milk")

    await service.deliver_until(receiver, 1)

    event = verified(webhook["secret"], receiver.received[0])
    assert event["type"] == "task.created"
    assert event["data"]["id"] == task["id"]
    assert event["data"]["title"] == "Buy milk"
    assert event["data"]["user_id"] == alice.id
    with pytest.raises(WebhookVerificationError):
        Verifier("whsec_" + "A" * 32).verify(receiver.received[0][1], receiver.received[0][0])


async def test_each_task_command_sends_its_event(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url)
    task = await alice.create_task()
    assert (await alice.request("PATCH", f"/tasks/{task['id']}", json={"title": "Renamed"})).status_code == 200
    assert (await alice.request("PATCH", f"/tasks/{task['id']}/complete", json={})).status_code == 200
    assert (await alice.request("DELETE", f"/tasks/{task['id']}")).status_code == 204

    await service.deliver_until(receiver, 4)

    events = [verified(webhook["secret"], request) for request in receiver.received]
    assert sorted(event["type"] for event in events) == sorted(
        ["task.created", "task.updated", "task.completed", "task.deleted"]
    )
    assert {event["data"]["id"] for event in events} == {task["id"]}


async def test_an_endpoint_gets_only_the_event_types_it_asked_for(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url, events=["task.deleted"])
    task = await alice.create_task()
    assert (await alice.request("DELETE", f"/tasks/{task['id']}")).status_code == 204

    await service.deliver_until(receiver, 1)
    await service.drain()

    assert [verified(webhook["secret"], request)["type"] for request in receiver.received] == ["task.deleted"]


async def test_a_retry_after_a_500_keeps_its_webhook_id(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url)
    receiver.statuses = [500]
    await alice.create_task()

    await service.deliver_until(receiver, 1)
    failed = (await alice.request("GET", f"/webhooks/{webhook['id']}/deliveries")).json()
    assert [(d["state"], d["attempts"], d["last_status"]) for d in failed] == [("pending", 1, 500)]
    await service.drain()
    assert len(receiver.received) == 1, "the retry came before its time"

    service.clock.offset = timedelta(seconds=10)  # past the first retry's 5 s (+20 % at most)
    await service.deliver_until(receiver, 2)

    first, retry = receiver.received
    assert first[0]["webhook-id"] == retry[0]["webhook-id"] == failed[0]["webhook_id"]
    assert verified(webhook["secret"], first) == verified(webhook["secret"], retry)
    done = (await alice.request("GET", f"/webhooks/{webhook['id']}/deliveries")).json()
    assert [(d["state"], d["attempts"], d["last_status"], d["event_type"]) for d in done] == [
        ("delivered", 2, 200, "task.created")
    ]


async def test_a_rolled_back_change_sends_nothing(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url)
    batch = {"operations": [{"op": "create", "body": {"title": "Never"}}, {"op": "delete", "task": str(uuid.uuid4())}]}
    assert (await alice.request("POST", "/batch", json=batch)).status_code == 422
    await alice.create_task(title="Committed")

    await service.deliver_until(receiver, 1)
    await service.drain()

    assert [verified(webhook["secret"], r)["data"]["title"] for r in receiver.received] == ["Committed"]


async def test_another_users_events_never_reach_this_endpoint(service: Service, receiver: Receiver) -> None:
    alice, bob = service.user(), service.user()
    webhook = await register(alice, receiver.url)
    await bob.create_task(title="Bob's")
    await alice.create_task(title="Alice's")

    await service.deliver_until(receiver, 1)
    await service.drain()

    assert [verified(webhook["secret"], r)["data"]["title"] for r in receiver.received] == ["Alice's"]


async def test_an_endpoint_failing_for_24_hours_is_disabled(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url)
    receiver.statuses = [500] * 5
    await alice.create_task()
    await service.deliver_until(receiver, 1)
    listed = (await alice.request("GET", "/webhooks")).json()
    assert listed[0]["enabled"] is True and listed[0]["failing_since"] is not None

    service.clock.offset = timedelta(hours=25)
    await service.deliver_until(receiver, 2)

    (listed,) = (await alice.request("GET", "/webhooks")).json()
    assert listed["enabled"] is False
    assert "24 hours" in listed["disabled_reason"]
    await alice.create_task()  # no event is written for it
    service.clock.offset = timedelta(hours=30)  # and the failed delivery's retry is due, but not sent
    await service.drain()
    assert len(receiver.received) == 2, "a disabled endpoint was sent more"
    assert webhook["id"] == listed["id"]


async def test_list_shows_no_secret_and_delete_removes(service: Service, receiver: Receiver) -> None:
    alice, bob = service.user(), service.user()
    webhook = await register(alice, receiver.url, events=["task.created"], description="CRM")
    listed = await alice.request("GET", "/webhooks")
    assert listed.status_code == 200
    (shown,) = listed.json()
    assert "secret" not in shown and webhook["secret"] not in listed.text
    assert shown | {"secret": webhook["secret"]} == webhook
    assert (await bob.request("GET", "/webhooks")).json() == []
    problem(await bob.request("DELETE", f"/webhooks/{webhook['id']}"), 404)
    problem(await bob.request("GET", f"/webhooks/{webhook['id']}/deliveries"), 404)
    assert (await alice.request("DELETE", f"/webhooks/{webhook['id']}")).status_code == 204
    assert (await alice.request("GET", "/webhooks")).json() == []
    problem(await alice.request("DELETE", f"/webhooks/{webhook['id']}"), 404)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",  # a name that resolves to 127.0.0.1 (and ::1)
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "not a url",
    ],
)
async def test_a_url_that_could_reach_inside_is_refused(strict_service: Service, url: str) -> None:
    alice = strict_service.user()
    assert field_errors(await alice.request("POST", "/webhooks", json={"url": url})) == {"url"}
    assert (await alice.request("GET", "/webhooks")).json() == []


async def test_a_delivery_to_a_private_address_is_refused_at_delivery_too(
    service: Service, strict_service: Service, receiver: Receiver
) -> None:
    """Registered while loopback was allowed (as a name could resolve to a public address then,
    and to loopback now): the attempt checks again, and sends nothing."""
    alice = service.user()
    webhook = await register(alice, receiver.url)
    await alice.create_task()
    strict = HttpWebhookSender(WebhookDestinationsChecker(allow_private=False))
    try:
        for _ in range(ROUNDS_MAX):
            announcer = service.container.reminder_announcer()
            if not (
                await deliver_due(service.container.unit_of_work, service.clock, strict, announcer, batch=20)
            ).attempted:
                break
    finally:
        await strict.aclose()
    assert receiver.received == []
    (delivery,) = (await alice.request("GET", f"/webhooks/{webhook['id']}/deliveries")).json()
    assert delivery["last_status"] is None
    assert "not a public address" in delivery["last_error"]


async def test_a_user_has_at_most_max_webhooks(strict_service: Service) -> None:
    alice = strict_service.user()
    for _ in range(2):
        assert (await alice.request("POST", "/webhooks", json={"url": "https://93.184.215.14/hook"})).status_code == 201
    refused = problem(await alice.request("POST", "/webhooks", json={"url": "https://93.184.215.14/hook"}), 409)
    assert refused["type"] == "/problems/too-many-webhooks"
    assert len((await alice.request("GET", "/webhooks")).json()) == 2


async def test_unknown_event_types_and_bodies_are_422(strict_service: Service) -> None:
    alice = strict_service.user()
    unknown = {"url": "https://93.184.215.14/", "events": ["task.exploded"]}
    assert {
        field.split("[")[0].split("/")[0]
        for field in field_errors(await alice.request("POST", "/webhooks", json=unknown))
    } == {"events"}
    assert field_errors(
        await alice.request("POST", "/webhooks", json={"url": "https://93.184.215.14/", "events": []})
    ) == {"events"}
    assert field_errors(await alice.request("POST", "/webhooks", json={"url": "https://93.184.215.14/\x00"})) == {"url"}
    nul = {"url": "https://93.184.215.14/", "description": "a\x00b"}
    assert field_errors(await alice.request("POST", "/webhooks", json=nul)) == {"description"}
    assert (await alice.request("GET", "/webhooks")).json() == []


@pytest.fixture
def own_database_url(store: SqlStore, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated database an app may close at the end of its lifespan: a SQLite file of the
    test's own, or the session's PostgreSQL database (each app opens a pool of its own there)."""
    if store.pool is not None:
        return store.url
    url = f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}"
    migrate(url)
    return url


@pytest.mark.parametrize("in_server", [True, False])
async def test_the_server_delivers_in_the_background_unless_told_not_to(
    own_database_url: str, receiver: Receiver, in_server: bool
) -> None:
    """`todo serve`'s own loop (the app's lifespan), polling every 0.1 s: no test drives it."""
    settings = settings_for(
        own_database_url, webhooks_allow_private_networks=True, webhooks_poll_seconds=0.1, webhooks_in_server=in_server
    )
    app = create_app(container=Container(settings=settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        alice = Caller(client, f"user-{uuid.uuid4().hex[:16]}")
        webhook = await register(alice, receiver.url)
        task = await alice.create_task(title="In the background")
        deadline = time.monotonic() + (5 if in_server else 1)
        while not receiver.received and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    if not in_server:
        assert receiver.received == []
        return
    assert receiver.received, "nothing was delivered within 5 s"
    assert verified(webhook["secret"], receiver.received[0])["data"]["id"] == task["id"]


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


async def test_a_reminder_goes_out_once_when_it_is_due(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url, events=["reminder.due"])
    remind_at = SystemClock().now().replace(microsecond=0) + timedelta(hours=1)
    task = await alice.create_task(title="Call Bob", remind_at=_instant(remind_at))
    await service.drain()
    assert receiver.received == [], "the reminder went out before its time"

    service.clock.offset = timedelta(hours=1, seconds=1)
    await service.deliver_until(receiver, 1)
    await service.drain()

    (event,) = [verified(webhook["secret"], request) for request in receiver.received]
    assert event["type"] == "reminder.due"
    assert event["data"]["id"] == task["id"] and event["data"]["title"] == "Call Bob"
    assert datetime.fromisoformat(event["timestamp"]) == remind_at


async def test_completing_deleting_or_moving_a_reminder_cancels_it(service: Service, receiver: Receiver) -> None:
    alice = service.user()
    webhook = await register(alice, receiver.url, events=["reminder.due"])
    in_an_hour = _instant(SystemClock().now() + timedelta(hours=1))
    completed = await alice.create_task(title="Completed", remind_at=in_an_hour)
    deleted = await alice.create_task(title="Deleted", remind_at=in_an_hour)
    moved = await alice.create_task(title="Moved", remind_at=in_an_hour)
    cleared = await alice.create_task(title="Cleared", remind_at=in_an_hour)
    assert (await alice.request("PATCH", f"/tasks/{completed['id']}/complete", json={})).status_code == 200
    assert (await alice.request("DELETE", f"/tasks/{deleted['id']}")).status_code == 204
    later = _instant(SystemClock().now() + timedelta(hours=3))
    assert (await alice.request("PATCH", f"/tasks/{moved['id']}", json={"remind_at": later})).status_code == 200
    assert (await alice.request("PATCH", f"/tasks/{cleared['id']}", json={"remind_at": None})).status_code == 200

    service.clock.offset = timedelta(hours=2)
    await service.drain()
    assert receiver.received == [], "a cancelled reminder went out"

    service.clock.offset = timedelta(hours=3, seconds=1)
    await service.deliver_until(receiver, 1)
    await service.drain()
    assert [verified(webhook["secret"], r)["data"]["title"] for r in receiver.received] == ["Moved"]


async def test_todo_worker_delivers_what_the_servers_wrote(
    own_database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    """`todo worker`, a process of its own, delivers what an app that delivers nothing committed."""
    settings = settings_for(own_database_url, webhooks_allow_private_networks=True, webhooks_in_server=False)
    app = create_app(container=Container(settings=settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        alice = Caller(client, f"user-{uuid.uuid4().hex[:16]}")
        webhook = await register(alice, receiver.url)
        await alice.create_task(title="For the worker")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TODO_")}
    env |= {
        "TODO_DATABASE_URL": own_database_url,
        "TODO_DEV_MODE": "1",
        "TODO_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "1",
        "TODO_WEBHOOKS_POLL_SECONDS": "0.2",
    }
    worker = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "todo"), "worker", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while not any(verified(webhook["secret"], r)["data"]["title"] == "For the worker" for r in receiver.received):
            assert worker.returncode is None, "the worker ended"
            assert time.monotonic() < deadline, "the worker delivered nothing within 20 s"
            await asyncio.sleep(0.1)
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), 10)


class _Unreachable:
    """A unit of work whose database is down."""

    async def __aenter__(self) -> None:
        raise StorageUnavailable("the database cannot be reached")

    async def __aexit__(self, *_: object) -> None:
        return None


async def test_a_database_that_stays_down_is_logged_once_not_every_round(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}", webhooks_poll_seconds=0.01)
    container = Container(settings=settings)
    container.unit_of_work.override(providers.Factory(_Unreachable))
    container.reader.override(providers.Factory(_Unreachable))
    with caplog.at_level(logging.WARNING, logger="todo_api.maintenance"):
        looping = asyncio.create_task(deliver_periodically(container, settings))
        await asyncio.sleep(0.3)  # some 30 rounds
        looping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await looping
    await container.webhook_sender().aclose()
    assert [(record.message, record.exc_info) for record in caplog.records] == [
        ("delivering webhooks failed: the database cannot be reached; trying again every round", None)
    ]


def _kind(sql: str) -> str | None:
    """Which statement of the delivery loop this is, if it is one."""
    flat = " ".join(sql.split())
    if flat.startswith("DELETE FROM reminders WHERE (reminders.user_id, reminders.event_id) IN"):
        return "reminder claim"
    if "webhook_deliveries.next_attempt_at <=" in flat and flat.startswith("SELECT"):
        return "delivery claim"
    if "min(reminders.due_at)" in flat:
        return "next due"
    return None


async def test_a_reminder_reaches_the_event_stream_once_within_5_s_with_its_webhook(
    own_database_url: str, receiver: Receiver
) -> None:
    """`todo serve`'s own loop, at its default settings: a reminder set 2 s ahead is claimed at its
    time, once, and heard on the stream; one completed before then, and one moved, are not."""
    settings = settings_for(own_database_url, webhooks_allow_private_networks=True)
    app = create_app(container=Container(settings=settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
        httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://testserver") as streams,
    ):
        alice = Caller(client, f"user-{uuid.uuid4().hex[:16]}")
        webhook = await register(alice, receiver.url, events=["reminder.due"])
        async with open_events(streams, alice.url("/events"), alice.headers) as stream:
            soon = SystemClock().now() + timedelta(seconds=2)
            due = await alice.create_task(title="Due soon", remind_at=soon.isoformat())
            completed = await alice.create_task(title="Completed first", remind_at=soon.isoformat())
            moved = await alice.create_task(title="Moved away", remind_at=soon.isoformat())
            assert (await alice.request("PATCH", f"/tasks/{completed['id']}/complete", json={})).status_code == 200
            later = (SystemClock().now() + timedelta(hours=1)).isoformat()
            assert (await alice.request("PATCH", f"/tasks/{moved['id']}", json={"remind_at": later})).status_code == 200
            reminders = []
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline:  # past the reminder's time by 10 s: a second one would show
                with contextlib.suppress(TimeoutError):
                    event = await stream.next_event(max(0.0, deadline - time.monotonic()))
                    assert event is not None
                    if event.name == "reminder":
                        reminders.append((SystemClock().now(), orjson.loads(event.data)))
        while len(receiver.received) < 1 and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.05)
    ((heard_at, data),) = reminders
    assert data["task_id"] == due["id"] and data["title"] == "Due soon"
    assert abs(datetime.fromisoformat(data["remind_at"]) - soon) < timedelta(milliseconds=1)
    assert timedelta(0) <= heard_at - soon < timedelta(seconds=5)
    (sent,) = receiver.received
    assert sent[0]["webhook-id"] == data["id"]
    assert verified(webhook["secret"], sent)["data"]["id"] == due["id"]


async def test_a_write_wakes_the_delivery_loop_and_an_idle_one_claims_nothing(
    own_database_url: str, receiver: Receiver, sent_statements: SentStatements
) -> None:
    """With the safety-net poll at its longest (60 s), an event is delivered within a second of
    its commit: the commit wakes the loop. Idle, the loop reads when something is next due once
    per poll and sends no claim."""
    poll = 2.0
    settings = settings_for(own_database_url, webhooks_allow_private_networks=True, webhooks_poll_seconds=60)
    app = create_app(container=Container(settings=settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        alice = Caller(client, f"user-{uuid.uuid4().hex[:16]}")
        webhook = await register(alice, receiver.url, events=["task.created"])
        await asyncio.sleep(0.5)  # the loop's first look is over: it sleeps for 60 s
        task = await alice.create_task(title="Woken")
        written = time.monotonic()
        while not receiver.received and time.monotonic() - written < 5:
            await asyncio.sleep(0.02)
        delivered_after = time.monotonic() - written
        assert receiver.received, "not delivered within 5 s"
        assert verified(webhook["secret"], receiver.received[0])["data"]["id"] == task["id"]
        assert delivered_after < 1.0
        await asyncio.sleep(0.5)  # the round's records are done
        with sent_statements.capturing() as sent:
            await asyncio.sleep(poll)
    idle = [kind for kind in map(_kind, sent) if kind is not None]
    assert idle == [], f"an idle loop sent {idle} in {poll} s"


async def test_an_idle_loop_looks_once_per_poll_and_never_claims(
    own_database_url: str, sent_statements: SentStatements
) -> None:
    """TODO_WEBHOOKS_POLL_SECONDS=1 for 3.5 s with nothing due: 3 or 4 looks (one a poll), no claim."""
    settings = settings_for(own_database_url, webhooks_poll_seconds=1)
    app = create_app(container=Container(settings=settings))
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.3)
        with sent_statements.capturing() as sent:
            await asyncio.sleep(3.5)
    kinds = [kind for kind in map(_kind, sent) if kind is not None]
    assert set(kinds) <= {"next due"}, kinds
    assert 3 <= len(kinds) <= 4, kinds
