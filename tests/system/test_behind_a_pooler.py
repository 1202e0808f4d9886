"""Two replicas of the real `todo serve` behind nginx (deploy/nginx/nginx.conf, rendered with the
replicas' settings as the nginx image renders it, loopback ports put in, and a TLS port added) and
PgBouncer in transaction mode (deploy/pgbouncer/pgbouncer.ini, pointed at a fresh test database),
under a bounded mixed load through nginx while one replica is stopped with SIGTERM.

PgBouncer and nginx come from the system packages (`make test` installs them as root, `make
proxies`); without them these tests skip, unless TODO_REQUIRE_POSTGRES=1 (CI), where that is a
failure. PgBouncer refuses to run as root: as root it runs as the `postgres` user.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url

from tests.api.assertions import next_cursor, problem
from tests.conftest import Caller
from tests.event_streams import EventStream, open_events
from tests.ports import free_port
from tests.system.test_persistence import Deployment, Server, postgres_deployment

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NGINX_EXAMPLE = PROJECT_ROOT / "deploy" / "nginx" / "nginx.conf"
PGBOUNCER_EXAMPLE = PROJECT_ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini"
USER = "pooled:user"
#: The database's own time zone: not UTC, so that a session that missed its `SET` shows.
DATABASE_TIME_ZONE = "Asia/Tokyo"
STARTUP_SECONDS = 20.0
#: The load: this many operations by this many concurrent clients, each pausing between two
#: (nginx lets one address make 100 requests a second), all within LOAD_SECONDS.
OPERATIONS = 480
CLIENTS = 8
PAUSE_SECONDS = 0.1
LOAD_SECONDS = 90.0
#: Replica 1 is stopped once this many operations have been answered.
STOP_AFTER = 160
#: A POST or PATCH that a replica dropped while stopping is a 502 from nginx, and is repeated
#: (a create with the same Idempotency-Key) at most this many times.
RETRIES = 3
#: How long before SIGTERM and after the replica's exit a 502 may come.
WINDOW_SLACK_SECONDS = 1.0
#: How soon a change must reach a stream through the pooler (the in-process bound is 1 s; the
#: box is shared and busy).
EVENT_SECONDS = 5.0
#: Requests sent at once to see nginx's rate limit (100 a second, bursts of 200) at work.
SIMULTANEOUS = 400
#: The replicas' TODO_MAX_IMPORT_BYTES, which nginx's configuration is rendered with: above nginx's
#: own limit for other requests (2m), small enough to send quickly.
IMPORT_LIMIT = 3_000_000
JSON = {"Content-Type": "application/json"}


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        reason = f"`{name}` is not installed (`make proxies` installs it from the system packages as root)"
        if os.environ.get("TODO_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the pooler test is required (TODO_REQUIRE_POSTGRES=1) but {reason}")
        pytest.skip(reason)
    return found


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode} while starting:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return
        time.sleep(0.1)
    pytest.fail(f"{what} did not listen on {port} within {STARTUP_SECONDS} s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def _running(argv: list[str], what: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, what, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def pgbouncer_config(database_url: str, port: int, folder: Path) -> str:
    """The shipped example, pointed at the test's database, listening on `port`, trusting local
    clients (the test server trusts them too)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(PGBOUNCER_EXAMPLE.read_text())
    url = make_url(database_url)
    config["databases"] = {
        url.database or "": f"host={url.host or '127.0.0.1'} port={url.port or 5432} dbname={url.database}"
    }
    (folder / "userlist.txt").write_text(f'"{url.username}" ""\n')
    config["pgbouncer"].update(
        listen_addr="127.0.0.1",
        listen_port=str(port),
        auth_type="trust",
        auth_file=str(folder / "userlist.txt"),
        pidfile=str(folder / "pgbouncer.pid"),
        logfile="",
    )
    with (folder / "pgbouncer.ini").open("w") as file:
        config.write(file)
    return str(folder / "pgbouncer.ini")


