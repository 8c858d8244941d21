"""SQLite's text index folds ``đ`` in every column, not only in the subject and the findings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21

Written by hand. The query side folds ``đ``/``Đ`` to ``d``/``D`` in every typed word
(``gateway.store.search.words``), but revision 0002's triggers folded them only in the subject
and the findings. So on SQLite a word with ``Đ`` in the number/notation, the DocumentId or an
OrganId was never found: "QĐ-UBND" (a decision, the commonest notation there is) became "qd"
in the query and stayed "qđ" in the index. PostgreSQL folds every field since revision 0004.

SQLite: the three ``messages_fts`` triggers are dropped, the contentless index is emptied
(``delete-all``) and every row indexed again with the new folding, and the triggers are created
again with it (an update's ``delete`` must name exactly the text that was indexed, so index and
triggers change together, in this one transaction). PostgreSQL: nothing to do.

Downgrade does the same with revision 0002's folding.
"""

from __future__ import annotations

from alembic import op

from gateway.store.ftsindex import FTS_TRIGGERS, Folding, create_triggers, index_all

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _reindex(fold: Folding) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in FTS_TRIGGERS:
        op.execute(f"DROP TRIGGER {name}")
    op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('delete-all')")
    op.execute(index_all(fold))
    for statement in create_triggers(fold):
        op.execute(statement)


def upgrade() -> None:
    _reindex("all")


def downgrade() -> None:
    _reindex("subject-findings")
