"""Keys for the envelope-signature tests, taken from the session's development PKI.

The organisation key signs; the person's key plays the impostor in key-substitution attacks.
The chain is the real test chain (root → intermediate → leaf) so that ``xmlsec1`` can verify
our signatures against the trust anchor, independently of our own code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.devpki import DevPKI
from gateway.sign.keys import SigningKey


@dataclass(frozen=True)
class Chain:
    root: Path
    """The trust anchor's PEM file."""
    intermediate_pem: Path
    intermediate: x509.Certificate
    leaf_key: SigningKey
    other_key: SigningKey
    """A second, unrelated leaf (for key-substitution attacks)."""


def _signing_key(pki: DevPKI, label: str) -> SigningKey:
    key = pki.private_key(label)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    intermediates = tuple(c for c in pki.chain(label) if c.subject != c.issuer)
    return SigningKey(key, pki.certificate(label), intermediates, source=f"dev PKI {label}")


@pytest.fixture(scope="session")
def chain(dev_pki: DevPKI) -> Chain:
    return Chain(
        root=dev_pki.layout.anchor("root"),
        intermediate_pem=dev_pki.layout.intermediate("intermediate"),
        intermediate=dev_pki.certificate("intermediate"),
        leaf_key=_signing_key(dev_pki, "org"),
        other_key=_signing_key(dev_pki, "person"),
    )
