"""Attacked PDFs: each function takes signed bytes and returns the attacked bytes.

What each one does, and the checklist item (spec §6 A2, §1.6 G1.10/G1.10a, A8) it attacks:

* ``tamper_signed_bytes`` — bytes inside the signed /ByteRange edited (the amount): digest
  mismatch, every signature not intact (A2, G1.10).
* ``shadow_hide`` / ``shadow_replace`` / ``shadow_hide_replace`` — a revision after signing
  changes what page 1 shows (overlay; body XObject overridden; page content swapped): intact
  signatures, unsigned page modification (A2).
* ``append_after_eof`` — bytes after the last %%EOF that are no revision (A2, G1.10a).
* ``uncovered_tail`` / ``uncovered_gap`` — the last signature re-signed over a /ByteRange that
  stops before its revision's end / skips part of its signature dictionary (A2, G1.10).
* ``add_comment`` — a revision that only adds a comment annotation (A2; policy decides).
* ``fill_note_field`` — a revision that only fills a text field (A2; policy decides).
* ``add_validation_data`` — revisions with DSS and a document time stamp (B-LTA; benign).
* ``unsigned`` — no signature at all (A8).

The three shadow attacks follow the classes of Mainka, Mladenov and Rohlmann, "Shadow Attacks:
Hiding and Replacing Content in Signed PDFs" (NDSS 2021): *hide* puts content over what was
signed, *replace* swaps an object the signed page uses (here the XObject holding the body text,
at the same object number), *hide-and-replace* swaps the page's whole content description. Each is
a proper incremental update: every signature still verifies over its own revision (intact), and
only difference analysis (pyHanko: ``ModificationLevel.OTHER``) reveals them. ``pdfsig`` reports
them as valid signatures that do not cover the whole document.

``uncovered_tail`` and ``uncovered_gap`` re-sign the last signature over a non-standard
/ByteRange, so the signature is cryptographically valid over what it claims to cover; they need
the signer's key (``pki`` + label).
"""

# pyHanko's PDF object model (generic.*Object constructors, writer helpers) is not annotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from io import BytesIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.validation.dss import async_add_validation_info

from gateway.clock import VN_TZ
from gateway.devpki import DevPKI
from tests.pdfs.documents import AMOUNT_TEXT, BODY_CALL, NOTE_FIELD, NOTE_FIELD_BOX, Box, cong_van, pdf_string
from tests.pdfs.signing import LOCATION, TimestampChoice, signer_for, timestamper_for
from tests.pdfs.validation import validation_context

__all__ = [
    "AMOUNT_BOX",
    "FORGED_AMOUNT_TEXT",
    "FORGED_LOCATION",
    "NOTE_TEXT",
    "add_comment",
    "add_validation_data",
    "append_after_eof",
    "fill_note_field",
    "shadow_hide",
    "shadow_hide_replace",
    "shadow_replace",
    "tamper_signed_bytes",
    "uncovered_gap",
    "uncovered_tail",
    "unsigned",
]

FORGED_AMOUNT_TEXT = b"Tong kinh phi: 900.000.000 dong."
"""What the replacing attacks make the letter say instead of ``AMOUNT_TEXT`` (same length)."""

AMOUNT_BOX: Box = (70, 575, 340, 597)
"""Page area (x1, y1, x2, y2) of ``cong_van``'s ``AMOUNT_TEXT`` line (body at y 540, line at +40);
``shadow_hide`` paints it white."""

FORGED_LOCATION = "Ha Noi VN"
"""What ``uncovered_gap`` writes into the unsigned /Location (as long as ``signing.LOCATION``)."""

NOTE_TEXT = "Da vao so den 45"
"""The value ``fill_note_field`` writes into the ``GhiChu`` field."""

_COMMENT_RECT: Box = (480, 570, 500, 590)


