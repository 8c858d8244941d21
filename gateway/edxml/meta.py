"""``META.toml``: the document metadata a person writes for ``gateway edxml build``.

``gateway edxml build --meta META.toml --attach FILE...`` reads the file, calls
``load_meta`` and adds the attachments. ``config/sample-meta.toml`` is the annotated example.

Schema. The TOML tables mirror ``gateway.edxml.model`` one to one, and the keys are the
model's field names (``from_`` is written ``from``), so there is a single vocabulary::

    [header]                 MessageHeader: subject*, content, due_date, to_places,
                             steering_type, document_id, response_for_task, application_type
    [header.from]*           Organization: organ_id*, organization_in_charge, organ_name,
                             organ_add, email, telephone, fax, website
    [[header.to]]*           Organization, once per recipient
    [header.code]*           DocumentCode: number*, notation*
    [header.promulgation]*   PromulgationInfo: place, date (a TOML date: 2025-03-14)
    [header.document_type]*  DocumentType: type, type_detail, type_name
    [header.signer]*         SignerInfo: competence, position, full_name
    [header.other_info]      OtherInfo: priority, sphere_of_promulgation, typer_notation,
                             promulgation_amount, page_amount, direction, reply_fors,
                             reference_codes, appendixes
    [[header.response_for]]  ResponseFor: organ_id, code, promulgation_date, document_id
    [trace.business]         Business: doc_type, document_id, doc_reason, paper
    [trace.business.staff]   StaffInfo: department, department_id, staff, staff_id, email, mobile
    [trace.business.document_info]               BusinessDocumentInfo: document_info,
                                                 document_receiver
    [[trace.business.document_info.receivers]]   Receiver: organ_id*, receiver_type
    [[trace.business.replacements]]              ReplacementInfo: document_id*, organ_ids

(* = required.) Trace *hops* (``TraceHeader``) are not written by people: the builder adds
the sender's hop with the clock's time, so ``[trace]`` holds only ``business``.

Rules, in order:

1. the text must be TOML; every table and key must be in the schema (an unknown one is a
   ``ConfigError`` naming the file, the line and the valid keys); values must have the
   field's type (dates as TOML dates, numbers unquoted);
2. text is normalised first, because people write TOML by hand: strings are stripped, an
   empty string counts as absent (so an empty required key is reported as missing), and
   empty entries of string lists are dropped;
3. ``header.document_id``, when absent, becomes the SDK's default
   ``<From/OrganId>,<yyyy/MM/dd>,<number>/<notation>`` (``checks.default_document_id``).

Semantic checks (valid organisation ids, code lists, lengths) are not repeated here: the
builder runs ``checks.check_package`` on the finished package, attachments included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.edxml.checks import default_document_id
from gateway.edxml.model import Business, MessageHeader, TraceHeaderList
from gateway.settings import TomlSource, table_from_toml

__all__ = ["DocumentMeta", "load_meta"]


@dataclass(frozen=True)
class DocumentMeta:
    """What ``META.toml`` says about a document; the CLI adds the attachments."""

    header: MessageHeader
    """With ``document_id`` always set."""
    trace: TraceHeaderList | None = None
    """``business`` only, no hops; ``None`` when the file has no ``[trace]``."""


@dataclass(frozen=True)
class _TraceFile:
    """``[trace]``: a person states the business type; the builder adds the hops."""

    business: Business | None = None


@dataclass(frozen=True)
class _MetaFile:
    """The whole of ``META.toml``."""

    header: MessageHeader
    trace: _TraceFile | None = None


_ABSENT = object()


def _normalise(value: Any) -> Any:
    """Strip strings, drop empty ones (as keys and as list items), recursively.

    Returns the sentinel ``_ABSENT`` for a value that counts as not written.
    """
    if isinstance(value, str):
        stripped = value.strip()
        return stripped if stripped else _ABSENT
    if isinstance(value, dict):
        cleaned = {key: _normalise(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item is not _ABSENT}
    if isinstance(value, list):
        return [item for item in map(_normalise, value) if item is not _ABSENT]
    return value


def load_meta(text: str, source: Path) -> DocumentMeta:
    """Read the text of a ``META.toml`` file into document metadata.

    Args:
        text: the file's content (the CLI reads it; this function does no I/O).
        source: the file's path, used in error messages.

    Returns:
        The header (with ``document_id`` filled in) and the optional business trace.

    Raises:
        ConfigError: invalid TOML; an unknown table or key; a missing required key; a value
            of the wrong type; text the model refuses (e.g. a control character); or no
            ``document_id`` and no ``[header.promulgation] date`` to derive it from. The
            message names the file, the line when it can be found, and the fix.
    """
    origin = TomlSource(text, Path(source))
    parsed = table_from_toml(_MetaFile, _normalise(origin.load()), origin)
    header = parsed.header
    if header.document_id is None:
        try:
            header = replace(header, document_id=default_document_id(header))
        except ValueError:
            raise origin.error(
                "[header.promulgation] has no 'date', so no document_id can be derived",
                ("header", "promulgation"),
                hint="add date = YYYY-MM-DD there, or set document_id in [header]",
            ) from None
    trace = None
    if parsed.trace is not None:
        trace = TraceHeaderList(business=parsed.trace.business)
    return DocumentMeta(header=header, trace=trace)
