"""Where the organisation's signature goes and how it looks, for one document (before signing).

A ``SealPlan`` is everything ``Sealer`` needs to create the signature field: its name, page,
rectangle, pyHanko stamp style and text parameters. Planning reads the document (the widget of
the person's signature, page boxes, a copy's scan quality) and is CPU work, so the sealer runs it
in a worker thread. The time shown in a text appearance is filled in only when the signature is
made (``SealPlan.params``), inside the TSA slot.
"""

# pyHanko's PDF object model (generic.*, the readers) is not annotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.stamp import BaseStampStyle

from gateway.clock import iso_vn
from gateway.sign.appearance import Rect, fallback_seal_rect, layout_text, seal_rect, seal_style, text_style
from gateway.sign.font import SealFont
from gateway.sign.pages import find_widget, page_box, page_count, scan_problems
from gateway.sign.refusals import SealingRefused
from gateway.sign.request import SealKind, SealRequest

__all__ = ["ORGANISATION_FIELD", "SealPlan", "plan_seal", "plan_text", "text_lines"]

ORGANISATION_FIELD = "ChuKyCoQuan"
"""Name of the organisation's signature field ("chữ ký cơ quan"); ``_2``, ``_3``... when taken."""


@dataclass(frozen=True)
class SealPlan:
    """The organisation signature's field and appearance for one document."""

    field_name: str
    page: int
    """0-based page index."""
    rect: Rect
    style: BaseStampStyle
    text: dict[str, str] = field(default_factory=dict)
    """The appearance's text parameters, the time excepted."""
    time_param: str | None = None
    """The parameter that shows the signing time (text appearances only)."""
    fallback: bool = False
    """The seal is at the fallback position: the person's signature has no visible widget."""

    def params(self, when: datetime) -> dict[str, str]:
        """The text parameters with the signing time ``when`` (shown as ``2025-03-14T09:05:07+07:00``)."""
        if self.time_param is None:
            return dict(self.text)
        return {**self.text, self.time_param: iso_vn(when)}


def _free_field_name(reader: PdfFileReader) -> str:
    """``ORGANISATION_FIELD``, or the first ``ORGANISATION_FIELD_<n>`` no top-level field uses."""
    try:
        fields = reader.root["/AcroForm"]["/Fields"]
        taken = {str(f.get_object().get("/T", "")) for f in fields if isinstance(f, generic.IndirectObject)}
    except (KeyError, TypeError, AttributeError):
        taken = set()
    name, number = ORGANISATION_FIELD, 1
    while name in taken:
        number += 1
        name = f"{ORGANISATION_FIELD}_{number}"
    return name


def plan_seal(reader: PdfFileReader, person_field: str, image: Image.Image, size: tuple[float, float]) -> SealPlan:
    """Plan the main document's seal over the person's signature (see ``appearance.seal_rect``).

    Args:
        reader: the document as received.
        person_field: the field of the person's signature chosen by the sealer.
        image: the seal (RGBA).
        size: the seal's real width and height in points.

    Returns:
        The plan; ``fallback`` is set when the person's signature has no visible widget and
        the seal went to ``appearance.fallback_seal_rect`` on the last page.
    """
    width, height = size
    widget = find_widget(reader, person_field)
    if widget is None:
        page = page_count(reader) - 1
        rect = fallback_seal_rect(page_box(reader, page), width, height)
        return SealPlan(_free_field_name(reader), page, rect, seal_style(image), fallback=True)
    rect = seal_rect(widget.rect, page_box(reader, widget.page), width, height)
    return SealPlan(_free_field_name(reader), widget.page, rect, seal_style(image))


def text_lines(request: SealRequest, time: str) -> list[str]:
    """The text of an attachment's or a copy's signature, top to bottom, the time last (Appendix I).

    Attachment: the main document's number and notation, the time. Copy: the copy type, the
    copying organisation, the time.
    """
    if request.kind is SealKind.COPY:
        return [str(request.copy_type), request.organisation_name, time]
    return [str(request.document_number), time]


def plan_text(reader: PdfFileReader, request: SealRequest, font: SealFont, sample_time: str) -> SealPlan:
    """Plan an attachment's or a copy's text signature at the top right of page 1.

    Args:
        reader: the document as received.
        request: an attachment or copy request.
        font: the embedded font.
        sample_time: a signing time to measure (the real one replaces it when signing; digits
            are tabular, so only kerning can change its width, by a fraction of a point that the
            block's 2 pt padding absorbs).

    Returns:
        The plan.

    Raises:
        SealingRefused: ``seal-text-unsupported`` for characters the font cannot show;
            ``copy-scan-quality`` for a copy below Decree 30's floor; ``pdf-unreadable`` when
            page 1 has no page box.
    """
    lines = text_lines(request, sample_time)
    missing = font.missing("".join(lines))
    if missing:
        raise SealingRefused("seal-text-unsupported", f"no glyph for {missing!r} in {font.path.name}")
    if request.kind is SealKind.COPY:
        problems = scan_problems(reader)
        if problems:
            raise SealingRefused("copy-scan-quality", "; ".join(problems))
    try:
        page = page_box(reader, 0)
    except ValueError as exc:
        raise SealingRefused("pdf-unreadable", str(exc)) from None
    block = layout_text(lines, font, page)
    style, text = text_style(block, font)
    time_param = f"line{len(block.lines) - 1}"  # the time is one word: it is never wrapped
    return SealPlan(_free_field_name(reader), 0, block.rect, style, text, time_param)
