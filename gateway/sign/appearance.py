"""How the organisation's signature looks and where it goes (Decree 30/2020 Appendix I).

Two appearances (spec §2.2, G2.6-G2.9; Hải Phòng's rules, Art. 13, say the same):

* **main document** — the red seal PNG with transparency, drawn at its *real* size, covering
  about the left third of the authorised person's signature image, on the same page.
  ``seal_rect`` puts the seal's right edge one third of the way into the person's widget (or at
  the widget's left edge plus the seal's width when the seal is narrower than a third) and
  centres it vertically on the widget; it is then shifted, never shrunk, to stay on the page.
  The widget is the signed field's, read from the PDF (``gateway.sign.pages.find_widget``); a fixed
  position is used only when that signature has no visible widget (``fallback_seal_rect``).
* **attachment / copy** — no image; text in a Times-New-Roman-metric font with Vietnamese
  glyphs, embedded (``gateway.sign.font.SealFont``), 10 pt, black, upright, at the top right
  of page 1 (``layout_text``, whose docstring states the placement and shrink rules).

The geometry is pure (``Rect`` in PDF user space, points); text is measured by ``SealFont``.
Styles are built per document: pyHanko's image and font objects remember the writer they were
last drawn into, so sharing them between concurrent signatures would mix documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.stamp import StaticStampStyle, TextStampStyle

from gateway.errors import ConfigError
from gateway.sign.font import SealFont

__all__ = [
    "BODY_FONT_SIZE",
    "MIN_FONT_SIZE",
    "Rect",
    "TextBlock",
    "fallback_seal_rect",
    "layout_text",
    "load_seal_image",
    "mm",
    "seal_rect",
    "seal_style",
    "text_style",
]

BODY_FONT_SIZE = 10
"""Appendix I: size 10."""
MIN_FONT_SIZE = 8
"""The smallest size a line is shrunk to before it is wrapped instead (still legible in print)."""

_LEADING = 1.2  # line height / font size: Times-metric fonts are set at 120 % by convention
_PAD = 2  # points between the text and its box, left and right
_DESCENT = 3  # points below the last baseline, so descenders stay inside the appearance's BBox
_TOP_GAP_MM = 5.0  # off the sheet's edge, where printers cannot print
_RIGHT_MARGIN_MM = 15.0  # Decree 30: right margin 15-20 mm, so no content lies right of it
_FALLBACK_MARGIN_MM = 20.0  # bottom and right margins of the fallback seal position


def mm(value: float) -> float:
    """Millimetres to PDF points (1/72 inch)."""
    return value * 72.0 / 25.4


@dataclass(frozen=True)
class Rect:
    """A rectangle in PDF user space, normalised so that ``x1 <= x2`` and ``y1 <= y2``."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        x1, x2 = sorted((self.x1, self.x2))
        y1, y2 = sorted((self.y1, self.y2))
        object.__setattr__(self, "x1", x1)
        object.__setattr__(self, "x2", x2)
        object.__setattr__(self, "y1", y1)
        object.__setattr__(self, "y2", y2)

    @classmethod
    def from_pdf(cls, array: Sequence[object]) -> Rect:
        """From a PDF rectangle array ``[x1 y1 x2 y2]``.

        Raises:
            ValueError: not four numbers.
        """
        if len(array) != 4:
            raise ValueError(f"a PDF rectangle has four numbers, not {len(array)}")
        x1, y1, x2, y2 = (float(v) for v in array)  # type: ignore[arg-type]
        return cls(x1, y1, x2, y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def empty(self) -> bool:
        """Zero area: an invisible signature's widget."""
        return self.width <= 0 or self.height <= 0

    def overlap_width(self, other: Rect) -> float:
        """Width of the horizontal overlap with ``other`` (0 when apart)."""
        return max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))

    def shifted_inside(self, page: Rect) -> Rect:
        """The same size, moved the least distance so that it lies on ``page`` (when it fits)."""
        dx = max(0.0, page.x1 - self.x1) - max(0.0, self.x2 - page.x2)
        dy = max(0.0, page.y1 - self.y1) - max(0.0, self.y2 - page.y2)
        return Rect(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)

    def as_box(self) -> tuple[float, float, float, float]:
        """``(x1, y1, x2, y2)`` rounded to 1/100 point, for a field's /Rect."""
        return (round(self.x1, 2), round(self.y1, 2), round(self.x2, 2), round(self.y2, 2))


def seal_rect(widget: Rect, page: Rect, width: float, height: float) -> Rect:
    """Where the seal goes over the person's signature widget (Appendix I, box 8).

    Args:
        widget: the person's signature widget.
        page: the page's visible box (CropBox, else MediaBox).
        width: the seal's real width in points.
        height: the seal's real height in points.

    Returns:
        A ``width`` x ``height`` rectangle whose right edge lies a third of the way into the
        widget (so it covers the widget's left third), vertically centred on it, then shifted
        onto the page if it would stick out.
    """
    overlap = min(widget.width / 3.0, width)
    right = widget.x1 + overlap
    middle = (widget.y1 + widget.y2) / 2.0
    return Rect(right - width, middle - height / 2.0, right, middle + height / 2.0).shifted_inside(page)


def fallback_seal_rect(page: Rect, width: float, height: float) -> Rect:
    """The seal's position when the person's signature has no visible widget.

    Decree 30 puts the signature block at the bottom right of the document's last page, so the
    seal goes there: its right edge 20 mm from the page's right edge, its bottom 20 mm above the
    page's bottom edge (the largest right margin and the smallest bottom margin).
    """
    right, bottom = page.x2 - mm(_FALLBACK_MARGIN_MM), page.y1 + mm(_FALLBACK_MARGIN_MM)
    return Rect(right - width, bottom, right, bottom + height).shifted_inside(page)


