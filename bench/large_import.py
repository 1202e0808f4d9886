"""One large import (20,000 tasks, 10 MB) into `todo serve` (1 worker) while another user creates
a task every 50 ms: the worker's resident memory (before, peak, after) and the other user's
latencies. `python -m bench.large_import CODE_DIR DATABASE_URL` runs the code in CODE_DIR (a
checkout: `git archive REF | tar -x -C DIR` measures REF) on a migrated DATABASE_URL; prints JSON.
"""

import json
import pathlib
import subprocess
import sys
import threading
import time
import uuid

import httpx

from tests.api.test_portability_api import a_large_document
from tests.system.test_persistence import TEST_SECRET, clean_environment, free_port
from todo_adapters.auth import mint_token

code, url = sys.argv[1], sys.argv[2]
env = clean_environment(TODO_DATABASE_URL=url, TODO_JWT_SECRET=TEST_SECRET, PYTHONPATH=code, TODO_WORKERS="1")
subprocess.run([sys.executable, "-m", "todo_api", "migrate"], env=env, cwd=code, check=True, capture_output=True)
port = free_port()
server = subprocess.Popen(
    [sys.executable, "-m", "todo_api", "serve"],
    env=env | {"TODO_PORT": str(port)},
    cwd=code,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
base = f"http://127.0.0.1:{port}"
try:
    for _ in range(200):
        try:
            if httpx.get(base + "/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)

    def auth(u):
        return {"Authorization": f"Bearer {mint_token(TEST_SECRET, u)}"}

    def worker_pid():
        kids = pathlib.Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        return int(kids[0]) if kids else server.pid

    def mem(field):
        for line in pathlib.Path(f"/proc/{worker_pid()}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) // 1024

    other = "other-" + uuid.uuid4().hex[:8]
    importer = "importer-" + uuid.uuid4().hex[:8]
    # warm up both routes
    httpx.post(f"{base}/api/{other}/tasks", json={"title": "warm"}, headers=auth(other))
    httpx.post(f"{base}/api/{importer}/import", json=a_large_document(1, 1), headers=auth(importer))
    body = json.dumps(a_large_document(steps_per_task=1, top_level=10000)).encode()
    rss_before = mem("VmRSS")
    latencies, statuses, done = [], [], threading.Event()

    def probe():
        with httpx.Client(timeout=60) as c:
            while not done.is_set():
                t = time.monotonic()
                r = c.post(f"{base}/api/{other}/tasks", json={"title": "while importing"}, headers=auth(other))
                latencies.append(time.monotonic() - t)
                statuses.append(r.status_code)
                time.sleep(0.05)

    peak = [rss_before]

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], mem("VmRSS"))
            time.sleep(0.02)

    threads = [threading.Thread(target=probe), threading.Thread(target=sample)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    r = httpx.post(
        f"{base}/api/{importer}/import",
        content=body,
        headers={**auth(importer), "Content-Type": "application/json"},
        timeout=120,
    )
    took = time.monotonic() - t0
    time.sleep(0.3)
    done.set()
    for t in threads:
        t.join()
    time.sleep(1)
    rss_after = mem("VmRSS")
    lat = sorted(latencies)
    print(
        json.dumps(
            {
                "code": code,
                "database": url.split(":")[0],
                "import_status": r.status_code,
                "import_mb": round(len(body) / 1e6, 1),
                "import_seconds": round(took, 2),
                "rss_before_mb": rss_before,
                "rss_peak_mb": peak[0],
                "rss_after_mb": rss_after,
                "other_creates": len(lat),
                "other_statuses": sorted(set(statuses)),
                "other_p50_ms": round(1000 * lat[len(lat) // 2]),
                "other_max_ms": round(1000 * lat[-1]),
            }
        )
    )
finally:
    server.terminate()
    server.wait(20)
