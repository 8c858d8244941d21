"""Alembic environment for the store: migrates the connection ``gateway.store.migrate`` hands in.

There is no ``alembic.ini`` and no engine built here: the store opens the database (with its
pragmas and transaction handling) and passes a connection already inside a write transaction.
"""

from __future__ import annotations

from alembic import context

from gateway.store.tables import foreign_to_metadata, metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations through gateway.store.migrate (gateway db upgrade), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite can only ADD COLUMN in place: every other change rebuilds the table ("batch mode").
    render_as_batch=True,
    compare_type=True,
    # The full-text index (a virtual table and its shadow tables) is kept by hand, not by metadata.
    include_name=lambda name, type_, _parents: not (type_ == "table" and foreign_to_metadata(name)),
)
with context.begin_transaction():
    context.run_migrations()