@dataclass(frozen=True)
class TextBlock:
    """The text of an attachment or copy signature, laid out on page 1."""

    lines: tuple[str, ...]
    font_size: int
    leading: int
    rect: Rect
    """The signature widget: exactly the text plus its padding."""


def _wrap(line: str, font: SealFont, size: int, room: float) -> list[str]:
    """Greedy word wrap; a single word wider than ``room`` stays whole (it may stick out left)."""
    out: list[str] = []
    current = ""
    for word in line.split():
        candidate = f"{current} {word}" if current else word
        if current and font.width(candidate, size) > room:
            out.append(current)
            current = word
        else:
            current = candidate
    out.append(current)
    return out


def layout_text(lines: Sequence[str], font: SealFont, page: Rect) -> TextBlock:
    """Lay out the attachment/copy text at the top right of page 1 (Appendix I).

    Placement: the block's right edge sits 15 mm from the page's right edge (Decree 30's smallest
    right margin: no page content lies right of it) and its top 5 mm below the page's top edge;
    it grows downwards. Three lines at 10 pt end about 19 mm below the top edge, inside the
    top margin (20-25 mm), so the text covers no page content. Only the page boxes are looked
    at, never the page's content: a document that ignores Decree 30's margins may be overlapped.

    Size: 10 pt. The lines may use the width from the page's centre line to the right edge's
    margin (the top-right region). Only when a line would not fit is the *whole block* set
    smaller, one point at a time down to ``MIN_FONT_SIZE`` (8 pt); if a line still does not fit
    at 8 pt it is wrapped at spaces instead (a very long organisation name), and the block then
    reaches further down than the top margin, which cannot be avoided.

    Args:
        lines: the text, one entry per line, top to bottom.
        font: the embedded font, for measuring.
        page: page 1's visible box.

    Returns:
        The lines as they will be painted, the size, the leading and the widget rectangle.
    """
    right = page.x2 - mm(_RIGHT_MARGIN_MM)
    room = right - (page.x1 + page.width / 2.0) - 2 * _PAD
    chosen = [line.strip() for line in lines]
    size = BODY_FONT_SIZE
    while size > MIN_FONT_SIZE and max(font.width(line, size) for line in chosen) > room:
        size -= 1
    if max(font.width(line, size) for line in chosen) > room:
        chosen = [part for line in chosen for part in _wrap(line, font, size, room)]
    leading = round(size * _LEADING)
    width = max(font.width(line, size) for line in chosen) + 2 * _PAD
    height = leading * len(chosen) + _DESCENT
    top = page.y2 - mm(_TOP_GAP_MM)
    rect = Rect(right - width, top - height, right, top).shifted_inside(page)
    return TextBlock(tuple(chosen), size, leading, rect)


def text_style(block: TextBlock, font: SealFont) -> tuple[TextStampStyle, dict[str, str]]:
    """The pyHanko stamp style painting ``block`` (black, upright, no border, no scaling).

    Args:
        block: the laid-out text.
        font: the embedded font.

    Returns:
        The style and its text parameters (pyHanko interpolates ``%(name)s``; passing the lines
        as parameters keeps a ``%`` in an organisation name literal).
    """
    params = {f"line{i}": line for i, line in enumerate(block.lines)}
    flush = Margins(left=_PAD, right=_PAD, top=0, bottom=_DESCENT)
    style = TextStampStyle(
        border_width=0,
        stamp_text="\n".join(f"%(line{i})s" for i in range(len(block.lines))),
        text_box_style=TextBoxStyle(
            font=font.factory(block.font_size),
            font_size=block.font_size,
            leading=block.leading,
            text_color=(0.0, 0.0, 0.0),
            box_layout_rule=SimpleBoxLayoutRule(
                x_align=AxisAlignment.ALIGN_MIN,
                y_align=AxisAlignment.ALIGN_MIN,
                inner_content_scaling=InnerScaling.NO_SCALING,
            ),
        ),
        inner_content_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MAX,
            y_align=AxisAlignment.ALIGN_MIN,
            margins=flush,
            inner_content_scaling=InnerScaling.NO_SCALING,
        ),
    )
    return style, params


def load_seal_image(path: Path) -> Image.Image:
    """Read the seal PNG once, as RGBA.

    Raises:
        ConfigError: unreadable, not an image, or without any transparent pixel (an opaque seal
            would hide the person's signature it must only overlap).
    """
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGBA")
    except OSError as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise ConfigError("the seal image is not an image Pillow can read", path=path) from None
        raise ConfigError(f"cannot read the seal image ({exc.strerror or exc})", path=path) from None
    low, _high = image.getchannel("A").getextrema()  # an "L" channel: two ints
    if low == 255:
        raise ConfigError(
            "the seal image has no transparency", path=path, hint="use a PNG with a transparent background"
        )
    return image


def seal_style(image: Image.Image) -> StaticStampStyle:
    """The stamp style of the main document's seal: the image filling the widget, opaque, no border."""
    return StaticStampStyle(
        border_width=0,
        background=PdfImage(image),
        background_opacity=1.0,
        background_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID,
            y_align=AxisAlignment.ALIGN_MID,
            inner_content_scaling=InnerScaling.STRETCH_FILL,
        ),
    )