def nginx_config(
    replica_ports: list[int], ports: tuple[int, int], folder: Path, replica_settings: dict[str, str]
) -> str:
    """The shipped example, its upstreams, listening port and paths replaced by the test's (and a
    second port, for HTTPS, with a certificate made here, as nginx terminates TLS), rendered
    with the replicas' settings as the nginx image renders a template: envsubst, given the
    variables of its environment that match its filter (compose.yaml's NGINX_ENVSUBST_FILTER)."""
    envsubst = _tool("envsubst")
    rendered = subprocess.run(
        [envsubst, "".join(f"${{{name}}}" for name in replica_settings if name.startswith("TODO_"))],
        input=NGINX_EXAMPLE.read_text(),
        env=replica_settings,
        capture_output=True,
        text=True,
        check=True,
    )
    text = rendered.stdout
    replacements = {
        "api-1:8000": f"127.0.0.1:{replica_ports[0]}",
        "api-2:8000": f"127.0.0.1:{replica_ports[1]}",
        "listen 8080;": f"listen 127.0.0.1:{ports[0]}; listen 127.0.0.1:{ports[1]} ssl; "
        f"ssl_certificate {folder}/tls.crt; ssl_certificate_key {folder}/tls.key;",
        "/var/run/todo-nginx/": f"{folder}/",
        "/tmp/todo-nginx-": f"{folder}/temp-",
    }
    for old, new in replacements.items():
        assert old in text, f"{NGINX_EXAMPLE} no longer has {old!r}: update this test with it"
        text = text.replace(old, new)
    (folder / "nginx.conf").write_text(text)
    _self_signed_certificate(folder / "tls.crt", folder / "tls.key")
    return str(folder / "nginx.conf")


