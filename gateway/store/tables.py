"""The store's tables (SQLModel, ``table=True``) and the vocabulary of their columns.

Design note §4. Invariants:

* these classes describe the schema; nothing outside ``gateway.store`` sees an instance, and the
  store never builds one from untrusted input: values are validated first (``records.py``) and
  written with Core statements; reads come back as frozen views;
* every time column is :class:`UTCDateTime`: aware UTC in, aware UTC out, naive refused;
* constraints and indexes carry explicit names so that Alembic's SQLite batch mode can rebuild
  a table and find them again (SQLite keeps no names for unnamed ones);
* the tables live in their own registry, so another SQLModel user in the process cannot add
  tables to our metadata (and the migration check compares exactly these tables).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Dialect,
    ForeignKeyConstraint,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import registry
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = [
    "CHANNELS",
    "DIRECTIONS",
    "EVENTS",
    "FTS_FACETS",
    "FTS_TABLE",
    "FTS_WORD_COLUMNS",
    "KINDS",
    "STATES",
    "TERMINAL",
    "JournalEntry",
    "JournalHead",
    "Message",
    "MessageRecipient",
    "MessageSearch",
    "StatusEvent",
    "UTCDateTime",
    "foreign_to_metadata",
    "journal_head_table",
    "journal_table",
    "message_recipients_table",
    "message_search_table",
    "messages_table",
    "metadata",
    "status_events_table",
]

KINDS: Final = ("inbound", "submission", "send", "notice")
DIRECTIONS: Final = ("in", "out")
CHANNELS: Final = ("smtp", "imap", "submission", "internal")
STATES: Final = ("incoming", "active", "deferred", "hold", "delivered", "refused", "sealed", "sent", "failed")
TERMINAL: Final[dict[str, frozenset[str]]] = {
    "inbound": frozenset({"delivered", "refused"}),
    "submission": frozenset({"sealed", "failed"}),
    "send": frozenset({"sent", "failed"}),
    "notice": frozenset({"sent", "failed"}),
}
"""Design note §3: the states in which a work item of each kind is finished."""
EVENTS: Final = ("received", "transition", "verdict", "status", "delivered", "sent", "released")
"""Journal event names (design note §4)."""
FTS_TABLE: Final = "messages_fts"
"""SQLite's full-text index over the searchable columns (revision 0002). A virtual table, kept
by triggers and not part of :data:`metadata`: Alembic's comparison skips it (``foreign_to_metadata``)."""
FTS_WORD_COLUMNS: Final = ("subject", "code", "document_id", "organs", "findings")
"""The FTS columns that hold words (a user's words are matched in these only)."""
FTS_FACETS: Final = "facets"
"""The FTS column of filter tokens (``y2024``, ``m202406``, ``d20240615``, ``s``/``r``/``v``/``c`` + hex),
written by revision 0002's triggers; ``gateway.store.search`` makes the same tokens."""


def foreign_to_metadata(name: str | None) -> bool:
    """Whether a database table is one the schema comparison must skip: the FTS table and its shadows."""
    return name is not None and (name == FTS_TABLE or name.startswith(f"{FTS_TABLE}_"))


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time: aware UTC in Python, UTC in the database.

    SQLite keeps no offset (it stores text), so the value is written as naive UTC and UTC is
    re-attached on read; PostgreSQL keeps ``timestamptz``. A naive value is refused on write:
    it names no instant, and guessing is how receive times silently shift by seven hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: the store takes aware UTC times")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_registry = registry(metadata=MetaData())


class _Table(SQLModel, registry=_registry):
    """Base of the store's tables: our own registry and metadata."""


metadata: MetaData = _registry.metadata
"""The metadata Alembic compares the database with (only the store's tables)."""


