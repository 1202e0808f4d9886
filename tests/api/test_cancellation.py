"""Requests cancelled midway (a client that goes away, a server that shuts down) leave nothing
behind for the requests that reuse their connections."""

from __future__ import annotations

import asyncio
import random

from tests.conftest import Caller


async def test_requests_cancelled_at_any_point_do_not_disturb_those_that_follow(alice: Caller) -> None:
    """Creates with idempotency keys, most cancelled after a random few milliseconds, while
    others run: every answer that arrives is a 2xx or 4xx of the right kind (never a 500, never
    another request's result), and what was created is there."""
    rng = random.Random(5)
    answered: list[tuple[str, int, dict[str, object]]] = []

    async def one() -> None:
        key = {"Idempotency-Key": rng.choice(["k1", "k2", "k3"])}
        kind = rng.choice(["tasks", "categories"])
        body = {"title": "x"} if kind == "tasks" else {"name": f"N{rng.randrange(40)}"}
        try:
            response = await asyncio.wait_for(
                alice.request("POST", f"/{kind}", json=body, headers=key), rng.choice([0.001, 0.003, 0.01, 5.0])
            )
        except TimeoutError:
            return
        answered.append((kind, response.status_code, response.json()))

    for _ in range(40):
        await asyncio.gather(*(one() for _ in range(6)))

    assert answered
    for kind, status, body in answered:
        assert status < 500, body
        if status == 201:
            assert ("title" in body) == (kind == "tasks"), body  # never the answer to another request
    assert (await alice.request("GET", "/changes")).status_code == 200