def _self_signed_certificate(certificate: Path, key: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    signed = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    certificate.write_bytes(signed.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@dataclass
class Cluster:
    """Two replicas, nginx in front of them, PgBouncer behind them."""

    deployment: Deployment
    replicas: list[Server]
    nginx_url: str
    nginx_https_url: str
    pooled_url: str
    direct_url: str
    replica_settings: dict[str, str]


@pytest.fixture
def cluster(postgres_server_url: str, tmp_path: Path) -> Iterator[Cluster]:
    pgbouncer, nginx = _tool("pgbouncer"), _tool("nginx")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    # PgBouncer runs as `postgres` when we are root, and nginx's workers as `nobody`: the folder
    # is outside pytest's private one and open to both, PgBouncer's own folder is its user's.
    folder = Path(tempfile.mkdtemp(prefix="todo-pooler-"))
    folder.chmod(0o755)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        deployment = stack.enter_context(postgres_deployment(postgres_server_url, workdir))
        direct_url = deployment.environment["TODO_DATABASE_URL"]
        database = make_url(direct_url).database
        with psycopg.connect(make_url(postgres_server_url).set(drivername="postgresql").render_as_string(False)) as c:
            c.autocommit = True
            c.execute(f"ALTER DATABASE \"{database}\" SET timezone TO '{DATABASE_TIME_ZONE}'")

        bouncer_port = free_port()
        bouncer_folder = folder / "pgbouncer"
        bouncer_folder.mkdir()
        ini = pgbouncer_config(direct_url, bouncer_port, bouncer_folder)
        argv = [pgbouncer, ini]
        if os.geteuid() == 0:
            for path in [bouncer_folder, *bouncer_folder.iterdir()]:
                shutil.chown(path, "postgres")
            argv = ["runuser", "-u", "postgres", "--", *argv]
        stack.enter_context(_running(argv, "pgbouncer", bouncer_port, folder / "pgbouncer.log"))
        pooled_url = make_url(direct_url).set(host="127.0.0.1", port=bouncer_port).render_as_string(False)

        settings = {
            "TODO_DATABASE_URL": pooled_url,
            "TODO_DATABASE_POOLER": "transaction",
            "TODO_LISTEN_DATABASE_URL": direct_url,
            "TODO_DB_POOL_SIZE": "4",
            "TODO_SHUTDOWN_GRACE_SECONDS": "5",
            "TODO_MAX_IMPORT_BYTES": str(IMPORT_LIMIT),
        }
        replicas = [deployment.start(run=number, **settings) for number in (1, 2)]
        for replica in replicas:
            stack.callback(replica.stop)
        for replica in replicas:
            replica.wait_until_healthy()

        nginx_port, nginx_https_port = free_port(), free_port()
        nginx_folder = folder / "nginx"
        nginx_folder.mkdir()
        ports = [int(replica.base_url.rsplit(":", 1)[1]) for replica in replicas]
        config = nginx_config(ports, (nginx_port, nginx_https_port), nginx_folder, settings)
        argv = [nginx, "-p", str(nginx_folder), "-e", "stderr", "-c", config, "-g", "daemon off;"]
        stack.enter_context(_running(argv, "nginx", nginx_port, folder / "nginx.log"))
        yield Cluster(
            deployment,
            replicas,
            f"http://127.0.0.1:{nginx_port}",
            f"https://127.0.0.1:{nginx_https_port}",
            pooled_url,
            direct_url,
            settings,
        )


@dataclass
class Load:
    """What the load saw: acknowledged creates by key, and every 5xx with when it came."""

    created: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> task id
    bodies: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[tuple[str, int, float]] = field(default_factory=list)  # method, status, when
    answered: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, method: str, response: httpx.Response) -> None:
        self.answered += 1
        if response.status_code >= 500:
            self.failures.append((method, response.status_code, time.monotonic()))
        if self.answered >= STOP_AFTER:
            self.stopping.set()


async def _with_retries(load: Load, caller: Caller, method: str, path: str, **kwargs: object) -> httpx.Response:
    """The request, repeated on a 502 (a replica dropped it while stopping) up to RETRIES times."""
    for _ in range(RETRIES):
        response = await caller.request(method, path, **kwargs)  # type: ignore[arg-type]
        load.record(method, response)
        if response.status_code != 502:
            return response
        await asyncio.sleep(0.2)
    return response


async def _client_load(load: Load, caller: Caller, rng: random.Random, operations: int) -> None:
    for _ in range(operations):
        kind = rng.choices(["create", "get", "list", "patch"], weights=[3, 3, 3, 2])[0]
        if kind == "create" or not load.created:
            key = uuid.uuid4().hex
            body = {"title": f"load {key}", "tags": ["load"]}
            response = await _with_retries(load, caller, "POST", "/tasks", json=body, headers={"Idempotency-Key": key})
            assert response.status_code == 201, response.text
            load.created[key], load.bodies[key] = response.json()["id"], body
        elif kind == "get":
            task_id = rng.choice(list(load.created.values()))
            response = await _with_retries(load, caller, "GET", f"/tasks/{task_id}")
            assert response.status_code == 200, response.text
        elif kind == "list":
            response = await _with_retries(load, caller, "GET", "/tasks", params={"limit": 20, "sort": "-created_at"})
            assert response.status_code == 200, response.text
            assert all(item["created_at"].endswith(("Z", "+00:00")) for item in response.json())
        else:
            task_id = rng.choice(list(load.created.values()))
            patch = {"description": f"patched {rng.random()}"}
            response = await _with_retries(load, caller, "PATCH", f"/tasks/{task_id}", json=patch)
            assert response.status_code == 200, response.text
        await asyncio.sleep(PAUSE_SECONDS)


async def _stop_when_asked(load: Load, replica: Server) -> tuple[float, float, int | None]:
    """SIGTERM to `replica` once the load has gone far enough; (sent, exited, exit status)."""
    await load.stopping.wait()
    sent = time.monotonic()
    status = await asyncio.to_thread(replica.stop)
    return sent, time.monotonic(), status


async def _next_since(stream: EventStream, timeout: float) -> str:
    event = await stream.next_event(timeout)
    assert event is not None, "the stream ended"
    assert event.name == "changed", event
    token: str = orjson.loads(event.data)["next_since"]
    return token


async def _latest(caller: Caller) -> str:
    since: str | None = None
    for _ in range(100):
        response = await caller.request("GET", "/changes", params={"since": since} if since else {})
        assert response.status_code == 200, response.text
        since = response.json()["next_since"]
        if not response.json()["has_more"]:
            assert since is not None
            return since
    raise AssertionError("more than 100 pages of changes")


async def _all_tasks(caller: Caller) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    for _ in range(100):
        params: dict[str, str | int] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        response = await caller.request("GET", "/tasks", params=params)
        assert response.status_code == 200, response.text
        items += response.json()
        cursor = next_cursor(response)
        if not cursor:
            return items
    raise AssertionError("more than 100 pages of tasks")


async def test_a_replica_stopped_under_load_behind_nginx_and_pgbouncer_loses_nothing(cluster: Cluster) -> None:
    stopped, staying = cluster.replicas
    rng = random.Random(20261207)
    load = Load()
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(lambda: print(f"5xx during the load: {load.failures}"))
        through_nginx = await stack.enter_async_context(httpx.AsyncClient(base_url=cluster.nginx_url, timeout=30.0))
        on_stopped = await stack.enter_async_context(httpx.AsyncClient(base_url=stopped.base_url, timeout=30.0))
        on_staying = await stack.enter_async_context(httpx.AsyncClient(base_url=staying.base_url, timeout=30.0))
        stream = await stack.enter_async_context(
            open_events(on_staying, f"/api/{USER}/events", Caller(on_staying, USER).headers)
        )
        assert stream.response.status_code == 200

        # A change made on one replica is announced on a stream held by the other.
        made = await Caller(on_stopped, USER).create_task(title="made on the replica about to stop")
        assert made["created_at"].endswith(("Z", "+00:00")), made  # UTC, whatever the database's zone
        assert await _next_since(stream, EVENT_SECONDS) == await _latest(Caller(on_staying, USER))

        callers = [Caller(through_nginx, USER) for _ in range(CLIENTS)]
        async with asyncio.timeout(LOAD_SECONDS):
            stopping = asyncio.create_task(_stop_when_asked(load, stopped))
            await asyncio.gather(*(_client_load(load, caller, rng, OPERATIONS // CLIENTS) for caller in callers))
            sent, exited, status = await stopping
        # Uvicorn re-raises the SIGTERM it handled once shutdown is complete.
        assert status in {0, -signal.SIGTERM}, f"the stopped replica did not exit cleanly:\n{stopped.output()}"

        # Requests nginx can repeat on the other replica never failed; a POST or PATCH a stopping
        # replica dropped got a 502, only while it stopped (and its retry succeeded, above).
        assert not [failure for failure in load.failures if failure[0] == "GET"], load.failures
        assert {status for _, status, _ in load.failures} <= {502}, load.failures
        window = (sent - WINDOW_SLACK_SECONDS, exited + WINDOW_SLACK_SECONDS)
        assert all(window[0] <= when <= window[1] for _, _, when in load.failures), (window, load.failures)

        # Every acknowledged create is stored, once, and readable through a replica that
        # did not make it, and through one started afresh.
        fresh = cluster.deployment.start(run=3, **cluster.replica_settings)
        stack.callback(fresh.stop)
        fresh.wait_until_healthy()
        on_fresh = await stack.enter_async_context(httpx.AsyncClient(base_url=fresh.base_url, timeout=30.0))
        for client in (on_staying, on_fresh):
            stored = await _all_tasks(Caller(client, USER))
            titles = [item["title"] for item in stored]
            assert len(titles) == len(set(titles)), "a create was stored twice"
            assert {item["id"] for item in stored} == {made["id"], *load.created.values()}

        # Retrying a create through the other replica replays it: nothing is created twice.
        for key in rng.sample(sorted(load.created), 20):
            response = await Caller(on_staying, USER).request(
                "POST", "/tasks", json=load.bodies[key], headers={"Idempotency-Key": key}
            )
            assert response.status_code == 201, response.text
            assert response.headers["Idempotent-Replayed"] == "true"
            assert response.json()["id"] == load.created[key]
        assert len(await _all_tasks(Caller(on_staying, USER))) == len(load.created) + 1

        # The stream on the replica that stayed heard of the load's changes, made through both
        # replicas, up to the last one.
        latest = await _latest(Caller(on_staying, USER))
        deadline = asyncio.get_running_loop().time() + EVENT_SECONDS
        heard = None
        while heard != latest:
            heard = await _next_since(stream, max(0.0, deadline - asyncio.get_running_loop().time()))


async def test_nginx_passes_the_request_id_and_limits_each_client(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.nginx_url, timeout=30.0) as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "trace-me-42"})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == "trace-me-42"
        assert re.fullmatch(r"[0-9a-f]{32}", (await client.get("/healthz")).headers["X-Request-ID"])

        # Sent all at once on connections opened beforehand, so that they arrive within a fraction
        # of a second however slow this machine is today: far above 200 + 100 a second.
        answers = await asyncio.to_thread(_all_at_once, cluster.nginx_url, "/healthz", SIMULTANEOUS)
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses.count(429) >= SIMULTANEOUS - 300, f"{statuses.count(429)} of {SIMULTANEOUS} limited"
        _, headers, body = next(answer for answer in answers if answer[0] == 429)
        assert headers["content-type"] == "application/problem+json"
        assert headers["retry-after"] == "1"
        assert orjson.loads(body)["status"] == 429


async def test_behind_nginx_links_name_the_public_address_and_bodies_are_limited_as_the_replicas_do(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=cluster.nginx_url, timeout=30.0) as client:
        caller = Caller(client, USER)
        # The calendar feed link is the address the client used, port included (nginx's $host
        # would drop the port), not the replica's.
        for host in (httpx.URL(cluster.nginx_url).netloc.decode(), "todo.example:8443"):
            feed = await caller.request("POST", "/calendar-feeds", headers={"Host": host})
            assert feed.status_code == 201, feed.text
            assert feed.json()["url"].startswith(f"http://{host}/feeds/"), feed.json()
    # Asked over HTTPS (nginx terminates TLS), the link is an https one: the replicas believe
    # nginx's X-Forwarded-Proto (it connects from loopback, which they trust by default).
    async with httpx.AsyncClient(base_url=cluster.nginx_https_url, timeout=30.0, verify=False) as client:
        feed = await Caller(client, USER).request("POST", "/calendar-feeds")
        assert feed.status_code == 201, feed.text
        assert feed.json()["url"].startswith(f"{cluster.nginx_https_url}/feeds/"), feed.json()
        async with httpx.AsyncClient(timeout=30.0, verify=False) as calendar_app:
            fetched = await calendar_app.get(feed.json()["url"])
        assert fetched.status_code == 200
        assert fetched.content.startswith(b"BEGIN:VCALENDAR")
    async with httpx.AsyncClient(base_url=cluster.nginx_url, timeout=30.0) as client:
        caller = Caller(client, USER)

        # Too large for nginx: refused by nginx itself, in the service's own words.
        refused = await caller.request("POST", "/tasks", content=_json_of_size(2 * 1024 * 1024 + 1), headers=JSON)
        problem(refused, 413)
        assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["X-Request-ID"])
        # Past the service's own limit (TODO_MAX_BODY_BYTES) but not nginx's: the service's 413.
        own = await caller.request("POST", "/tasks", content=_json_of_size(1_500_000), headers=JSON)
        assert problem(own, 413) == problem(refused, 413)

        # An import is let through up to the replicas' TODO_MAX_IMPORT_BYTES, and no further.
        imported = await caller.request("POST", "/import", content=_json_of_size(IMPORT_LIMIT), headers=JSON)
        problem(imported, 422)  # it reached the service, which read it whole: not an account document
        too_large = await caller.request("POST", "/import", content=_json_of_size(IMPORT_LIMIT + 1), headers=JSON)
        assert problem(too_large, 413) == problem(refused, 413)


def _json_of_size(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head, tail = b'{"padding": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def _all_at_once(base_url: str, path: str, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """GET `path` on `count` connections: all opened, then all requests sent, then all read."""
    address = httpx.URL(base_url)
    request = f"GET {path} HTTP/1.1\r\nHost: {address.host}\r\nConnection: close\r\n\r\n".encode()
    with contextlib.ExitStack() as stack:
        connections = [
            stack.enter_context(socket.create_connection((address.host, address.port), timeout=30.0))
            for _ in range(count)
        ]
        for connection in connections:
            connection.sendall(request)
        answers = []
        for connection in connections:
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in header_lines)}
            answers.append((int(status_line.split(" ")[1]), headers, body))
        return answers
