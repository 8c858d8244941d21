"""The memoising certomancer backend signs exactly like the stock one, only faster."""

from __future__ import annotations

import pytest
from asn1crypto import algos, keys
from certomancer import crypto_utils
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from gateway.devpki import DevPKI, backend


def _pkcs8(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_signatures_are_identical_to_the_stock_backend() -> None:
    der = _pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    memo = backend._MemoisingBackend()
    stock = crypto_utils.PycaCryptographyBackend()
    private_info, public_info = memo.load_private_key(der, None)
    assert (private_info.dump(), public_info.dump()) == tuple(x.dump() for x in stock.load_private_key(der, None))
    algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})
    tbs = b"to be signed"
    assert memo.generic_sign(private_info, tbs, algorithm) == stock.generic_sign(private_info, tbs, algorithm)
    # PSS goes through certomancer's own code (randomised, so only check it verifies as PSS-sized).
    pss = algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss"})
    pss["parameters"] = stock.optimal_pss_params(keys.PublicKeyInfo.load(public_info.dump()), "sha256")
    assert len(memo.generic_sign(private_info, tbs, pss)) == 256


def test_keys_are_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    der = _pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    memo = backend._MemoisingBackend()
    parses: list[bytes] = []
    real = serialization.load_der_private_key

    def counting(data: bytes, password: bytes | None, **kwargs: bool) -> PrivateKeyTypes:
        parses.append(data)
        return real(data, password, **kwargs)

    monkeypatch.setattr(serialization, "load_der_private_key", counting)
    private_info, _ = memo.load_private_key(der, None)
    algorithm = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})
    for _ in range(5):
        memo.generic_sign(private_info, b"x", algorithm)
    # The stock backend parses (and RSA-validates) twice on load and again at every signature.
    assert parses == [der]


def test_install_is_idempotent_and_spares_foreign_backends(dev_pki: DevPKI, monkeypatch: pytest.MonkeyPatch) -> None:
    assert type(crypto_utils.CRYPTO_BACKEND) is backend._MemoisingBackend  # installed by DevPKI
    installed = crypto_utils.CRYPTO_BACKEND
    backend.install()
    assert crypto_utils.CRYPTO_BACKEND is installed
    foreign = crypto_utils.CryptoBackend()
    monkeypatch.setattr(crypto_utils, "CRYPTO_BACKEND", foreign)
    backend.install()
    assert crypto_utils.CRYPTO_BACKEND is foreign
