"""Where everything lives in a development PKI directory ("bundle"): paths only, no I/O.

::

    DIR/
      pki.toml                       what is what: labels, subjects, fingerprints, validity, URLs
      certomancer.yml                filled certomancer configuration (``gateway dev-pki serve``)
      trust/anchors/root.pem         the trust anchor ([trust] anchors in gateway.toml)
      trust/anchors/root.fingerprint its SHA-256 fingerprint, ``openssl x509 -fingerprint`` style
      trust/intermediates/intermediate.pem   untrusted helper ([trust] intermediates)
      certs/<label>.pem              every certificate, impostors included
      keys/<label>.key.pem           unencrypted PKCS#8 private keys, mode 0600 (directory 0700)
      p12/<label>.p12                key + certificate + chain for every non-CA certificate, 0600
      p12/PASSWORD                   the PKCS#12 password (whole file, no newline), mode 0600
      crl/<issuer>.crl               DER CRLs as of the anchor time (the served ones stay fresh)

``DevPKI.generate`` writes ``certomancer.yml`` and ``keys/``; ``write_bundle`` the rest.
``BundleLayout`` is the single definition of these paths, for the writers and for every
reader (the CLI, the test fixture, later the verifier's ``[trust]`` configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.devpki.template import KEY_DIR

__all__ = ["CONFIG_FILE", "MANIFEST", "BundleLayout"]

CONFIG_FILE = "certomancer.yml"
"""The filled configuration inside a DevPKI directory."""

MANIFEST = "pki.toml"
"""The bundle's description for people and programs."""


@dataclass(frozen=True)
class BundleLayout:
    """Paths inside a bundle directory (pure: nothing is read or written)."""

    root: Path

    @property
    def manifest(self) -> Path:
        """``pki.toml``."""
        return self.root / MANIFEST

    @property
    def config(self) -> Path:
        """``certomancer.yml``."""
        return self.root / CONFIG_FILE

    @property
    def password_file(self) -> Path:
        """``p12/PASSWORD``."""
        return self.root / "p12" / "PASSWORD"

    def anchor(self, label: str) -> Path:
        """``trust/anchors/<label>.pem``."""
        return self.root / "trust" / "anchors" / f"{label}.pem"

    def anchor_fingerprint(self, label: str) -> Path:
        """``trust/anchors/<label>.fingerprint``."""
        return self.root / "trust" / "anchors" / f"{label}.fingerprint"

    def intermediate(self, label: str) -> Path:
        """``trust/intermediates/<label>.pem``."""
        return self.root / "trust" / "intermediates" / f"{label}.pem"

    def cert(self, label: str) -> Path:
        """``certs/<label>.pem``."""
        return self.root / "certs" / f"{label}.pem"

    def key(self, label: str) -> Path:
        """``keys/<label>.key.pem``."""
        return self.root / KEY_DIR / f"{label}.key.pem"

    def p12(self, label: str) -> Path:
        """``p12/<label>.p12``."""
        return self.root / "p12" / f"{label}.p12"

    def crl(self, issuer: str) -> Path:
        """``crl/<issuer>.crl``."""
        return self.root / "crl" / f"{issuer}.crl"

    @property
    def entries(self) -> tuple[Path, ...]:
        """The top-level files and directories a bundle owns (``--force`` removes exactly these)."""
        names = (MANIFEST, CONFIG_FILE, "trust", "certs", KEY_DIR, "p12", "crl")
        return tuple(self.root / name for name in names)

    def holds_bundle(self) -> bool:
        """True when the directory already holds a bundle (or the start of one)."""
        return self.manifest.exists() or self.config.exists()
