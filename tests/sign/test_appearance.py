"""How the organisation's signature looks and where it goes (Decree 30 Appendix I, B4-B6).

Pure geometry first (the seal over the person's widget, the fallback, the text block's place and
size), then the sealed documents as independent tools see them: ``pdftotext -bbox`` for the
attachment and copy text (top right, 10 pt, ISO 8601 +07:00 time, diacritics intact),
``pdffonts`` for the embedded Liberation Serif, and a ``pdftoppm`` rendering for the red seal
drawn where its widget says. Rendered pages are kept in ``tests/artifacts/sign/``.
"""

from __future__ import annotations

import re
import subprocess
from io import BytesIO
from pathlib import Path

import pytest
from fontTools import subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from lxml import etree
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from gateway.devpki import DevPKI
from gateway.errors import ConfigError
from gateway.sign.appearance import (
    MIN_FONT_SIZE,
    Rect,
    fallback_seal_rect,
    layout_text,
    load_seal_image,
    mm,
    seal_rect,
)
from gateway.sign.font import SealFont
from gateway.sign.pages import find_widget
from gateway.sign.request import SealKind, SealRequest
from tests.external import require
from tests.pdfs import cong_van, run, sign_pdf
from tests.pdfs.documents import PERSON_BOX, PERSON_FIELD
from tests.sign.conftest import ARTIFACTS, ORGANISATION, SEAL_IMAGE, SealedDocs, font_path, seal

A4 = Rect(0, 0, 595.28, 841.89)
PERSON = Rect(*PERSON_BOX)
SEAL = mm(36.0)
ISO_VN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00$")


@pytest.fixture(scope="module")
def font() -> SealFont:
    return SealFont(font_path())


def _overlap_share(seal: Rect, person: Rect) -> float:
    return seal.overlap_width(person) / person.width


# ---------------------------------------------------------------------- geometry
def test_the_seal_covers_the_left_third_of_the_persons_widget_at_real_size() -> None:
    seal = seal_rect(PERSON, A4, SEAL, SEAL)
    assert (seal.width, seal.height) == pytest.approx((102.047, 102.047), abs=1e-3)  # 36 mm
    assert _overlap_share(seal, PERSON) == pytest.approx(1 / 3)
    assert seal.x1 < PERSON.x1 < seal.x2 < PERSON.x2  # on the widget's left
    assert (seal.y1 + seal.y2) / 2 == pytest.approx((PERSON.y1 + PERSON.y2) / 2)  # vertically centred


def test_a_seal_narrower_than_a_third_sits_at_the_widgets_left_edge() -> None:
    wide = Rect(100, 100, 500, 160)
    seal = seal_rect(wide, A4, 60, 60)
    assert (seal.x1, seal.x2) == (100, 160)


def test_the_seal_is_shifted_not_shrunk_to_stay_on_the_page() -> None:
    near_the_edge = Rect(10, 5, 130, 45)
    seal = seal_rect(near_the_edge, A4, SEAL, SEAL)
    assert (seal.x1, seal.y1) == (0, 0)
    assert (seal.width, seal.height) == pytest.approx((SEAL, SEAL))


def test_without_a_widget_the_seal_goes_to_the_bottom_right() -> None:
    seal = fallback_seal_rect(A4, SEAL, SEAL)
    assert seal.x2 == pytest.approx(A4.x2 - mm(20))
    assert seal.y1 == pytest.approx(mm(20))
    assert seal.x1 > A4.width / 2


def test_the_text_block_sits_in_the_top_margin_at_the_right(font: SealFont) -> None:
    block = layout_text(["SAO LỤC", "Ủy ban nhân dân tỉnh Test", "2025-03-14T09:05:07+07:00"], font, A4)
    assert block.font_size == 10
    assert block.rect.x2 == pytest.approx(A4.x2 - mm(15))
    assert block.rect.y2 == pytest.approx(A4.y2 - mm(5))
    assert block.rect.y1 >= A4.y2 - mm(20)  # inside Decree 30's smallest top margin
    assert block.rect.x1 > A4.width / 2