class Message(_Table, table=True):
    """A work item: one mail received or one mail we send (design note §3)."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(_in("kind", KINDS), name="ck_messages_kind"),
        CheckConstraint(_in("direction", DIRECTIONS), name="ck_messages_direction"),
        CheckConstraint(_in("state", STATES), name="ck_messages_state"),
        CheckConstraint(_in("channel", CHANNELS), name="ck_messages_channel"),
        UniqueConstraint("imap_key", name="uq_messages_imap_key"),
        ForeignKeyConstraint(["parent_id"], ["messages.id"], name="fk_messages_parent_id"),
        # The same DocumentId is never sent twice to the same recipient (partial: sends only).
        Index(
            "uq_messages_send",
            "document_id",
            "recipient",
            unique=True,
            sqlite_where=text("kind = 'send'"),
            postgresql_where=text("kind = 'send'"),
        ),
        # The claim query: due work by kind and state, oldest first.
        Index("ix_messages_due", "state", "kind", "next_attempt_at"),
        Index("ix_messages_received_at", "received_at"),
        Index("ix_messages_document_id", "document_id"),
        Index("ix_messages_parent_id", "parent_id"),
        # The archivist's search (revision 0002): a sender over a date range, a document's code.
        Index("ix_messages_from_organ", "from_organ", "received_at"),
        Index("ix_messages_code", "code"),
        {"sqlite_autoincrement": True},  # ids appear in delivery keys: never reuse one
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    direction: str = Field(max_length=3)
    state: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    mail_from: str = Field(default="", sa_type=Text)
    rcpt_to: list[str] = Field(default_factory=list, sa_type=JSON)
    message_id_header: str | None = Field(default=None, sa_type=Text)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=BigInteger)
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    document_id: str | None = Field(default=None, max_length=255)
    from_organ: str | None = Field(default=None, max_length=255)
    to_organs: list[str] | None = Field(default=None, sa_type=JSON)
    code: str | None = Field(default=None, max_length=255)
    subject: str | None = Field(default=None, sa_type=Text)
    package_kind: str | None = Field(default=None, max_length=16)
    status_code: str | None = Field(default=None, max_length=16)
    verdict: str | None = Field(default=None, max_length=32)
    indication: str | None = Field(default=None, max_length=64)
    findings: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON)
    report: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    policy_sha256: str | None = Field(default=None, max_length=64)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    state_changed_at: datetime = Field(sa_type=UTCDateTime)
    parent_id: int | None = None
    recipient: str | None = Field(default=None, max_length=320)
    imap_key: str | None = Field(default=None, max_length=1024)
    # The claim's lease (revision 0003): the instance working on an ``active`` item, and until
    # when. The owner is journaled with each claim; the lease time is renewed while the work
    # runs and is not evidence (the replay skips it).
    owner: str | None = Field(default=None, max_length=255)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StatusEvent(_Table, table=True):
    """One step of the status trail of a document we sent (a status package 01–16 about it)."""

    __tablename__ = "status_events"
    __table_args__ = (
        ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_status_events_message_id"),
        ForeignKeyConstraint(["inbound_id"], ["messages.id"], name="fk_status_events_inbound_id"),
        Index("ix_status_events_message_id", "message_id"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int
    status_code: str = Field(max_length=16)
    description: str | None = Field(default=None, sa_type=Text)
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(sa_type=UTCDateTime)
    from_organ: str | None = Field(default=None, max_length=255)
    inbound_id: int | None = None


class MessageRecipient(_Table, table=True):
    """One recipient OrganId of a work item: ``messages.to_organs`` unrolled for search.

    Derived data, written only by database triggers (revision 0002) whenever ``to_organs`` is
    set, so an index can answer "everything addressed to this organ" without reading JSON.
    """

    __tablename__ = "message_recipients"
    __table_args__ = (
        ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_message_recipients_message_id"),
        Index("ix_message_recipients_message_id", "message_id"),
        # "Addressed to X over a date range, newest first" walks this index backwards.
        Index("ix_message_recipients_organ", "organ", "received_at", "message_id"),
    )

    organ: str = Field(primary_key=True, max_length=255)
    message_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """A copy of ``messages.received_at`` (fixed at intake), so the index above can order by it."""


class MessageSearch(_Table, table=True):
    """A work item's searched text, folded (``folding.py``): PostgreSQL's text index (revision 0004).

    Derived data, rewritten by the store whenever a searched column changes, only on
    PostgreSQL: its GIN index ``ix_messages_search`` on ``to_tsvector('simple', folded)`` is
    kept by hand (an expression index, like SQLite's FTS table). On SQLite the table stays
    empty (the FTS5 table of revision 0002 holds the text there). A row without words has no
    row here.
    """

    __tablename__ = "message_search"
    __table_args__ = (ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_message_search_message_id"),)

    message_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    folded: str = Field(sa_type=Text)


class JournalEntry(_Table, table=True):
    """One row of the legal record: append-only, hash-chained (``journal.py``)."""

    __tablename__ = "journal"
    __table_args__ = (
        CheckConstraint(_in("event", EVENTS), name="ck_journal_event"),
        ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_journal_message_id"),
        Index("ix_journal_message_id", "message_id"),
    )

    # Assigned by the appender (head.seq + 1), never by the database: the hash covers it.
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    message_id: int | None = None
    event: str = Field(max_length=16)
    at: datetime = Field(sa_type=UTCDateTime)
    data: str = Field(sa_type=Text)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class JournalHead(_Table, table=True):
    """The chain's head: one row (``id = 1``) holding the last ``seq`` and ``hash``.

    Every append locks this row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write
    transaction already excludes other writers), which keeps the chain linear with several
    writers, and lets ``verify_chain`` notice rows cut from the end of the journal.
    """

    __tablename__ = "journal_head"
    __table_args__ = (CheckConstraint("id = 1", name="ck_journal_head_single"),)

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seq: int
    hash: str = Field(max_length=64)


# Core handles on the tables: the store reads and writes with Core statements (see the docstring).
messages_table: Table = metadata.tables["messages"]
status_events_table: Table = metadata.tables["status_events"]
journal_table: Table = metadata.tables["journal"]
message_recipients_table: Table = metadata.tables["message_recipients"]
message_search_table: Table = metadata.tables["message_search"]
journal_head_table: Table = metadata.tables["journal_head"]
