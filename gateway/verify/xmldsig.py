"""Checking the envelope signature of an edXML package (spec §4.1; HOUSE.md rule 11).

The result is a value: ``absent``, ``placeholder``, ``invalid`` or ``valid``, with the reason,
the algorithms and the signer's certificate. Certificate *trust* (path to a pinned anchor,
revocation) is judged elsewhere; here we only answer "does this signature, made with the key
of this certificate, cover this document exactly?".

What "valid" requires, beyond the cryptography, to stop signature-wrapping attacks:

1. exactly one ``Signature`` element in the whole document;
2. it sits where the format puts it: the last element child of ``edXML/edXMLEnvelope/
   edXMLHeader`` (a moved signature is invalid);
3. it is in the XMLDSig namespace (the SDK's placeholder is not; a real peer's must be);
4. ``SignedInfo`` holds exactly one ``Reference`` and its ``URI`` is ``""``: the whole
   document. A reference to an ``Id`` (which could point into an unsigned wrapper) is invalid;
5. the document holds no comment or processing instruction outside the signature: with
   ``URI=""`` XMLDSig strips comments before digesting, so such nodes are not protected and
   could have been added after signing. We refuse to call such a document signed;
6. business fields are read only from what the signature covers (``signed_root``): with 1-5
   and the digest taken over the received tree itself (``enveloped_digest``: its canonical
   form minus the Signature, streamed into the hash), every node of that tree but the
   Signature is covered, so it is the signed tree; no reconstructed copy is needed (a package
   can be tens of MB; issue 7, P4). A Signature holding a processing instruction is invalid.
   A tree from ``gateway.edxml.lean.read_lean`` holds markers for its big base64 payloads; given
   ``payloads``, the digest covers each payload's received text where its marker stands.

``placeholder`` is the SDK's habit of copying a fixed dummy ``SignatureValue`` and a truncated
or stale certificate into every package (spec §4.1): it signs nothing and is reported as such,
not as an attack.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
)
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, VerifyResult, XMLVerifier

from gateway.edxml.names import DSIG_NS, SDK_PLACEHOLDER_SIGNATURE_VALUES, local_name, namespace_of
from gateway.edxml.xmlsafe import make_parser
from gateway.verify.digest import enveloped_digest

__all__ = ["EnvelopeSignature", "SignatureState", "verify_envelope"]

ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_C14N_TRANSFORMS = frozenset(
    {
        "http://www.w3.org/2001/10/xml-exc-c14n#",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
        "http://www.w3.org/2006/12/xml-c14n11",
        "http://www.w3.org/2006/12/xml-c14n11#WithComments",
    }
)


class SignatureState(StrEnum):
    """What the envelope signature amounts to."""

    ABSENT = "absent"
    PLACEHOLDER = "placeholder"
    INVALID = "invalid"
    VALID = "valid"


@dataclass(frozen=True)
class EnvelopeSignature:
    """The outcome of checking the envelope signature."""

    state: SignatureState
    reason: str
    """One English sentence saying why (for logs and reports; clerks get catalogued texts)."""
    signer: x509.Certificate | None = None
    """The certificate whose key verified the signature (``valid`` only)."""
    certificates: tuple[x509.Certificate, ...] = ()
    """Every certificate that decoded from ``KeyInfo``, in document order."""
    signature_method: str | None = None
    digest_method: str | None = None
    signed_root: etree._Element | None = field(default=None, compare=False, repr=False)
    """The tree the signature covers (``valid`` only): the received tree, whose every node but
    the Signature the digest covered (point 6 above); read business fields from here."""

    @property
    def valid(self) -> bool:
        return self.state is SignatureState.VALID


def _elements(parent: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str) and local_name(c.tag) == name]


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    found = _elements(parent, name)
    return found[0] if len(found) == 1 else None


def _text(node: etree._Element) -> str:
    return "".join(str(part) for part in node.itertext())


def _text_of(parent: etree._Element, *path: str) -> str | None:
    node: etree._Element | None = parent
    for name in path:
        node = None if node is None else _child(node, name)
    return None if node is None else _text(node).strip()


def _decode_certificates(signature: etree._Element) -> tuple[list[x509.Certificate], int]:
    """Certificates from ``KeyInfo/X509Data/X509Certificate``, and how many failed to decode."""
    certs: list[x509.Certificate] = []
    broken = 0
    for node in signature.iter():
        if isinstance(node.tag, str) and local_name(node.tag) == "X509Certificate":
            text = "".join(_text(node).split())
            try:
                certs.append(x509.load_der_x509_certificate(base64.b64decode(text, validate=True)))
            except (binascii.Error, ValueError):
                broken += 1
    return certs, broken


def _placeholder_reason(signature: etree._Element, certs: list[x509.Certificate], broken: int) -> str | None:
    value = "".join((_text_of(signature, "SignatureValue") or "").split())
    if not value:
        return "the SignatureValue is empty"
    if any(value.startswith(dummy) for dummy in SDK_PLACEHOLDER_SIGNATURE_VALUES):
        return "the SignatureValue is the fixed dummy value the VNPT SDK copies into every package"
    if broken and not certs:
        return "the certificate in KeyInfo is truncated or not a certificate"
    return None


def _leaf_candidates(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Certificates that issued no other certificate in the list, in document order."""
    issuers = {c.issuer for c in certs if c.issuer != c.subject}
    leaves = [c for c in certs if c.subject not in issuers or c.subject == c.issuer]
    return leaves or certs


