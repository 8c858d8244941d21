"""The font of text signatures: Times New Roman metrics, Vietnamese letters, embedded (Appendix I).

``SealFont`` loads the configured font once per process (Liberation Serif by default, from
Debian's fonts-liberation2: metric-compatible with Times New Roman, full Vietnamese), measures
text with HarfBuzz exactly as pyHanko's OpenType engine will lay it out (so a measured line is a
painted line), and hands pyHanko a font engine factory that embeds a subset of it in each
document.
"""

from __future__ import annotations

import functools
from io import BytesIO
from pathlib import Path

import uharfbuzz as hb  # type: ignore[import-untyped]  # pyHanko's own shaper; ships no stubs
from fontTools import subset, ttLib  # type: ignore[import-untyped]  # pyHanko's font tools; no stubs
from fontTools.ttLib.scaleUpem import scale_upem  # type: ignore[import-untyped]
from pyhanko.pdf_utils.font.api import FontEngineFactory
from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from gateway.errors import ConfigError

__all__ = ["SealFont"]

_VIETNAMESE_PROBE = "ẠẶỆỰỮđĐơƯỳỹ"  # letters a Latin-1 font lacks: proves Vietnamese coverage
_PDF_UNITS = 1000  # glyph space units per em that PDF widths and TJ adjustments are read in
_REPERTOIRE = [
    code
    for first, last in (
        (0x0020, 0x007E),  # Basic Latin
        (0x00A0, 0x024F),  # Latin-1 Supplement, Latin Extended-A and -B (Đ đ Ơ ơ Ư ư)
        (0x0300, 0x036F),  # combining diacritics (text typed decomposed)
        (0x1E00, 0x1EFF),  # Latin Extended Additional: the precomposed Vietnamese letters
        (0x2000, 0x206F),  # General Punctuation (dashes, quotes)
        (0x20A0, 0x20BF),  # currency signs (₫)
        (0x2116, 0x2116),  # numero sign
    )
    for code in range(first, last + 1)
]


class SealFont:
    """The embedded text font (Liberation Serif by default: Times New Roman metrics), prepared once.

    Two preparations, both once per font and process (about 0.8 s), both to the font's benefit:

    * **1000 units per em.** pyHanko's OpenType engine writes glyph widths (/W), kerning (TJ) and
      the font descriptor in the font's own units, which PDF reads as 1/1000 em: right only for
      fonts of 1000 units per em. TrueType fonts usually have 2048 (Liberation Serif does), and
      their text would be set with every advance 2.048 times too wide. Such a font is rescaled
      (fontTools ``scale_upem``).
    * **The Latin and Vietnamese repertoire only** (``_REPERTOIRE``), unhinted: pyHanko subsets
      the font again for every document, and a 1 000-glyph font subsets about three times faster
      than the full 2 600 (13 ms instead of 36 ms per document). Hinting would no longer match
      the rescaled outlines; PDF viewers render unhinted outlines well at these sizes. Text
      outside the repertoire is refused (``missing``), never painted as empty boxes.

    Args:
        path: a TrueType/OpenType file.

    Raises:
        ConfigError: the file cannot be read, is not a font, or lacks Vietnamese letters.
    """

    def __init__(self, path: Path) -> None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the signature font ({exc.strerror or exc})", path=path) from None
        face = hb.Face(raw)
        if face.glyph_count == 0:  # HarfBuzz reads anything; a non-font has no glyphs
            raise ConfigError("not a TrueType/OpenType font", path=path)
        missing = [c for c in _VIETNAMESE_PROBE if hb.Font(face).get_nominal_glyph(ord(c)) is None]
        if missing:
            raise ConfigError(
                f"the signature font lacks Vietnamese letters ({''.join(missing)})",
                path=path,
                hint="use Liberation Serif (Debian fonts-liberation2) or another Times-metric font with Vietnamese",
            )
        try:
            self._data = _prepared(raw)
        except (ttLib.TTLibError, KeyError, ValueError, AssertionError) as exc:
            raise ConfigError(f"cannot prepare the signature font for embedding ({exc})", path=path) from None
        self.path = path
        self._hb_font = hb.Font(hb.Face(self._data))

    def missing(self, text: str) -> str:
        """The characters of ``text`` the prepared font has no glyph for (empty when all are there)."""
        return "".join(dict.fromkeys(c for c in text if self._hb_font.get_nominal_glyph(ord(c)) is None))

    def width(self, text: str, size: float) -> float:
        """Advance width of ``text`` at ``size`` points, shaped as pyHanko will shape it."""
        if not text:
            return 0.0
        buffer = hb.Buffer()
        buffer.add_str(text)
        buffer.guess_segment_properties()
        hb.shape(self._hb_font, buffer)
        advance: int = sum(p.x_advance for p in buffer.glyph_positions)
        return advance * size / _PDF_UNITS

    def factory(self, size: int) -> FontEngineFactory:
        """A pyHanko font engine factory for ``size`` points, embedding a subset of this font."""
        return _MemoryFontFactory(self._data, size)


@functools.lru_cache(maxsize=4)
def _prepared(data: bytes) -> bytes:
    """The font at 1000 units per em, cut to ``_REPERTOIRE``, unhinted (memoised per font)."""
    font = ttLib.TTFont(BytesIO(data))
    if font["head"].unitsPerEm != _PDF_UNITS:
        scale_upem(font, _PDF_UNITS)
    options = subset.Options()
    options.layout_features = ["*"]  # kerning and the combining-mark positioning Vietnamese needs
    options.name_IDs = ["*"]
    options.hinting = False
    options.notdef_outline = True
    # FontForge's timestamp table: useless in a PDF, and pyHanko's per-document subsetting
    # would warn on stderr that it cannot subset it.
    options.drop_tables = [*options.drop_tables, "FFTM"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=_REPERTOIRE)
    subsetter.subset(font)
    out = BytesIO()
    font.save(out)
    return out.getvalue()


class _MemoryFontFactory(FontEngineFactory):
    """pyHanko's ``GlyphAccumulatorFactory`` from bytes already in memory.

    The stock factory opens the font file for every document and never closes it; this one reads
    nothing and leaks nothing.
    """

    def __init__(self, data: bytes, size: int) -> None:
        self._data = data
        self._size = size

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream: object = None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()  # type: ignore[no-untyped-call]
        return GlyphAccumulator(
            writer=writer, font_handle=BytesIO(self._data), font_size=self._size, obj_stream=obj_stream
        )
