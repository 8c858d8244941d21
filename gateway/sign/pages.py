"""What the sealer reads from the document's pages: signature widgets, page boxes, scan quality.

All functions take a pyHanko ``PdfFileReader`` of the document as received (the revision the
organisation signs on top of) and only read: nothing here changes a byte. They are CPU work on
untrusted structure, so the sealer calls them in a worker thread (HOUSE.md rule 4).

Scan quality (Decree 30 Appendix I for paper-to-electronic copies, G2.9): PDF 1.4 or later,
colour, at least 200 dpi at 100 % scale. A page counts as a scan when it draws a raster image;
its resolution is the largest image's pixels over the page's size in inches, whichever way round
the image lies — a scanner's page image fills its page. Pages without images (a copy made from
an electronic original) are not judged.
"""

# pyHanko's PDF object model (generic.*, the readers) is not annotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.rw_common import find_inherited_value_in_tree
from pyhanko.sign.fields import enumerate_sig_fields

from gateway.sign.appearance import Rect

__all__ = ["MIN_SCAN_DPI", "MIN_SCAN_VERSION", "Widget", "find_widget", "page_box", "page_count", "scan_problems"]

MIN_SCAN_DPI = 200
MIN_SCAN_VERSION = (1, 4)

_HIDDEN = 2 | 32  # annotation flags Hidden and NoView: not shown on screen
_GREY = {"/DeviceGray", "/CalGray", "/Separation"}  # one component (a Separation is one ink)
_COLOUR = {"/DeviceRGB", "/DeviceCMYK", "/CalRGB", "/Lab", "/DeviceN"}


@dataclass(frozen=True)
class Widget:
    """A signature field's visible widget annotation."""

    field_name: str
    page: int
    """0-based page index."""
    rect: Rect


def page_count(reader: PdfFileReader) -> int:
    """Number of pages in the page tree."""
    return int(reader.root["/Pages"]["/Count"])


def page_box(reader: PdfFileReader, index: int) -> Rect:
    """The visible box of page ``index`` (0-based): its CropBox, else its MediaBox (both inheritable).

    Raises:
        ValueError: the page has neither box.
    """
    page = reader.find_page_for_modification(index)[0].get_object()
    for key in ("/CropBox", "/MediaBox"):
        value = find_inherited_value_in_tree(page, key, "/Parent")
        if value is not None:
            return Rect.from_pdf(list(value))
    raise ValueError(f"page {index + 1} has no MediaBox")


def _page_index(reader: PdfFileReader, annot_ref: generic.IndirectObject, annot: generic.DictionaryObject) -> int:
    """The page showing an annotation: its /P when that page lists it, else the page that lists it."""
    refs = [reader.find_page_for_modification(i)[0] for i in range(page_count(reader))]
    listing = [i for i, ref in enumerate(refs) if annot_ref in list(ref.get_object().get("/Annots", []))]
    claimed = annot.raw_get("/P") if "/P" in annot else None
    if isinstance(claimed, generic.IndirectObject):
        for i in listing:
            if refs[i].reference == claimed.reference:
                return i
    if not listing:
        raise ValueError("the signature widget is on no page")
    return listing[0]


def find_widget(reader: PdfFileReader, field_name: str) -> Widget | None:
    """The visible widget of the signature field ``field_name``.

    Args:
        reader: the document.
        field_name: the field's fully qualified name (as ``SignatureFacts.field_name`` gives it).

    Returns:
        The widget's page and rectangle; ``None`` when the field does not exist or has no visible
        widget (zero-area /Rect, hidden, or on no page: an invisible signature).
    """
    for name, _value, field_ref in enumerate_sig_fields(reader, with_name=field_name):
        if name != field_name:
            continue
        field = field_ref.get_object()
        if "/Kids" in field:
            candidates = [kid for kid in field["/Kids"] if isinstance(kid, generic.IndirectObject)]
        else:
            candidates = [field_ref]  # field and widget combined in one dictionary
        for ref in candidates:
            annot = ref.get_object()
            try:
                rect = Rect.from_pdf(list(annot["/Rect"]))
                if rect.empty or int(annot.get("/F", 0)) & _HIDDEN:
                    continue
                return Widget(field_name, _page_index(reader, ref, annot), rect)
            except (KeyError, TypeError, ValueError):
                continue  # a malformed widget is as good as none
    return None


def _components(space: Any, named: Any, depth: int = 0) -> str | None:
    """``grey``, ``colour`` or ``None`` (cannot tell) for an image colour space."""
    if depth > 4:
        return None
    space = space.get_object() if isinstance(space, generic.IndirectObject) else space
    if isinstance(space, generic.NameObject):
        if space in _GREY:
            return "grey"
        if space in _COLOUR:
            return "colour"
        if isinstance(named, generic.DictionaryObject) and space in named:
            return _components(named[space], named, depth + 1)
        return None
    if isinstance(space, generic.ArrayObject) and space:
        family = space[0]
        if family == "/ICCBased":
            channels = int(space[1].get_object().get("/N", 3))
            return "grey" if channels == 1 else "colour"
        if family == "/Indexed" and len(space) > 1:
            return _components(space[1], named, depth + 1)
        return _components(family, named, depth + 1)
    return None


def _largest_image(resources: Any) -> generic.DictionaryObject | None:
    """The page's largest image XObject (directly in its resources), or ``None``."""
    resources = resources.get_object() if isinstance(resources, generic.IndirectObject) else resources
    if not isinstance(resources, generic.DictionaryObject):
        return None
    xobjects = resources.get("/XObject")
    if not isinstance(xobjects, generic.DictionaryObject):
        return None
    images = [x.get_object() for x in xobjects.values()]
    images = [x for x in images if isinstance(x, generic.StreamObject) and x.get("/Subtype") == "/Image"]
    return max(images, key=lambda x: int(x.get("/Width", 0)) * int(x.get("/Height", 0)), default=None)


def scan_problems(reader: PdfFileReader, *, min_dpi: int = MIN_SCAN_DPI) -> list[str]:
    """Why a scanned copy falls below Decree 30's floor (see the module docstring).

    Args:
        reader: the copy.
        min_dpi: the resolution floor.

    Returns:
        English phrases, empty when the copy passes.
    """
    problems: list[str] = []
    version = reader.input_version
    if tuple(version) < MIN_SCAN_VERSION:
        problems.append(f"PDF {version[0]}.{version[1]} (< {MIN_SCAN_VERSION[0]}.{MIN_SCAN_VERSION[1]})")
    for index in range(page_count(reader)):
        _ref, resources = reader.find_page_for_modification(index)
        image = _largest_image(resources)
        if image is None:
            continue
        box = page_box(reader, index)
        width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
        inches_w, inches_h = box.width / 72.0, box.height / 72.0
        dpi = max(min(width / inches_w, height / inches_h), min(width / inches_h, height / inches_w))
        if dpi < min_dpi * 0.99:  # 1 %: page sizes in points are rounded (A4 is 595.28 x 841.89)
            problems.append(f"page {index + 1} is scanned at {dpi:.0f} dpi (< {min_dpi})")
        named = resources.get("/ColorSpace") if isinstance(resources, generic.DictionaryObject) else None
        mask = bool(image.get("/ImageMask", False))
        kind = "grey" if mask else _components(image.get("/ColorSpace"), named)
        if kind == "grey" or int(image.get("/BitsPerComponent", 8)) == 1:
            problems.append(f"page {index + 1} is scanned in black and white or grey, not colour")
    return problems
