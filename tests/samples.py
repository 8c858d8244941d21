"""Real-shaped packages for tests: the VNPT SDK's samples, as committed under tests/data/edxml/sdk."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from gateway.edxml.xmlsafe import parse_untrusted

__all__ = ["SDK", "sdk_sample", "unsigned_package"]

SDK = Path(__file__).resolve().parent / "data" / "edxml" / "sdk"


def sdk_sample(name: str) -> bytes:
    """The bytes of one SDK sample (``edoc_new.edxml``, ``status_rejection_02.edxml``...)."""
    return (SDK / name).read_bytes()


def unsigned_package() -> bytes:
    """The SDK-generated new-document package without its placeholder signature."""
    root = parse_untrusted(sdk_sample("edoc_new.edxml"))
    for signature in [e for e in root.iter() if isinstance(e.tag, str) and e.tag.endswith("}Signature")]:
        parent = signature.getparent()
        assert parent is not None
        previous = signature.getprevious()
        if previous is not None:
            previous.tail = signature.tail
        parent.remove(signature)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
