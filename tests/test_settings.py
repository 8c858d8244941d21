"""Strict TOML loading: every mistake names the file, the line, the key and what is valid."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import pytest

from gateway.errors import ConfigError
from gateway.settings import Settings, TomlSource, settings_from_toml, table_from_toml

GATEWAY_TOML = Path("/etc/edxml-gateway/gateway.toml")


def settings_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        settings_from_toml(text, GATEWAY_TOML)
    return caught.value


# ------------------------------------------------------------------ existing behaviour


def test_defaults_and_values() -> None:
    defaults = Settings()
    # A relative default path is relative to the file, like every path the file names.
    expected = replace(defaults, store=replace(defaults.store, spool=GATEWAY_TOML.parent / "var" / "spool"))
    assert settings_from_toml("", GATEWAY_TOML) == expected
    text = '[identity]\norgan_ids = ["000.00.01.H53"]\n[edxml]\nmax_depth = 30\nzip_other_files = false\n'
    settings = settings_from_toml(text, GATEWAY_TOML)
    assert settings.identity.organ_ids == ("000.00.01.H53",)
    assert settings.edxml.max_depth == 30
    assert settings.edxml.zip_other_files is False


def test_unknown_key_names_file_line_and_valid_keys() -> None:
    error = settings_error("[identity]\norgan_name = 'VP'\n\n[edxml]\nmax_dept = 3\n")
    assert error.path == GATEWAY_TOML
    assert error.line == 5
    assert error.hint is not None
    assert "max_depth" in error.hint
    assert "signature_algorithm" in error.hint
    assert str(error).startswith(f"{GATEWAY_TOML}:5: unknown key 'max_dept' in [edxml]")


def test_unknown_table_points_at_its_header() -> None:
    error = settings_error("[identity]\norgan_name = 'VP'\n\n[verifyy]\npolicy = 'x'\n")
    assert "unknown key 'verifyy' in the top level" in str(error)
    assert error.line == 4
    assert error.hint == (
        "valid keys: axis, dev, dms, edxml, http, identity, imap, queue, sign, smtp, store, submission, trust, verify"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[edxml]\nmax_depth = "40"\n', "'max_depth' in [edxml] must be a whole number, not '40'"),
        ("[edxml]\nmax_depth = true\n", "must be a whole number, not True"),
        ("[edxml]\nmax_depth = 4.5\n", "must be a whole number"),
        ("[edxml]\nzip_other_files = 1\n", "'zip_other_files' in [edxml] must be true or false"),
        ('[identity]\norgan_ids = "000.00.01.H53"\n', "'organ_ids' in [identity] must be a list"),
        ("[identity]\norgan_ids = [1]\n", "'organ_ids[0]' in [identity] must be a string"),
        ("[identity]\norgan_name = 5\n", "'organ_name' in [identity] must be a string"),
        ("identity = 3\n", "'identity' in the top level must be a table"),
    ],
)
def test_wrong_type(text: str, message: str) -> None:
    error = settings_error(text)
    assert message in str(error)
    assert error.line == len(text.splitlines())


def test_literal_choices_are_listed() -> None:
    error = settings_error('[edxml]\nsignature_algorithm = "md5"\n')
    assert error.line == 2
    assert "'signature_algorithm' in [edxml] is 'md5'; valid choices: 'rsa-sha256'" in str(error)
    assert "'rsa-sha1'" in str(error)
    ok = settings_from_toml('[edxml]\nsignature_algorithm = "rsa-sha512"\n', GATEWAY_TOML)
    assert ok.edxml.signature_algorithm == "rsa-sha512"


def test_invalid_toml_names_the_line() -> None:
    error = settings_error("[edxml]\nmax_depth = = 3\n")
    assert "not valid TOML" in str(error)
    assert error.line == 2


# ------------------------------------------------------------------ helpers for table_from_toml


@dataclass(frozen=True)
class Hop:
    organ_id: str
    at: datetime | None = None


@dataclass(frozen=True)
class Sample:
    name: str
    kind: Literal["a", "b"] = "a"
    trust: Path | None = None
    day: date | None = None
    when: datetime | None = None
    ratio: float = 1.0
    hops: tuple[Hop, ...] = ()


def load(text: str, path: Path = Path("/etc/gw/sample.toml")) -> Sample:
    return table_from_toml(Sample, tomllib.loads(text), TomlSource(text, path))


def load_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(text)
    return caught.value


def test_relative_path_is_resolved_against_the_file_directory() -> None:
    assert load('name = "x"\ntrust = "certs/root.pem"\n').trust == Path("/etc/gw/certs/root.pem")
    assert load('name = "x"\ntrust = "../pki/root.pem"\n').trust == Path("/etc/gw/../pki/root.pem")
    assert load('name = "x"\ntrust = "/opt/root.pem"\n').trust == Path("/opt/root.pem")
    assert "must be a path string" in str(load_error('name = "x"\ntrust = 3\n'))


def test_float_accepts_integers_but_not_booleans() -> None:
    assert load('name = "x"\nratio = 2\n').ratio == 2.0
    assert "must be a number" in str(load_error('name = "x"\nratio = true\n'))


def test_missing_required_key() -> None:
    error = load_error('kind = "b"\n')
    assert "missing key 'name' in the top level" in str(error)
    assert error.hint == "required keys: name"
    hop_error = load_error('name = "x"\n\n[[hops]]\nat = 2025-03-14T08:00:00+07:00\n')
    assert "missing key 'organ_id' in [hops[0]]" in str(hop_error)
    assert hop_error.line == 3


# ------------------------------------------------------------------ dates and times


def test_local_date() -> None:
    assert load('name = "x"\nday = 2025-03-14\n').day == date(2025, 3, 14)


@pytest.mark.parametrize(
    "value",
    ['"2025-03-14"', "2025-03-14T08:00:00", "2025-03-14T08:00:00+07:00", "20250314", "08:00:00"],
)
def test_date_refuses_everything_else(value: str) -> None:
    error = load_error(f'name = "x"\n\nday = {value}\n')
    assert "'day' in the top level must be a date" in str(error)
    assert error.hint == "write it without quotes, e.g. day = 2025-03-14"
    assert error.line == 3


def test_offset_datetime_becomes_utc() -> None:
    when = load('name = "x"\nwhen = 2025-03-14T09:30:00+07:00\n').when
    assert when == datetime(2025, 3, 14, 2, 30, tzinfo=UTC)
    assert when is not None
    assert when.utcoffset() == timedelta(0)
    other = load('name = "x"\nwhen = 2025-03-14T04:30:00+02:00\n').when
    assert other == datetime(2025, 3, 14, 2, 30, tzinfo=UTC)
    assert other is not None
    assert other.tzinfo == UTC


def test_local_datetime_means_vietnam_time() -> None:
    when = load('name = "x"\nwhen = 2025-03-14T09:30:00\n').when
    assert when == datetime(2025, 3, 14, 9, 30, tzinfo=timezone(timedelta(hours=7)))
    assert when is not None
    assert when.tzinfo == UTC
    assert when.hour == 2


@pytest.mark.parametrize("value", ["2025-03-14", '"2025-03-14T09:30:00+07:00"', "1741919400", "09:30:00"])
def test_datetime_refuses_everything_else(value: str) -> None:
    error = load_error(f'name = "x"\nwhen = {value}\n')
    assert "'when' in the top level must be a date and time" in str(error)
    assert error.hint is not None
    assert "without quotes" in error.hint
    assert error.line == 2


def test_datetime_inside_an_array_of_tables_points_at_the_right_entry() -> None:
    text = 'name = "x"\n\n[[hops]]\norgan_id = "a"\n\n[[hops]]\norgan_id = "b"\nat = "yesterday"\n'
    error = load_error(text)
    assert "'at' in [hops[1]] must be a date and time" in str(error)
    assert error.line == 8
    hops = load(text.replace('"yesterday"', "2025-03-14T08:00:00")).hops
    assert hops[1].at == datetime(2025, 3, 14, 1, 0, tzinfo=UTC)


# ------------------------------------------------------------------ line lookup


def test_line_of_arrays_of_tables_nested_and_inline() -> None:
    text = """\
