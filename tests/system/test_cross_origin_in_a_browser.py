"""A front end on another origin, in a real browser: headless Chromium opens a page served by a
second small HTTP server, whose script calls a real `todo serve` the way a Next.js page does,
`fetch(…, {credentials: 'include', headers: {Authorization: 'Bearer …'}})`, and lists, creates,
toggles and deletes tasks, reading the headers the service exposes. The same page from an origin
the service does not list is refused by the browser.

The page's origins (`http://app.test:PORT`, `http://elsewhere.test:PORT`) and the service's
(`http://todo.test:PORT`) are names only this browser knows (it maps them to loopback), so that
they are different sites, as in production, and nothing leaves the machine. The script writes what
it saw into the page, which Chromium prints (`--dump-dom`).

Chromium comes from the system packages (`make test` installs it, `make browser`); without it
these tests skip, unless TODO_REQUIRE_POSTGRES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SECRET
from tests.system.test_docs_in_a_browser import chromium, dump_dom  # noqa: F401  # chromium: a fixture
from tests.system.test_persistence import Deployment, clean_environment
from todo_adapters.auth import mint_token

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]  # one Chromium at a time

APP_HOST = "app.test"
UNLISTED_HOST = "elsewhere.test"
API_HOST = "todo.test"
USER = "browser-user"
#: Every name Chromium looks up is this machine, or nothing.
HOST_RULES = f"MAP {APP_HOST} 127.0.0.1, MAP {UNLISTED_HOST} 127.0.0.1, MAP {API_HOST} 127.0.0.1, MAP * ~NOTFOUND"

#: The front end's calls, as its `lib/api.ts` would make them. A list is a JSON array or an
#: object with `items`, whichever the service answers.
SCRIPT = """
const auth = {Authorization: `Bearer ${TOKEN}`};
async function call(method, path, {body, headers} = {}) {
  const init = {method, credentials: 'include', headers: {...auth, ...headers}};
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${API}/api/${USER}${path}`, init);
  const text = await response.text();
  const read = (name) => response.headers.get(name);
  return {status: response.status, body: text ? JSON.parse(text) : null, read};
}
const items = (body) => (Array.isArray(body) ? body : body.items);
async function run() {
  const seen = {};
  const created = await call('POST', '/tasks', {body: {title: 'Written from another origin'},
                                                 headers: {'Idempotency-Key': 'page-create-1'}});
  seen.created = {status: created.status, id: created.body.id, location: created.read('Location'),
                  etag: created.read('ETag'), requestId: created.read('X-Request-ID')};
  const again = await call('POST', '/tasks', {body: {title: 'Written from another origin'},
                                               headers: {'Idempotency-Key': 'page-create-1'}});
  seen.replayed = {status: again.status, id: again.body.id, replayed: again.read('Idempotent-Replayed')};
  const listed = await call('GET', '/tasks?limit=10', {headers: {'X-Request-ID': 'page-list-1'}});
  seen.listed = {status: listed.status, ids: items(listed.body).map((task) => task.id),
                 requestId: listed.read('X-Request-ID')};
  const second = await call('POST', '/tasks', {body: {title: 'A second one, for a second page'}});
  const firstPage = await call('GET', '/tasks?limit=1');
  seen.paged = {status: firstPage.status, array: Array.isArray(firstPage.body), link: firstPage.read('Link'),
                nextCursor: Array.isArray(firstPage.body) ? null : firstPage.body.next_cursor};
  await call('DELETE', `/tasks/${second.body.id}`);
  const id = created.body.id;
  const toggled = await call('PATCH', `/tasks/${id}/complete`, {headers: {'If-Match': created.read('ETag')}});
  seen.toggled = {status: toggled.status, completed: toggled.body.completed, etag: toggled.read('ETag')};
  const stale = await call('PATCH', `/tasks/${id}/complete`, {headers: {'If-Match': created.read('ETag')}});
  seen.stale = {status: stale.status, type: stale.body.type, etag: stale.read('ETag')};
  const unchanged = await call('GET', `/tasks/${id}`, {headers: {'If-None-Match': toggled.read('ETag')}});
  seen.unchanged = {status: unchanged.status};
  const deleted = await call('DELETE', `/tasks/${id}`);
  seen.deleted = {status: deleted.status};
  const after = await call('GET', '/tasks');
  seen.after = {status: after.status, ids: items(after.body).map((task) => task.id)};
  const anonymous = await fetch(`${API}/api/${USER}/tasks`, {credentials: 'include'});
  seen.anonymous = {status: anonymous.status, detail: (await anonymous.json()).detail};
  return seen;
}
const show = (what) => { document.getElementById('result').textContent = JSON.stringify(what); };
run().then(show, (error) => show({error: `${error.name}: ${error.message}`}));
"""


def page(api: str, token: str) -> bytes:
    constants = f"const API = {json.dumps(api)}, USER = {json.dumps(USER)}, TOKEN = {json.dumps(token)};"
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>front end</title></head>'
        f'<body><pre id="result">not run</pre><script>{constants}{SCRIPT}</script></body></html>'
    ).encode()


class PageServer:
    """The front end's own server, on loopback: `page` at `/`. Its port is bound first, for the
    service to list the page's origin; the page, which names the service, is set after."""

    def __init__(self) -> None:
        self.page = b""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(owner.page)))
                self.end_headers()
                self.wfile.write(owner.page)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def front_end(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    """The page's server, and a `todo serve` that lists the page's origin (as people write it: no
    JSON brackets, a second origin after a comma)."""
    workdir = tmp_path_factory.mktemp("cross-origin")
    with PageServer() as pages:
        environment = clean_environment(
            TODO_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'todo.db'}",
            TODO_JWT_SECRET=TEST_SECRET,
            TODO_CORS_ORIGINS=f"http://{APP_HOST}:{pages.port}, https://other-app.example",
        )
        deployment = Deployment(environment, workdir)
        deployment.migrate()
        service = deployment.start(run=1)
        try:
            service.wait_until_healthy()
            api = f"http://{API_HOST}:{service.base_url.rsplit(':', 1)[1]}"
            pages.page = page(api, mint_token(TEST_SECRET, USER))
            yield pages
        finally:
            service.stop()


def run_page(browser: str, url: str, workdir: Path) -> dict[str, Any]:
    """What the page's script wrote into the page, once Chromium has run it."""
    dom = dump_dom(browser, url, workdir / "browser", f"--host-resolver-rules={HOST_RULES}")
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert found is not None, dom[-3000:]
    seen: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return seen


def test_a_page_on_a_listed_origin_lists_creates_toggles_and_deletes_with_credentials(
    chromium: str,  # noqa: F811  # the fixture imported above
    front_end: PageServer,
    tmp_path: Path,
) -> None:
    seen = run_page(chromium, f"http://{APP_HOST}:{front_end.port}/", tmp_path)

    assert "error" not in seen, seen
    created = seen["created"]
    assert created["status"] == 201
    # The headers the service exposes are readable by the page's script.
    assert created["location"].endswith(f"/api/{USER}/tasks/{created['id']}")
    assert created["etag"] == '"1"'
    assert re.fullmatch(r"[0-9a-f]{32}", created["requestId"])
    assert seen["replayed"] == {"status": 201, "id": created["id"], "replayed": "true"}
    assert seen["listed"] == {"status": 200, "ids": [created["id"]], "requestId": "page-list-1"}
    # The next page: named by `Link` where a list is a JSON array, in the body where it is not.
    paged = seen["paged"]
    assert paged["status"] == 200
    assert 'rel="next"' in paged["link"] if paged["array"] else paged["nextCursor"], paged
    assert seen["toggled"] == {"status": 200, "completed": True, "etag": '"2"'}
    assert seen["stale"] == {"status": 412, "type": "/problems/precondition-failed", "etag": '"2"'}
    assert seen["unchanged"] == {"status": 304}
    assert seen["deleted"] == {"status": 204}
    assert seen["after"] == {"status": 200, "ids": []}
    # An error answer is readable too: the page can show the problem's detail.
    assert seen["anonymous"]["status"] == 401
    assert seen["anonymous"]["detail"]


def test_the_same_page_on_an_origin_not_listed_is_refused_by_the_browser(
    chromium: str,  # noqa: F811  # the fixture imported above
    front_end: PageServer,
    tmp_path: Path,
) -> None:
    seen = run_page(chromium, f"http://{UNLISTED_HOST}:{front_end.port}/", tmp_path)

    # fetch rejects a cross-origin answer without CORS headers: the script learns nothing.
    assert seen == {"error": "TypeError: Failed to fetch"}
