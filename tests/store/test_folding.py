"""The Python folding PostgreSQL's text index uses gives exactly SQLite FTS5's tokens (revision 0004).

SQLite is the reference: ``unicode61 remove_diacritics 2``, the tokenizer of revision 0002,
with ``đ`` folded first as its triggers do. Every Latin code point, alone and between letters,
composed and decomposed, must come out of :func:`folding.tokens` as FTS5 indexes it.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterator
from contextlib import closing
from typing import Literal

import pytest

from gateway.store import folding

VIETNAMESE = "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
LATIN = [*range(0x20, 0x250), *range(0x1E00, 0x1F00), *range(0x300, 0x370)]
"""Basic Latin to Latin Extended-B, Latin Extended Additional (Vietnamese), the combining diacritics."""


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        yield conn


def sqlite_tokens(conn: sqlite3.Connection, text: str) -> list[str]:
    """What FTS5 indexes for ``text`` (after revision 0002's ``đ`` folding), in order."""
    conn.execute("DELETE FROM t")
    conn.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (folding.fold_d(text),))
    return [term for (term,) in conn.execute("SELECT term FROM v ORDER BY offset")]


def test_every_latin_code_point_folds_as_fts5_does(fts5: sqlite3.Connection) -> None:
    differ = []
    for code in LATIN:
        char = chr(code)
        if unicodedata.category(char) in ("Cn", "Cs"):
            continue
        for text in (f"x{char}x", f"{char} {char.upper()}", unicodedata.normalize("NFD", f"a{char}b")):
            if folding.tokens(text) != sqlite_tokens(fts5, text):
                differ.append((hex(code), text, folding.tokens(text), sqlite_tokens(fts5, text)))
    assert differ == []


@pytest.mark.parametrize("form", ["NFC", "NFD"])
def test_vietnamese_folds_as_fts5_does(fts5: sqlite3.Connection, form: Literal["NFC", "NFD"]) -> None:
    text = unicodedata.normalize(form, f"{VIETNAMESE} {VIETNAMESE.upper()} Hà Nội, 45/STNMT-QLĐĐ: Đôn đốc!")
    assert folding.tokens(text) == sqlite_tokens(fts5, text)
    assert folding.tokens("Hà Nội") == ["ha", "noi"]
    assert folding.tokens("ĐỒNG Ý") == ["dong", "y"]


def test_the_field_break_is_a_letter_no_folded_text_contains() -> None:
    assert folding.FIELD_BREAK.isalpha()
    assert folding.fold(folding.FIELD_BREAK) != folding.FIELD_BREAK
    assert folding.FIELD_BREAK not in folding.fold(VIETNAMESE + VIETNAMESE.upper() + "".join(map(chr, LATIN)))


def test_the_document_has_sqlite_s_fields_in_order_apart() -> None:
    row = {
        "subject": "Kiểm tra đất đai",
        "code": "45/STNMT-QLĐĐ",
        "document_id": None,
        "from_organ": "000.00.00.H31",
        "to_organs": ["000.00.00.H26", "000.00.00.G09"],
        "findings": [{"code": "pdf-signature-invalid", "message_vi": "Chữ ký", "message_en": "Bad", "where": "x.pdf"}],
    }
    brk = f" {folding.FIELD_BREAK} "
    assert folding.document(row) == brk.join(
        [
            "kiem tra dat dai",
            "45 stnmt qldd",
            "",
            "000 00 00 h31 000 00 00 h26 000 00 00 g09",
            "pdf signature invalid chu ky bad",  # a finding's code and texts, not its other keys
        ]
    )
    assert folding.document({"subject": "%% -- !!", "to_organs": None, "findings": None}) is None
