"""Base documents: small, valid, unsigned PDFs generated in code (no binary fixtures).

Two documents shaped like what a DMS hands the gateway (Decree 30/2020 Appendix I layout):

* ``cong_van()`` — the main document, a one-page A4 official letter ("công văn") with an empty
  signature field ``PERSON_FIELD`` in box 7c, between the signer's title and name, where the
  authorised person signs. The organisation seal (``ORG_SEAL_BOX``) goes over the left third of
  that box (Appendix I, box 8); its field is created when the organisation signs.
* ``phu_luc()`` — an appendix ("phụ lục") filed separately; its organisation signature goes to
  the top right of page 1 (``APPENDIX_STAMP_BOX``).

Text is ASCII (Vietnamese without diacritics) in the standard Helvetica fonts, so nothing has to
be embedded. Page content streams are left *unfiltered* on purpose: ``attacks`` finds bytes of
the signed content by searching for the visible text (``AMOUNT_TEXT``), and tests can read it
back with ``pdftotext``.

The letter's body paragraph is a Form XObject (resource ``/Body``, drawn by ``BODY_CALL``) so
that the shadow "replace" attack can swap a resource rather than a content stream (spec §6 A2).
The letter also has an empty text field ``NOTE_FIELD`` (a clerk's note) for the form-filling
artefact.
"""

# pyHanko's PDF object model (generic.*Object constructors, writer helpers) is not annotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, append_signature_field

__all__ = [
    "A4",
    "AMOUNT_TEXT",
    "APPENDIX_STAMP_BOX",
    "BODY_CALL",
    "DOCUMENT_NUMBER",
    "NOTE_FIELD",
    "NOTE_FIELD_BOX",
    "ORG_SEAL_BOX",
    "PERSON_BOX",
    "PERSON_FIELD",
    "Box",
    "cong_van",
    "content_stream",
    "pdf_string",
    "phu_luc",
]

Box = tuple[int, int, int, int]
"""A rectangle in PDF user space: (x1, y1, x2, y2), whole points (pyHanko's field boxes are ints)."""

A4: Box = (0, 0, 595, 842)
"""The A4 media box, in points (rounded)."""

DOCUMENT_NUMBER = "123/UBND-VP"
"""Number and symbol of the letter (the appendix and its stamp refer to it)."""

AMOUNT_TEXT = b"Tong kinh phi: 100.000.000 dong."
"""The line of the letter that the shadow attacks hide or replace (it lies in the ``/Body`` XObject)."""

PERSON_FIELD = "NguoiKy"
"""Name of the empty signature field for the authorised person (box 7c)."""

PERSON_BOX: Box = (360, 250, 520, 310)
"""Box 7c: the person's signature, between the title "CHU TICH" and the name."""

ORG_SEAL_BOX: Box = (310, 230, 410, 330)
"""Box 8: the organisation's seal, 100 x 100 pt, over the left third of ``PERSON_BOX``."""

APPENDIX_STAMP_BOX: Box = (375, 770, 565, 820)
"""Top right of the appendix's first page: the organisation's text-only signature."""

NOTE_FIELD = "GhiChu"
"""A text field of the letter (a clerk's note), for the form-filling artefact."""

NOTE_FIELD_BOX: Box = (72, 120, 300, 140)
"""Where ``NOTE_FIELD`` is drawn."""

BODY_CALL = b"q 1 0 0 1 72 540 cm /Body Do Q\n"
"""The operators of the letter's content stream that draw the body paragraph (at x 72, y 540)."""

_BODY_BOX: Box = (0, 0, 460, 120)


def pdf_string(text: str) -> bytes:
    """A PDF literal string ``(...)`` for ASCII ``text`` (raises ``UnicodeEncodeError`` otherwise)."""
    raw = text.encode("ascii")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def content_stream(lines: Sequence[tuple[str, float, float, float, str]]) -> bytes:
    """Operators that draw text lines.

    Args:
        lines: ``(font resource, size, x, y, ASCII text)`` for each line.

    Returns:
        A content stream fragment (``BT ... ET`` per line).
    """
    out = []
    for font, size, x, y, text in lines:
        out.append(b"BT /%s %g Tf %g %g Td %s Tj ET" % (font.encode(), size, x, y, pdf_string(text)))
    return b"\n".join(out) + b"\n"


def _font(base: str) -> generic.DictionaryObject:
    """A standard-14 font (nothing embedded), WinAnsi-encoded."""
    return generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/" + base),
            pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding"),
        }
    )


def _fonts() -> generic.DictionaryObject:
    return generic.DictionaryObject({pdf_name("/F1"): _font("Helvetica"), pdf_name("/F2"): _font("Helvetica-Bold")})


def _stream(
    writer: PdfFileWriter, data: bytes, extra: dict[str, generic.PdfObject] | None = None
) -> generic.IndirectObject:
    # Unfiltered on purpose (see the module docstring).
    stream = generic.StreamObject({pdf_name(k): v for k, v in (extra or {}).items()}, stream_data=data)
    return writer.add_object(stream)


def _new_writer(title: str) -> PdfFileWriter:
    writer = PdfFileWriter(stream_xrefs=False)
    writer.set_info(generic.DictionaryObject({pdf_name("/Title"): generic.TextStringObject(title)}))
    return writer


def _add_page(writer: PdfFileWriter, content: bytes, xobjects: dict[str, generic.IndirectObject] | None = None) -> None:
    resources = generic.DictionaryObject({pdf_name("/Font"): writer.add_object(_fonts())})
    if xobjects:
        resources[pdf_name("/XObject")] = generic.DictionaryObject({pdf_name("/" + k): v for k, v in xobjects.items()})
    page = PageObject(contents=_stream(writer, content), media_box=A4, resources=resources)
    writer.insert_page(page)


