"""Fuzz the MCP tools of a running server (`make fuzz`, after schemathesis; and the shorter run in
`make test`, tests/system/test_mcp.py) with the MCP SDK's own client.

For a while (`--seconds`), hypothesis draws calls of every tool the server lists: the token's
user id (mostly) or another, and for each argument the tool takes, or one it does not, a value
that is sometimes right (a UUID, an RFC 3339 instant, a priority, a repeat rule) and often not
(wrong types, text with NUL, huge numbers, nested JSON). Every call must answer: a result whose
structured content matches the tool's output schema, or a tool error with a text. A protocol
error, or a call that does not come back, fails the run. A crash the SDK turns into a tool error
is in the server's log ("raised an unexpected exception"): `--server-log` names the log to read
at the end.

Usage: TODO_FUZZ_TOKEN=<token> python scripts/fuzz_mcp.py --url http://127.0.0.1:8765/mcp
    --user fuzz-user --seconds 60 [--server-log FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Tool

#: Calls drawn per round of hypothesis; rounds follow each other until the time is spent.
BATCH = 25

#: What the server logs when a tool raised something it did not mean to (the SDK's words).
CRASH_MARKS = ("raised an unexpected exception", "Traceback (most recent call last)")

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["", " ", "\x00", "a" * 10_001, "$ref:", "$ref:x", "-", "null", "🙂" * 60])
)
PLAUSIBLE = st.one_of(
    st.uuids().map(str),
    st.dates().map(lambda day: day.isoformat()),
    st.datetimes(timezones=st.sampled_from([None, UTC])).map(lambda moment: moment.isoformat()),
    st.sampled_from(["none", "low", "medium", "high", "all", "pending", "completed", "created_at", "-due_at", "title"]),
    st.sampled_from(["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO", "FREQ=HOURLY", "RRULE:FREQ=DAILY;COUNT=0", "Europe/Berlin"]),
    st.sampled_from(["UTC", "Mars/Olympus", "#aabbcc", "red"]),
    st.lists(st.text(max_size=12), max_size=25),
    st.just([{"op": "create", "body": {"title": "fuzzed"}}]),
    st.lists(
        st.fixed_dictionaries(
            {"op": st.sampled_from(["create", "update", "patch", "complete", "move", "delete", "x"])},
            optional={
                "id": st.uuids().map(str) | SCALARS,
                "ref": SCALARS,
                "body": st.dictionaries(st.text(max_size=12), SCALARS, max_size=4) | SCALARS,
                "if_match": SCALARS,
            },
        ),
        max_size=4,
    ),
)
VALUES = st.recursive(
    SCALARS | PLAUSIBLE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def calls(tools: list[Tool], user: str) -> st.SearchStrategy[tuple[Tool, dict[str, Any]]]:
    @st.composite
    def call(draw: st.DrawFn) -> tuple[Tool, dict[str, Any]]:
        tool = draw(st.sampled_from(tools))
        names = sorted(tool.input_schema.get("properties", {}))
        # Mostly plausible values, so that calls get past the schema into the use cases.
        value = st.one_of(PLAUSIBLE, PLAUSIBLE, PLAUSIBLE, VALUES)
        arguments = {name: draw(value) for name in names if name != "user_id" and draw(st.booleans())}
        if draw(st.integers(0, 9)) == 0:
            arguments[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
        chance = draw(st.integers(0, 19))
        if chance < 17:
            arguments["user_id"] = user
        elif chance < 19:
            arguments["user_id"] = draw(st.sampled_from(["someone-else", ""]) | VALUES)
        return tool, arguments

    return call()


class Failed(AssertionError):
    pass


def check(tool: Tool, arguments: dict[str, Any], result: CallToolResult) -> None:
    if result.is_error:
        texts = [block.text for block in result.content if block.type == "text"]
        if not texts or not texts[0]:
            raise Failed(f"{tool.name}({arguments!r}): a tool error without a text")
        return
    if tool.output_schema is not None:
        try:
            jsonschema.validate(result.structured_content, tool.output_schema)
        except jsonschema.ValidationError as error:
            raise Failed(f"{tool.name}({arguments!r}): the result breaks the output schema: {error.message}") from error


async def list_tools(url: str, token: str) -> list[Tool]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return list((await client.list_tools()).tools)


async def call_once(url: str, token: str, tool: Tool, arguments: dict[str, Any]) -> CallToolResult:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return await client.call_tool(tool.name, arguments)


def fuzz(url: str, token: str, user: str, seconds: float) -> tuple[int, int]:
    """Draw calls until `seconds` have passed; return how many were made, and how many of them
    succeeded (the others were tool errors)."""
    tools = asyncio.run(list_tools(url, token))
    deadline = time.monotonic() + seconds
    made = answered = 0

    @settings(
        max_examples=BATCH,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(calls(tools, user))
    def one_call(drawn: tuple[Tool, dict[str, Any]]) -> None:
        nonlocal made, answered
        tool, arguments = drawn
        try:
            result = asyncio.run(call_once(url, token, tool, arguments))
        except BaseException as error:  # a protocol error, a dropped connection: never a tool's answer
            raise Failed(f"{tool.name}({arguments!r}) did not answer with a result: {error!r}") from error
        made += 1
        answered += not result.is_error
        check(tool, arguments, result)

    while time.monotonic() < deadline:
        one_call()
    return made, answered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--server-log", type=Path)
    arguments = parser.parse_args()
    token = os.environ["TODO_FUZZ_TOKEN"]
    try:
        made, answered = fuzz(arguments.url, token, arguments.user, arguments.seconds)
    except Failed as failure:
        print(f"MCP fuzz: FAILED: {failure}", file=sys.stderr)
        return 1
    if arguments.server_log is not None:
        log = arguments.server_log.read_text(errors="replace")
        for mark in CRASH_MARKS:
            if mark in log:
                at = log.index(mark)
                print(
                    f"MCP fuzz: FAILED: the server logged a crash:\n{log[max(0, at - 2000) : at + 3000]}",
                    file=sys.stderr,
                )
                return 1
    print(f"MCP fuzz: {made} calls of the MCP tools: {answered} results, {made - answered} tool errors, no crash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
