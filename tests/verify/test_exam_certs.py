"""``certificate_facts``: what the rules see of a certificate, for every kind the dev PKI makes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.devpki import DevPKI, fingerprint
from gateway.verify.certs import TIME_STAMPING_EKU, certificate_facts, facts_from_der, to_asn1, to_crypto


def test_a_personal_certificate(dev_pki: DevPKI) -> None:
    cert = dev_pki.certificate("person")
    facts = certificate_facts(cert)
    assert facts.subject == cert.subject.rfc4514_string()
    assert "CN=Nguyễn Văn Test" in facts.subject
    assert facts.issuer == dev_pki.certificate("intermediate").subject.rfc4514_string()
    assert facts.serial == format(cert.serial_number, "X")
    assert facts.sha256 == fingerprint(cert).replace(":", "")
    assert (facts.not_before, facts.not_after) == (cert.not_valid_before_utc, cert.not_valid_after_utc)
    assert (facts.key_algorithm, facts.key_bits, facts.signature_hash) == ("rsa", 2048, "sha256")
    assert facts.key_usage == {"digital_signature", "non_repudiation"}
    assert facts.policy_oids == {dev_pki.policy_oids.person}
    assert not facts.is_ca
    assert not facts.self_signed
    assert facts.extended_key_usage == frozenset()


def test_both_libraries_give_the_same_facts(dev_pki: DevPKI) -> None:
    cert = dev_pki.certificate("org")
    assert (
        certificate_facts(cert) == certificate_facts(to_asn1(cert)) == facts_from_der(cert.public_bytes(Encoding.DER))
    )
    assert to_crypto(to_asn1(cert)) == cert


def test_the_root_is_a_self_signed_ca(dev_pki: DevPKI) -> None:
    facts = certificate_facts(dev_pki.certificate("root"))
    assert facts.is_ca
    assert facts.self_signed
    assert (facts.key_algorithm, facts.key_bits) == ("rsa", 4096)
    assert facts.key_usage == {"key_cert_sign", "crl_sign"}


def test_the_impostor_root_is_self_signed_but_named_like_the_real_ca(dev_pki: DevPKI) -> None:
    facts = certificate_facts(dev_pki.certificate("impostor-root"))
    assert facts.self_signed
    assert "CN=CA phục vụ các cơ quan Nhà nước G2" in facts.subject


@pytest.mark.parametrize(
    ("label", "field", "value"),
    [
        ("ecdsa", "key_algorithm", "ec"),
        ("ecdsa", "key_bits", 256),
        ("rsa1024", "key_bits", 1024),
        ("sha1", "signature_hash", "sha1"),
        ("ca-flagged", "is_ca", True),
        ("wrong-key-usage", "key_usage", frozenset({"key_encipherment"})),
        ("org", "policy_oids", None),  # filled below: the organisation policy OID
        ("tsa", "extended_key_usage", frozenset({TIME_STAMPING_EKU})),
        ("ocsp", "extended_key_usage", frozenset({"1.3.6.1.5.5.7.3.9"})),
    ],
)
def test_what_each_negative_certificate_shows(dev_pki: DevPKI, label: str, field: str, value: object) -> None:
    expected = frozenset({dev_pki.policy_oids.organisation}) if value is None else value
    assert getattr(certificate_facts(dev_pki.certificate(label)), field) == expected


def test_not_a_certificate_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        certificate_facts(b"not a certificate")
