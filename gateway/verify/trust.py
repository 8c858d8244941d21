"""Pinned trust anchors and the trust settings of one verification.

``TrustStore.load`` reads the anchors and intermediates named in ``gateway.toml`` once at
start-up (spec G5.1): every anchor must match a pinned SHA-256 fingerprint, be a CA and be
readable, and the store must not be empty; anything else is a ``ConfigError`` naming the file.
Intermediates are untrusted helpers for path building, never anchors. Names never decide
trust (spec G1.14): a certificate named exactly like an anchor is not one unless its bytes
hash to a pin.

``ExamSettings`` is what the admin's policy decides per verification: revocation mode, clock
skew tolerance and fetch deadlines. The checker that uses both lives in ``gateway.verify.chain``
(``TrustChecker.check_certificate``), the long-lived examiner in ``gateway.verify.pdf``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko_certvalidator.registry import SimpleTrustManager

from gateway.errors import ConfigError
from gateway.verify.certs import certificate_facts
from gateway.verify.facts import CertificateFacts

__all__ = ["ExamSettings", "Purpose", "RevocationMode", "TrustStore", "normalise_fingerprint"]

RevocationMode = Literal["hard-fail", "soft-fail", "off"]
"""``hard-fail``: no usable answer -> REVOCATION_UNAVAILABLE; ``soft-fail``: no answer is
treated as not revoked and reported as such; ``off``: no revocation checking at all."""

Purpose = Literal["signing", "timestamping"]
"""What the certificate was used for; ``timestamping`` requires EKU id-kp-timeStamping."""

_HEX64 = re.compile(r"[0-9A-F]{64}")


@dataclass(frozen=True)
class ExamSettings:
    """Trust settings of one verification (built by the policy layer from the admin's policy).

    Raises:
        ValueError: an unknown revocation mode, a negative tolerance or a non-positive timeout.
    """

    revocation_mode: RevocationMode = "hard-fail"
    time_tolerance: timedelta = timedelta(minutes=5)
    """Clock skew allowed on validity periods and revocation freshness."""
    request_timeout: float = 20.0
    """Seconds one OCSP, CRL or caIssuers request may take."""
    total_timeout: float = 60.0
    """Seconds all fetching for one certificate check may take; later fetches fail at once."""

    def __post_init__(self) -> None:
        if self.revocation_mode not in get_args(RevocationMode):
            raise ValueError(f"unknown revocation mode {self.revocation_mode!r}; use {get_args(RevocationMode)}")
        if self.time_tolerance < timedelta(0):
            raise ValueError("time_tolerance cannot be negative")
        if self.request_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("fetch timeouts must be positive")


def normalise_fingerprint(text: str) -> str:
    """A pinned fingerprint as 64 upper-case hex digits.

    Accepts ``AB:CD:...``, ``abcd...`` and the ``openssl x509 -fingerprint -sha256`` line
    (``SHA256 Fingerprint=AB:CD:...``).

    Raises:
        ValueError: not a SHA-256 fingerprint.
    """
    value = text.strip()
    if "=" in value:
        label, _, value = value.partition("=")
        if label.strip().upper().replace("-", "") not in {"SHA256 FINGERPRINT", "SHA256"}:
            raise ValueError(f"{text!r} is not a SHA-256 fingerprint")
    value = value.replace(":", "").replace(" ", "").upper()
    if not _HEX64.fullmatch(value):
        raise ValueError(f"{text!r} is not a SHA-256 fingerprint (64 hexadecimal digits, colons allowed)")
    return value


def _read_certificates(path: Path, what: str) -> list[Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} ({exc.strerror or exc})", path=path) from None
    try:
        if pem.detect(data):
            blocks = [der for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
        else:
            blocks = [data]
        certs = [asn1_x509.Certificate.load(der) for der in blocks]
        for cert in certs:
            certificate_facts(cert)  # parses every field now: a broken file fails at start-up
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the {what} is not a PEM or DER X.509 certificate ({exc})", path=path) from None
    if not certs:
        raise ConfigError(f"the {what} holds no certificate", path=path)
    return certs


@dataclass(frozen=True)
class TrustStore:
    """Pinned anchors and untrusted intermediates, loaded once per process."""

    anchors: tuple[Any, ...]
    """``asn1crypto`` certificates, each matching a pinned fingerprint."""
    intermediates: tuple[Any, ...] = ()
    """``asn1crypto`` certificates offered to path building; never trusted by themselves."""
    trust_manager: SimpleTrustManager = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.anchors:
            raise ConfigError("the trust store is empty: no path can be trusted", hint="configure [trust] anchors")
        object.__setattr__(self, "trust_manager", SimpleTrustManager.build(trust_roots=list(self.anchors)))

    @classmethod
    def load(cls, anchors: Sequence[Path], pins: Sequence[str], intermediates: Sequence[Path] = ()) -> TrustStore:
        """Read and check the configured trust material.

        Args:
            anchors: PEM or DER files of the trust anchors (a PEM file may hold several).
            pins: SHA-256 fingerprints; every anchor must match one, every pin one anchor.
            intermediates: PEM or DER files of CA certificates that help path building.

        Returns:
            The store.

        Raises:
            ConfigError: an unreadable or non-certificate file, a non-CA anchor or intermediate,
                an anchor matching no pin, a pin matching no anchor, a malformed pin, or no
                anchor at all. The message names the file and the fingerprints.
        """
        try:
            pinned = {normalise_fingerprint(pin) for pin in pins}
        except ValueError as exc:
            raise ConfigError(str(exc), hint='pin anchors with anchor_sha256 = ["AB:CD:..."]') from None
        if not anchors or not pinned:
            raise ConfigError("the trust store is empty: no path can be trusted", hint="configure [trust] anchors")
        loaded: list[Any] = []
        matched: set[str] = set()
        for path in anchors:
            for cert in _read_certificates(path, "trust anchor"):
                facts = certificate_facts(cert)
                if facts.sha256 not in pinned:
                    raise ConfigError(
                        f"the trust anchor {facts.subject} has SHA-256 fingerprint {_colons(facts.sha256)}, "
                        f"which is not pinned (pinned: {', '.join(_colons(p) for p in sorted(pinned))})",
                        path=path,
                        hint="check that the file is the anchor you meant, then pin its fingerprint",
                    )
                if not facts.is_ca:
                    raise ConfigError(f"the trust anchor {facts.subject} is not a CA certificate", path=path)
                matched.add(facts.sha256)
                loaded.append(cert)
        unused = pinned - matched
        if unused:
            raise ConfigError(
                f"pinned fingerprint(s) {', '.join(_colons(p) for p in sorted(unused))} match no anchor file",
                hint="add the anchor's file to [trust] anchors or remove the stale pin",
            )
        helpers: list[Any] = []
        for path in intermediates:
            for cert in _read_certificates(path, "intermediate certificate"):
                if not certificate_facts(cert).is_ca:
                    raise ConfigError("the intermediate certificate is not a CA certificate", path=path)
                helpers.append(cert)
        return cls(anchors=tuple(loaded), intermediates=tuple(helpers))

    @property
    def anchor_facts(self) -> tuple[CertificateFacts, ...]:
        """The anchors as facts (for ``gateway rules show`` and reports)."""
        return tuple(certificate_facts(cert) for cert in self.anchors)


def _colons(hex_digits: str) -> str:
    return ":".join(hex_digits[i : i + 2] for i in range(0, len(hex_digits), 2))
