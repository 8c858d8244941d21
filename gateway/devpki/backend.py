"""Make certomancer parse each private key once instead of at every signature.

certomancer's crypto backend turns its stored ``PrivateKeyInfo`` back into a ``cryptography``
key for *every* certificate, CRL, OCSP response and time stamp it signs, and parses each key
file twice when loading. ``cryptography`` validates an RSA key on every parse (OpenSSL's
``RSA_check_key``: about 0.04 s for RSA-2048 and 0.26 s for RSA-4096 here), so building the
development PKI spent 2.5 s of its 3.5 s re-validating the same sixteen keys, and every OCSP or
CRL answer of the root paid a quarter of a second.

``install()`` swaps certomancer's process-wide ``CRYPTO_BACKEND`` (its designated plug point;
a PKCS#11 backend plugs in the same way) for a subclass that memoises parsed keys by their
DER bytes. Each key is still fully validated the first time it is seen; signatures are
byte-for-byte what the stock backend makes. Only the stock backend is replaced: a backend
someone else installed is left alone.
"""

from __future__ import annotations

import threading
from typing import Any

from certomancer import crypto_utils
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = ["install"]

_MAX_KEYS = 256
"""Bound on remembered keys (a PKI has sixteen; tests build a handful of PKIs)."""

_install_lock = threading.Lock()


class _MemoisingBackend(crypto_utils.PycaCryptographyBackend):
    """certomancer's pyca/cryptography backend with a cache of parsed private keys."""

    def __init__(self) -> None:
        self._keys: dict[tuple[bytes, bytes | None], PrivateKeyTypes] = {}
        self._lock = threading.Lock()

    def _parse(self, data: bytes, password: bytes | None) -> PrivateKeyTypes:
        with self._lock:
            cached = self._keys.get((data, password))
        if cached is not None:
            return cached
        if data.lstrip().startswith(b"-----"):
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
        with self._lock:
            if len(self._keys) >= _MAX_KEYS:
                self._keys.clear()
            self._keys[(data, password)] = key
        return key

    def load_private_key(self, key_bytes: bytes, password: bytes | None) -> tuple[Any, Any]:
        from asn1crypto import keys  # noqa: PLC0415 - untyped; keep it next to its only use

        key = self._parse(key_bytes, password)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with self._lock:  # generic_sign looks keys up by this DER form
            self._keys[(der, None)] = key
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return keys.PrivateKeyInfo.load(der), keys.PublicKeyInfo.load(public)

    def generic_sign(self, private_key: Any, tbs_bytes: bytes, sd_algo: Any) -> bytes:
        algorithm = sd_algo.signature_algo
        if algorithm not in ("rsassa_pkcs1v15", "ecdsa"):
            # PSS, DSA, EdDSA: rare here, keep certomancer's own code path.
            return super().generic_sign(private_key, tbs_bytes, sd_algo)
        key = self._parse(private_key.dump(), None)
        digest: hashes.HashAlgorithm = getattr(hashes, str(sd_algo.hash_algo).upper())()
        if algorithm == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPrivateKey):
            return key.sign(tbs_bytes, padding.PKCS1v15(), digest)
        if algorithm == "ecdsa" and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(tbs_bytes, ec.ECDSA(digest))
        return super().generic_sign(private_key, tbs_bytes, sd_algo)


def install() -> None:
    """Put the memoising backend in place of certomancer's stock one (idempotent, thread-safe)."""
    with _install_lock:
        if type(crypto_utils.CRYPTO_BACKEND) is crypto_utils.PycaCryptographyBackend:
            crypto_utils.CRYPTO_BACKEND = _MemoisingBackend()
