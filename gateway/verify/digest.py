"""The enveloped signature's reference digest, streamed: no copy of the document (issue 7, P4).

``gateway.verify.xmldsig`` lets signxml check SignedInfo and the SignatureValue, and digests
the one reference it accepts (``URI=""``, enveloped-signature, C14N 1.0) here, from the
received tree. A tree from ``gateway.edxml.lean.read_lean`` holds markers where its big base64
payloads were: ``_Expanding`` writes each payload's base64 (the received text, byte for byte)
into the digest where its marker comes, so the payloads are digested without being in the tree.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping

from cryptography.hazmat.primitives.hashes import Hash
from lxml import etree
from signxml.algorithms import DigestAlgorithm, digest_algorithm_implementations
from signxml.exceptions import InvalidInput

__all__ = ["enveloped_digest"]


class _EnvelopedDigest:
    """A sink for lxml's canonical form of a whole document that hashes all but the Signature.

    The enveloped-signature transform removes the ``Signature`` element (with its descendants,
    keeping the text around it); what is left is canonicalised and digested. Removing an
    element from the node-set removes exactly its own run of the canonical form and changes no
    other byte, so the digest is the hash of the document's canonical form with that run
    skipped. The run is found by its tags: in a canonical form ``<`` is written only as markup
    (text and attribute values carry ``&lt;``), the document holds exactly one element named
    ``Signature``, comments are not written (``URI=""`` excludes them) and a processing
    instruction inside the Signature is refused before (``enveloped_digest``), so the first
    ``</qname>`` after ``<qname`` closes it.
    """

    def __init__(self, algorithm: DigestAlgorithm, qname: str) -> None:
        self._hash = Hash(digest_algorithm_implementations[algorithm]())
        name = qname.encode("utf-8")
        self._starts = (b"<" + name + b" ", b"<" + name + b">")
        self._end = b"</" + name + b">"
        self._inside: bool | None = False  # False: before; True: inside; None: after
        self._pending = b""

    def write(self, data: bytes) -> int:
        """Take one piece of the canonical form (lxml calls this as it serialises)."""
        if self._inside is None:
            self._hash.update(data)
            return len(data)
        chunk = self._pending + data if self._pending else data
        if not self._inside:
            found = [i for i in (chunk.find(start) for start in self._starts) if i >= 0]
            if not found:
                keep = len(self._starts[0]) - 1
                self._hash.update(chunk[: len(chunk) - keep])
                self._pending = chunk[len(chunk) - keep :]
                return len(data)
            self._hash.update(chunk[: min(found)])
            chunk = chunk[min(found) :]
            self._inside = True
        end = chunk.find(self._end)
        if end < 0:
            self._pending = chunk[len(chunk) - len(self._end) + 1 :]
            return len(data)
        self._inside, self._pending = None, b""
        self._hash.update(chunk[end + len(self._end) :])
        return len(data)

    def digest(self) -> bytes:
        """The digest; the Signature must have been met and closed.

        Raises:
            InvalidInput: the canonical form did not hold the Signature element.
        """
        if self._inside is not None:
            raise InvalidInput("the Signature was not found in the canonical form of the document")
        return self._hash.finalize()


_PIECE = 3 * 1024 * 1024
"""Payload bytes re-encoded per write (a multiple of 3: base64 without padding inside)."""


class _Expanding:
    """Passes the canonical form on with each payload marker replaced by the payload's base64.

    A tree from ``gateway.edxml.lean.read_lean`` holds a marker (unguessable hex digits) where
    the received document held a payload's text, which was canonical one-line base64: that text
    is its own canonical form, and ``b2a_base64`` of the decoded bytes gives it back exactly.
    """

    def __init__(self, sink: _EnvelopedDigest, payloads: Mapping[str, bytes]) -> None:
        self._sink = sink
        self._payloads = {marker.encode("ascii"): data for marker, data in payloads.items()}
        self._pattern = re.compile(b"|".join(re.escape(marker) for marker in self._payloads))
        self._keep = max(len(marker) for marker in self._payloads) - 1
        self._pending = b""

    def write(self, data: bytes) -> int:
        """Take one piece of the canonical form."""
        chunk = self._pending + data if self._pending else data
        at = 0
        for match in self._pattern.finditer(chunk):
            self._sink.write(chunk[at : match.start()])
            payload = memoryview(self._payloads[match.group()])
            for start in range(0, len(payload), _PIECE):
                self._sink.write(binascii.b2a_base64(payload[start : start + _PIECE], newline=False))
            at = match.end()
        keep = max(at, len(chunk) - self._keep)  # may be the start of a marker
        self._sink.write(chunk[at:keep])
        self._pending = chunk[keep:]
        return len(data)

    def flush(self) -> None:
        """The last piece held back."""
        self._sink.write(self._pending)
        self._pending = b""


def enveloped_digest(
    root: etree._Element,
    signature: etree._Element,
    algorithm: DigestAlgorithm,
    *,
    exclusive: bool,
    inclusive_prefixes: list[str] | None = None,
    payloads: Mapping[str, bytes] | None = None,
) -> bytes:
    """The digest of a whole document under the enveloped-signature transform and C14N 1.0.

    libxml2 canonicalises the received tree into ``_EnvelopedDigest`` piece by piece: no copy
    of the document is made (signxml serialises and re-parses it twice and keeps its canonical
    form, about four times a package's size; issue 7, P4).

    Args:
        root: the document's root element (nothing may precede or follow it but white space).
        signature: the one ``Signature`` element, inside ``root``.
        algorithm: the Reference's DigestMethod.
        exclusive: exclusive canonicalisation (``xml-exc-c14n``) instead of inclusive.
        inclusive_prefixes: the exclusive transform's ``InclusiveNamespaces PrefixList``.
        payloads: for a tree from ``gateway.edxml.lean.read_lean``: marker text → payload,
            digested as the base64 text the marker stands for.

    Returns:
        The digest to compare with the Reference's DigestValue.

    Raises:
        InvalidInput: ``root`` is not a document's root, or the Signature holds a processing
            instruction (it would be written into the canonical form and could hide its end).
    """
    if root.getroottree().getroot() is not root:
        raise InvalidInput("the enveloped signature must be checked on the whole document")
    if next(signature.iter(etree.ProcessingInstruction), None) is not None:
        raise InvalidInput("the Signature holds a processing instruction")
    qname = f"{signature.prefix}:Signature" if signature.prefix else "Signature"
    sink = _EnvelopedDigest(algorithm, qname)
    writer = _Expanding(sink, payloads) if payloads else sink
    # lxml-stubs lag behind lxml: write_c14n takes any object with write() and these keywords.
    root.getroottree().write_c14n(  # type: ignore[call-arg]
        writer,  # type: ignore[arg-type]
        exclusive=exclusive,
        with_comments=False,
        inclusive_ns_prefixes=inclusive_prefixes,  # type: ignore[arg-type]
    )
    if isinstance(writer, _Expanding):
        writer.flush()
    return sink.digest()
