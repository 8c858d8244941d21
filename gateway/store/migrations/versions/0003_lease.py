"""Leases: which instance works on an ``active`` item, and until when.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Written by hand (issue 7: several gateway instances on one PostgreSQL database). A claim sets
``owner`` (the instance, ``[store] instance``) and ``lease_until`` (now + ``[store]
lease_seconds``); the owner renews the lease while its handler runs. Another instance takes an
``active`` item back to the queue only once its lease has expired, so a live instance's work is
never stolen and a dead one's is finished by the others.

Two nullable columns added and dropped in place (no table rebuild on SQLite, which would lose
the triggers of revision 0002). Items left
``active`` by an older version have no owner: the next start recovers them as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.store.tables import UTCDateTime

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("owner", sa.String(255), nullable=True))
    op.add_column("messages", sa.Column("lease_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    # In place on both databases (SQLite 3.35+): a batch rebuild would drop 0002's triggers.
    op.execute("ALTER TABLE messages DROP COLUMN lease_until")
    op.execute("ALTER TABLE messages DROP COLUMN owner")
