"""The written bundle: documented layout, manifest, secrets' modes, PKCS#12, and openssl's view."""

from __future__ import annotations

import stat
import subprocess
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from gateway.clock import VN_TZ
from gateway.devpki import BundleLayout, DevPKI, Role, fingerprint, write_bundle
from gateway.errors import ConfigError
from tests.external import require


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _openssl_verify(layout: BundleLayout, leaf: Path, *untrusted: Path) -> subprocess.CompletedProcess[str]:
    command = [require("openssl"), "verify", "-CAfile", str(layout.anchor("root"))]
    for path in untrusted:
        command += ["-untrusted", str(path)]
    return subprocess.run([*command, str(leaf)], capture_output=True, text=True, timeout=60, check=False)


def test_layout_holds_every_file(dev_pki: DevPKI) -> None:
    layout = dev_pki.layout
    assert layout.holds_bundle()
    assert x509.load_pem_x509_certificate(layout.anchor("root").read_bytes()) == dev_pki.certificate("root")
    inter = x509.load_pem_x509_certificate(layout.intermediate("intermediate").read_bytes())
    assert inter == dev_pki.certificate("intermediate")
    assert sorted(p.name for p in (layout.root / "trust" / "anchors").iterdir()) == ["root.fingerprint", "root.pem"]
    for label in dev_pki.labels:
        assert x509.load_pem_x509_certificate(layout.cert(label).read_bytes()) == dev_pki.certificate(label)
        assert layout.key(label).is_file()
        assert layout.p12(label).is_file() == (not dev_pki.profile(label).role.is_ca)
    assert not layout.p12("impostor-root").exists()
    crl = x509.load_der_x509_crl(layout.crl("intermediate").read_bytes())
    assert crl.issuer == dev_pki.certificate("intermediate").subject
    assert layout.crl("root").is_file()


def test_secrets_are_owner_only(dev_pki: DevPKI) -> None:
    layout = dev_pki.layout
    assert _mode(layout.root / "keys") == 0o700
    assert _mode(layout.root / "p12") == 0o700
    for label in dev_pki.labels:
        assert _mode(layout.key(label)) == 0o600, label
    assert _mode(layout.password_file) == 0o600
    assert all(_mode(path) == 0o600 for path in (layout.root / "p12").glob("*.p12"))
    assert not list(layout.root.rglob("*.tmp"))


@pytest.mark.parametrize("label", ["org", "person", "ecdsa", "tsa", "impostor-leaf"])
def test_pkcs12_opens_with_the_password_file(dev_pki: DevPKI, label: str) -> None:
    layout = dev_pki.layout
    password = layout.password_file.read_bytes()
    assert len(password) >= 32
    assert b"\n" not in password
    loaded = pkcs12.load_pkcs12(layout.p12(label).read_bytes(), password)
    assert loaded.cert is not None
    assert loaded.cert.certificate == dev_pki.certificate(label)
    assert loaded.cert.friendly_name == label.encode()
    assert loaded.key is not None
    assert loaded.key.public_key() == dev_pki.certificate(label).public_key()
    assert tuple(c.certificate for c in loaded.additional_certs) == dev_pki.chain(label)
    with pytest.raises(ValueError, match=r"(?i)invalid password|could not deserialize"):
        pkcs12.load_pkcs12(layout.p12(label).read_bytes(), b"wrong password")


