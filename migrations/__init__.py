"""Alembic migrations; they run on SQLite (batch mode) and PostgreSQL."""
