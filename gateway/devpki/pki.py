"""``DevPKI``: generate the test VGCA PKI in a directory, load it back, hand out its objects.

A DevPKI directory holds ``certomancer.yml`` (the filled template, see ``template``) and
``keys/<label>.key.pem``. Certificates are not stored there: certomancer derives them
deterministically from the configuration and keys, so loading the directory again (``gateway
dev-pki serve``) yields byte-identical certificates. ``write_bundle`` adds the user-facing files.

Certificates are offered both as ``cryptography`` objects (for code and tests) and as
``asn1crypto`` objects (what certomancer and pyHanko speak).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import yaml
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig, PKIArchitecture, ServiceLabel
from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, NoEncryption, pkcs12

from gateway.clock import to_utc
from gateway.devpki import backend
from gateway.devpki.keys import PrivateKey, load_key, provision_keys
from gateway.devpki.layout import CONFIG_FILE, BundleLayout
from gateway.devpki.template import (
    KEY_DIR,
    CertificateProfile,
    PolicyOids,
    Role,
    SplitConfig,
    dump_config,
    render_template,
    split_config,
)
from gateway.errors import ConfigError

__all__ = ["DevPKI", "ServiceUrls"]


@dataclass(frozen=True)
class ServiceUrls:
    """Where the served PKI answers (the same URLs the certificates carry)."""

    ocsp: str
    """OCSP for certificates issued by the intermediate (the leaves)."""
    ocsp_root: str
    """OCSP for certificates issued by the root (the intermediate)."""
    crl: str
    """Latest CRL of the intermediate (DER)."""
    crl_root: str
    """Latest CRL of the root (DER)."""
    ca_issuers: str
    """The intermediate certificate (DER), as in the leaves' AIA caIssuers."""
    ca_issuers_root: str
    """The root certificate (DER)."""
    tsa: str
    """RFC 3161 time-stamping over HTTP POST."""


