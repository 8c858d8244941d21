"""Every certificate of the development PKI has exactly the properties its label promises."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID, NameOID

from gateway.devpki import DevPKI, Role

_T = TypeVar("_T", bound=x509.ExtensionType)

YEAR = timedelta(days=365)

ROOT_DN = "CN=Test RootCA chuyên dùng Chính phủ G2,O=Ban Cơ yếu Chính phủ (TEST),C=VN"
INTERMEDIATE_DN = "CN=Test CA phục vụ các cơ quan Nhà nước G2,O=Ban Cơ yếu Chính phủ (TEST),C=VN"
ORG_DN = "CN=UBND TỈNH TEST,OU=Văn phòng UBND tỉnh Test,O=UBND tỉnh Test,L=Tỉnh Test,C=VN"
# The documented OIDs: later milestones and admins' configuration rely on these exact values.
ORG_POLICY = "2.25.313716525559836696630155062320603914131.1.1"
PERSON_POLICY = "2.25.313716525559836696630155062320603914131.1.2"

GOOD_LEAVES = ("org", "person", "ecdsa", "revoked", "ca-flagged", "wrong-key-usage", "rsa1024", "sha1")
INTERMEDIATE_LEAVES = (*GOOD_LEAVES, "expired", "not-yet-valid", "tsa", "ocsp")


def _ext(cert: x509.Certificate, kind: type[_T]) -> x509.Extension[_T]:
    return cert.extensions.get_extension_for_class(kind)


def _key_usage(cert: x509.Certificate) -> set[str]:
    usage = _ext(cert, x509.KeyUsage).value
    names = ("digital_signature", "content_commitment", "key_encipherment", "key_cert_sign", "crl_sign")
    return {name for name in names if getattr(usage, name)}


def test_ca_names_and_keys(dev_pki: DevPKI) -> None:
    root, inter = dev_pki.certificate("root"), dev_pki.certificate("intermediate")
    assert root.subject.rfc4514_string() == ROOT_DN
    assert root.issuer == root.subject
    assert inter.subject.rfc4514_string() == INTERMEDIATE_DN
    assert inter.issuer == root.subject
    root_key, inter_key = root.public_key(), inter.public_key()
    assert isinstance(root_key, rsa.RSAPublicKey)
    assert root_key.key_size == 4096
    assert isinstance(inter_key, rsa.RSAPublicKey)
    assert inter_key.key_size == 2048
    for cert in (root, inter):
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
        basic = _ext(cert, x509.BasicConstraints)
        assert basic.critical
        assert basic.value.ca
        assert _ext(cert, x509.KeyUsage).critical
        assert _key_usage(cert) == {"key_cert_sign", "crl_sign"}
    assert _ext(inter, x509.BasicConstraints).value.path_length == 0
    root.verify_directly_issued_by(root)
    inter.verify_directly_issued_by(root)


def test_dn_order_follows_vgca_style(dev_pki: DevPKI) -> None:
    # C, L, O, OU, CN, E from the outermost RDN inwards (spec §5).
    person = dev_pki.certificate("person")
    order = [attr.oid for rdn in person.subject.rdns for attr in rdn]
    assert order == [
        NameOID.COUNTRY_NAME,
        NameOID.LOCALITY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.COMMON_NAME,
        NameOID.EMAIL_ADDRESS,
    ]
    assert person.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Nguyễn Văn Test"
    assert dev_pki.certificate("org").subject.rfc4514_string() == ORG_DN


@pytest.mark.parametrize("label", INTERMEDIATE_LEAVES)
def test_leaves_chain_to_the_test_root(dev_pki: DevPKI, label: str) -> None:
    cert = dev_pki.certificate(label)
    chain = dev_pki.chain(label)
    assert chain == (dev_pki.certificate("intermediate"), dev_pki.certificate("root"))
    if label == "sha1":
        # cryptography's verify_directly_issued_by refuses SHA-1; check the signature by hand.
        issuer_key = chain[0].public_key()
        assert isinstance(issuer_key, rsa.RSAPublicKey)
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        assert cert.issuer == chain[0].subject
    else:
        cert.verify_directly_issued_by(chain[0])


@pytest.mark.parametrize("label", GOOD_LEAVES)
def test_signer_profile(dev_pki: DevPKI, label: str) -> None:
    cert = dev_pki.certificate(label)
    assert cert.not_valid_before_utc == dev_pki.anchor - YEAR
    assert cert.not_valid_after_utc == dev_pki.anchor + 3 * YEAR
    urls = dev_pki.urls
    cdp = _ext(cert, x509.CRLDistributionPoints).value
    assert [name.value for point in cdp for name in point.full_name or ()] == [urls.crl]
    aia = {(d.access_method, d.access_location.value) for d in _ext(cert, x509.AuthorityInformationAccess).value}
    assert aia == {
        (AuthorityInformationAccessOID.OCSP, urls.ocsp),
        (AuthorityInformationAccessOID.CA_ISSUERS, urls.ca_issuers),
    }
    assert urls.ocsp.startswith(dev_pki.base_url + "/")
    if label not in ("wrong-key-usage", "ca-flagged"):
        assert _ext(cert, x509.KeyUsage).critical
        assert _key_usage(cert) == {"digital_signature", "content_commitment"}
    if label != "ca-flagged":
        with pytest.raises(x509.ExtensionNotFound):
            cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS)


def test_policies_tell_organisation_from_person(dev_pki: DevPKI) -> None:
    def policies(label: str) -> list[str]:
        return [
            p.policy_identifier.dotted_string for p in _ext(dev_pki.certificate(label), x509.CertificatePolicies).value
        ]

    assert dev_pki.policy_oids.organisation == ORG_POLICY
    assert dev_pki.policy_oids.person == PERSON_POLICY
    assert policies("org") == [ORG_POLICY]
    assert policies("person") == [PERSON_POLICY]
    assert policies("ecdsa") == [PERSON_POLICY]
    assert policies("intermediate") == ["2.5.29.32.0"]  # anyPolicy, so policy-aware validators pass
    email = _ext(dev_pki.certificate("person"), x509.SubjectAlternativeName).value
    assert email.get_values_for_type(x509.RFC822Name) == ["nguyenvantest@tinhtest.example"]
    with pytest.raises(x509.ExtensionNotFound):
        _ext(dev_pki.certificate("org"), x509.SubjectAlternativeName)


def test_validity_of_the_negative_certificates(dev_pki: DevPKI) -> None:
    anchor = dev_pki.anchor
    expired, future = dev_pki.certificate("expired"), dev_pki.certificate("not-yet-valid")
    assert (expired.not_valid_before_utc, expired.not_valid_after_utc) == (anchor - 4 * YEAR, anchor - YEAR)
    assert (future.not_valid_before_utc, future.not_valid_after_utc) == (anchor + YEAR, anchor + 4 * YEAR)
    root = dev_pki.certificate("root")
    assert (root.not_valid_before_utc, root.not_valid_after_utc) == (anchor - 5 * YEAR, anchor + 20 * YEAR)
    # Every leaf lies inside its issuer's validity, so back-dated time stamps can prove old signatures.
    for label in INTERMEDIATE_LEAVES:
        assert dev_pki.certificate(label).not_valid_before_utc >= root.not_valid_before_utc
    assert dev_pki.revocation_time == anchor - timedelta(days=30)


def test_negative_certificates_break_exactly_one_rule(dev_pki: DevPKI) -> None:
    flagged = dev_pki.certificate("ca-flagged")
    basic = _ext(flagged, x509.BasicConstraints)
    assert basic.critical
    assert basic.value.ca
    assert "digital_signature" in _key_usage(flagged)
    assert _key_usage(dev_pki.certificate("wrong-key-usage")) == {"key_encipherment"}
    small = dev_pki.certificate("rsa1024").public_key()
    assert isinstance(small, rsa.RSAPublicKey)
    assert small.key_size == 1024
    sha1 = dev_pki.certificate("sha1")
    assert isinstance(sha1.signature_hash_algorithm, hashes.SHA1)
    assert sha1.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.5"  # sha1WithRSAEncryption
    ecdsa = dev_pki.certificate("ecdsa").public_key()
    assert isinstance(ecdsa, ec.EllipticCurvePublicKey)
    assert isinstance(ecdsa.curve, ec.SECP256R1)
    for label in ("person", "org", "expired", "revoked", "sha1", "wrong-key-usage"):
        key = dev_pki.certificate(label).public_key()
        assert isinstance(key, rsa.RSAPublicKey), label
        assert key.key_size == 2048, label
        expected = hashes.SHA1 if label == "sha1" else hashes.SHA256
        assert isinstance(dev_pki.certificate(label).signature_hash_algorithm, expected), label


def test_service_certificates(dev_pki: DevPKI) -> None:
    tsa = dev_pki.certificate("tsa")
    eku = _ext(tsa, x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ocsp = dev_pki.certificate("ocsp")
    assert list(_ext(ocsp, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert isinstance(_ext(ocsp, x509.OCSPNoCheck).value, x509.OCSPNoCheck)
    assert _key_usage(ocsp) == {"digital_signature"}
    inter = dev_pki.certificate("intermediate")
    cdp = _ext(inter, x509.CRLDistributionPoints).value
    assert [name.value for point in cdp for name in point.full_name or ()] == [dev_pki.urls.crl_root]
    aia = {d.access_location.value for d in _ext(inter, x509.AuthorityInformationAccess).value}
    assert aia == {dev_pki.urls.ocsp_root, dev_pki.urls.ca_issuers_root}


def test_impostor_copies_names_not_keys(dev_pki: DevPKI) -> None:
    impostor_root, impostor_leaf = dev_pki.certificate("impostor-root"), dev_pki.certificate("impostor-leaf")
    assert impostor_root.subject.rfc4514_string() == "CN=CA phục vụ các cơ quan Nhà nước G2,O=Ban Cơ yếu Chính phủ,C=VN"
    impostor_root.verify_directly_issued_by(impostor_root)
    assert impostor_leaf.subject == dev_pki.certificate("org").subject
    assert dev_pki.chain("impostor-leaf") == (impostor_root,)
    impostor_leaf.verify_directly_issued_by(impostor_root)
    with pytest.raises(ValueError, match="does not match"):
        impostor_leaf.verify_directly_issued_by(dev_pki.certificate("intermediate"))


def test_roles_and_serials(dev_pki: DevPKI) -> None:
    assert dev_pki.labels_with_role(Role.ANCHOR) == ("root",)
    assert dev_pki.labels_with_role(Role.INTERMEDIATE) == ("intermediate",)
    assert set(dev_pki.labels_with_role(Role.NEGATIVE)) == {
        "expired", "not-yet-valid", "revoked", "ca-flagged", "wrong-key-usage", "rsa1024", "sha1"
    }  # fmt: skip
    serials = [dev_pki.certificate(label).serial_number for label in dev_pki.labels]
    assert len(set(serials)) == len(serials)
    assert all(1 << 62 <= serial < 1 << 63 for serial in serials)
    assert all(dev_pki.profile(label).purpose for label in dev_pki.labels)


def test_private_keys_match_certificates(dev_pki: DevPKI) -> None:
    for label in dev_pki.labels:
        key = dev_pki.private_key(label)
        assert key.public_key() == dev_pki.certificate(label).public_key(), label
    with pytest.raises(KeyError, match="no certificate labelled 'nobody'"):
        dev_pki.certificate("nobody")
