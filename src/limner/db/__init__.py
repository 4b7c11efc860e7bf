"""Metadata storage: SQLAlchemy 2 models and Alembic migrations (SQLite by default, PostgreSQL too)."""
