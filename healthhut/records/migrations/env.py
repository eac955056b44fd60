"""Alembic environment: runs migrations on the connection healthhut.records.db hands over."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("healthhut migrations run from code: pass a connection in config.attributes")

# render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table instead
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