def _unsigned_nodes(root: etree._Element, signature: etree._Element) -> str | None:
    inside = set(signature.iter())
    for node in root.getroottree().iter(etree.Comment, etree.ProcessingInstruction):
        if node not in inside:
            kind = "comment" if isinstance(node, etree._Comment) else "processing instruction"
            return f'the document holds a {kind}, which an XMLDSig over URI="" does not protect'
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        kind = "comment" if isinstance(sibling, etree._Comment) else "processing instruction"
        return f"the document holds a {kind} outside the root element, which the signature does not protect"
    return None


def _structure_problem(root: etree._Element, signature: etree._Element) -> str | None:
    header = signature.getparent()
    envelope = None if header is None else header.getparent()
    if (
        header is None
        or envelope is None
        or local_name(header.tag) != "edXMLHeader"
        or local_name(envelope.tag) != "edXMLEnvelope"
        or envelope.getparent() is not root
        or local_name(root.tag) != "edXML"
    ):
        return "the Signature is not in edXML/edXMLEnvelope/edXMLHeader"
    last = [c for c in header if isinstance(c.tag, str)][-1]
    if last is not signature:
        return "the Signature is not the last element of edXMLHeader"
    if namespace_of(signature.tag) != DSIG_NS:
        return "the Signature is not in the XMLDSig namespace, so it cannot be verified"
    signed_info = _child(signature, "SignedInfo")
    references = [] if signed_info is None else _elements(signed_info, "Reference")
    if len(references) != 1:
        return f"SignedInfo must hold exactly one Reference, not {len(references)}"
    uri = references[0].get("URI")
    if uri != "":
        return f'the Reference must cover the whole document (URI=""), not URI={uri!r}'
    transforms_node = _child(references[0], "Transforms")
    transforms = [] if transforms_node is None else _elements(transforms_node, "Transform")
    algorithms = [t.get("Algorithm") for t in transforms]
    if not algorithms or algorithms[0] != ENVELOPED or any(a not in _C14N_TRANSFORMS for a in algorithms[1:]):
        return f"unexpected transforms {algorithms}; expected enveloped-signature then canonicalisation"
    return None


def _algorithm(parent: etree._Element | None, *path: str) -> str | None:
    node = parent
    for name in path:
        node = None if node is None else _child(node, name)
    return None if node is None else node.get("Algorithm")


class _Verifier(XMLVerifier):
    """signxml's verifier without its copies of the whole document.

    ``XMLVerifier.verify`` copies the root it is given (serialise, parse); for a root element
    from our hardened parser that copy is the same tree again, so it is skipped. Its check of
    the reference copies the document twice more and keeps the canonical form and a tree
    parsed from it (``VerifyResult.signed_xml``): together about five times a package's size
    (issue 7, P4). The only reference we accept (``URI=""``, enveloped-signature, at most one
    C14N 1.0 transform: ``_structure_problem``) is instead digested by streaming the received
    tree's canonical form into the hash (``enveloped_digest``). signxml still parses and
    checks SignedInfo, the key and the SignatureValue, and hands us the Reference as signed.
    """

    payloads: Mapping[str, bytes] = {}
    """Marker text → payload, for a tree from ``gateway.edxml.lean`` (the digest re-encodes them)."""

    def get_root(self, data: Any) -> Any:
        if isinstance(data, etree._Element) and data.getparent() is None:
            return data
        return super().get_root(data)  # type: ignore[no-untyped-call]

    def _verify_reference(  # noqa: PLR0917  (signxml calls it positionally)
        self,
        reference: etree._Element,
        index: int,
        root: etree._Element,
        uri_resolver: Any,
        c14n_algorithm: Any,
        signature: etree._Element,
        signature_key_used: Any,
    ) -> VerifyResult:
        del uri_resolver, c14n_algorithm  # URI="" only; the transform names the canonicalisation
        if reference.get("URI") != "":
            raise InvalidInput('the Reference must cover the whole document (URI="")')
        digest_alg = DigestAlgorithm(self._find(reference, "DigestMethod").get("Algorithm"))  # type: ignore[no-untyped-call]
        self.check_digest_alg_expected(digest_alg)  # type: ignore[no-untyped-call]
        transforms_node = self._find(reference, "Transforms", require=False)  # type: ignore[no-untyped-call]
        transforms = [] if transforms_node is None else self._findall(transforms_node, "Transform")  # type: ignore[no-untyped-call]
        algorithms = [t.get("Algorithm") for t in transforms]
        if not algorithms or algorithms[0] != ENVELOPED or len(algorithms) > 2:
            raise InvalidInput(f"unexpected transforms {algorithms}; expected enveloped-signature then one C14N")
        method = CanonicalizationMethod(algorithms[1]) if len(algorithms) == 2 else None
        exclusive = method is not None and method.value.startswith("http://www.w3.org/2001/10/xml-exc-c14n#")
        prefixes = self._get_inclusive_ns_prefixes(transforms[1]) if exclusive else None  # type: ignore[no-untyped-call]
        received = next(e for e in root.iter() if isinstance(e.tag, str) and local_name(e.tag) == "Signature")
        digest = enveloped_digest(
            root, received, digest_alg, exclusive=exclusive, inclusive_prefixes=prefixes, payloads=self.payloads
        )
        if base64.b64decode(self._find(reference, "DigestValue").text or "") != digest:  # type: ignore[no-untyped-call]
            raise InvalidDigest(f"Digest mismatch for reference {index} ({reference.get('URI')})")
        key = signature_key_used
        pem = key if isinstance(key, bytes) else key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        # The signed data is the received tree minus its Signature: no copy of it is made.
        return VerifyResult(b"", root, signature, signature_key=pem)


