"""Folded search text on PostgreSQL: diacritics optional, phrases as on SQLite.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

Written by hand. Revision 0002 indexed PostgreSQL's text as ``to_tsvector('simple', ...)`` over
the raw columns: diacritics had to match exactly ("ha noi" did not find "Hà Nội"), the JSON of
the OrganIds and findings was indexed whole (its keys too), and the words were ANDed, not
phrases. SQLite's FTS5 (``unicode61 remove_diacritics 2``) does none of that. The ``unaccent``
extension would need a superuser, so the text is folded in Python instead
(``gateway.store.folding``: the same folding as SQLite's tokenizer) and kept in a side table:

* ``message_search``: one row per work item with words, ``folded`` holding its subject,
  number/notation, DocumentId, OrganIds and findings as folded tokens (fields apart), written
  by the store whenever a searched column changes. A table of its own, not a column of
  ``messages``: derived text stays out of the rows the journal replays and the views read.
* PostgreSQL: ``ix_messages_search`` becomes a GIN index on ``to_tsvector('simple', folded)``
  (``gateway.store.search`` queries exactly :data:`PG_DOCUMENT`, or the planner cannot use the
  index; ``tests/archive/test_search.py`` checks it), and every existing row is folded here, in
  batches, in the same transaction. The backfill uses the code's folding: the one the store
  writes with from now on.
* SQLite: the table is created and stays empty; the FTS5 table, its triggers and facets are
  unchanged.

Downgrade drops the table and brings back revision 0002's index.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from alembic import op

from gateway.store.folding import SEARCHED, document

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

PG_DOCUMENT: Final = "to_tsvector('simple'::regconfig, folded)"
"""The searched text on PostgreSQL; ``gateway.store.search.PG_DOCUMENT`` must be the same string."""
PG_UP: Final = (
    "DROP INDEX ix_messages_search",
    f"CREATE INDEX ix_messages_search ON message_search USING gin (({PG_DOCUMENT}))",
)
_OLD_DOCUMENT: Final = (
    "to_tsvector('simple'::regconfig, translate(coalesce(subject, '') || ' ' || coalesce(code, '') || ' ' || "
    "coalesce(document_id, '') || ' ' || coalesce(from_organ, '') || ' ' || coalesce(to_organs::text, '') || ' ' || "
    "coalesce(findings::text, ''), 'đĐ', 'dD'))"
)
"""Revision 0002's index expression (for the downgrade)."""
_BATCH: Final = 1000


def _backfill(table: sa.Table) -> None:
    """Fold every existing work item's text into ``message_search`` (id order, ``_BATCH`` rows at a time)."""
    bind = op.get_bind()
    types = {"to_organs": sa.JSON(), "findings": sa.JSON()}
    messages = sa.table(
        "messages", sa.column("id", sa.Integer()), *(sa.column(n, types.get(n, sa.Text())) for n in SEARCHED)
    )
    last = 0
    while True:
        query = sa.select(messages).where(messages.c.id > last).order_by(messages.c.id).limit(_BATCH)
        rows = bind.execute(query).mappings().all()
        if not rows:
            return
        folded = [{"message_id": row["id"], "folded": document(row)} for row in rows]
        kept = [row for row in folded if row["folded"] is not None]
        if kept:
            bind.execute(sa.insert(table), kept)
        last = rows[-1]["id"]


def upgrade() -> None:
    table = op.create_table(
        "message_search",
        sa.Column("message_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("folded", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_message_search_message_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _backfill(table)
        for statement in PG_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_messages_search")
        op.execute(f"CREATE INDEX ix_messages_search ON messages USING gin (({_OLD_DOCUMENT}))")
    op.drop_table("message_search")
