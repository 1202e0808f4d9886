"""Implementations of the domain's ports: in memory, SQLAlchemy (PostgreSQL, SQLite), JWT."""
