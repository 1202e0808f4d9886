"""The HTTP delivery layer: FastAPI routes, schemas, wiring and settings."""
