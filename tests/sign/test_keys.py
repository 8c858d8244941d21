"""Opening the organisation key: PKCS#12 with a password from the environment or a 0600 file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.devpki import DevPKI
from gateway.errors import ConfigError
from gateway.sign.keys import load_pkcs12, read_pkcs12, read_secret


def test_pkcs12_opens_with_its_chain_in_order(dev_pki: DevPKI) -> None:
    key = load_pkcs12(dev_pki.pkcs12("org", b"pw"), b"pw", source="org.p12")
    assert key.certificate == dev_pki.certificate("org")
    assert key.chain == (dev_pki.certificate("intermediate"),)  # the root is pinned, never taken from the file
    assert "UBND TỈNH TEST" in key.subject


def test_wrong_password_is_a_clear_config_error(dev_pki: DevPKI, tmp_path: Path) -> None:
    path = tmp_path / "org.p12"
    path.write_bytes(dev_pki.pkcs12("org", b"right"))
    with pytest.raises(ConfigError, match=r"org\.p12: cannot open the PKCS#12 bundle"):
        read_pkcs12(path, b"wrong")


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.p12: cannot read the PKCS#12 file"):
        read_pkcs12(tmp_path / "missing.p12", None)


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_P12_PASSWORD", "mật khẩu")
    assert read_secret(env="GATEWAY_P12_PASSWORD") == "mật khẩu".encode()
    monkeypatch.delenv("GATEWAY_P12_PASSWORD")
    with pytest.raises(ConfigError, match="GATEWAY_P12_PASSWORD is not set"):
        read_secret(env="GATEWAY_P12_PASSWORD")


def test_secret_file_must_be_private(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_bytes(b"s3cret\n")
    os.chmod(secret, 0o600)
    assert read_secret(file=secret) == b"s3cret"
    os.chmod(secret, 0o640)
    with pytest.raises(ConfigError, match="readable by other users"):
        read_secret(file=secret)


def test_exactly_one_secret_source() -> None:
    with pytest.raises(ConfigError, match="not both"):
        read_secret()
    with pytest.raises(ConfigError, match="not both"):
        read_secret(env="X", file=Path("y"))


def test_the_pdf_signer_signs_like_pyhanko_with_the_key_parsed_once(dev_pki: DevPKI) -> None:
    """Same bytes as pyHanko's stock SimpleSigner (RSA PKCS#1 v1.5 is deterministic)."""
    from pyhanko.sign.signers import SimpleSigner

    key = load_pkcs12(dev_pki.pkcs12("org", b"pw"), b"pw")
    ours = key.pdf_signer()
    assert isinstance(ours, SimpleSigner)
    stock = SimpleSigner(signing_cert=ours.signing_cert, signing_key=ours.signing_key, cert_registry=ours.cert_registry)
    data = b"signed attributes, DER"
    assert ours.sign_raw(data, "sha256") == stock.sign_raw(data, "sha256")
    assert key.pdf_signer() is ours  # built once per key
