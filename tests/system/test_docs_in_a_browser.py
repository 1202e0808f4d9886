"""The interactive documentation in a real browser: headless Chromium opens /docs and /redoc of
a real `todo serve`, and both render every operation of the OpenAPI document from the service's
own files, with no request to any other host.

The service is opened as `http://todo.test:PORT`, a name only this browser knows (it maps it to
loopback), as from an intranet host rather than from localhost, which browsers and scripts may
treat specially. Chromium resolves no other name, so nothing leaves the machine; its network log
shows every request a page started, told apart from the browser's own calls to its vendor's
services (update checks, time, accounts) by the page's origin as their initiator.

Chromium comes from the system packages (`make test` installs it when it can). Without it these
tests skip, unless TODO_REQUIRE_POSTGRES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.system.test_persistence import Deployment, Server, clean_environment, dev_mode_server
from todo_api.docs import ASSETS_URL
from todo_api.settings import DEMO_USER

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]  # one Chromium at a time

HOST = "todo.test"
#: Virtual time lets the page run its timers without waiting for them; network loads still
#: take real time, bounded by the process's timeout.
VIRTUAL_TIME_MS = 30_000
BROWSER_SECONDS = 90.0
#: How every browser test starts Chromium (as root in CI, on a machine with no network).
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        reason = "`chromium` is not on PATH (`apt-get install chromium`; `make test` does it when run as root)"
        if os.environ.get("TODO_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"the browser test is required (TODO_REQUIRE_POSTGRES=1) but {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("docs")
    database_url = f"sqlite+aiosqlite:///{workdir / 'todo.db'}"
    deployment = Deployment(clean_environment(TODO_DATABASE_URL=database_url, TODO_JWT_SECRET=TEST_SECRET), workdir)
    deployment.migrate()
    running = deployment.start(run=1)
    try:
        running.wait_until_healthy()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`make run`'s server: development mode with its built-in secret."""
    with dev_mode_server(tmp_path_factory.mktemp("docs-dev")) as running:
        yield running


@dataclass(frozen=True)
class PageLoad:
    """What Chromium made of a page: its DOM once rendered, and the URLs the page requested."""

    dom: str
    requested: list[str]


def open_page(chromium: str, url: str, workdir: Path) -> PageLoad:
    network_log = workdir / "netlog.json"
    dom = dump_dom(
        chromium,
        url,
        workdir,
        f"--host-resolver-rules=MAP {HOST} 127.0.0.1, MAP * ~NOTFOUND",
        f"--log-net-log={network_log}",
    )
    return PageLoad(dom, _requested_by_pages(json.loads(network_log.read_text())))


def dump_dom(chromium: str, url: str, workdir: Path, *flags: str) -> str:
    """The page's DOM once Chromium has rendered it and run its scripts (in virtual time), in a
    fresh profile under `workdir` (made here)."""
    workdir.mkdir()
    try:
        result = subprocess.run(
            [
                chromium,
                *BROWSER_FLAGS,
                *flags,
                f"--user-data-dir={workdir / 'profile'}",
                f"--virtual-time-budget={VIRTUAL_TIME_MS}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            timeout=BROWSER_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish rendering {url} within {BROWSER_SECONDS} s")
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return result.stdout.decode()


def _requested_by_pages(network_log: dict[str, Any]) -> list[str]:
    """The URLs of the requests a page started (the browser's own have no initiating origin)."""
    started = network_log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        params["url"]
        for event in network_log["events"]
        if event["type"] == started
        and (params := event.get("params", {})).get("initiator", "not an origin") != "not an origin"
    ]


def operations(server: Server) -> list[tuple[str, str]]:
    """(first tag, operationId) of every operation in the served OpenAPI document."""
    document = httpx.get(f"{server.base_url}/openapi.json", timeout=10.0).json()
    return [
        ((operation.get("tags") or ["default"])[0], operation["operationId"])
        for item in document["paths"].values()
        for operation in item.values()
    ]


def origin_of(server: Server) -> str:
    return f"http://{HOST}:{server.base_url.rsplit(':', 1)[1]}"


