"""Search: indexes for the archivist's filters, a recipients side table, full-text search.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Written by hand (issue 6, benchmark P5: a search over 1 000 000 rows answers under 50 ms):

* ``ix_messages_from_organ`` (sender, receive time) and ``ix_messages_code`` (number/notation);
* ``message_recipients``: ``messages.to_organs`` unrolled, one row per recipient OrganId with a
  copy of the receive time, kept by triggers on both databases, so "addressed to X over a date
  range, newest first" walks one index instead of reading JSON;
* the text index. SQLite: ``messages_fts``, an FTS5 table (``unicode61 remove_diacritics 2``, so
  "kiem tra" finds "kiểm tra"; ``đ`` is folded to ``d`` by the triggers, which unicode61 does
  not do: here in the subject and the findings only, in every column from revision 0005; the
  SQL is built by ``gateway.store.ftsindex``) over the subject, number/notation, DocumentId,
  the sender and recipient OrganIds and the findings (codes, Vietnamese and English text), plus
  a ``facets`` column of tokens made here from the row's filter values (see below). It is
  contentless (``content=''``): the findings and facets columns are derived text, not columns
  of ``messages``, so an external-content table would index something else on ``rebuild``.
  Triggers insert a row's text on insert and, on an update of a searched or faceted column,
  delete the old text (recomputed from ``OLD``, which is what was indexed) and insert the new.
  PostgreSQL: a GIN index on the same text as a ``tsvector`` (``simple`` configuration);
  ``gateway.store.search`` queried exactly this expression, so the planner could use the index.
  Revision 0004 replaces it with an index on folded text.

The facets (SQLite only) let words and filters meet inside the FTS index: without them,
"words over a quarter two years ago" walks every match of the words newest first until the
range is reached (64 ms median at 1 000 000 rows). Each row's ``facets`` holds one token per
filter value, in a shape no word of the other columns can take and that ``unicode61`` keeps as
one token:

* ``y2024``, ``m202406``, ``d20240615``: the receive time's year, month and day in Vietnam
  (+07:00, the days the archivist's ``--from``/``--to`` name; seconds truncated, so the day is
  exact);
* ``s`` + the hex of the sender OrganId's UTF-8, ``r`` + that of each recipient OrganId,
  ``v`` + the verdict's, ``c`` + the number/notation's.

``gateway.store.search`` turns a date range into the fewest such tokens that cover it and a
sender, recipient, verdict or number/notation into its token, ANDs them with the words, and
still applies every exact filter: a token only narrows what the index yields. The token words
come from that code, never from what a user typed.

Existing rows are indexed here, in the same transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.ftsindex import create_triggers, index_all
from gateway.store.tables import UTCDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

SQLITE_UP = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "subject, code, document_id, organs, findings, facets, content='', tokenize='unicode61 remove_diacritics 2')",
    index_all("subject-findings"),
    *create_triggers("subject-findings"),
    """INSERT OR IGNORE INTO message_recipients(organ, message_id, received_at)
        SELECT value, messages.id, messages.received_at FROM messages, json_each(messages.to_organs)
        WHERE json_valid(messages.to_organs) AND json_type(messages.to_organs) = 'array'""",
    """CREATE TRIGGER message_recipients_insert AFTER INSERT ON messages
        WHEN json_valid(NEW.to_organs) AND json_type(NEW.to_organs) = 'array' BEGIN
        INSERT OR IGNORE INTO message_recipients(organ, message_id, received_at)
            SELECT value, NEW.id, NEW.received_at FROM json_each(NEW.to_organs);
    END""",
    """CREATE TRIGGER message_recipients_update AFTER UPDATE OF to_organs ON messages BEGIN
        DELETE FROM message_recipients WHERE message_id = OLD.id;
        INSERT OR IGNORE INTO message_recipients(organ, message_id, received_at)
            SELECT value, NEW.id, NEW.received_at FROM json_each(NEW.to_organs)
            WHERE json_valid(NEW.to_organs) AND json_type(NEW.to_organs) = 'array';
    END""",
    """CREATE TRIGGER message_recipients_delete AFTER DELETE ON messages BEGIN
        DELETE FROM message_recipients WHERE message_id = OLD.id;
    END""",
)
SQLITE_DOWN = (
    "DROP TRIGGER message_recipients_delete",
    "DROP TRIGGER message_recipients_update",
    "DROP TRIGGER message_recipients_insert",
    "DROP TRIGGER messages_fts_delete",
    "DROP TRIGGER messages_fts_update",
    "DROP TRIGGER messages_fts_insert",
    "DROP TABLE messages_fts",
)

PG_DOCUMENT = (
    "to_tsvector('simple'::regconfig, translate(coalesce(subject, '') || ' ' || coalesce(code, '') || ' ' || "
    "coalesce(document_id, '') || ' ' || coalesce(from_organ, '') || ' ' || coalesce(to_organs::text, '') || ' ' || "
    "coalesce(findings::text, ''), 'đĐ', 'dD'))"
)
"""The searched text on PostgreSQL up to revision 0004 (which indexes ``message_search.folded`` instead)."""

PG_UP = (
    f"CREATE INDEX ix_messages_search ON messages USING gin (({PG_DOCUMENT}))",
    """CREATE FUNCTION message_recipients_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM message_recipients WHERE message_id = OLD.id;
        END IF;
        IF NEW.to_organs IS NOT NULL AND json_typeof(NEW.to_organs) = 'array' THEN
            INSERT INTO message_recipients(organ, message_id, received_at)
                SELECT DISTINCT value, NEW.id, NEW.received_at FROM json_array_elements_text(NEW.to_organs)
                ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER message_recipients_sync AFTER INSERT OR UPDATE OF to_organs ON messages
        FOR EACH ROW EXECUTE FUNCTION message_recipients_sync()""",
    """INSERT INTO message_recipients(organ, message_id, received_at)
        SELECT DISTINCT o.value, m.id, m.received_at FROM messages m, json_array_elements_text(m.to_organs) o
        WHERE m.to_organs IS NOT NULL AND json_typeof(m.to_organs) = 'array'
        ON CONFLICT DO NOTHING""",
)
PG_DOWN = (
    "DROP TRIGGER message_recipients_sync ON messages",
    "DROP FUNCTION message_recipients_sync()",
    "DROP INDEX ix_messages_search",
)


def upgrade() -> None:
    op.create_index("ix_messages_from_organ", "messages", ["from_organ", "received_at"])
    op.create_index("ix_messages_code", "messages", ["code"])
    op.create_table(
        "message_recipients",
        sa.Column("organ", sa.String(255), primary_key=True),
        sa.Column("message_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("received_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_message_recipients_message_id"),
    )
    op.create_index("ix_message_recipients_message_id", "message_recipients", ["message_id"])
    op.create_index("ix_message_recipients_organ", "message_recipients", ["organ", "received_at", "message_id"])
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_UP, "postgresql": PG_UP}.get(dialect, ()):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_DOWN, "postgresql": PG_DOWN}.get(dialect, ()):
        op.execute(statement)
    op.drop_index("ix_message_recipients_organ", table_name="message_recipients")
    op.drop_index("ix_message_recipients_message_id", table_name="message_recipients")
    op.drop_table("message_recipients")
    op.drop_index("ix_messages_code", table_name="messages")
    op.drop_index("ix_messages_from_organ", table_name="messages")
