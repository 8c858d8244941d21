"""META.toml: the sample loads, mistakes are named with file, line and the fix."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.edxml.checks import check_package
from gateway.edxml.meta import DocumentMeta, load_meta
from gateway.edxml.model import DocumentPackage
from gateway.errors import ConfigError

SAMPLE = Path(__file__).resolve().parents[2] / "config" / "sample-meta.toml"
META = Path("/srv/docs/META.toml")

MINIMAL = """\
[header]
subject = "V/v họp giao ban"

[header.from]
organ_id = "000.00.01.H53"

[[header.to]]
organ_id = "000.00.32.H53"

[header.code]
number = "45"
notation = "VP-HCTC"

[header.promulgation]
date = 2025-03-14

[header.document_type]
type_name = "Giấy mời"

[header.signer]
full_name = "Lê Thị Hồng"
"""


def load(text: str) -> DocumentMeta:
    return load_meta(text, META)


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return caught.value


def line_number(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


def test_sample_loads_and_passes_the_checks() -> None:
    meta = load_meta(SAMPLE.read_text(encoding="utf-8"), SAMPLE)
    header = meta.header
    assert header.from_.organ_id == "000.00.01.H53"
    assert [organ.organ_id for organ in header.to] == ["000.00.32.H53", "000.20.31.H53"]
    assert str(header.code) == "123/UBND-VP"
    assert header.promulgation.place == "Tây Ninh"
    assert header.promulgation.date == date(2025, 3, 14)
    assert header.document_type.type_name == "Công văn"
    assert header.signer.full_name
    assert header.document_id == "000.00.01.H53,2025/03/14,123/UBND-VP"
    assert header.from_.fax is None  # fax = "" in the sample means "not written"
    assert meta.trace is not None
    assert meta.trace.traces == ()
    assert meta.trace.business is not None
    assert meta.trace.business.doc_type == 0
    assert check_package(DocumentPackage(header, meta.trace), today=date(2025, 3, 14)) == ()


def test_minimal_file_and_defaults() -> None:
    meta = load(MINIMAL)
    assert meta.trace is None
    assert meta.header.other_info is None
    assert meta.header.document_id == "000.00.01.H53,2025/03/14,45/VP-HCTC"
    assert check_package(DocumentPackage(meta.header)) == ()


def test_explicit_document_id_is_kept() -> None:
    text = MINIMAL.replace('subject = "V/v họp giao ban"', 'subject = "V/v họp giao ban"\ndocument_id = "abc-1"')
    assert load(text).header.document_id == "abc-1"


def test_text_is_stripped_and_empty_means_absent() -> None:
    text = MINIMAL.replace('subject = "V/v họp giao ban"', 'subject = "  V/v họp giao ban \\n"\ncontent = "   "')
    text += '\n[header.other_info]\nappendixes = ["  Phụ lục I ", "", "  "]\n'
    header = load(text).header
    assert header.subject == "V/v họp giao ban"
    assert header.content is None
    assert header.other_info is not None
    assert header.other_info.appendixes == ("Phụ lục I",)


def test_unknown_key_names_file_line_and_valid_keys() -> None:
    text = MINIMAL.replace('full_name = "Lê Thị Hồng"', 'full_name = "Lê Thị Hồng"\nfullname = "x"')
    error = error_of(text)
    assert error.path == META
    assert error.line == line_number(text, "fullname =")
    assert "unknown key 'fullname' in [header.signer]" in str(error)
    assert error.hint == "valid keys: competence, full_name, position"
    assert str(error).startswith(f"{META}:{error.line}: ")


def test_unknown_key_in_the_second_recipient_points_at_its_line() -> None:
    text = MINIMAL.replace(
        '[[header.to]]\norgan_id = "000.00.32.H53"\n',
        '[[header.to]]\norganid = "x"\n[[header.to]]\norgan_id = "000.00.32.H53"\nname = "UBND"\n',
    )
    error = error_of(text)
    assert "organid" in str(error)
    assert error.line == line_number(text, "organid =")
    second = text.replace('organid = "x"', 'organ_id = "000.00.31.H53"')
    error = error_of(second)
    assert "unknown key 'name'" in str(error)
    assert error.line == line_number(second, "name =")
    assert "organ_name" in (error.hint or "")


def test_unknown_table() -> None:
    error = error_of(MINIMAL + "\n[header.sender]\norgan_id = 'x'\n")
    assert "unknown key 'sender' in [header]" in str(error)
    assert error.line == line_number(MINIMAL + "\n[header.sender]\n", "[header.sender]")
    assert error_of(MINIMAL + "\n[trace.hops]\n").hint == "valid keys: business"


@pytest.mark.parametrize(
    ("old", "new", "message", "needle"),
    [
        ('number = "45"', "number = 45", "'number' in [header.code] must be a string", "number ="),
        (
            "date = 2025-03-14",
            'date = "2025-03-14"',
            "'date' in [header.promulgation] must be a date",
            "date =",
        ),
        ("date = 2025-03-14", "date = 2025-03-14T08:00:00", "must be a date, not", "date ="),
        (
            'type_name = "Giấy mời"',
            'type = "2"',
            "'type' in [header.document_type] must be a whole",
            "type =",
        ),
        (
            'subject = "V/v họp giao ban"',
            'subject = "V/v"\nto_places = "Như trên"',
            "must be a list",
            "to_places",
        ),
        (
            "[header.signer]",
            "[header.other_info]\ndirection = 1\n[header.signer]",
            "true or false",
            "direction",
        ),
        (
            'organ_id = "000.00.32.H53"',
            'organ_id = ["000.00.32.H53"]',
            "'organ_id' in [header.to[0]]",
            "organ_id = [",
        ),
    ],
)
def test_wrong_types(old: str, new: str, message: str, needle: str) -> None:
    text = MINIMAL.replace(old, new)
    assert text != MINIMAL
    error = error_of(text)
    assert message in str(error)
    assert error.line == line_number(text, needle)


def test_date_hint_says_without_quotes() -> None:
    error = error_of(MINIMAL.replace("date = 2025-03-14", 'date = "14/03/2025"'))
    assert error.hint == "write it without quotes, e.g. date = 2025-03-14"


@pytest.mark.parametrize(
    ("old", "missing"),
    [
        ('subject = "V/v họp giao ban"', "missing key 'subject' in [header]"),
        ('notation = "VP-HCTC"', "missing key 'notation' in [header.code]"),
        ('organ_id = "000.00.32.H53"', "missing key 'organ_id' in [header.to[0]]"),
        ('organ_id = "000.00.01.H53"', "missing key 'organ_id' in [header.from]"),
    ],
)
def test_missing_required_keys(old: str, missing: str) -> None:
    assert missing in str(error_of(MINIMAL.replace(old, "")))
    blank = old.split("=", maxsplit=1)[0] + '= "   "'
    assert missing in str(error_of(MINIMAL.replace(old, blank)))  # blank counts as missing


def test_missing_required_table() -> None:
    text = MINIMAL.replace('[header.signer]\nfull_name = "Lê Thị Hồng"\n', "")
    error = error_of(text)
    assert "missing key 'signer' in [header]" in str(error)
    assert error.line == 1


def test_no_date_and_no_document_id() -> None:
    text = MINIMAL.replace("date = 2025-03-14", 'place = "Tây Ninh"')
    error = error_of(text)
    assert "no document_id can be derived" in str(error)
    assert error.line == line_number(text, "[header.promulgation]")
    assert load(text.replace("[header.from]", 'document_id = "x-1"\n\n[header.from]')).header.document_id == "x-1"


def test_dates_and_optional_blocks() -> None:
    text = MINIMAL.replace('subject = "V/v họp giao ban"', 'subject = "V/v"\ndue_date = 2025-04-01')
    text += """
[[header.response_for]]
organ_id = "000.00.00.G14"
code = "456/BTTTT-THH"
promulgation_date = 2025-02-20

[trace.business]
doc_type = 3

[[trace.business.replacements]]
document_id = "000.00.01.H53,2025/03/01,40/VP-HCTC"
organ_ids = ["000.00.32.H53"]
"""
    meta = load(text)
    assert meta.header.due_date == date(2025, 4, 1)
    assert meta.header.response_for[0].promulgation_date == date(2025, 2, 20)
    assert meta.trace is not None
    assert meta.trace.business is not None
    assert meta.trace.business.replacements[0].organ_ids == ("000.00.32.H53",)


def test_model_refusal_becomes_a_config_error() -> None:
    error = error_of(MINIMAL.replace('subject = "V/v họp giao ban"', 'subject = "V/v \\u0001"'))
    assert "[header]" in str(error)
    assert "U+0001" in str(error)


def test_invalid_toml_names_the_line() -> None:
    error = error_of(MINIMAL.replace('number = "45"', "number = 45 45"))
    assert "not valid TOML" in str(error)
    assert error.line == line_number(MINIMAL, 'number = "45"')
