"""Keys for the envelope-signature tests: a small RSA chain made with ``cryptography``.

The chain is real (root → intermediate → leaf, proper extensions) so that ``xmlsec1``
can verify our signatures against a trusted root, independently of our own code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.sign.keys import SigningKey


@dataclass(frozen=True)
class Chain:
    root: x509.Certificate
    intermediate: x509.Certificate
    leaf_key: SigningKey
    other_key: SigningKey
    """A second, unrelated leaf (for key-substitution attacks)."""

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write root and intermediate PEM files; return their paths."""
        root = directory / "root.pem"
        inter = directory / "intermediate.pem"
        root.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        inter.write_bytes(self.intermediate.public_bytes(serialization.Encoding.PEM))
        return root, inter


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer or _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=not ca,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def chain() -> Chain:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    inter_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _cert("Test XMLDSig Root", root_key, None, root_key, ca=True)
    inter = _cert("Test XMLDSig Intermediate", inter_key, root.subject, root_key, ca=True)
    leaf = _cert("UBND TỈNH TEST", leaf_key, inter.subject, inter_key, ca=False)
    other = _cert("Kẻ mạo danh", other_key, inter.subject, inter_key, ca=False)
    return Chain(
        root=root,
        intermediate=inter,
        leaf_key=SigningKey(leaf_key, leaf, (inter,), source="test"),
        other_key=SigningKey(other_key, other, (inter,), source="test"),
    )
