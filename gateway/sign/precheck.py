"""Before every signature: is the organisation certificate fit to sign *now*? (Decree 68 Art. 29)

Art. 29 puts two checks before the signing step: the signer's certificate is valid (Art. 31:
validity period, not revoked, scope of use) and its certification path is valid (Art. 32).
``OrganisationCheck.ensure_fit`` asks the examiner (``examine_certificate``: path validation to
a pinned anchor, revocation hard-fail, never re-implemented here) and then judges the facts the
examiner only reports: a signing key usage, not a CA, and the algorithm floors of the admin's
policy (RSA >= 2048, ECDSA >= 256 by default; Circular 15/2025).

Outcomes: fit (returns the trust facts); ``SealingRefused`` with ``org-cert-invalid`` (expired,
not yet valid, bad usage, CA, weak key), ``org-cert-revoked`` or ``org-cert-untrusted``;
``SealingDeferred`` ``org-cert-revocation-unavailable`` when no revocation answer can be had now
(hard-fail: "unknown" is never "good").

Caching rule (the key is the same for every document, so a batch must not re-check per
document): a *fit* verdict is reused until the earliest of

* ``checked_at + recheck_every`` — by default the examiner's own cache lifetime for an answer
  without nextUpdate (``CachePolicy.max_age_without_next_update``, 5 minutes), so the sealer never
  leans on a revocation answer longer than the examiner itself would;
* for an OCSP answer, its ``producedAt + recheck_every`` (an answer the examiner served from its
  cache is older than the check, and its age counts), so no OCSP answer older than
  ``recheck_every`` vouches for a signature;
* the certificate's notAfter.

"Never past the revocation answer's validity": the validator accepts an OCSP or CRL answer only
while it is current (before its nextUpdate) at the check, and ``recheck_every`` is minutes where
real answers stay current for hours or days. ``RevocationFacts`` carries no nextUpdate, so the
bound cannot be exact yet; once it does, it joins the list above. (A CRL's thisUpdate is no
bound: CRLs are routinely a day old.)

A refusal or a deferral is never cached: the next document checks again (a fixed revocation
service or a replaced key then takes effect at once). Concurrent callers share one check in
flight, so a burst of documents at start-up asks the OCSP responder once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509

from gateway.clock import Clock, iso_vn
from gateway.sign.keys import OrganisationKey
from gateway.sign.refusals import SealingDeferred, SealingRefused
from gateway.verify.certs import certificate_facts
from gateway.verify.facts import CertificateFacts, TrustFacts, TrustOutcome
from gateway.verify.policy import AlgorithmPolicy
from gateway.verify.trust import ExamSettings, Purpose

__all__ = ["CertificateExamining", "OrganisationCheck", "certificate_problems"]

_log = logging.getLogger(__name__)

_SIGNING_USAGES = frozenset({"digital_signature", "non_repudiation"})

_REFUSAL_CODES = {
    TrustOutcome.EXPIRED: "org-cert-invalid",
    TrustOutcome.NOT_YET_VALID: "org-cert-invalid",
    TrustOutcome.BAD_USAGE: "org-cert-invalid",
    TrustOutcome.REVOKED: "org-cert-revoked",
    TrustOutcome.UNTRUSTED: "org-cert-untrusted",
}


class CertificateExamining(Protocol):
    """What the pre-check needs of the examiner (``gateway.verify.pdf.Examiner``)."""

    async def examine_certificate(
        self,
        cert: x509.Certificate,
        *,
        at: datetime | None = None,
        purpose: Purpose = "signing",
        settings: ExamSettings,
        extra_certs: Sequence[x509.Certificate] = (),
    ) -> TrustFacts:
        """Path validation of one certificate at ``at``."""
        ...


def certificate_problems(cert: CertificateFacts, floors: AlgorithmPolicy) -> list[str]:
    """What makes a certificate unfit to sign, beyond its path (Decree 68 Art. 31.1.b, Circular 15).

    Args:
        cert: the certificate's facts.
        floors: the admin's algorithm floors.

    Returns:
        English phrases, empty when the certificate may sign. An absent keyUsage extension
        restricts nothing (RFC 5280 §4.2.1.3), as on the verifying side.
    """
    problems: list[str] = []
    if cert.key_usage and not cert.key_usage & _SIGNING_USAGES:
        problems.append(f"key usage {', '.join(sorted(cert.key_usage))} allows no signing")
    if cert.is_ca:
        problems.append("it is a CA certificate")
    if cert.key_algorithm == "rsa" and cert.key_bits < floors.rsa_min_bits:
        problems.append(f"RSA key of {cert.key_bits} bits (< {floors.rsa_min_bits})")
    elif cert.key_algorithm == "ec" and cert.key_bits < floors.ecdsa_min_bits:
        problems.append(f"ECDSA key of {cert.key_bits} bits (< {floors.ecdsa_min_bits})")
    elif cert.key_algorithm not in {"rsa", "ec"}:
        problems.append(f"{cert.key_algorithm} keys are not permitted (RSA, ECDSA)")
    return problems


class OrganisationCheck:
    """The cached Art. 29 pre-check of one organisation key (one per ``Sealer``).

    Args:
        key: the organisation key (its certificate and intermediates).
        examiner: path validation and revocation.
        clock: the time source.
        settings: exam settings; the revocation mode must be ``hard-fail``.
        floors: the admin's algorithm floors.
        recheck_every: how long a fit verdict may be reused (see the module docstring).

    Raises:
        ValueError: a revocation mode other than ``hard-fail`` (Art. 29 needs an answer), or a
            negative ``recheck_every``.
    """

    def __init__(
        self,
        key: OrganisationKey,
        examiner: CertificateExamining,
        clock: Clock,
        *,
        settings: ExamSettings,
        floors: AlgorithmPolicy,
        recheck_every: timedelta,
    ) -> None:
        if settings.revocation_mode != "hard-fail":
            raise ValueError("the organisation certificate is checked with revocation_mode 'hard-fail' only")
        if recheck_every < timedelta(0):
            raise ValueError("recheck_every cannot be negative")
        self._key = key
        self._examiner = examiner
        self._clock = clock
        self._settings = settings
        self._floors = floors
        self._recheck_every = recheck_every
        self._facts = certificate_facts(key.certificate)
        self._fit: TrustFacts | None = None
        self._fit_until: datetime | None = None
        self._running: asyncio.Future[TrustFacts] | None = None
        self.checks = 0
        """How many times the examiner was asked (for tests and metrics)."""

    @property
    def certificate(self) -> CertificateFacts:
        """The organisation certificate's facts."""
        return self._facts

    async def ensure_fit(self) -> TrustFacts:
        """The certificate's trust facts now, from the cache or a fresh check.

        Returns:
            Facts with outcome TRUSTED for a certificate fit to sign.

        Raises:
            SealingRefused: ``org-cert-invalid``, ``org-cert-revoked`` or ``org-cert-untrusted``.
            SealingDeferred: ``org-cert-revocation-unavailable``.
        """
        now = self._clock.now()
        if self._fit is not None and self._fit_until is not None and now < self._fit_until:
            return self._fit
        if self._running is None:
            # One check in flight at a time; later callers await the same one.
            self._running = asyncio.ensure_future(self._check())
            self._running.add_done_callback(self._finished)
        return await asyncio.shield(self._running)

    def _finished(self, future: asyncio.Future[TrustFacts]) -> None:
        self._running = None
        if not future.cancelled():
            future.exception()  # retrieved: an unawaited failure must not be logged as lost

    async def _check(self) -> TrustFacts:
        self.checks += 1
        now = self._clock.now()
        subject = self._facts.subject
        facts = await self._examiner.examine_certificate(
            self._key.certificate,
            at=now,
            purpose="signing",
            settings=self._settings,
            extra_certs=self._key.chain,
        )
        outcome = facts.outcome
        if outcome is TrustOutcome.REVOCATION_UNAVAILABLE:
            raise SealingDeferred("org-cert-revocation-unavailable", f"{subject} ({self._key.source}): {facts.detail}")
        if outcome is not TrustOutcome.TRUSTED:
            code = _REFUSAL_CODES.get(outcome, "org-cert-untrusted")
            raise SealingRefused(code, f"{subject} ({self._key.source}) is {outcome.value}: {facts.detail}")
        problems = certificate_problems(self._facts, self._floors)
        if problems:
            raise SealingRefused("org-cert-invalid", f"{subject} ({self._key.source}): {'; '.join(problems)}")
        self._fit, self._fit_until = facts, self._reuse_until(facts, now)
        _log.info("organisation certificate %s fit to sign; re-checked after %s", subject, iso_vn(self._fit_until))
        return facts

    def _reuse_until(self, facts: TrustFacts, now: datetime) -> datetime:
        limits = [now + self._recheck_every, self._facts.not_after]
        revocation = facts.revocation
        if revocation is not None and revocation.source == "ocsp" and revocation.produced_at is not None:
            limits.append(revocation.produced_at + self._recheck_every)
        return min(limits)
