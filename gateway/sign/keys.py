"""The organisation's signing key: where it lives and how it is opened (once per process).

Two homes for the key: a PKCS#12 file (``SigningKey``, ``read_pkcs12``) and a PKCS#11 token (a
USB token or an HSM, ``gateway.sign.pkcs11``). Both satisfy ``OrganisationKey``: the
certificate and its intermediates, a pyHanko ``Signer`` for PDF signatures and a key object
for the envelope's XMLDSig (anything with cryptography's ``sign(data, padding, algorithm)``,
so a token key signs without ever leaving the token). Secrets never sit in a configuration
file: passwords and PINs come from an environment variable or a file readable only by the
gateway (``read_secret``).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, pkcs12
from pyhanko.sign.signers import Signer, SimpleSigner
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from gateway.errors import ConfigError

__all__ = [
    "OrganisationKey",
    "SigningKey",
    "XmlSigningKey",
    "load_pkcs12",
    "order_chain",
    "read_pkcs12",
    "read_secret",
]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class XmlSigningKey(Protocol):
    """What signxml needs of a private key (cryptography's RSA/EC private-key interface)."""

    @property
    def key_size(self) -> int: ...

    def sign(self, data: bytes, *args: Any, **kwargs: Any) -> bytes: ...


@runtime_checkable
class OrganisationKey(Protocol):
    """The organisation's key, wherever it lives."""

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Intermediates, nearest issuer first; the anchor is pinned, never taken from here."""
        ...

    @property
    def source(self) -> str:
        """Where the key lives, for messages (a path or a token label)."""
        ...

    def pdf_signer(self) -> Signer:
        """The pyHanko signer (made once, reused for every document)."""
        ...

    def xml_key(self) -> XmlSigningKey:
        """The key object signxml signs the envelope with."""
        ...

    def close(self) -> None:
        """Release the key (log out of a token); the process is shutting down."""
        ...


class _ParsedKeySigner(SimpleSigner):
    """pyHanko's ``SimpleSigner``, signing with a key parsed once.

    The stock signer turns its stored key back into a cryptography key for every signature,
    and cryptography validates an RSA key on every load (about 37 ms for RSA-2048, on the event
    loop). The usual mechanisms sign with the key we already hold; anything else goes the stock
    way. RSA PKCS#1 v1.5 is deterministic, so both paths give the same bytes (tested).
    """

    def __init__(self, key: PrivateKey, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._key = key

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm).signature_algo
        digest = get_pyca_cryptography_hash(digest_algorithm)
        if mechanism == "rsassa_pkcs1v15" and isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, PKCS1v15(), digest)
        if mechanism == "ecdsa" and isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(digest))
        return super().sign_raw(data, digest_algorithm)


@dataclass(frozen=True)
class SigningKey:
    """A private key with its certificate and the intermediates that lead to a trust anchor."""

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    """Intermediate certificates, leaf excluded, nearest issuer first."""
    source: str = ""
    """Where the key came from, for messages (a path or a token label)."""

    @property
    def subject(self) -> str:
        """The certificate subject in RFC 4514 form."""
        return self.certificate.subject.rfc4514_string()

    @cached_property
    def _signer(self) -> Signer:
        der = self.private_key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        certs = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in self.chain]
        return _ParsedKeySigner(
            self.private_key,
            signing_cert=asn1_x509.Certificate.load(self.certificate.public_bytes(Encoding.DER)),
            signing_key=asn1_keys.PrivateKeyInfo.load(der),
            cert_registry=SimpleCertificateStore.from_certs(certs),  # type: ignore[no-untyped-call]
        )

    def pdf_signer(self) -> Signer:
        """A pyHanko ``SimpleSigner`` with the chain embedded (built once per key)."""
        return self._signer

    def xml_key(self) -> XmlSigningKey:
        """The cryptography key itself."""
        return self.private_key

    def close(self) -> None:
        """Nothing to release: the key lives in memory."""


def order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """Order extra certificates issuer by issuer starting from the leaf; drop unrelated ones."""
    chain: list[x509.Certificate] = []
    current = leaf
    pool = [c for c in others if c != leaf]
    while True:
        issuer = next((c for c in pool if c.subject == current.issuer and c not in chain), None)
        if issuer is None or issuer.subject == issuer.issuer:
            # Stop at the root: anchors are configured and pinned, never taken from the key file.
            return tuple(chain)
        chain.append(issuer)
        current = issuer


def load_pkcs12(data: bytes, password: bytes | None, *, source: str = "PKCS#12") -> SigningKey:
    """Open a PKCS#12 bundle.

    Args:
        data: the bundle's bytes.
        password: its password, or ``None`` for an unprotected bundle.
        source: a label for error messages (usually the path).

    Returns:
        The key, its certificate and the intermediates found in the bundle.

    Raises:
        ConfigError: wrong password, no key, no certificate, or an unsupported key type.
    """
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise ConfigError(
            f"cannot open the PKCS#12 bundle ({exc})", path=source, hint="check the file and its password"
        ) from None
    if key is None or cert is None:
        raise ConfigError("the PKCS#12 bundle holds no private key with its certificate", path=source)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"unsupported key type {type(key).__name__}; use RSA or ECDSA", path=source)
    return SigningKey(private_key=key, certificate=cert, chain=order_chain(cert, list(extra)), source=source)


def read_secret(*, env: str | None = None, file: Path | None = None) -> bytes:
    """Read a secret from an environment variable or a file (trailing newline stripped).

    Raises:
        ConfigError: neither or both given, the variable is unset, or the file cannot be read
            or is readable by other users.
    """
    if (env is None) == (file is None):
        raise ConfigError("give the secret either as an environment variable or as a file, not both")
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"the environment variable {env} is not set", hint=f"export {env}=...")
        return value.encode()
    if file is None:  # unreachable: exactly one of env/file is set
        raise ConfigError("no secret source given")
    try:
        mode = file.stat().st_mode
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the secret file ({exc.strerror})", path=file) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError("the secret file is readable by other users", path=file, hint=f"chmod 600 {file}")
    return data.rstrip(b"\r\n")


def read_pkcs12(path: Path, password: bytes | None) -> SigningKey:
    """Read and open a PKCS#12 file (see ``load_pkcs12``).

    Raises:
        ConfigError: the file cannot be read or opened.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the PKCS#12 file ({exc.strerror})", path=path) from None
    return load_pkcs12(data, password, source=str(path))