def test_long_lines_shrink_the_block_then_wrap_at_the_minimum(font: SealFont) -> None:
    time = "2025-03-14T09:05:07+07:00"
    long_name = "Văn phòng Đoàn đại biểu Quốc hội và Hội đồng nhân dân tỉnh Test"  # 270 pt at 10 pt
    block = layout_text(["SAO Y", long_name, time], font, A4)
    assert block.font_size == 9  # 243 pt: fits the 251 pt the top-right region leaves
    assert block.lines == ("SAO Y", long_name, time)
    very_long = "Trung tâm Công nghệ thông tin và Truyền thông thuộc Sở Thông tin và Truyền thông tỉnh Test"
    block = layout_text(["SAO Y", very_long, time], font, A4)
    assert block.font_size == MIN_FONT_SIZE
    assert len(block.lines) > 3
    assert " ".join(block.lines[1:-1]) == very_long
    assert block.lines[-1] == time  # the time is last and whole
    assert block.rect.x1 >= A4.width / 2 - 4


def test_the_measured_width_is_the_painted_width(font: SealFont) -> None:
    # Digits are tabular; kerning moves a time's width by a fraction of a point, which the
    # block's 2 pt padding absorbs when the real time replaces the measured sample.
    assert font.width("2025-03-14T09:05:07+07:00", 10) == pytest.approx(
        font.width("2026-11-28T23:59:58+07:00", 10), abs=1.0
    )
    assert 100 < font.width("2025-03-14T09:05:07+07:00", 10) < 125


# ---------------------------------------------------------------------- configuration
def test_a_font_without_vietnamese_letters_is_a_config_error(font: SealFont, tmp_path: Path) -> None:
    latin = TTFont(str(font_path()))
    subsetter = subset.Subsetter()
    subsetter.populate(text="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
    subsetter.subset(latin)
    path = tmp_path / "latin.ttf"
    latin.save(str(path))
    with pytest.raises(ConfigError, match="lacks Vietnamese letters"):
        SealFont(path)
    (tmp_path / "not.ttf").write_bytes(b"no font here")
    with pytest.raises(ConfigError, match="not a TrueType/OpenType font"):
        SealFont(tmp_path / "not.ttf")


def test_the_seal_image_must_be_transparent(tmp_path: Path) -> None:
    image = load_seal_image(SEAL_IMAGE)
    assert image.mode == "RGBA"
    assert SEAL_IMAGE.stat().st_size < 64 * 1024
    opaque = tmp_path / "opaque.png"
    Image.new("RGB", (50, 50), (220, 30, 30)).save(opaque)
    with pytest.raises(ConfigError, match="no transparency"):
        load_seal_image(opaque)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ConfigError, match="not an image"):
        load_seal_image(tmp_path / "text.png")


# ---------------------------------------------------------------------- the sealed documents
Word = tuple[str, float, float, float, float]
"""A word as pdftotext places it: text, xMin, yMin, xMax, yMax (points, y from the top)."""


