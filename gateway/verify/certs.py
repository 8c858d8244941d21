"""X.509 certificates as the rules see them: ``CertificateFacts``, plus the two-library bridge.

The gateway meets certificates in two shapes: ``cryptography`` objects (signxml, the sealing
side, the dev PKI) and ``asn1crypto`` objects (pyHanko and pyhanko-certvalidator). Both are
views of the same DER bytes, so the bridge is a DER round trip and never loses anything.

``certificate_facts`` reads what the judging side needs and nothing it must *decide* here:
key usage, the CA flag and algorithm strength are reported, never enforced (the admin's policy
judges them). A certificate whose extensions cannot be decoded still yields facts: the broken
extension reads as absent and the rules see, for example, no key usage at all.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.verify.facts import CertificateFacts

__all__ = [
    "TIME_STAMPING_EKU",
    "AnyCertificate",
    "cert_der",
    "cert_from_der",
    "certificate_facts",
    "facts_from_der",
    "sha256_hex",
    "to_asn1",
    "to_crypto",
]

TIME_STAMPING_EKU = "1.3.6.1.5.5.7.3.8"
"""id-kp-timeStamping: a TSA certificate must carry it (RFC 3161 §2.3, checklist A3)."""

AnyCertificate = Any
"""A ``cryptography`` certificate or an ``asn1crypto.x509.Certificate`` (asn1crypto is untyped,
so the union collapses to ``Any`` for the type checker; ``cert_der`` checks at run time)."""

# Extension errors cryptography raises lazily, when an extension is first read.
_EXTENSION_ERRORS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)

# Digest names as cryptography spells them -> the lower-case names asn1crypto and pyHanko use.
_HASH_NAMES = {"sha1": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


def cert_der(cert: AnyCertificate) -> bytes:
    """The DER encoding of a certificate of either library.

    Raises:
        TypeError: for anything that is not a certificate.
    """
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(Encoding.DER)
    if isinstance(cert, asn1_x509.Certificate):
        der: bytes = cert.dump()
        return der
    raise TypeError(f"not an X.509 certificate: {type(cert).__name__}")


def to_asn1(cert: AnyCertificate) -> Any:
    """The certificate as an ``asn1crypto.x509.Certificate`` (what pyHanko speaks)."""
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    return asn1_x509.Certificate.load(cert_der(cert))


def to_crypto(cert: AnyCertificate) -> x509.Certificate:
    """The certificate as a ``cryptography`` object.

    Raises:
        ValueError: the DER is not a certificate ``cryptography`` accepts.
    """
    if isinstance(cert, x509.Certificate):
        return cert
    return x509.load_der_x509_certificate(cert_der(cert))


def sha256_hex(der: bytes) -> str:
    """Upper-case hex SHA-256 of some bytes (certificate fingerprints, file digests)."""
    return hashlib.sha256(der).hexdigest().upper()


def _key(cert: x509.Certificate) -> tuple[str, int]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", 0
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size
    return type(key).__name__.lower(), 0


def _signature_hash(cert: x509.Certificate, asn1: Any) -> str:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is not None:
        return _HASH_NAMES.get(algorithm.name, algorithm.name)
    # EdDSA has no separate digest (its hash is built in); say which one it is.
    try:
        return str(asn1["signature_algorithm"].hash_algo)
    except ValueError:
        return str(asn1["signature_algorithm"]["algorithm"].native)


def _extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except _EXTENSION_ERRORS:
        return None


def _key_usage(asn1: Any) -> frozenset[str]:
    try:
        value = asn1.key_usage_value
    except ValueError:
        return frozenset()
    return frozenset() if value is None else frozenset(str(name) for name in value.native)


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def certificate_facts(cert: AnyCertificate) -> CertificateFacts:
    """What the rules need to know about one certificate.

    Args:
        cert: a ``cryptography`` or ``asn1crypto`` certificate.

    Returns:
        Plain facts: names (RFC 4514), upper-case hex serial and SHA-256, validity (aware UTC),
        key algorithm and size, the hash of the issuer's signature on it, CA flag, key usage
        (asn1crypto names), extended key usage and policy OIDs (dotted), self-signed or not.

    Raises:
        ValueError: the DER is not a certificate ``cryptography`` can read.
        TypeError: ``cert`` is not a certificate at all.
    """
    crypto = to_crypto(cert)
    asn1 = to_asn1(cert)
    algorithm, bits = _key(crypto)
    constraints = _extension(crypto, x509.BasicConstraints)
    eku = _extension(crypto, x509.ExtendedKeyUsage)
    policies = _extension(crypto, x509.CertificatePolicies)
    return CertificateFacts(
        subject=crypto.subject.rfc4514_string(),
        issuer=crypto.issuer.rfc4514_string(),
        serial=format(crypto.serial_number, "X"),
        sha256=sha256_hex(cert_der(crypto)),
        not_before=crypto.not_valid_before_utc,
        not_after=crypto.not_valid_after_utc,
        key_algorithm=algorithm,
        key_bits=bits,
        signature_hash=_signature_hash(crypto, asn1),
        is_ca=bool(constraints is not None and constraints.ca),
        key_usage=_key_usage(asn1),
        extended_key_usage=frozenset(oid.dotted_string for oid in eku) if eku is not None else frozenset(),
        policy_oids=(
            frozenset(p.policy_identifier.dotted_string for p in policies) if policies is not None else frozenset()
        ),
        self_signed=_self_signed(crypto),
    )


@lru_cache(maxsize=1024)
def facts_from_der(der: bytes) -> CertificateFacts:
    """``certificate_facts`` of DER bytes, memoised: the same anchors and intermediates recur
    in every check, and facts are immutable.

    Raises:
        ValueError: not a certificate.
    """
    return certificate_facts(cert_from_der(der))


@lru_cache(maxsize=1024)
def cert_from_der(der: bytes) -> Any:
    """An ``asn1crypto`` certificate for DER bytes, shared between checks.

    asn1crypto caches what it derives (name hashes, fingerprints) on the object, and path
    building asks for them constantly; re-parsing the same intermediates for every signature
    cost a quarter of a check. Treat the result as read-only (certvalidator does).

    Raises:
        ValueError: not a certificate.
    """
    return asn1_x509.Certificate.load(der)