[header]
subject = "x"
to_places = ["a", "b"]
from = { organ_id = "1" }

[[header.to]]
organ_id = "2"

[[header.to]]
organ_id = "3"

[[trace.hops]]
organ_id = "4"
[[trace.hops.notes]]
text = "n1"

[[trace.hops]]
organ_id = "5"
[[trace.hops.notes]]
text = "n2"
[[trace.hops.notes]]
text = "n3"
"""
    source = TomlSource(text, Path("META.toml"))
    assert source.line_of(("header",), "subject") == 2
    assert source.line_of(("header",), "to_places[1]") == 3
    assert source.line_of(("header", "from"), "organ_id") == 4  # inline: the key holding it
    assert source.line_of(("header", "from")) == 4
    assert source.line_of(("header", "to[0]")) == 6
    assert source.line_of(("header", "to[1]"), "organ_id") == 10
    assert source.line_of(("header",), "to") == 6
    assert source.line_of(("trace", "hops[1]"), "organ_id") == 18
    assert source.line_of(("trace", "hops[0]", "notes[0]"), "text") == 15
    assert source.line_of(("trace", "hops[1]", "notes[0]"), "text") == 20
    assert source.line_of(("trace", "hops[1]", "notes[1]"), "text") == 22
    assert source.line_of(("header",), "nowhere") == 1  # unknown spelling: its table
    assert source.line_of(("nowhere",)) is None