def _verify_with(
    root: etree._Element, certs: list[x509.Certificate], payloads: Mapping[str, bytes]
) -> tuple[x509.Certificate, VerifyResult] | str:
    """Try each leaf candidate: the signer with signxml's result, or why none verified."""
    signature = next(e for e in root.iter() if isinstance(e.tag, str) and local_name(e.tag) == "Signature")
    header = signature.getparent()
    envelope = None if header is None else header.getparent()
    if header is None or envelope is None:  # excluded by _structure_problem
        return "the Signature has no place in the document"
    config = SignatureConfiguration(
        location=f"./{envelope.tag}/{header.tag}/",
        expect_references=1,
        # Weak algorithms verify here; the policy judges them (algorithm-weak) instead of hiding them.
        signature_methods=frozenset(SignatureMethod),
        digest_algorithms=frozenset(DigestAlgorithm),
    )
    failure = "no certificate in KeyInfo verifies the signature"
    for candidate in _leaf_candidates(certs):
        pem = candidate.public_bytes(Encoding.PEM).decode()
        try:
            # Our hardened parser (huge_tree for big base64 nodes) for signxml's internal re-parses.
            verifier = _Verifier()
            verifier.payloads = payloads
            result = verifier.verify(root, x509_cert=pem, expect_config=config, parser=make_parser())
        except (InvalidSignature, InvalidDigest, InvalidCertificate, InvalidInput) as exc:
            failure = str(exc) or type(exc).__name__
        except (ValueError, TypeError, etree.LxmlError) as exc:  # malformed values inside SignedInfo
            failure = f"the signature cannot be processed: {exc}"
        else:
            if isinstance(result, VerifyResult):  # a list only with expect_references > 1
                return candidate, result
    return failure


def verify_envelope(root: etree._Element, *, payloads: Mapping[str, bytes] | None = None) -> EnvelopeSignature:
    """Check the envelope signature of a parsed package.

    Args:
        root: the root element from ``gateway.edxml.xmlsafe.parse_untrusted`` (or
            ``gateway.edxml.lean.read_lean``); not modified.
        payloads: for a tree from ``read_lean``: the payloads its marker texts stand for.

    Returns:
        The state, its reason, the algorithms and, when valid, the signer's certificate and
        the signed tree.
    """
    signatures = [e for e in root.iter() if isinstance(e.tag, str) and local_name(e.tag) == "Signature"]
    if not signatures:
        return EnvelopeSignature(SignatureState.ABSENT, "the package carries no envelope signature")
    signature = signatures[0]
    certs, broken = _decode_certificates(signature)
    signed_info = _child(signature, "SignedInfo")

    def outcome(state: SignatureState, reason: str) -> EnvelopeSignature:
        return EnvelopeSignature(
            state,
            reason,
            certificates=tuple(certs),
            signature_method=_algorithm(signed_info, "SignatureMethod"),
            digest_method=_algorithm(signed_info, "Reference", "DigestMethod"),
        )

    if len(signatures) > 1:
        return outcome(SignatureState.INVALID, f"the document holds {len(signatures)} Signature elements")
    placeholder = _placeholder_reason(signature, certs, broken)
    if placeholder is not None:
        return outcome(SignatureState.PLACEHOLDER, placeholder)
    problem = _structure_problem(root, signature) or _unsigned_nodes(root, signature)
    if problem is None and not certs:
        problem = "KeyInfo carries no X509Certificate to verify with"
    if problem is not None:
        return outcome(SignatureState.INVALID, problem)
    verified = _verify_with(root, certs, payloads or {})
    if isinstance(verified, str):
        return outcome(SignatureState.INVALID, verified)
    signer, result = verified
    del result  # the digest covered the received tree: it is the signed tree (point 6)
    return replace(
        outcome(SignatureState.VALID, f"signed by {signer.subject.rfc4514_string()}"),
        signer=signer,
        signed_root=root,
    )