def _words(pdf: bytes, tmp_path: Path) -> tuple[float, float, list[Word]]:
    """Page 1's size and its words (text, xMin, yMin, xMax, yMax; y from the top) per pdftotext."""
    source = tmp_path / "in.pdf"
    source.write_bytes(pdf)
    result = subprocess.run(
        [require("pdftotext"), "-bbox", "-f", "1", "-l", "1", str(source), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    root = etree.fromstring(result.stdout, etree.XMLParser(resolve_entities=False, no_network=True))
    namespace = {"x": "http://www.w3.org/1999/xhtml"}
    page = root.find(".//x:page", namespace)
    assert page is not None
    words: list[Word] = []
    for word in page.iterfind("x:word", namespace):
        x_min, y_min, x_max, y_max = (float(word.get(k, "0")) for k in ("xMin", "yMin", "xMax", "yMax"))
        words.append((word.text or "", x_min, y_min, x_max, y_max))
    return float(page.get("width", "0")), float(page.get("height", "0")), words


@pytest.mark.parametrize(
    ("document", "expected"),
    [("attachment", ["123/UBND-VP"]), ("copy", ["SAO LỤC", "Ủy ban nhân dân tỉnh Test"])],
)
def test_the_text_signature_is_top_right_10pt_with_the_vietnam_time(
    sealed_docs: SealedDocs, tmp_path: Path, document: str, expected: list[str]
) -> None:
    width, _height, words = _words(getattr(sealed_docs, document), tmp_path)
    ours = [w for w in words if w[1] > width / 2 and w[4] < mm(20)]  # right half, above the top margin
    texts = [w[0] for w in ours]
    # pyHanko tags each line with /ActualText, so pdftotext reports a line as one "word".
    assert texts[:-1] == expected
    assert ISO_VN.match(texts[-1]), texts
    for _text, _x_min, y_min, x_max, y_max in ours:
        assert 9.5 <= y_max - y_min <= 12.5  # 10 pt: Liberation Serif's ascent + descent is 1.107 em
        assert x_max <= width - mm(15) + 0.5  # inside the right margin
    page_text = [w for w in words if w not in ours]
    assert all(w[2] >= mm(20) for w in page_text)  # the document's own text is below the top margin


def test_the_font_is_liberation_serif_embedded(sealed_docs: SealedDocs, tmp_path: Path) -> None:
    for name in ("attachment", "copy"):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(getattr(sealed_docs, name))
        listing = subprocess.run(
            [require("pdffonts"), str(path)], capture_output=True, text=True, check=True, timeout=60
        ).stdout
        (line,) = [line for line in listing.splitlines() if "LiberationSerif" in line]
        assert re.search(r"CID TrueType\s+Identity-H\s+yes\s+yes\s+yes", line), line  # embedded, subset, ToUnicode


def test_the_seal_widget_overlaps_the_persons_box_on_its_left_at_real_size(sealed_docs: SealedDocs) -> None:
    reader = PdfFileReader(BytesIO(sealed_docs.main))
    seal = reader.embedded_signatures[-1]
    widget = find_widget(reader, seal.field_name)
    person = find_widget(reader, PERSON_FIELD)
    assert widget is not None
    assert person is not None
    assert person.rect == PERSON
    assert widget.page == person.page == 0
    assert 0.25 <= _overlap_share(widget.rect, person.rect) <= 0.45
    assert widget.rect.x1 < person.rect.x1 < widget.rect.x2  # on the left
    assert (widget.rect.width, widget.rect.height) == pytest.approx((SEAL, SEAL), abs=0.02)


def test_the_red_seal_is_drawn_in_its_box(sealed_docs: SealedDocs) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source = ARTIFACTS / "sealed-main.pdf"
    source.write_bytes(sealed_docs.main)
    prefix = ARTIFACTS / "sealed-main-page"
    subprocess.run(
        [require("pdftoppm"), "-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", str(source), str(prefix)],
        check=True,
        timeout=60,
    )
    page = Image.open(prefix.with_suffix(".png")).convert("RGB")
    reader = PdfFileReader(BytesIO(sealed_docs.main))
    widget = find_widget(reader, reader.embedded_signatures[-1].field_name)
    assert widget is not None
    scale = 100 / 72  # -r 100: pixels per point

    def red_share(rect: Rect) -> float:
        box = (rect.x1 * scale, page.height - rect.y2 * scale, rect.x2 * scale, page.height - rect.y1 * scale)
        crop = page.crop(box)
        pixels = [crop.getpixel((x, y)) for x in range(crop.width) for y in range(crop.height)]
        red = sum(1 for p in pixels if isinstance(p, tuple) and p[0] > 150 and p[1] < 110 and p[2] < 110)
        return red / len(pixels)

    assert red_share(widget.rect) > 0.05  # the ring, the star, the letters
    assert red_share(Rect(60, 600, 160, 700)) == 0  # nothing red elsewhere (the letter's body)


def test_an_invisible_person_signature_puts_the_seal_at_the_fallback(dev_pki: DevPKI) -> None:
    person_signed = run(sign_pdf(cong_van(), pki=dev_pki, signer_label="person", field_name="NguoiKyAn"))
    assert find_widget(PdfFileReader(BytesIO(person_signed)), "NguoiKyAn") is None  # invisible
    sealed = seal(dev_pki, person_signed, SealRequest(SealKind.MAIN, ORGANISATION))
    reader = PdfFileReader(BytesIO(sealed))
    widget = find_widget(reader, reader.embedded_signatures[-1].field_name)
    assert widget is not None
    page = Rect(0, 0, 595, 842)  # the letter's MediaBox; one page, so the last page is page 1
    assert widget.page == 0
    assert widget.rect.as_box() == pytest.approx(fallback_seal_rect(page, SEAL, SEAL).as_box(), abs=0.01)
    assert widget.rect.x2 == pytest.approx(595 - mm(20), abs=0.01)


def test_an_unsigned_letter_has_its_persons_widget_where_the_factory_put_it() -> None:
    widget = find_widget(PdfFileReader(BytesIO(cong_van())), PERSON_FIELD)
    assert widget is not None
    assert (widget.page, widget.rect) == (0, PERSON)
    assert find_widget(PdfFileReader(BytesIO(cong_van())), "NoSuchField") is None
