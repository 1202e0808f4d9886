"""One SQLAlchemy Core adapter for PostgreSQL (psycopg 3) and SQLite (aiosqlite)."""