# ---------------------------------------------------------------------------------- helpers
def _update(pdf: bytes, change: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    """Append one incremental revision made by ``change`` (classic xref, like the original)."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    change(writer)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _page_ref(writer: IncrementalPdfFileWriter) -> generic.IndirectObject:
    ref, _ = writer.find_page_for_modification(0)
    assert isinstance(ref, generic.IndirectObject)
    return ref


def _body_ref(writer: IncrementalPdfFileWriter) -> generic.IndirectObject:
    page = _page_ref(writer).get_object()
    ref = page["/Resources"]["/XObject"].raw_get("/Body")
    assert isinstance(ref, generic.IndirectObject), "cong_van's /Body XObject is an indirect object"
    return ref


# ---------------------------------------------------------------------------------- integrity
def tamper_signed_bytes(pdf: bytes, old: bytes = b"100.000.000", new: bytes = b"900.000.000") -> bytes:
    """Change bytes that every signature covers: the amount in the (unfiltered) body text.

    Attacks A2 / G1.10 (digest integrity): no new revision, the bytes of the first revision are
    edited in place, lengths and offsets unchanged. Every signature becomes *not intact*
    (pyHanko ``intact=False``; ``pdfsig``: "Signature is Invalid.").

    Args:
        pdf: a signed ``cong_van``.
        old: bytes to replace; they must occur once, inside the signed ranges.
        new: replacement of the same length.

    Returns:
        The tampered PDF.

    Raises:
        ValueError: ``old`` is missing, ambiguous, or ``new`` has another length.
    """
    if len(old) != len(new) or pdf.count(old) != 1:
        raise ValueError("old must occur exactly once and new must have the same length")
    return pdf.replace(old, new)


# ---------------------------------------------------------------------------------- shadow attacks
def shadow_hide(pdf: bytes) -> bytes:
    """Shadow attack *hide*: a revision after signing paints a white box over the amount.

    A new content stream is appended to page 1's /Contents (``AMOUNT_BOX`` filled white), so the
    signed text is still in the file but no longer visible. Attacks A2 (no unsigned
    modifications): signatures intact, pyHanko ``ModificationLevel.OTHER``.
    """

    def change(writer: IncrementalPdfFileWriter) -> None:
        x1, y1, x2, y2 = AMOUNT_BOX
        overlay = b"q 1 1 1 rg %g %g %g %g re f Q\n" % (x1, y1, x2 - x1, y2 - y1)
        writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=overlay)))

    return _update(pdf, change)


def shadow_replace(pdf: bytes) -> bytes:
    """Shadow attack *replace*: a revision overrides the body XObject at its own object number.

    The page dictionary and its content stream are untouched; the object the page draws with
    ``/Body Do`` gets a new definition in which the amount reads ``FORGED_AMOUNT_TEXT``.
    Attacks A2: signatures intact, pyHanko ``ModificationLevel.OTHER``.
    """

    def change(writer: IncrementalPdfFileWriter) -> None:
        ref = _body_ref(writer)
        original = ref.get_object()
        assert isinstance(original, generic.StreamObject)
        forged = generic.StreamObject(
            {k: v for k, v in original.items() if k not in ("/Length", "/Filter", "/DecodeParms")},
            stream_data=original.data.replace(AMOUNT_TEXT, FORGED_AMOUNT_TEXT),
        )
        writer.objects[(ref.generation, ref.idnum)] = forged  # same object number: an override

    return _update(pdf, change)


def shadow_hide_replace(pdf: bytes) -> bytes:
    """Shadow attack *hide-and-replace*: a revision points page 1 at a whole new content stream.

    All of the signed page description is hidden (no longer referenced) and replaced by a forged
    letter that draws the body text itself, with ``FORGED_AMOUNT_TEXT``. Signature fields and
    their appearances stay as they were, so a viewer still shows the signatures. Attacks A2:
    signatures intact, pyHanko ``ModificationLevel.OTHER``.
    """

    def change(writer: IncrementalPdfFileWriter) -> None:
        page_ref = _page_ref(writer)
        page = page_ref.get_object()
        old = page["/Contents"]
        assert isinstance(old, generic.StreamObject)
        body = _body_ref(writer).get_object()
        assert isinstance(body, generic.StreamObject)
        # The forged page: the original page minus the XObject call, plus the body inlined.
        forged_body = body.data.replace(AMOUNT_TEXT, FORGED_AMOUNT_TEXT)
        placement = BODY_CALL.removesuffix(b"/Body Do Q\n")
        assert BODY_CALL in old.data, "cong_van draws its body with BODY_CALL"
        forged = old.data.replace(BODY_CALL, placement + b"\n" + forged_body + b"Q\n")
        page[pdf_name("/Contents")] = writer.add_object(generic.StreamObject(stream_data=forged))
        writer.mark_update(page_ref)

    return _update(pdf, change)


# ---------------------------------------------------------------------------------- coverage
def append_after_eof(pdf: bytes, junk: bytes = b"% appended after signing: not a revision\n") -> bytes:
    """Bytes appended after the last ``%%EOF`` that do not form a revision (G1.10a, A2).

    ``pdfsig`` says the last signature does not cover the whole document; pyHanko's coverage for
    the last signature drops from ENTIRE_FILE to ENTIRE_REVISION and its diff analysis finds no
    modification (there is no new revision to compare) — a verifier must compare the file's
    length with the end of the last revision itself.
    """
    return pdf + junk


async def _resign_last(
    pdf: bytes,
    *,
    pki: DevPKI,
    signer_label: str,
    timestamp: TimestampChoice,
    byte_range: Callable[[int, int, int], tuple[int, int, int, int]],
) -> bytes:
    """Re-sign the last signature of ``pdf`` over ``byte_range(contents_start, contents_end, size)``.

    The new /ByteRange is written into the existing (space-padded) slot, the digest is taken over
    the new ranges, and a fresh CMS (same signer, SHA-256) replaces the old one in /Contents.
    """
    reader = PdfFileReader(BytesIO(pdf))
    signature = reader.embedded_signatures[-1]
    _, contents_start, contents_end, _ = signature.byte_range
    use_pades = signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    data = bytearray(pdf)

    slot_start = data.index(b"/ByteRange [", contents_end) + len(b"/ByteRange ")
    slot_end = data.index(b"]", slot_start) + 1
    while data[slot_end : slot_end + 1] == b" ":
        slot_end += 1
    new_range = byte_range(contents_start, contents_end, len(data))
    text = b"[%d %d %d %d]" % new_range
    if len(text) > slot_end - slot_start:
        raise ValueError("the new /ByteRange does not fit into the slot")
    data[slot_start:slot_end] = text.ljust(slot_end - slot_start)

    start1, len1, start2, len2 = new_range
    digest = hashlib.sha256(bytes(data[start1 : start1 + len1]) + bytes(data[start2 : start2 + len2])).digest()
    backdated = timestamp if isinstance(timestamp, datetime) else None
    cms = await signer_for(pki, signer_label).async_sign(
        digest,
        "sha256",
        use_pades=use_pades,
        timestamper=None if timestamp is None else timestamper_for(pki, backdated),
        signed_attr_settings=PdfCMSSignedAttributes(signing_time=datetime.now(tz=VN_TZ)),
    )
    hex_cms = cms.dump().hex().encode("ascii")
    room = contents_end - contents_start - 2  # between < and >
    if len(hex_cms) > room:
        raise ValueError("the new signature does not fit into /Contents")
    data[contents_start + 1 : contents_end - 1] = hex_cms.ljust(room, b"0")
    return bytes(data)


async def uncovered_tail(
    pdf: bytes, *, pki: DevPKI, signer_label: str = "person", timestamp: TimestampChoice = "now"
) -> bytes:
    """Re-sign the last signature so its /ByteRange stops before ``startxref ... %%EOF``.

    The signed region is contiguous from byte 0 (only /Contents is skipped) but ends before the
    end of its own revision: the trailer pointer is not signed. Attacks A2 / G1.10 ("/ByteRange
    must cover the whole file except /Contents"): intact and valid, pyHanko coverage
    ``CONTIGUOUS_BLOCK_FROM_START``; ``pdfsig``: "Not total document signed".

    Args:
        pdf: a PDF whose *last* signature was made by ``signer_label`` (reserved space reused).
        pki: the development PKI (served, for the time stamp).
        signer_label: the key that re-signs.
        timestamp: as in ``sign_pdf``; must not need more room than the original signature had.

    Returns:
        The attacked PDF (same length as ``pdf``).
    """

    def tail(contents_start: int, contents_end: int, size: int) -> tuple[int, int, int, int]:
        trailer_pointer = pdf.rindex(b"startxref")
        return (0, contents_start, contents_end, trailer_pointer - contents_end)

    return await _resign_last(pdf, pki=pki, signer_label=signer_label, timestamp=timestamp, byte_range=tail)


async def uncovered_gap(
    pdf: bytes, *, pki: DevPKI, signer_label: str = "person", timestamp: TimestampChoice = "now"
) -> bytes:
    """Re-sign the last signature with a /ByteRange that skips the rest of its signature dictionary.

    The second range starts after the dictionary's ``endobj`` instead of right after /Contents,
    so /ByteRange, /Type, /Filter, /SubFilter, /M and /Location are not signed; to prove it,
    /Location is then changed from ``LOCATION`` to ``FORGED_LOCATION`` and the signature still
    verifies. Attacks A2 /
    G1.10: intact and valid, pyHanko coverage ``UNCLEAR``; ``pdfsig``: "Not total document signed".

    Args:
        pdf: a PDF whose *last* signature was made by ``sign_pdf`` for ``signer_label``.
        pki: the development PKI (served, for the time stamp).
        signer_label: the key that re-signs.
        timestamp: as in ``sign_pdf``.

    Returns:
        The attacked PDF (same length as ``pdf``).
    """

    def gap(contents_start: int, contents_end: int, size: int) -> tuple[int, int, int, int]:
        after = pdf.index(b"endobj", contents_end) + len(b"endobj")
        return (0, contents_start, after, size - after)

    signed = await _resign_last(pdf, pki=pki, signer_label=signer_label, timestamp=timestamp, byte_range=gap)
    original = b"/Location " + pdf_string(LOCATION)
    forged = b"/Location " + pdf_string(FORGED_LOCATION)
    assert len(forged) == len(original)
    where = signed.rindex(original)
    return signed[:where] + forged + signed[where + len(original) :]


# ---------------------------------------------------------------------------------- benign-ish updates
def add_comment(pdf: bytes, text: str = "Da xem - chuyen phong Ke hoach") -> bytes:
    """A revision that only adds a text ("sticky note") annotation to page 1.

    Serves A2 with a policy decision: the signed content is unchanged, a comment was added after
    signing (the page dictionary is rewritten with an /Annots array holding one new /Text
    annotation; nothing else changes). pyHanko 0.38 classifies this as ``ModificationLevel.OTHER``,
    *not* ANNOTATIONS: none of its diff rules emits the ANNOTATIONS level (see the TODO in
    ``pyhanko/sign/diff_analysis/rules/form_field_rules.py``), so with the default diff policy a
    comment is indistinguishable from a shadow attack by modification level alone.
    """

    def change(writer: IncrementalPdfFileWriter) -> None:
        page_ref = _page_ref(writer)
        note = generic.DictionaryObject(
            {
                pdf_name("/Type"): pdf_name("/Annot"),
                pdf_name("/Subtype"): pdf_name("/Text"),
                pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v) for v in _COMMENT_RECT),
                pdf_name("/Contents"): generic.TextStringObject(text),
                pdf_name("/T"): generic.TextStringObject("Van thu"),
                pdf_name("/Name"): pdf_name("/Comment"),
                pdf_name("/F"): generic.NumberObject(4),
                pdf_name("/P"): page_ref,
            }
        )
        writer.register_annotation(page_ref, writer.add_object(note))

    return _update(pdf, change)


def fill_note_field(pdf: bytes, value: str = NOTE_TEXT) -> bytes:
    """A revision that fills the text field ``GhiChu`` (value and appearance), nothing else.

    Serves A2 with a policy decision: pyHanko ``ModificationLevel.FORM_FILLING``.
    """

    def change(writer: IncrementalPdfFileWriter) -> None:
        acroform = writer.root["/AcroForm"]
        field_ref = next(ref for ref in acroform["/Fields"] if ref.get_object()["/T"] == NOTE_FIELD)
        field = field_ref.get_object()
        x1, y1, x2, y2 = NOTE_FIELD_BOX
        appearance = b"/Tx BMC q BT /Helv 10 Tf 0 g 2 6 Td %s Tj ET Q EMC\n" % pdf_string(value)
        stream = generic.StreamObject(
            {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Form"),
                pdf_name("/BBox"): generic.ArrayObject(generic.FloatObject(v) for v in (0, 0, x2 - x1, y2 - y1)),
                pdf_name("/Resources"): generic.DictionaryObject({pdf_name("/Font"): acroform["/DR"]["/Font"]}),
            },
            stream_data=appearance,
        )
        field[pdf_name("/V")] = generic.TextStringObject(value)
        field[pdf_name("/AP")] = generic.DictionaryObject({pdf_name("/N"): writer.add_object(stream)})
        writer.mark_update(field_ref)

    return _update(pdf, change)


async def add_validation_data(pdf: bytes, pki: DevPKI, *, document_timestamp: bool = True) -> bytes:
    """Revisions that add validation data only: a DSS per signature, then a document time stamp.

    What a B-LT / B-LTA upgrade does (G4.4). Serves A2 as the benign case: the earlier
    signatures see pyHanko ``ModificationLevel.LTA_UPDATES``.

    Args:
        pdf: a signed PDF (every signature must validate against the dev PKI's root).
        pki: the development PKI, served (OCSP, CRL and TSA are fetched over HTTP).
        document_timestamp: finish with a document time stamp from the served TSA (B-LTA).

    Returns:
        The PDF with one DSS revision per signature (and a document time stamp revision).
    """
    context = validation_context(pki)
    try:
        for index in range(len(PdfFileReader(BytesIO(pdf)).embedded_signatures)):
            # Each DSS update is a new revision: read the document again for the next signature.
            signature = PdfFileReader(BytesIO(pdf)).embedded_signatures[index]
            pdf = (await async_add_validation_info(signature, context)).getvalue()
        if document_timestamp:
            writer = IncrementalPdfFileWriter(BytesIO(pdf))
            pdf = (await PdfTimeStamper(timestamper_for(pki)).async_timestamp_pdf(writer, "sha256", context)).getvalue()
    finally:
        await context.aclose()
    return pdf


def unsigned() -> bytes:
    """The main document with no signature at all (A8: both signatures missing)."""
    return cong_van()