def test_manifest_describes_the_bundle(dev_pki: DevPKI) -> None:
    layout = dev_pki.layout
    manifest = tomllib.loads(layout.manifest.read_text(encoding="utf-8"))
    assert manifest["trust"] == {
        "anchors": ["trust/anchors/root.pem"],
        "intermediates": ["trust/intermediates/intermediate.pem"],
    }
    assert manifest["pki"]["base_url"] == dev_pki.base_url
    assert manifest["pki"]["p12_password_file"] == "p12/PASSWORD"
    assert manifest["policies"] == {
        "organisation": dev_pki.policy_oids.organisation,
        "person": dev_pki.policy_oids.person,
    }
    assert manifest["services"]["tsa"] == dev_pki.urls.tsa
    assert manifest["revocation"]["revoked_at"] == dev_pki.revocation_time.astimezone(VN_TZ).isoformat()
    assert set(manifest["certs"]) == set(dev_pki.labels)
    person = manifest["certs"]["person"]
    cert = dev_pki.certificate("person")
    assert person["subject"] == cert.subject.rfc4514_string()
    assert person["sha256"] == fingerprint(cert)
    assert person["not_before"] == (dev_pki.anchor - timedelta(days=365)).astimezone(VN_TZ).isoformat()
    assert person["not_before"].endswith("+07:00")
    assert person["key"] == "RSA-2048"
    assert person["role"] == Role.SIGNER.value
    assert person["purpose"] == dev_pki.profile("person").purpose
    assert (layout.root / person["p12"]).is_file()
    assert (layout.root / person["key_file"]) == layout.key("person")
    assert "p12" not in manifest["certs"]["root"]
    assert manifest["certs"]["ecdsa"]["key"] == "EC secp256r1"
    # The password is never written anywhere but p12/PASSWORD.
    assert layout.password_file.read_text(encoding="ascii") not in layout.manifest.read_text(encoding="utf-8")


def test_fingerprint_matches_openssl(dev_pki: DevPKI) -> None:
    layout = dev_pki.layout
    result = subprocess.run(
        [require("openssl"), "x509", "-noout", "-fingerprint", "-sha256", "-in", str(layout.anchor("root"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    written = layout.anchor_fingerprint("root").read_text(encoding="ascii")
    assert result.stdout.strip().lower() == written.strip().lower()
    assert written.strip().endswith(fingerprint(dev_pki.certificate("root")))


def test_openssl_accepts_the_genuine_chain(dev_pki: DevPKI) -> None:
    layout = dev_pki.layout
    for label in ("person", "org", "ecdsa", "tsa"):
        result = _openssl_verify(layout, layout.cert(label), layout.intermediate("intermediate"))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(": OK")


def test_openssl_rejects_the_impostor_and_the_expired(dev_pki: DevPKI) -> None:
    layout = dev_pki.layout
    impostor = _openssl_verify(
        layout, layout.cert("impostor-leaf"), layout.cert("impostor-root"), layout.intermediate("intermediate")
    )
    assert impostor.returncode != 0
    # The impostor root carries the real CA's exact name, yet is just an untrusted self-signed cert.
    assert "self-signed certificate in certificate chain" in impostor.stderr
    alone = _openssl_verify(layout, layout.cert("impostor-leaf"), layout.intermediate("intermediate"))
    assert alone.returncode != 0
    assert "unable to get local issuer certificate" in alone.stderr
    expired = _openssl_verify(layout, layout.cert("expired"), layout.intermediate("intermediate"))
    assert expired.returncode != 0
    assert "certificate has expired" in expired.stderr


def test_bundle_copy_reloads_to_the_same_certificates(dev_pki: DevPKI, tmp_path: Path) -> None:
    copy = write_bundle(dev_pki, tmp_path / "copy")
    assert _mode(copy.key("org")) == 0o600
    assert copy.password_file.read_bytes() != dev_pki.layout.password_file.read_bytes()  # fresh per bundle
    reloaded = DevPKI.load(copy.root)
    assert reloaded.base_url == dev_pki.base_url
    assert reloaded.anchor == dev_pki.anchor
    assert reloaded.revocation_time == dev_pki.revocation_time
    for label in dev_pki.labels:
        assert reloaded.certificate(label) == dev_pki.certificate(label), label


def test_load_refuses_a_directory_without_a_pki(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no development PKI here") as caught:
        DevPKI.load(tmp_path)
    assert caught.value.hint is not None
    (tmp_path / "certomancer.yml").write_text("keysets: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a development PKI configuration"):
        DevPKI.load(tmp_path)
