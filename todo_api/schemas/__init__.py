"""The wire format: pydantic models that shape requests and document responses, one module per
resource (as `todo_api.routes`), and the types they share in `common`. Import a model from its
module; this package re-exports nothing.

Domain rules (lengths, trimming, recurrence) are checked by `todo_core`; these models check
only types, so that every rule has one home and one message. `json_schema_extra` documents a
domain rule in the OpenAPI document without pydantic enforcing it a second time: `todo_core`
checks it and names the field in a 422.
"""
