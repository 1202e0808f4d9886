"""Loopback ports for the servers tests start as other processes (`todo serve`, PgBouncer, nginx, a
PostgreSQL cluster), which take a port number, not a socket.

A port found free is free only until someone else binds it, and the server binds it a moment
later. Asking the kernel for one (binding port 0) hands out a port of the ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default), the range every outgoing
connection and every other test run on the machine draws from too. So the ports come from below
it, and each pytest-xdist worker draws from a block of its own: two workers of one run never
pick the same port, and no outgoing connection takes one meanwhile. Within its block a port is
picked at random and kept only if it can be bound now (another run on the machine may hold it).

A server that binds a socket of the test's own process (uvicorn in the test's event loop, an
`http.server`) binds port 0 and reads the port back: there is nothing to race, and no need for this.
"""

from __future__ import annotations

import os
import random
import socket

#: Below the ephemeral range, above the well-known services (PostgreSQL 5432, Redis 6379, 8000, 8080).
FIRST = 10_000
LAST = 32_767
ATTEMPTS = 200


def worker_block() -> range:
    """The ports this process may pick from: all of them, or its worker's share under xdist."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % workers if worker.isdigit() else 0
    size = (LAST + 1 - FIRST) // workers
    return range(FIRST + index * size, FIRST + (index + 1) * size)


def free_port() -> int:
    """A loopback port nothing listens on now, from this worker's block.

    :raises RuntimeError: none of `ATTEMPTS` random ports of the block could be bound.
    """
    block = worker_block()
    for port in random.sample(block, min(ATTEMPTS, len(block))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {block.start}-{block.stop - 1} after {ATTEMPTS} attempts")
