"""The first schema: messages, status_events, journal, journal_head.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Written by hand from ``gateway/store/tables.py`` (design note §4) and checked against it by
``tests/store/test_migrations.py`` (Alembic ``compare_metadata`` finds no difference).
Every constraint and index is named so later batch-mode rebuilds on SQLite can find it.
The head row of the hash chain (seq 0, 64 zeros) is created here, once, so appenders only
ever lock and update it and never race to insert it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.tables import UTCDateTime

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_KINDS = "kind IN ('inbound', 'submission', 'send', 'notice')"
_DIRECTIONS = "direction IN ('in', 'out')"
_STATES = "state IN ('incoming', 'active', 'deferred', 'hold', 'delivered', 'refused', 'sealed', 'sent', 'failed')"
_CHANNELS = "channel IN ('smtp', 'imap', 'submission', 'internal')"
_EVENTS = "event IN ('received', 'transition', 'verdict', 'status', 'delivered', 'sent', 'released')"


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("rcpt_to", sa.JSON(), nullable=False),
        sa.Column("message_id_header", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("document_id", sa.String(255), nullable=True),
        sa.Column("from_organ", sa.String(255), nullable=True),
        sa.Column("to_organs", sa.JSON(), nullable=True),
        sa.Column("code", sa.String(255), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("package_kind", sa.String(16), nullable=True),
        sa.Column("status_code", sa.String(16), nullable=True),
        sa.Column("verdict", sa.String(32), nullable=True),
        sa.Column("indication", sa.String(64), nullable=True),
        sa.Column("findings", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("policy_sha256", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("state_changed_at", UTCDateTime(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("imap_key", sa.String(1024), nullable=True),
        sa.CheckConstraint(_KINDS, name="ck_messages_kind"),
        sa.CheckConstraint(_DIRECTIONS, name="ck_messages_direction"),
        sa.CheckConstraint(_STATES, name="ck_messages_state"),
        sa.CheckConstraint(_CHANNELS, name="ck_messages_channel"),
        sa.UniqueConstraint("imap_key", name="uq_messages_imap_key"),
        sa.ForeignKeyConstraint(["parent_id"], ["messages.id"], name="fk_messages_parent_id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_messages_send",
        "messages",
        ["document_id", "recipient"],
        unique=True,
        sqlite_where=sa.text("kind = 'send'"),
        postgresql_where=sa.text("kind = 'send'"),
    )
    op.create_index("ix_messages_due", "messages", ["state", "kind", "next_attempt_at"])
    op.create_index("ix_messages_received_at", "messages", ["received_at"])
    op.create_index("ix_messages_document_id", "messages", ["document_id"])
    op.create_index("ix_messages_parent_id", "messages", ["parent_id"])

    op.create_table(
        "status_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("from_organ", sa.String(255), nullable=True),
        sa.Column("inbound_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_status_events_message_id"),
        sa.ForeignKeyConstraint(["inbound_id"], ["messages.id"], name="fk_status_events_inbound_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_status_events_message_id", "status_events", ["message_id"])

    op.create_table(
        "journal",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint(_EVENTS, name="ck_journal_event"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_journal_message_id"),
    )
    op.create_index("ix_journal_message_id", "journal", ["message_id"])

    head = op.create_table(
        "journal_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_journal_head_single"),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    # The journal is the legal record: a downgrade that drops it would destroy evidence.
    raise NotImplementedError("the first revision cannot be downgraded (it would drop the legal record)")
