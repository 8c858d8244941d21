"""Folded search text: SQLite's FTS5 tokenizer, in Python, for PostgreSQL's text index.

SQLite reads the searched text with FTS5's ``unicode61`` tokenizer and ``remove_diacritics 2``
(revision 0002), after folding ``đ`` to ``d`` (which ``unicode61`` does not): "ha noi" finds
"Hà Nội". PostgreSQL has nothing alike without the ``unaccent`` extension, which only a
superuser may create. So the gateway folds in Python, at write time, with :func:`fold` (the
same ``đ`` folding as :func:`gateway.store.search.words` and revision 0002's triggers, then
what ``unicode61`` does), and keeps each work item's folded words in ``message_search``
(revision 0004), indexed by ``to_tsvector('simple', folded)``. The user's words are folded by
the same function, so both sides meet on equal terms.

Invariants:

* :func:`tokens` gives exactly the tokens FTS5 gives for the Latin script (U+0000–U+024F and
  U+1E00–U+1EFF, composed or decomposed: every Vietnamese letter), lowercased and without
  diacritics; ``tests/store/test_folding.py`` checks every such code point against SQLite.
  Other scripts are lowercased only (Python's Unicode tables are newer than ``unicode61``'s).
* The folded text is tokens of letters and digits separated by single spaces: PostgreSQL's
  parser reads each as one lexeme, in order, so a phrase there is a phrase here.
* Fields (subject, number/notation, DocumentId, OrganIds, findings: SQLite's FTS columns) are
  separated by :data:`FIELD_BREAK`, a lexeme no folded word can be, so a phrase never spans two
  fields (an FTS5 phrase never spans two columns).
* The text is derived data, never evidence: not journaled, rewritten whenever a searched
  column changes (:func:`refresh`), only on PostgreSQL (SQLite's triggers keep FTS5).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import message_search_table, messages_table

__all__ = ["FIELD_BREAK", "SEARCHED", "document", "fold", "fold_d", "refresh", "tokens"]

M = messages_table
T = message_search_table
SEARCHED: Final = ("subject", "code", "document_id", "from_organ", "to_organs", "findings")
"""The ``messages`` columns the text comes from; a change of any of them rewrites it."""
FIELD_BREAK: Final = "\u00e9"
"""Between two fields: ``é``, a letter to PostgreSQL's parser that :func:`fold` always turns into ``e``."""

_D: Final = str.maketrans("đĐ", "dD")
_CASE: Final = str.maketrans({"ſ": "s", "µ": "μ", "ẛ": "s"})
"""``unicode61``'s case folding where it differs from :meth:`str.lower` in the Latin script."""
_DIACRITICS: Final = (0x08029FDF, 0x000361F8)
"""``sqlite3Fts5UnicodeIsdiacritic``: which of U+0300–U+033F ``unicode61`` removes (bit masks)."""
_KEPT: Final = frozenset("\u01e0\u01e1")
"""Latin letters ``unicode61`` leaves whole though they decompose to a base and diacritics."""
_TOKEN = re.compile(r"[^\W_]+")  # letters and digits: what unicode61 keeps


def fold_d(text: str) -> str:
    """``đ``/``Đ`` to ``d``/``D``: the folding ``unicode61`` lacks (revision 0002's triggers do the same)."""
    return text.translate(_D)


def _diacritic(char: str) -> bool:
    offset = ord(char) - 0x300
    return 0 <= offset < 64 and bool(_DIACRITICS[offset // 32] >> (offset % 32) & 1)


def _latin(char: str) -> bool:
    code = ord(char)
    return 0xC0 <= code <= 0x24F or 0x1E00 <= code <= 0x1EFF


def _bare(char: str) -> str:
    """A Latin letter without its diacritics, when ``unicode61`` removes them; ``""`` for a lone diacritic."""
    if _diacritic(char):
        return ""
    if _latin(char) and char not in _KEPT:
        parts = unicodedata.normalize("NFD", char)
        if len(parts) > 1 and parts[0].isascii() and all(_diacritic(mark) for mark in parts[1:]):
            return parts[0]
    return char


def fold(text: str) -> str:
    """``text`` as FTS5 (``unicode61 remove_diacritics 2``, after ``đ`` → ``d``) compares it.

    Lowercase, Latin diacritics removed whether composed (``ộ``) or typed decomposed
    (``o`` + U+0302 + U+0323). Separators are left in place: :func:`tokens` splits.
    """
    return "".join(_bare(char) for char in fold_d(text)).lower().translate(_CASE)


def tokens(text: str) -> list[str]:
    """The folded tokens of ``text``, as FTS5 indexes them: runs of letters and digits."""
    return _TOKEN.findall(fold(text))


def _organs(row: Mapping[Any, Any]) -> str:
    organs = row.get("to_organs")
    listed = [o for o in organs if isinstance(o, str)] if isinstance(organs, list | tuple) else []
    return " ".join([row.get("from_organ") or "", *listed])


def _findings(row: Mapping[Any, Any]) -> str:
    findings = row.get("findings")
    if not isinstance(findings, list | tuple):
        return ""
    parts = (
        finding.get(key)
        for finding in findings
        if isinstance(finding, Mapping)
        for key in ("code", "message_vi", "message_en")
    )
    return " ".join(part for part in parts if isinstance(part, str))


def document(row: Mapping[Any, Any]) -> str | None:
    """The folded text of one work item (its :data:`SEARCHED` columns), or ``None`` if it has no words.

    The fields are SQLite's FTS columns, in their order: subject, number/notation, DocumentId,
    the sender's and recipients' OrganIds, the findings (code, Vietnamese and English text).
    """
    fields = (row.get("subject"), row.get("code"), row.get("document_id"), _organs(row), _findings(row))
    words = [" ".join(tokens(field or "")) for field in fields]
    if not any(words):
        return None
    return f" {FIELD_BREAK} ".join(words)


async def refresh(conn: AsyncConnection, id: int, changed: Mapping[str, Any], *, new: bool = False) -> None:
    """PostgreSQL: rewrite work item ``id``'s folded text after its columns ``changed`` were written.

    Nothing on SQLite (its triggers keep FTS5), nor when no searched column changed.

    Args:
        conn: the write transaction's connection.
        id: the work item.
        changed: the columns just written, with their values.
        new: the item was just inserted and ``changed`` holds all its columns (no read, nothing to delete).
    """
    if conn.dialect.name != "postgresql" or not any(name in changed for name in SEARCHED):
        return
    row: Mapping[Any, Any] = changed
    if not new:
        row = (await conn.execute(select(*(M.c[n] for n in SEARCHED)).where(M.c.id == id))).mappings().one()
    folded = document(row)
    if folded is not None:
        upsert = pg_insert(T).values(message_id=id, folded=folded)
        await conn.execute(upsert.on_conflict_do_update(index_elements=[T.c.message_id], set_={"folded": folded}))
    elif not new:
        await conn.execute(delete(T).where(T.c.message_id == id))
