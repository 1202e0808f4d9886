"""schemathesis hooks for `make fuzz` and the fuzzing in `make test` (loaded through
SCHEMATHESIS_HOOKS, which both set).

Every request that carries a valid `Idempotency-Key` gets a fresh one. A fuzzer draws keys
from a few boundary values ("0", "00", ...), so without this its creates become replays of
earlier ones: correct answers (the first request's, even for a resource deleted since), which
its checks then report as a created resource that cannot be found, or a body of another kind.
Retries with a key are the client's decision; tests/api/test_sync_api.py covers them. Keys
that are not valid (empty, too long), and every case meant to be refused, are left as drawn,
so that their 4xx is still checked.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

KEY = "Idempotency-Key"
KEY_MAX_LENGTH = 255


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return  # a case meant to be refused stays as drawn (an edit would make schemathesis revalidate it)
    headers = case.headers or {}
    key = headers.get(KEY)
    if isinstance(key, str) and 1 <= len(key.strip()) <= KEY_MAX_LENGTH:
        headers[KEY] = uuid.uuid4().hex