def _to_bytes(writer: PdfFileWriter) -> bytes:
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _body_xobject(writer: PdfFileWriter) -> generic.IndirectObject:
    """The letter's body paragraph as a Form XObject (the shadow *replace* attack overrides it)."""
    body = content_stream(
        [
            ("F1", 12, 0, 100, "Can cu Nghi dinh so 30/2020/ND-CP ve cong tac van thu;"),
            ("F1", 12, 0, 80, "Uy ban nhan dan tinh Test de nghi So Tai chinh tinh Test"),
            ("F1", 12, 0, 60, "bo tri kinh phi thuc hien du an so hoa van ban nam 2025."),
            ("F2", 12, 0, 40, AMOUNT_TEXT.decode("ascii")),
            ("F1", 12, 0, 20, "Thoi han: truoc ngay 30/6/2025."),
        ]
    )
    extra: dict[str, generic.PdfObject] = {
        "/Type": pdf_name("/XObject"),
        "/Subtype": pdf_name("/Form"),
        "/BBox": generic.ArrayObject(generic.FloatObject(v) for v in _BODY_BOX),
        "/Resources": generic.DictionaryObject({pdf_name("/Font"): _fonts()}),
    }
    return _stream(writer, body, extra)


def _text_field(writer: PdfFileWriter, name: str, box: Box) -> None:
    """An empty single-line text field on page 1 (AcroForm created by ``append_signature_field`` before)."""
    page_ref = writer.root["/Pages"]["/Kids"][0]
    field = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/Widget"),
            pdf_name("/FT"): pdf_name("/Tx"),
            pdf_name("/T"): generic.TextStringObject(name),
            pdf_name("/Rect"): generic.ArrayObject(generic.FloatObject(v) for v in box),
            pdf_name("/F"): generic.NumberObject(4),  # Print
            pdf_name("/DA"): generic.TextStringObject("/Helv 10 Tf 0 g"),
            pdf_name("/P"): page_ref,
        }
    )
    field_ref = writer.add_object(field)
    writer.register_annotation(page_ref, field_ref)
    acroform = writer.root["/AcroForm"]
    acroform["/Fields"].append(field_ref)
    acroform[pdf_name("/DA")] = generic.TextStringObject("/Helv 10 Tf 0 g")
    acroform[pdf_name("/DR")] = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/Helv"): _font("Helvetica")})}
    )


def cong_van() -> bytes:
    """The main document: a one-page A4 official letter, unsigned (spec §2.2, §6 A8).

    It carries the empty signature field ``PERSON_FIELD`` (box 7c, ``PERSON_BOX``) and an empty
    text field ``NOTE_FIELD``. The body paragraph, with ``AMOUNT_TEXT``, is the ``/Body`` Form
    XObject. One revision, classic xref table.

    Returns:
        The PDF bytes (about 3 KB); calls differ only in the file ID and /ModDate.
    """
    writer = _new_writer(f"Cong van {DOCUMENT_NUMBER}")
    content = content_stream(
        [
            ("F2", 11, 60, 790, "UY BAN NHAN DAN"),
            ("F2", 11, 70, 776, "TINH TEST"),
            ("F2", 11, 300, 790, "CONG HOA XA HOI CHU NGHIA VIET NAM"),
            ("F2", 11, 335, 776, "Doc lap - Tu do - Hanh phuc"),
            ("F1", 11, 60, 750, f"So: {DOCUMENT_NUMBER}"),
            ("F1", 11, 330, 750, "Tinh Test, ngay 14 thang 3 nam 2025"),
            ("F1", 11, 60, 735, "V/v bo tri kinh phi so hoa van ban"),
            ("F2", 12, 180, 690, "Kinh gui: So Tai chinh tinh Test"),
        ]
    )
    content += BODY_CALL
    content += content_stream(
        [
            ("F2", 11, 380, 345, "TM. UY BAN NHAN DAN"),
            ("F2", 11, 410, 330, "CHU TICH"),
            ("F2", 11, 395, 230, "Nguyen Van Test"),
            ("F1", 9, 60, 200, "Noi nhan:"),
            ("F1", 9, 60, 188, "- Nhu tren;"),
            ("F1", 9, 60, 176, "- Luu: VT, VP."),
        ]
    )
    _add_page(writer, content, {"Body": _body_xobject(writer)})
    append_signature_field(writer, SigFieldSpec(sig_field_name=PERSON_FIELD, on_page=0, box=PERSON_BOX))
    _text_field(writer, NOTE_FIELD, NOTE_FIELD_BOX)
    return _to_bytes(writer)


def phu_luc() -> bytes:
    """The appendix filed separately from the letter, unsigned (spec §2.2 G2.7).

    One A4 page, no signature field: the organisation's text-only signature is placed at
    ``APPENDIX_STAMP_BOX`` (top right) when it is signed.

    Returns:
        The PDF bytes.
    """
    writer = _new_writer(f"Phu luc kem theo Cong van {DOCUMENT_NUMBER}")
    lines = [
        ("F2", 13, 250, 730, "PHU LUC"),
        ("F1", 11, 150, 712, f"(Kem theo Cong van so {DOCUMENT_NUMBER} cua UBND tinh Test)"),
        ("F2", 11, 72, 670, "STT   Noi dung                                   Kinh phi (dong)"),
    ]
    items = [("Scan va so hoa ho so", "60.000.000"), ("Luu tru va sao luu", "25.000.000"), ("Dao tao", "15.000.000")]
    for number, (what, amount) in enumerate(items, start=1):
        y = 650 - 20 * number
        lines += [("F1", 11, 80, y, str(number)), ("F1", 11, 110, y, what), ("F1", 11, 400, y, amount)]
    _add_page(writer, content_stream(lines))
    return _to_bytes(writer)
