"""Alembic migrations of the record store, run from code by healthhut.records.db (no alembic.ini)."""
