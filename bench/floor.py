"""The physical floor: the arithmetic no verifier can skip, on the same packages (issue 7, P1).

Per package, timed: base64-decode every attachment; SHA-256 over the byte ranges of every PDF
signature (about the whole file, once per signature); SHA-256 over the XML once (a stand-in
for the envelope's reference digest, without canonicalisation); and one RSA verification per
signature value the package carries: the envelope's ``SignedInfo``, every CMS ``SignerInfo``
and every time-stamp token's ``SignerInfo``.

Not timed, done once in ``extract``: finding those values (XML parsing, PDF parsing, CMS
decoding). Certificate paths and revocation answers are left out: a verifier that caches
them (as the gateway does until ``nextUpdate``) pays nothing for them on a warm run, so the
floor is a bound nobody reaches, not a competitor.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from io import BytesIO
from typing import Any, cast

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.general import extract_certificate_info, extract_signer_info, find_unique_cms_attribute

__all__ = ["FloorWork", "extract", "run_floor"]

_EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
_DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class _RsaCheck:
    key: rsa.RSAPublicKey
    signature: bytes
    data: bytes
    hash_name: str


@dataclass(frozen=True)
class FloorWork:
    """What the floor computes for one package, found beforehand by ``extract``."""

    raw: bytes
    encoded: tuple[bytes, ...]
    """The base64 text of every attachment (whitespace removed)."""
    ranges: tuple[tuple[int, int, int, int, int], ...]
    """``(attachment index, offset 1, length 1, offset 2, length 2)`` per PDF signature."""
    checks: tuple[_RsaCheck, ...]


def _rsa_key(cert: Any) -> rsa.RSAPublicKey:
    key = x509.load_der_x509_certificate(cert.dump()).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("the floor counts RSA verifications; this corpus has another key type")
    return key


def _cms_check(signed_data: cms.SignedData) -> _RsaCheck:
    info = extract_signer_info(signed_data)
    algorithm = info["signature_algorithm"].signature_algo
    if algorithm != "rsassa_pkcs1v15":
        raise TypeError(f"the floor handles RSASSA-PKCS1-v1_5 only, not {algorithm}")
    return _RsaCheck(
        key=_rsa_key(extract_certificate_info(signed_data).signer_cert),
        signature=cast(bytes, info["signature"].native),
        # signedAttrs are signed with their universal SET OF tag, not the implicit [0] they carry.
        data=cast(bytes, info["signed_attrs"].untag().dump()),
        hash_name=cast(str, info["digest_algorithm"]["algorithm"].native),
    )


def _envelope_check(root: etree._Element) -> _RsaCheck:
    signature = next(root.iter(f"{{{_DSIG_NS}}}Signature"))
    signed_info = signature.find(f"{{{_DSIG_NS}}}SignedInfo")
    value = signature.find(f"{{{_DSIG_NS}}}SignatureValue")
    cert = signature.find(f".//{{{_DSIG_NS}}}X509Certificate")
    if signed_info is None or value is None or cert is None:
        raise ValueError("the package carries no complete envelope signature")
    key = x509.load_der_x509_certificate(base64.b64decode("".join((cert.text or "").split()))).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise TypeError("the floor counts RSA verifications; the envelope key is not RSA")
    # The gateway signs with exclusive C14N and rsa-sha256 (gateway.sign.envelope).
    data = etree.tostring(signed_info, method="c14n", exclusive=True)
    return _RsaCheck(key, base64.b64decode("".join((value.text or "").split())), data, "sha256")


def extract(raw: bytes) -> FloorWork:
    """Find, once and untimed, what the floor will hash, decode and verify for one package."""
    root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    encoded = tuple(
        "".join((node.text or "").split()).encode("ascii")
        for node in root.iter(f"{{{_EDXML_NS}}}ContentTransferEncoded")
    )
    checks = [_envelope_check(root)]
    ranges = []
    for index, text in enumerate(encoded):
        reader = PdfFileReader(BytesIO(base64.b64decode(text)))
        for signature in reader.embedded_signatures:
            start1, length1, start2, length2 = (int(v) for v in signature.byte_range)
            ranges.append((index, start1, length1, start2, length2))
            checks.append(_cms_check(signature.signed_data))
            token = find_unique_cms_attribute(signature.signer_info["unsigned_attrs"], "signature_time_stamp_token")
            checks.append(_cms_check(token["content"]))
    return FloorWork(raw, encoded, tuple(ranges), tuple(checks))


def run_floor(work: FloorWork) -> int:
    """Do the floor's work for one package.

    Returns:
        How many RSA verifications were done.

    Raises:
        cryptography.exceptions.InvalidSignature: a signature value does not verify.
    """
    hashlib.sha256(work.raw).digest()
    pdfs = [base64.b64decode(text) for text in work.encoded]
    for index, start1, length1, start2, length2 in work.ranges:
        view = memoryview(pdfs[index])
        digest = hashlib.sha256(view[start1 : start1 + length1])
        digest.update(view[start2 : start2 + length2])
        digest.digest()
    for check in work.checks:
        check.key.verify(check.signature, check.data, padding.PKCS1v15(), _HASHES[check.hash_name]())
    return len(work.checks)