class DevPKI:
    """The development PKI: certomancer's architecture plus the template's metadata.

    Build one with ``DevPKI.generate`` or ``DevPKI.load``; the constructor is internal.
    """

    def __init__(self, directory: Path, split: SplitConfig, config: CertomancerConfig) -> None:
        self.directory = directory
        self._split = split
        self._profiles = {profile.label: profile for profile in split.certificates}
        self.architecture: PKIArchitecture = config.get_pki_arch(ArchLabel(split.architecture))
        # Mint every certificate now: failures surface here, and the HTTP server's threads only
        # ever read certomancer's caches afterwards.
        try:
            self._certs = {label: self._mint(label) for label in self._profiles}
        except Exception as exc:
            # certomancer reports template mistakes as assorted exceptions (its ConfigurationError,
            # KeyError, ValueError from asn1crypto); to the user they all mean the same thing.
            raise ConfigError(f"cannot mint the certificates: {exc}", path=directory / CONFIG_FILE) from exc

    # ------------------------------------------------------------------ construction
    @classmethod
    def generate(cls, directory: Path, *, base_url: str, anchor: datetime, key_cache: Path | None = None) -> DevPKI:
        """Generate fresh keys and a filled configuration in ``directory`` and load them.

        Args:
            directory: where ``certomancer.yml`` and ``keys/`` go (created if missing; existing
                files of a previous PKI are replaced).
            base_url: URL prefix of the OCSP/CRL/certificate/TSA services, baked into the
                certificates, e.g. ``http://127.0.0.1:8790``.
            anchor: aware time the validity periods are relative to (usually now).
            key_cache: optional directory of keys to reuse from earlier runs (tests).

        Returns:
            The loaded PKI.

        Raises:
            ConfigError: for a bad ``base_url`` or template.
            ValueError: for a naive ``anchor``.
            OSError: when ``directory`` cannot be written.
        """
        config = render_template(anchor=anchor, base_url=base_url)
        split = split_config(config, source=CONFIG_FILE)
        directory.mkdir(parents=True, exist_ok=True)
        provision_keys(
            {profile.label: profile.key for profile in split.certificates},
            directory / KEY_DIR,
            cache=key_cache,
        )
        (directory / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
        return cls(directory, split, _certomancer(split, directory))

    @classmethod
    def load(cls, directory: Path) -> DevPKI:
        """Load a PKI that ``generate`` (or ``gateway dev-pki``) wrote earlier.

        Args:
            directory: the directory holding ``certomancer.yml`` and ``keys/``.

        Returns:
            The PKI, with the same certificates as when it was generated.

        Raises:
            ConfigError: when the directory holds no readable development PKI.
        """
        path = directory / CONFIG_FILE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"no development PKI here ({exc.__class__.__name__})",
                path=path,
                hint="create one with: gateway dev-pki DIR",
            ) from exc
        if not isinstance(raw, dict):
            raise ConfigError("not a development PKI configuration", path=path)
        split = split_config(raw, source=str(path))
        return cls(directory, split, _certomancer(split, directory))

    # ------------------------------------------------------------------ metadata
    @property
    def layout(self) -> BundleLayout:
        """Paths in this PKI's directory (the bundle files exist once ``write_bundle`` ran on it)."""
        return BundleLayout(self.directory)

    @property
    def anchor(self) -> datetime:
        """The anchor time (UTC, whole seconds) every validity period is relative to."""
        return self._split.anchor

    @property
    def base_url(self) -> str:
        """The URL prefix baked into the certificates (no trailing slash)."""
        return self._split.base_url

    @property
    def policy_oids(self) -> PolicyOids:
        """The organisation / person certificatePolicies OIDs."""
        return self._split.policies

    @property
    def profiles(self) -> tuple[CertificateProfile, ...]:
        """Every certificate's label, key kind, role and purpose, in template order."""
        return self._split.certificates

    @property
    def labels(self) -> tuple[str, ...]:
        """Every certificate label, in template order."""
        return tuple(self._profiles)

    def profile(self, label: str) -> CertificateProfile:
        """The template's description of one certificate (raises ``KeyError`` if unknown)."""
        return self._profiles[label]

    def labels_with_role(self, *roles: Role) -> tuple[str, ...]:
        """Labels of the certificates that have one of ``roles``, in template order."""
        return tuple(p.label for p in self._split.certificates if p.role in roles)

    @property
    def revocation_time(self) -> datetime:
        """When the ``revoked`` certificate was revoked (aware UTC; OCSP and CRL report it)."""
        spec = self.architecture.get_cert_spec(CertLabel("revoked"))
        if spec.revocation is None:  # pragma: no cover - the template always revokes it
            raise ConfigError("the 'revoked' certificate is not revoked", path=CONFIG_FILE)
        return to_utc(spec.revocation.revoked_since)

    @property
    def crl_issuers(self) -> tuple[str, ...]:
        """Labels of the CRL repositories (``intermediate``, ``root``), for ``crl()``."""
        return tuple(info.label.value for info in self.architecture.service_registry.list_crl_repos())

    @property
    def urls(self) -> ServiceUrls:
        """The served endpoints, as the certificates name them."""
        registry = self.architecture.service_registry
        return ServiceUrls(
            ocsp=registry.get_ocsp_info(ServiceLabel("intermediate")).url,
            ocsp_root=registry.get_ocsp_info(ServiceLabel("root")).url,
            crl=registry.get_crl_repo_info(ServiceLabel("intermediate")).latest_external_url,
            crl_root=registry.get_crl_repo_info(ServiceLabel("root")).latest_external_url,
            # The DER form (ca.crt), as certomancer writes it into AIA caIssuers.
            ca_issuers=registry.get_cert_repo_info(ServiceLabel("intermediate")).url + "/ca.crt",
            ca_issuers_root=registry.get_cert_repo_info(ServiceLabel("root")).url + "/ca.crt",
            tsa=registry.get_tsa_info(ServiceLabel("tsa")).url,
        )

    # ------------------------------------------------------------------ objects
    def certificate(self, label: str) -> x509.Certificate:
        """The certificate labelled ``label`` (raises ``KeyError`` if unknown)."""
        self._check(label)
        return self._certs[label]

    def certificate_asn1(self, label: str) -> Any:
        """The same certificate as an ``asn1crypto.x509.Certificate``."""
        self._check(label)
        return self.architecture.get_cert(CertLabel(label))

    def key_path(self, label: str) -> Path:
        """Path of the PEM private key of ``label``."""
        self._check(label)
        return self.layout.key(label)

    def private_key(self, label: str) -> PrivateKey:
        """The private key of ``label``.

        Raises:
            KeyError: for an unknown label.
            ConfigError: when the key file is missing or damaged.
        """
        return load_key(self.key_path(label))

    def chain(self, label: str) -> tuple[x509.Certificate, ...]:
        """The issuers of ``label``, nearest first, ending with its self-signed root."""
        self._check(label)
        return tuple(self._certs[issuer.value] for issuer in self.architecture.get_chain(CertLabel(label)))

    def pkcs12(self, label: str, password: bytes | None) -> bytes:
        """A PKCS#12 file with the key, certificate and chain of ``label``.

        Args:
            label: the certificate.
            password: encrypts the file (AES-256, PBKDF2); ``None`` leaves it unencrypted.

        Returns:
            The DER-encoded PKCS#12 (friendly name = label).
        """
        encryption = BestAvailableEncryption(password) if password else NoEncryption()
        return pkcs12.serialize_key_and_certificates(
            name=label.encode(),
            key=self.private_key(label),
            cert=self.certificate(label),
            cas=list(self.chain(label)),
            encryption_algorithm=encryption,
        )

    def crl(self, issuer: str = "intermediate", *, at: datetime | None = None) -> x509.CertificateRevocationList:
        """The CRL the service of ``issuer`` (``intermediate`` or ``root``) publishes at ``at``.

        Args:
            issuer: CRL repository label.
            at: aware time; defaults to the anchor.

        Returns:
            The CRL; thisUpdate is the last daily update at or before ``at``.
        """
        when = to_utc(at) if at is not None else self.anchor
        data = self.architecture.service_registry.get_crl(ServiceLabel(issuer), at_time=when).dump()
        return x509.load_der_x509_crl(cast(bytes, data))

    def _check(self, label: str) -> None:
        if label not in self._profiles:
            raise KeyError(f"no certificate labelled {label!r}; labels: {', '.join(self._profiles)}")

    def _mint(self, label: str) -> x509.Certificate:
        der = cast(bytes, self.architecture.get_cert(CertLabel(label)).dump())
        return x509.load_der_x509_certificate(der)


def _certomancer(split: SplitConfig, directory: Path) -> CertomancerConfig:
    backend.install()  # parse each key once, not at every signature (see backend.py)
    try:
        return CertomancerConfig(split.certomancer, key_search_dir=str(directory))
    except Exception as exc:
        # certomancer raises its own ConfigurationError, IOError for keys, KeyError for
        # dangling labels: all of them mean "this directory is not a usable PKI".
        raise ConfigError(f"cannot load the development PKI: {exc}", path=directory / CONFIG_FILE) from exc
