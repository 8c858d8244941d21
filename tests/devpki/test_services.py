"""The served PKI over real HTTP: OCSP, CRLs, the certificate repository and the RFC 3161 TSA.

Signatures are checked with ``cryptography`` against the certificates the PKI hands out, so a
response signed by the wrong key, or for the wrong certificate, fails here; ``openssl ocsp`` and
``openssl ts -verify`` check the same answers independently of our code.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.clock import FixedClock
from gateway.devpki import FAKE_TIME_HEADER, DevPKI, bind_listener, serve_pki
from tests.external import require


def _http(url: str, body: bytes | None = None, content_type: str = "", headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, data=body, headers=dict(headers or {}))
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        data: bytes = response.read()
    return data


def _rsa_key(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _rsa_verify(cert: x509.Certificate, signature: bytes, data: bytes, digest: hashes.HashAlgorithm) -> None:
    _rsa_key(cert).verify(signature, data, padding.PKCS1v15(), digest)


def _ocsp(
    dev_pki: DevPKI, label: str, issuer: str = "intermediate", at: datetime | None = None, *, base: str = ""
) -> ocsp.OCSPResponse:
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(dev_pki.certificate(label), dev_pki.certificate(issuer), hashes.SHA1())  # noqa: S303 - CertID hash
        .build()
    )
    url = dev_pki.urls.ocsp if issuer == "intermediate" else dev_pki.urls.ocsp_root
    if base:  # another server for the same PKI
        url = url.replace(dev_pki.base_url, base, 1)
    headers = {FAKE_TIME_HEADER: at.isoformat()} if at is not None else None
    der = _http(url, request.public_bytes(Encoding.DER), "application/ocsp-request", headers)
    response = ocsp.load_der_ocsp_response(der)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.serial_number == dev_pki.certificate(label).serial_number
    assert response.signature_hash_algorithm is not None
    responder = response.certificates[0]
    _rsa_verify(responder, response.signature, response.tbs_response_bytes, response.signature_hash_algorithm)
    return response


@pytest.mark.parametrize("label", ["person", "org"])
def test_ocsp_good(dev_pki: DevPKI, label: str) -> None:
    response = _ocsp(dev_pki, label)
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    # A delegated responder, authorised by the intermediate (RFC 6960 §4.2.2.2).
    responder = response.certificates[0]
    assert responder == dev_pki.certificate("ocsp")
    responder.verify_directly_issued_by(dev_pki.certificate("intermediate"))
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
    assert response.next_update_utc is not None
    assert response.this_update_utc < response.next_update_utc


def test_ocsp_revoked_with_its_time(dev_pki: DevPKI) -> None:
    response = _ocsp(dev_pki, "revoked")
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == dev_pki.revocation_time
    assert response.revocation_reason == x509.ReasonFlags.key_compromise


def test_ocsp_before_the_revocation_says_good(dev_pki: DevPKI) -> None:
    # What a verifier sees when it asks as of a time stamp taken before the revocation.
    response = _ocsp(dev_pki, "revoked", at=dev_pki.revocation_time - timedelta(hours=1))
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.produced_at_utc == dev_pki.revocation_time - timedelta(hours=1)


def test_ocsp_for_the_intermediate_is_signed_by_the_root(dev_pki: DevPKI) -> None:
    response = _ocsp(dev_pki, "intermediate", issuer="root")
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.certificates[0] == dev_pki.certificate("root")


def test_crl_lists_the_revoked_certificate(dev_pki: DevPKI) -> None:
    crl = x509.load_der_x509_crl(_http(dev_pki.urls.crl))
    inter = dev_pki.certificate("intermediate")
    assert crl.issuer == inter.subject
    assert crl.is_signature_valid(_rsa_key(inter))
    assert not crl.is_signature_valid(_rsa_key(dev_pki.certificate("root")))
    revoked = {entry.serial_number: entry for entry in crl}
    assert set(revoked) == {dev_pki.certificate("revoked").serial_number}
    entry = revoked[dev_pki.certificate("revoked").serial_number]
    assert entry.revocation_date_utc == dev_pki.revocation_time
    now = datetime.now(UTC)
    assert crl.next_update_utc is not None
    assert crl.last_update_utc <= now < crl.next_update_utc  # fresh, not stale (G1.13a)
    # The same CRL the bundle wrote at the anchor time, give or take a daily update.
    written = x509.load_der_x509_crl(dev_pki.layout.crl("intermediate").read_bytes())
    assert [e.serial_number for e in written] == list(revoked)


def test_root_crl_and_ca_issuers(dev_pki: DevPKI) -> None:
    crl = x509.load_der_x509_crl(_http(dev_pki.urls.crl_root))
    assert crl.is_signature_valid(_rsa_key(dev_pki.certificate("root")))
    assert list(crl) == []
    assert x509.load_der_x509_certificate(_http(dev_pki.urls.ca_issuers)) == dev_pki.certificate("intermediate")
    assert x509.load_der_x509_certificate(_http(dev_pki.urls.ca_issuers_root)) == dev_pki.certificate("root")


def _timestamp(dev_pki: DevPKI, digest: bytes, headers: dict[str, str] | None = None) -> tuple[Any, int]:
    nonce = secrets.randbits(63)
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
            "nonce": nonce,
            "cert_req": True,
        }
    )
    der = _http(dev_pki.urls.tsa, request.dump(), "application/timestamp-query", headers)
    return tsp.TimeStampResp.load(der), nonce


def test_tsa_grants_a_token_signed_by_the_tsa_certificate(dev_pki: DevPKI) -> None:
    digest = hashlib.sha256(b"signature value to be time-stamped").digest()
    before = datetime.now(UTC).replace(microsecond=0)
    response, nonce = _timestamp(dev_pki, digest)
    assert response["status"]["status"].native == "granted"
    signed_data = response["time_stamp_token"]["content"]
    info = signed_data["encap_content_info"]
    assert info["content_type"].native == "tst_info"
    tst_info = info["content"].parsed
    assert tst_info["message_imprint"]["hashed_message"].native == digest
    assert tst_info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert tst_info["nonce"].native == nonce
    assert before <= tst_info["gen_time"].native <= datetime.now(UTC)

    tsa_cert = dev_pki.certificate("tsa")
    embedded = {x509.load_der_x509_certificate(c.chosen.dump()) for c in signed_data["certificates"]}
    assert tsa_cert in embedded
    assert dev_pki.certificate("intermediate") in embedded
    (signer,) = signed_data["signer_infos"]
    sid = signer["sid"].chosen
    assert sid["serial_number"].native == tsa_cert.serial_number
    attrs = {attr["type"].native: attr["values"][0] for attr in signer["signed_attrs"]}
    assert attrs["message_digest"].native == hashlib.sha256(info["content"].contents).digest()
    assert attrs["content_type"].native == "tst_info"
    ess = attrs["signing_certificate"]["certs"][0]["cert_hash"].native
    assert ess == hashlib.sha1(tsa_cert.public_bytes(Encoding.DER)).digest()  # noqa: S324 - ESS v1 is SHA-1
    # The signature covers the DER SET OF the signed attributes (RFC 5652 §5.4).
    signed_attrs = cms.CMSAttributes.load(signer["signed_attrs"].untag().dump())
    _rsa_verify(tsa_cert, signer["signature"].native, signed_attrs.dump(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        _rsa_verify(dev_pki.certificate("person"), signer["signature"].native, signed_attrs.dump(), hashes.SHA256())


def test_tsa_back_dated_for_revocation_tests(dev_pki: DevPKI) -> None:
    at = dev_pki.revocation_time - timedelta(hours=1)
    response, _ = _timestamp(dev_pki, hashlib.sha256(b"x").digest(), {FAKE_TIME_HEADER: at.isoformat()})
    assert response["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed["gen_time"].native == at


def test_answers_follow_the_injected_clock(dev_pki: DevPKI) -> None:
    # A second server for the same PKI, at a fixed time that ignores clients' fake-time headers.
    at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    with serve_pki(dev_pki, bind_listener(), clock=FixedClock(at), allow_time_override=False) as server:
        later = datetime.now(UTC).replace(microsecond=0)
        response = _ocsp(dev_pki, "revoked", at=later, base=server.url)
        assert response.produced_at_utc == at.replace(microsecond=0)  # whole seconds, as DER parsers want
        crl = x509.load_der_x509_crl(_http(dev_pki.urls.crl.replace(dev_pki.base_url, server.url)))
        assert crl.last_update_utc <= at < crl.last_update_utc + timedelta(days=1)
    with pytest.raises(urllib.error.URLError):
        _http(dev_pki.urls.crl.replace(dev_pki.base_url, server.url))  # closed means closed


def test_openssl_ocsp_verifies_the_served_answers(dev_pki: DevPKI) -> None:
    layout = dev_pki.layout
    command = [require("openssl"), "ocsp", "-issuer", str(layout.intermediate("intermediate"))]
    command += ["-cert", str(layout.cert("person")), "-cert", str(layout.cert("revoked"))]
    command += ["-url", dev_pki.urls.ocsp, "-CAfile", str(layout.anchor("root"))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "Response verify OK" in result.stderr + result.stdout
    assert f"{layout.cert('person')}: good" in result.stdout
    assert f"{layout.cert('revoked')}: revoked" in result.stdout


def test_openssl_ts_verifies_the_served_token(dev_pki: DevPKI, tmp_path: Path) -> None:
    openssl = require("openssl")
    data = tmp_path / "document.bin"
    data.write_bytes(b"edXML package bytes")
    query = tmp_path / "request.tsq"
    subprocess.run(
        [openssl, "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query)], check=True, timeout=60
    )
    reply = tmp_path / "reply.tsr"
    reply.write_bytes(_http(dev_pki.urls.tsa, query.read_bytes(), "application/timestamp-query"))
    layout = dev_pki.layout
    command = [openssl, "ts", "-verify", "-data", str(data), "-in", str(reply)]
    command += ["-CAfile", str(layout.anchor("root")), "-untrusted", str(layout.intermediate("intermediate"))]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout
    data.write_bytes(b"edXML package bytes, altered")
    altered = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert altered.returncode != 0
