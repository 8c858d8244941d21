"""Namespaces and fixed names of the edXML wire format (spec/edxml.md §1.1, §1.6, §4.1).

The parser matches on *local* names and accepts any namespace in ``READ_NAMESPACES``;
the builder writes only ``QCVN_NS`` (and ``DSIG_NS`` for the envelope signature).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DSIG_NS",
    "LEGACY_NS",
    "QCVN_NS",
    "READ_NAMESPACES",
    "SDK_PLACEHOLDER_SIGNATURE_VALUES",
    "XLINK_NS",
    "local_name",
    "namespace_of",
]

QCVN_NS: Final = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
"""QCVN 102:2016/BTTTT namespace; the root declares it as default, the envelope as ``edXML:``."""

LEGACY_NS: Final = "http://www.e-doc.vn/Schema/"
"""Pre-2016 ``e-doc.vn`` schema still spoken by a few legacy peers."""

DSIG_NS: Final = "http://www.w3.org/2000/09/xmldsig#"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"

READ_NAMESPACES: Final[frozenset[str | None]] = frozenset({QCVN_NS, LEGACY_NS, None})
"""Namespaces the tolerant parser accepts for edXML elements (``None`` = no namespace)."""

SDK_PLACEHOLDER_SIGNATURE_VALUES: Final[frozenset[str]] = frozenset(
    {
        # The VNPT EdXML102 SDK copies this SignatureValue verbatim into every package it
        # writes (spec/edxml.md §4.1); it signs nothing. Prefix match: some copies are cut.
        "GbVb8n9+qFxz466Ag0sbpVdLPs2R0+9JBekp12UyarAZjoG0W/kPZZJ1auRZDcNcrSwzgkQMpqrjwxcy3ejzbY/ON5US",
    }
)


def namespace_of(tag: str) -> str | None:
    """Namespace URI of a Clark-notation tag (``{ns}local``), or ``None``."""
    if tag.startswith("{"):
        return tag[1 : tag.index("}")]
    return None


def local_name(tag: str) -> str:
    """Local part of a Clark-notation tag."""
    if tag.startswith("{"):
        return tag[tag.index("}") + 1 :]
    return tag