def assert_only_own_origin(page: PageLoad, origin: str, expected: set[str]) -> None:
    elsewhere = [url for url in page.requested if not url.startswith(f"{origin}/")]
    assert elsewhere == [], "the page asked other hosts"
    # The log saw the page's own requests, so an empty `elsewhere` means something.
    assert expected <= {url.removeprefix(origin) for url in page.requested}


def test_swagger_ui_renders_every_operation_from_the_services_own_files(
    chromium: str, server: Server, tmp_path: Path
) -> None:
    origin = origin_of(server)
    page = open_page(chromium, f"{origin}/docs", tmp_path / "docs")

    rendered = set(re.findall(r'class="opblock opblock-\w+[^"]*" id="operations-([^"]+)"', page.dom))
    assert rendered == {f"{tag}-{operation_id}" for tag, operation_id in operations(server)}
    assert re.search(r'<button class="btn authorize', page.dom), "no Authorize button"
    assert_only_own_origin(
        page, origin, {"/openapi.json", f"{ASSETS_URL}/swagger-ui-bundle.js", f"{ASSETS_URL}/swagger-ui.css"}
    )


def test_redoc_renders_every_operation_from_the_services_own_files(
    chromium: str, server: Server, tmp_path: Path
) -> None:
    origin = origin_of(server)
    page = open_page(chromium, f"{origin}/redoc", tmp_path / "redoc")

    expected = {f"tag/{tag}/operation/{operation_id}" for tag, operation_id in operations(server)}
    assert set(re.findall(r'<li [^>]*data-item-id="([^"]+/operation/[^"]+)"', page.dom)) == expected  # the menu
    assert set(re.findall(r'data-section-id="([^"]+/operation/[^"]+)"', page.dom)) == expected  # the content
    assert_only_own_origin(page, origin, {"/openapi.json", f"{ASSETS_URL}/redoc.standalone.js"})


def test_swagger_ui_in_development_mode_is_authorised_as_the_demo_user_and_works(
    chromium: str, dev_server: Server, tmp_path: Path
) -> None:
    page = open_page(chromium, f"{origin_of(dev_server)}/docs", tmp_path / "docs")

    assert re.search(r'<button class="btn authorize locked"', page.dom), "Swagger UI is not authorised"
    # The token the page is authorised with is the demo user's, and the API takes it.
    served = httpx.get(f"{dev_server.base_url}/docs", timeout=10.0)
    assert served.headers["cache-control"] == "no-store"
    (token,) = re.findall(r'preauthorizeApiKey\("HTTPBearer", "([^"]+)"\)', served.text)
    listed = httpx.get(
        f"{dev_server.base_url}/api/{DEMO_USER}/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    )
    assert listed.status_code == 200, listed.text


def test_swagger_ui_outside_development_mode_has_no_token(chromium: str, server: Server, tmp_path: Path) -> None:
    page = open_page(chromium, f"{origin_of(server)}/docs", tmp_path / "docs")

    assert re.search(r'<button class="btn authorize unlocked"', page.dom), "Swagger UI is authorised"
    assert "preauthorize" not in httpx.get(f"{server.base_url}/docs", timeout=10.0).text


def test_make_runs_banner_pastes_into_a_shell_and_reaches_the_demo_users_tasks(dev_server: Server) -> None:
    """The lines `todo serve` prints in development mode, pasted as they are."""
    banner = dev_server.output().split("Uvicorn running", 1)[0]
    pasted = [line.strip() for line in banner.splitlines() if line.strip().startswith(("export ", "curl "))]
    assert [line.split(maxsplit=1)[0] for line in pasted] == ["export", "export", "curl"], banner
    assert f"export API={dev_server.base_url}/api/{DEMO_USER}" in pasted
    result = subprocess.run(
        ["bash", "-c", "set -e\n" + "\n".join(pasted) + "\necho\necho $TOKEN"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    answer, token = result.stdout.decode().strip().rsplit("\n", 1)
    assert '"type"' not in answer, answer  # not a problem document: the token was taken
    json.loads(answer)
    listed = httpx.get(
        f"{dev_server.base_url}/api/{DEMO_USER}/tasks", headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    )
    assert listed.status_code == 200, listed.text
