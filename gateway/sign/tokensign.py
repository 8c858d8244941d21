"""Signing on a PKCS#11 token with cryptography's interface, so signxml can use a token key.

``TokenRsaKey`` and ``TokenEcKey`` look like cryptography private keys to signxml (``sign``,
``key_size``, ``public_key``) but every signature is computed by the token through a
``TokenKeyHandle``, which holds the module's lock for each call (see ``gateway.sign.pkcs11`` for
why calls are serialised). When the token lists a hash-and-sign mechanism it hashes; otherwise
the host hashes and the token signs the DigestInfo (RSA) or the raw digest (ECDSA).
"""

from __future__ import annotations

import threading
from typing import Any

import pkcs11
from asn1crypto import algos, core
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding, PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Mechanism
from pkcs11 import exceptions as p11_errors

from gateway.errors import TransientError

__all__ = ["ECDSA_HASHED", "RSA_HASHED", "TokenEcKey", "TokenError", "TokenKeyHandle", "TokenRsaKey"]

RSA_HASHED = {
    "sha1": Mechanism.SHA1_RSA_PKCS,
    "sha224": Mechanism.SHA224_RSA_PKCS,
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
ECDSA_HASHED = {
    "sha1": Mechanism.ECDSA_SHA1,
    "sha224": Mechanism.ECDSA_SHA224,
    "sha256": Mechanism.ECDSA_SHA256,
    "sha384": Mechanism.ECDSA_SHA384,
    "sha512": Mechanism.ECDSA_SHA512,
}
_HASHES = frozenset(RSA_HASHED)
"""What the envelope may use: SHA-1 (legacy peers only) and SHA-2."""


class TokenError(TransientError):
    """The token failed while signing (removed, session lost, device error). The document waits."""


# --------------------------------------------------------------------------- the key on the token


class TokenKeyHandle:
    """A private-key handle whose every use goes through the module lock."""

    def __init__(self, key: pkcs11.SignMixin, lock: threading.RLock, source: str) -> None:
        self._key: pkcs11.SignMixin | None = key
        self._lock = lock
        self._source = source

    def sign(self, data: bytes, **kwargs: Any) -> bytes:
        """``C_SignInit`` + ``C_Sign`` on the token (the keyword arguments of python-pkcs11)."""
        with self._lock:
            if self._key is None:
                raise TokenError(f"{self._source}: the key has been closed")
            try:
                return bytes(self._key.sign(data, **kwargs))
            except p11_errors.PKCS11Error as exc:
                raise TokenError(f"{self._source}: the token could not sign ({type(exc).__name__} {exc})") from exc

    def forget(self) -> None:
        """Drop the handle (the session is being closed)."""
        with self._lock:
            self._key = None


def _digest_of(data: bytes, algorithm: object) -> bytes:
    """The digest of ``data``; SHA-1 and SHA-2 only (``Prehashed`` is not needed by signxml)."""
    if not isinstance(algorithm, hashes.HashAlgorithm) or algorithm.name not in _HASHES:
        raise UnsupportedAlgorithm(f"the token key hashes with SHA-1 or SHA-2 only, not {algorithm!r}")
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


class TokenRsaKey:
    """cryptography's RSA private-key signing interface, computed on the token (for signxml)."""

    def __init__(self, handle: TokenKeyHandle, public: rsa.RSAPublicKey, mechanisms: set[Mechanism], raw: bool):
        self._handle = handle
        self._public = public
        self._mechanisms = mechanisms
        self._raw = raw

    @property
    def key_size(self) -> int:
        """Modulus length in bits."""
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        """The public key (from the certificate)."""
        return self._public

    def sign(self, data: bytes, padding: AsymmetricPadding, algorithm: hashes.HashAlgorithm) -> bytes:
        """Sign ``data`` with RSASSA-PKCS1-v1_5 on the token.

        Args:
            data: the message.
            padding: must be ``PKCS1v15()``.
            algorithm: SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512.

        Returns:
            The raw signature, as cryptography's ``RSAPrivateKey.sign`` returns it.

        Raises:
            UnsupportedAlgorithm: another padding (PSS is not implemented) or hash.
            TokenError: the token failed.
        """
        if not isinstance(padding, PKCS1v15):
            raise UnsupportedAlgorithm(f"the token key signs with PKCS#1 v1.5 padding only, not {padding.name}")
        digest = _digest_of(data, algorithm)  # also refuses hashes other than SHA-1/SHA-2
        hashed = RSA_HASHED[algorithm.name]
        if not self._raw and hashed in self._mechanisms:
            return self._handle.sign(data, mechanism=hashed)
        # Raw RSA (CKM_RSA_PKCS): we wrap the digest in a DigestInfo; the token pads and signs.
        # Same bytes as the hashed mechanism: PKCS#1 v1.5 is deterministic.
        info = algos.DigestInfo(
            {"digest_algorithm": {"algorithm": algorithm.name, "parameters": core.Null()}, "digest": digest}
        ).dump()
        return self._handle.sign(info, mechanism=Mechanism.RSA_PKCS)


class TokenEcKey:
    """cryptography's EC private-key signing interface, computed on the token (for signxml)."""

    def __init__(self, handle: TokenKeyHandle, public: ec.EllipticCurvePublicKey):
        self._handle = handle
        self._public = public

    @property
    def key_size(self) -> int:
        """Curve size in bits."""
        return self._public.key_size

    @property
    def curve(self) -> ec.EllipticCurve:
        """The curve (from the certificate)."""
        return self._public.curve

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key (from the certificate)."""
        return self._public

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """Sign ``data`` with ECDSA on the token.

        Args:
            data: the message.
            signature_algorithm: ``ec.ECDSA(hash)`` with SHA-1 or SHA-2.

        Returns:
            The DER-encoded ``Ecdsa-Sig-Value``, as cryptography returns it.

        Raises:
            UnsupportedAlgorithm: not ECDSA, or an unsupported hash.
            TokenError: the token failed.
        """
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise UnsupportedAlgorithm("the token key signs with ECDSA only")
        # Hash here and use raw CKM_ECDSA: SoftHSM2 and many tokens have no hashed ECDSA
        # mechanisms, and hashing needs no secret.
        digest = _digest_of(data, signature_algorithm.algorithm)
        raw = self._handle.sign(digest, mechanism=Mechanism.ECDSA)
        half = len(raw) // 2
        return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
