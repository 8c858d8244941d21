"""The template's small rules, key provisioning and the package's public surface (no PKI needed)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import gateway.devpki
from gateway.devpki.keys import generate_key, load_key, provision_keys
from gateway.devpki.template import check_base_url, dump_config, render_template, split_config
from gateway.errors import ConfigError

ANCHOR = datetime(2025, 3, 14, 2, 5, 7, 123456, tzinfo=UTC)


def test_public_names() -> None:
    assert set(gateway.devpki.__all__) == {
        "CONFIG_FILE",
        "FAKE_TIME_HEADER",
        "MANIFEST",
        "BundleLayout",
        "CertificateProfile",
        "DevPKI",
        "PKIServer",
        "PolicyOids",
        "Role",
        "ServiceUrls",
        "bind_listener",
        "fingerprint",
        "serve_pki",
        "write_bundle",
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8790", "http://127.0.0.1:8790"),
        ("http://127.0.0.1:8790/", "http://127.0.0.1:8790"),
        ("https://pki.example.invalid/dev", "https://pki.example.invalid/dev"),
    ],
)
def test_base_url_is_normalised(url: str, expected: str) -> None:
    assert check_base_url(url) == expected


@pytest.mark.parametrize(
    "url", ["127.0.0.1:8790", "ftp://host/", "http://", "http://host/?q=1", "http://host/#x", "http://host:99999"]
)
def test_bad_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="PKI base URL"):
        check_base_url(url)


def test_render_resolves_anchor_offsets_and_urls() -> None:
    config = render_template(anchor=ANCHOR, base_url="http://127.0.0.1:1234/")
    anchor = ANCHOR.replace(microsecond=0)
    certs = config["pki-architectures"]["vgca-test"]["certs"]
    assert certs["root"]["validity"]["valid-from"] == (anchor - timedelta(days=5 * 365)).isoformat()
    assert certs["expired"]["validity"]["valid-to"] == (anchor - timedelta(days=365)).isoformat()
    assert certs["revoked"]["revocation"]["revoked-since"] == (anchor - timedelta(days=30)).isoformat()
    assert config["external-url-prefix"] == "http://127.0.0.1:1234"
    assert config["keysets"]["vgca-test"]["keys"]["org"] == {"path": "org.key.pem"}
    split = split_config(config, source="test")
    assert split.anchor == anchor
    assert "devpki" not in split.certomancer
    # What is written and read back is the same configuration.
    assert split_config(yaml.safe_load(dump_config(config)), source="test") == split
    again = render_template(anchor=ANCHOR, base_url="http://127.0.0.1:1234")
    assert again["pki-architectures"]["vgca-test"]["certs"]["org"]["serial"] != certs["org"]["serial"]


def test_render_refuses_a_naive_anchor() -> None:
    with pytest.raises(ValueError, match="naive"):
        render_template(anchor=datetime(2025, 1, 1), base_url="http://127.0.0.1:1")  # noqa: DTZ001


def test_split_refuses_a_foreign_configuration() -> None:
    with pytest.raises(ConfigError, match="not a development PKI configuration"):
        split_config({"devpki": {"architecture": "x"}}, source="x.yml")


def test_key_kinds() -> None:
    rsa_key = generate_key("rsa-1024")
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert rsa_key.key_size == 1024
    ec_key = generate_key("ec-p256")
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    assert isinstance(ec_key.curve, ec.SECP256R1)
    for kind in ("dsa-2048", "rsa-512", "ec-p999", "rsa"):
        with pytest.raises(ConfigError, match="unknown key kind"):
            generate_key(kind)


def test_key_cache_reuses_only_matching_keys(tmp_path: Path) -> None:
    cache, first, second = tmp_path / "cache", tmp_path / "one", tmp_path / "two"
    provision_keys({"a": "ec-p256", "b": "ec-p256"}, first, cache=cache)
    assert stat.S_IMODE(first.stat().st_mode) == 0o700
    assert stat.S_IMODE((first / "a.key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((cache / "a.ec-p256.key.pem").stat().st_mode) == 0o600
    (cache / "b.ec-p256.key.pem").write_bytes(b"damaged")
    provision_keys({"a": "ec-p256", "b": "ec-p256", "c": "ec-p384"}, second, cache=cache)
    assert (second / "a.key.pem").read_bytes() == (first / "a.key.pem").read_bytes()
    assert (second / "b.key.pem").read_bytes() != (first / "b.key.pem").read_bytes()
    p384 = load_key(second / "c.key.pem")
    assert isinstance(p384, ec.EllipticCurvePrivateKey)
    assert isinstance(p384.curve, ec.SECP384R1)
    assert isinstance(load_key(cache / "b.ec-p256.key.pem"), ec.EllipticCurvePrivateKey)
    with pytest.raises(ConfigError, match="unknown key kind"):
        provision_keys({"x": "rsa-huge"}, tmp_path / "three")
    assert not (tmp_path / "three").exists()  # checked before anything is written


def test_load_key_reports_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read private key") as caught:
        load_key(tmp_path / "missing.key.pem")
    assert caught.value.path == tmp_path / "missing.key.pem"
