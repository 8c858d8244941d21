"""Property: whatever the builder accepts, the parser reads back equal, without errors.

``parse(build(x)).package == x`` for both kinds of package, over strategies that cover every
field of the model (Vietnamese text with markup characters and inner line breaks, every
optional field present or absent, 1–3 recipients, attachments zipped and not, business types
0–3 with their sub-blocks, every status code). The built bytes are deterministic, and the
parse of a valid built package has no error-severity finding at all: the strategies satisfy
the checks too, so an error here is a bug in the builder, the parser or the checks.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from gateway.edxml.build import BuildError, build
from gateway.edxml.findings import Severity
from gateway.edxml.model import DocumentPackage, MessageHeader, StatusPackage
from gateway.edxml.parse import parse, parse_tree
from gateway.edxml.xmlsafe import parse_untrusted
from tests.edxml.strategies import TODAY, document_packages, message_headers, status_packages

_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _round_trip(package: DocumentPackage | StatusPackage) -> None:
    raw = build(package)
    assert build(package) == raw, "the builder must be deterministic"
    result = parse(raw, today=TODAY)
    errors = [str(f) for f in result.findings if f.severity is Severity.ERROR]
    assert errors == []
    assert result.package == package


@_SETTINGS
@given(document_packages())
def test_document_packages_round_trip(package: DocumentPackage) -> None:
    _round_trip(package)


@_SETTINGS
@given(status_packages())
def test_status_packages_round_trip(package: StatusPackage) -> None:
    _round_trip(package)


@settings(max_examples=25, deadline=None)
@given(message_headers(min_recipients=0).filter(lambda h: not h.to))
def test_a_document_without_recipient_is_refused(header: MessageHeader) -> None:
    with pytest.raises(BuildError, match=r"MessageHeader/To: there is no recipient"):
        build(DocumentPackage(header=header))


@settings(max_examples=40, deadline=None)
@given(document_packages())
def test_parse_tree_reads_what_parse_reads(package: DocumentPackage) -> None:
    # parse_tree is the signature verifier's entry point: it must agree with parse.
    raw = build(package)
    assert parse_tree(parse_untrusted(raw), today=TODAY) == parse(raw, today=TODAY)
