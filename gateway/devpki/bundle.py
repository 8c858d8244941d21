"""Write a development PKI bundle: the files people and the verifier use (see ``layout``).

The PKCS#12 password is random per bundle and lives only in ``p12/PASSWORD`` (mode 0600), never
in a configuration file. CRLs are written as of the anchor time; the served ones stay fresh.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.clock import iso_vn
from gateway.devpki.keys import write_private
from gateway.devpki.layout import BundleLayout
from gateway.devpki.pki import DevPKI
from gateway.devpki.template import Role

__all__ = ["fingerprint", "write_bundle"]


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate as ``AB:CD:...``, the form ``openssl x509 -fingerprint`` prints."""
    digest = hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _key_text(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__  # pragma: no cover - the template only makes RSA and EC keys


def _toml(value: str | int | list[str]) -> str:
    # TOML basic strings: backslash, quote and control characters escaped; Vietnamese kept as is.
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _table(name: str, items: dict[str, str | int | list[str]]) -> list[str]:
    return [f"[{name}]", *(f"{key} = {_toml(value)}" for key, value in items.items()), ""]


def _manifest(pki: DevPKI, layout: BundleLayout) -> str:
    def rel(path: Path) -> str:
        return path.relative_to(layout.root).as_posix()

    anchors = pki.labels_with_role(Role.ANCHOR)
    intermediates = pki.labels_with_role(Role.INTERMEDIATE)
    urls = pki.urls
    lines = [
        "# Development PKI for the edXML gateway: a TEST copy of the VGCA G2 chain.",
        "# NEVER trust it in production. Written by `gateway dev-pki`; serve OCSP, CRLs and the TSA",
        "# with `gateway dev-pki serve <this directory>`. Times are ISO 8601 in Vietnam time (+07:00).",
        "",
        *_table(
            "pki",
            {
                "anchor_time": iso_vn(pki.anchor),
                "base_url": pki.base_url,
                "certomancer_config": rel(layout.config),
                "p12_password_file": rel(layout.password_file),
            },
        ),
        "# Paste into gateway.toml (paths relative to this directory).",
        *_table(
            "trust",
            {
                "anchors": [rel(layout.anchor(label)) for label in anchors],
                "intermediates": [rel(layout.intermediate(label)) for label in intermediates],
            },
        ),
        *_table(
            "policies",
            {"organisation": pki.policy_oids.organisation, "person": pki.policy_oids.person},
        ),
        *_table(
            "services",
            {
                "ocsp": urls.ocsp,
                "ocsp_root": urls.ocsp_root,
                "crl": urls.crl,
                "crl_root": urls.crl_root,
                "ca_issuers": urls.ca_issuers,
                "ca_issuers_root": urls.ca_issuers_root,
                "tsa": urls.tsa,
            },
        ),
        *_table(
            "revocation",
            {"label": "revoked", "revoked_at": iso_vn(pki.revocation_time), "reason": "keyCompromise"},
        ),
    ]
    for profile in pki.profiles:
        cert = pki.certificate(profile.label)
        entry: dict[str, str | int | list[str]] = {
            "purpose": profile.purpose,
            "role": profile.role.value,
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "serial": f"{cert.serial_number:X}",
            "sha256": fingerprint(cert),
            "not_before": iso_vn(cert.not_valid_before_utc),
            "not_after": iso_vn(cert.not_valid_after_utc),
            "key": _key_text(cert),
            "cert": rel(layout.cert(profile.label)),
            "key_file": rel(layout.key(profile.label)),
        }
        if not profile.role.is_ca:
            entry["p12"] = rel(layout.p12(profile.label))
        lines += _table(f"certs.{_toml(profile.label)}", entry)
    return "\n".join(lines)


def write_bundle(pki: DevPKI, out_dir: Path) -> BundleLayout:
    """Write the documented bundle layout (see the module docstring) for ``pki`` into ``out_dir``.

    ``out_dir`` may be the PKI's own directory (what ``gateway dev-pki`` does); otherwise the
    configuration and keys are copied so that the bundle can be served on its own.

    Args:
        pki: the development PKI.
        out_dir: target directory (created if missing); existing bundle files are replaced.

    Returns:
        The layout of the written bundle.

    Raises:
        OSError: when the directory cannot be written.
    """
    layout = BundleLayout(out_dir)
    for sub in ("trust/anchors", "trust/intermediates", "certs", "crl"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    for secret_dir in ("keys", "p12"):
        (out_dir / secret_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        (out_dir / secret_dir).chmod(0o700)
    if out_dir.resolve() != pki.directory.resolve():
        layout.config.write_bytes(pki.layout.config.read_bytes())
        for label in pki.labels:
            write_private(layout.key(label), pki.key_path(label).read_bytes())
    for label in pki.labels_with_role(Role.ANCHOR):
        layout.anchor(label).write_bytes(_pem(pki.certificate(label)))
        layout.anchor_fingerprint(label).write_text(
            f"SHA256 Fingerprint={fingerprint(pki.certificate(label))}\n", encoding="ascii"
        )
    for label in pki.labels_with_role(Role.INTERMEDIATE):
        layout.intermediate(label).write_bytes(_pem(pki.certificate(label)))
    for label in pki.labels:
        layout.cert(label).write_bytes(_pem(pki.certificate(label)))
    password = secrets.token_urlsafe(24)
    write_private(layout.password_file, password.encode("ascii"))
    for profile in pki.profiles:
        if not profile.role.is_ca:
            write_private(layout.p12(profile.label), pki.pkcs12(profile.label, password.encode("ascii")))
    for issuer in pki.crl_issuers:
        layout.crl(issuer).write_bytes(pki.crl(issuer).public_bytes(Encoding.DER))
    layout.manifest.write_text(_manifest(pki, layout), encoding="utf-8")
    return layout
