"""The envelope signature: an enveloped XMLDSig over the whole edXML document (spec §4.1).

What we write (and what ``gateway.verify.xmldsig`` expects back):

* exactly one ``ds:Signature`` in the XMLDSig namespace, the last child of ``edXMLHeader``
  (where the SDK puts its placeholder), never anywhere else;
* one ``Reference URI=""`` with the transforms *enveloped-signature* then exclusive C14N: the
  whole document is signed, attachments included, minus the signature itself;
* rsa-sha256 / sha256 by default; rsa-sha1 only when configured for a legacy peer;
* ``KeyInfo/X509Data`` with the signer's certificate first, then its intermediates.

The input is our own freshly built package; we parse it with the hardened parser anyway
(nothing is trusted by origin) and never re-indent or edit it beyond inserting the signature.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from gateway.edxml.names import DSIG_NS, local_name
from gateway.edxml.xmlsafe import XMLLimits, XMLRejected, make_parser, parse_untrusted
from gateway.errors import PermanentError
from gateway.sign.keys import OrganisationKey

__all__ = ["ALGORITHMS", "EnvelopeSigningError", "SignatureAlgorithm", "sign_envelope"]

SignatureAlgorithm = Literal["rsa-sha256", "rsa-sha384", "rsa-sha512", "rsa-sha1"]

ALGORITHMS: dict[str, tuple[SignatureMethod, DigestAlgorithm]] = {
    "rsa-sha256": (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA256),
    "rsa-sha384": (SignatureMethod.RSA_SHA384, DigestAlgorithm.SHA384),
    "rsa-sha512": (SignatureMethod.RSA_SHA512, DigestAlgorithm.SHA512),
    "rsa-sha1": (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1),
}


class EnvelopeSigningError(PermanentError):
    """The package cannot be signed as it stands (not an edXML package, already signed...)."""


class _Signer(XMLSigner):
    """signxml's signer, allowing SHA-1 only when the caller chose it for a legacy peer."""

    def __init__(self, algorithm: str) -> None:
        method, digest = ALGORITHMS[algorithm]
        self._legacy_sha1 = algorithm == "rsa-sha1"
        super().__init__(
            signature_algorithm=method,
            digest_algorithm=digest,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        # signxml re-parses serialised fragments with a parser of its own that lacks
        # huge_tree, which fails on base64 attachments over 10 MB. Ours is the hardened one;
        # the text it sees here is our own serialisation of a tree that passed the pre-scan.
        self._parser = make_parser()  # type: ignore[assignment]  # signxml types it as None

    def check_deprecated_methods(self) -> None:
        if not self._legacy_sha1:
            super().check_deprecated_methods()  # type: ignore[no-untyped-call]


def _header_of(root: etree._Element) -> etree._Element:
    if local_name(root.tag) != "edXML":
        raise EnvelopeSigningError(f"not an edXML package: the root element is <{local_name(root.tag)}>")
    envelopes = [e for e in root if isinstance(e.tag, str) and local_name(e.tag) == "edXMLEnvelope"]
    headers = [h for e in envelopes for h in e if isinstance(h.tag, str) and local_name(h.tag) == "edXMLHeader"]
    if len(headers) != 1:
        raise EnvelopeSigningError(f"expected one edXMLEnvelope/edXMLHeader, found {len(headers)}")
    if any(isinstance(e.tag, str) and local_name(e.tag) == "Signature" for e in root.iter()):
        raise EnvelopeSigningError("the package already carries a Signature; sign an unsigned package")
    return headers[0]


def sign_envelope(
    package: bytes,
    key: OrganisationKey,
    *,
    algorithm: SignatureAlgorithm = "rsa-sha256",
    limits: XMLLimits | None = None,
) -> bytes:
    """Sign an unsigned edXML package with an enveloped XMLDSig.

    Args:
        package: the package bytes as built by ``gateway.edxml.build``.
        key: the organisation's key (PKCS#12 or PKCS#11) with its certificate chain.
        algorithm: signature algorithm; ``rsa-sha1`` only for a legacy peer that needs it.
        limits: parser limits (defaults suit any package we build).

    Returns:
        The signed package: the input document with the ``Signature`` inserted.

    Raises:
        EnvelopeSigningError: the bytes are not an unsigned edXML package.
    """
    try:
        root = parse_untrusted(package, limits or XMLLimits(max_bytes=max(len(package), 1)))
    except XMLRejected as exc:
        raise EnvelopeSigningError(f"cannot sign: {exc}") from None
    header = _header_of(root)
    placeholder = etree.SubElement(header, f"{{{DSIG_NS}}}Signature", nsmap={"ds": DSIG_NS})
    placeholder.set("Id", "placeholder")
    # Keep the header's indentation tidy: the signature goes where the SDK puts it.
    if len(header) > 1:
        previous = header[-2]
        placeholder.tail, previous.tail = previous.tail, header.text
    certs = [key.certificate, *key.chain]
    signed = _Signer(algorithm).sign(
        root,
        # signxml only calls key.sign(...) and reads key.key_size, so a token-backed key that
        # never leaves its PKCS#11 token works as well as a cryptography key.
        key=cast(Any, key.xml_key()),
        cert=[c.public_bytes(Encoding.PEM).decode() for c in certs],
        always_add_key_value=False,
    )
    return etree.tostring(signed.getroottree(), xml_declaration=True, encoding="UTF-8")
