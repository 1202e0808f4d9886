"""Every API test records the statements the service sends: they must each go to one shard of a
database distributed by `user_id` (checked at the end of the session, see `tests/sent_statements.py`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sent_statements import SentStatements


@pytest.fixture(autouse=True)
def statements_go_to_one_shard(request: pytest.FixtureRequest, sent_statements: SentStatements) -> Iterator[None]:
    with sent_statements.recording(request.node.nodeid):
        yield
