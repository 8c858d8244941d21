"""The SQL of SQLite's text index triggers (``messages_fts``), shared by revisions 0002 and 0005.

What each row contributes to the FTS5 table: ``rowid``, the subject, the number/notation, the
DocumentId, the sender and recipient OrganIds, the findings (codes, Vietnamese and English text)
and the facet tokens (revision 0002's docstring says which). unicode61 removes diacritics but
keeps ``đ`` a letter of its own, so the triggers fold ``đ``/``Đ`` to ``d``/``D`` themselves, as
the query side does (``gateway.store.search.words``). Revision 0002 folded the subject and the
findings only; revision 0005 folds every text column (``fold="all"``), so ``QĐ-UBND`` is found
by "qd-ubnd" and by "QĐ-UBND" alike. Only constants of this module and the callers' row names
(``NEW``, ``OLD``, ``messages``) go into the SQL.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["FTS_COLUMNS", "FTS_TRIGGERS", "Folding", "create_triggers", "fts_values", "index_all"]

Folding = Literal["subject-findings", "all"]
"""Which columns fold ``đ``: revision 0002's two, or (revision 0005) every text column."""

FTS_COLUMNS: Final = "rowid, subject, code, document_id, organs, findings, facets"
FTS_TRIGGERS: Final = ("messages_fts_insert", "messages_fts_update", "messages_fts_delete")
_SEARCHED: Final = ("subject", "code", "document_id", "from_organ", "to_organs", "findings")
_FACETED: Final = ("received_at", "verdict")


def _fold(sql: str) -> str:
    return f"replace(replace({sql}, 'đ', 'd'), 'Đ', 'D')"


def fts_values(row: str, fold: Folding) -> str:
    """The indexed text of one row (``row`` is ``NEW``, ``OLD`` or ``messages``), in FTS column order."""
    organs = (
        f"trim(coalesce({row}.from_organ, '') || ' ' || coalesce((SELECT group_concat(value, ' ') "  # noqa: S608
        f"FROM json_each(CASE WHEN json_valid({row}.to_organs) THEN {row}.to_organs END)), ''))"
    )
    findings = _fold(
        "(SELECT group_concat(coalesce(json_extract(value, '$.code'), '') || ' ' || "  # noqa: S608
        "coalesce(json_extract(value, '$.message_vi'), '') || ' ' || "
        "coalesce(json_extract(value, '$.message_en'), ''), ' ') "
        f"FROM json_each(CASE WHEN json_valid({row}.findings) THEN {row}.findings END) "
        "WHERE json_type(value) = 'object')"
    )
    code, document_id = f"{row}.code", f"{row}.document_id"
    if fold == "all":
        code, document_id, organs = _fold(code), _fold(document_id), _fold(organs)
    return f"{row}.id, {_fold(f'{row}.subject')}, {code}, {document_id}, {organs}, {findings}, {_facets(row)}"


def _hex_token(prefix: str, sql: str) -> str:
    return f"coalesce(' {prefix}' || lower(hex({sql})), '')"


def _facets(row: str) -> str:
    """The facet tokens of one row (revision 0002's docstring says which)."""
    day = f"strftime('%Y%m%d', substr({row}.received_at, 1, 19), '+7 hours')"
    array = f"CASE WHEN json_valid({row}.to_organs) AND json_type({row}.to_organs) = 'array' THEN {row}.to_organs END"
    tokens = "SELECT ' ' || group_concat('r' || lower(hex(value)), ' ') FROM json_each"
    recipients = f"coalesce(({tokens}({array})), '')"
    dated = f"coalesce('y' || substr({day}, 1, 4) || ' m' || substr({day}, 1, 6) || ' d' || {day}, '')"
    hexed = " || ".join(
        _hex_token(prefix, f"{row}.{name}") for prefix, name in (("s", "from_organ"), ("v", "verdict"), ("c", "code"))
    )
    return f"trim({dated} || {hexed} || {recipients})"


def index_all(fold: Folding) -> str:
    """Index every row of ``messages`` (into an empty ``messages_fts``)."""
    return f"INSERT INTO messages_fts({FTS_COLUMNS}) SELECT {fts_values('messages', fold)} FROM messages"  # noqa: S608


def create_triggers(fold: Folding) -> tuple[str, str, str]:
    """The three triggers keeping ``messages_fts`` current (names as in ``FTS_TRIGGERS``).

    An update deletes the old text, recomputed from ``OLD`` with the same folding it was indexed
    with (a contentless table must be told exactly what to remove), then inserts the new.
    """
    return (
        f"""CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts({FTS_COLUMNS}) VALUES ({fts_values("NEW", fold)});
    END""",  # noqa: S608
        f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF {", ".join(_SEARCHED + _FACETED)} ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, {FTS_COLUMNS}) VALUES ('delete', {fts_values("OLD", fold)});
        INSERT INTO messages_fts({FTS_COLUMNS}) VALUES ({fts_values("NEW", fold)});
    END""",  # noqa: S608
        f"""CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, {FTS_COLUMNS}) VALUES ('delete', {fts_values("OLD", fold)});
    END""",  # noqa: S608
    )
