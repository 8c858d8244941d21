"""Path validation of one certificate at one time: ``TrustChecker.check_certificate``.

Decree 68 Art. 31-32 asks whether every certificate on the path to a pinned anchor was valid
*and unrevoked at the signing time* (spec G1.11-G1.14). pyhanko-certvalidator does the PKIX
work; this module arranges it in two steps so that each outcome has one precise cause:

1. **The path at ``at``** with revocation checking off: chain building to a pinned anchor
   (intermediates from the store, the signature, AIA caIssuers), every link's signature and
   validity period at ``at`` (± the clock-skew tolerance), name and policy processing.
   Failures map to UNTRUSTED, EXPIRED or NOT_YET_VALID. Revocation URLs are therefore only
   ever followed for certificates that chain to a pinned anchor.
2. **Revocation, link by link, top down** (``gateway.verify.revocation``): OCSP first, then
   the CRL, judged *now* with the freshest answers (so a responder certificate issued after the
   signature still counts), falling back to point-in-time validation at ``at`` (a link expired
   since) and last to the answers embedded in the document (PAdES-LT, responders down). An
   answer "revoked at R" means revoked at signing time iff R <= ``at``: revoked after a trusted
   time stamp stays TRUSTED (Art. 31, G1.12). Revoked at signing time beats "no answer", which
   beats trusted; ``revocation_mode`` decides what "no answer" means.

Key usage, the CA flag and algorithm strength are *not* judged here (the rules judge them from
``CertificateFacts`` against the admin's policy), so the validator accepts every algorithm:
SHA-1 and RSA-1024 certificates validate and the facts show them. The one usage checked is the
TSA's EKU id-kp-timeStamping, which is part of a time stamp's validity (checklist A3).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pyhanko_certvalidator import CertificateValidator
from pyhanko_certvalidator import errors as cv_errors
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from gateway.clock import Clock, to_utc
from gateway.verify.certs import TIME_STAMPING_EKU, AnyCertificate, cert_der, facts_from_der, to_asn1
from gateway.verify.facts import CertificateFacts, RevocationFacts, TrustFacts, TrustOutcome
from gateway.verify.fetch import HttpFetchers
from gateway.verify.revocation import LinkStatus, RevocationProbe, no_check_context
from gateway.verify.trust import ExamSettings, Purpose, TrustStore

__all__ = ["TrustCheck", "TrustChecker"]

_log = logging.getLogger(__name__)

_GOOD_ANSWERS = 4096
"""Good revocation answers kept for reuse (oldest used dropped first)."""
_PATHS = 1024
"""Validated paths kept for reuse."""


def _valid_at(path: ValidationPath, at: datetime, tolerance: timedelta) -> bool:
    """Every certificate on ``path``, the anchor's included, is within its validity at ``at`` ± ``tolerance``."""
    for cert in path.iter_certs(include_root=True):
        validity = cert["tbs_certificate"]["validity"]
        not_before, not_after = validity["not_before"].native, validity["not_after"].native
        if not (not_before - tolerance <= at <= not_after + tolerance):
            return False
    return True


@dataclass(frozen=True)
class TrustCheck:
    """A check's facts plus the ETSI EN 319 102-1 sub-indication its outcome maps to."""

    facts: TrustFacts
    subindication: str | None
    """``None`` when trusted; e.g. ``NO_CERTIFICATE_CHAIN_FOUND``, ``REVOKED_NO_POE``,
    ``REVOKED_CA_NO_POE``, ``OUT_OF_BOUNDS_NO_POE``, ``TRY_LATER``, ``CHAIN_CONSTRAINTS_FAILURE``."""
    revoked_link_is_end_entity: bool = False


def _path_facts(path: ValidationPath | None) -> tuple[CertificateFacts, ...]:
    if path is None:
        return ()
    return tuple(facts_from_der(cert.dump()) for cert in path.iter_certs(include_root=True))


def _anchor_facts(path: ValidationPath | None) -> CertificateFacts | None:
    if path is None:
        return None
    try:
        return facts_from_der(path[0].dump())
    except LookupError:  # an anchor without a certificate: never built by TrustStore
        return None


class TrustChecker:
    """Judges certificates against the pinned store; long-lived (shares the fetchers' cache)."""

    def __init__(self, store: TrustStore, fetchers: HttpFetchers, clock: Clock) -> None:
        self._store = store
        self._fetchers = fetchers
        self._clock = clock
        # Good answers judged now, by path fingerprints, each until its answer's nextUpdate and
        # at most the cache's shortest age: re-judging the same link with the same cached
        # answer can only repeat them. Dropped whenever the fetchers evict anything.
        self._good: OrderedDict[tuple[Any, ...], tuple[datetime, LinkStatus]] = OrderedDict()
        self._evictions = fetchers.evictions
        # Validated paths by leaf and helper fingerprints (step 1 without its time checks).
        self._paths: OrderedDict[tuple[Any, ...], ValidationPath] = OrderedDict()

    async def check_certificate(
        self,
        cert: AnyCertificate,
        *,
        at: datetime,
        purpose: Purpose,
        settings: ExamSettings,
        extra_certs: Sequence[AnyCertificate] = (),
        crls: Sequence[Any] = (),
        ocsps: Sequence[Any] = (),
    ) -> TrustFacts:
        """Path validation of ``cert`` to a pinned anchor at ``at``, revocation per ``settings``.

        Args:
            cert: the certificate (``cryptography`` or ``asn1crypto``).
            at: aware time to judge it at (signing time or now).
            purpose: ``signing`` or ``timestamping`` (the latter requires EKU timeStamping).
            settings: revocation mode, tolerance, deadlines.
            extra_certs: untrusted certificates that may help build the path (CMS, DSS).
            crls: embedded CRLs (``asn1crypto`` ``CertificateList``), e.g. from a PDF's DSS.
            ocsps: embedded OCSP responses (``asn1crypto`` ``OCSPResponse``).

        Returns:
            The facts; never raises for a certificate that merely fails validation.

        Raises:
            ValueError: ``at`` is naive.
        """
        return (
            await self.check(
                cert, at=at, purpose=purpose, settings=settings, extra_certs=extra_certs, crls=crls, ocsps=ocsps
            )
        ).facts

    async def check(
        self,
        cert: AnyCertificate,
        *,
        at: datetime,
        purpose: Purpose,
        settings: ExamSettings,
        extra_certs: Sequence[AnyCertificate] = (),
        crls: Sequence[Any] = (),
        ocsps: Sequence[Any] = (),
    ) -> TrustCheck:
        """Like ``check_certificate``, with the ETSI sub-indication (for the PDF examiner).

        Raises:
            ValueError: ``at`` is naive.
        """
        at = to_utc(at)
        leaf = to_asn1(cert)
        fetchers = self._fetchers.backend(
            request_timeout=settings.request_timeout, total_timeout=settings.total_timeout
        ).get_fetchers()
        probe = RevocationProbe(
            store=self._store,
            fetchers=fetchers,
            extra_certs=[to_asn1(c) for c in extra_certs],
            crls=[CRLContainer(c) for c in crls],
            ocsps=[container for response in ocsps for container in OCSPContainer.load_multi(response)],
            tolerance=settings.time_tolerance,
        )
        checked = await self._path_at(leaf, at, probe)
        if isinstance(checked, TrustCheck):
            return checked
        path = checked

        def facts(outcome: TrustOutcome, detail: str, revocation: RevocationFacts | None) -> TrustFacts:
            return TrustFacts(outcome, at, detail, _anchor_facts(path), _path_facts(path), revocation)

        anchor = _anchor_facts(path)
        where = f"a path to the pinned anchor {anchor.subject if anchor else '?'}"
        if purpose == "timestamping" and TIME_STAMPING_EKU not in facts_from_der(cert_der(leaf)).extended_key_usage:
            detail = "the TSA certificate lacks the extended key usage id-kp-timeStamping"
            return TrustCheck(facts(TrustOutcome.BAD_USAGE, detail, None), "CHAIN_CONSTRAINTS_FAILURE")
        if settings.revocation_mode == "off":
            detail = f"{where} is valid at {at:%Y-%m-%d %H:%M:%SZ}; revocation checking is off"
            return TrustCheck(facts(TrustOutcome.TRUSTED, detail, RevocationFacts("none", "unknown")), None)

        now = self._clock.now()  # one verification time for every link of this check
        links = list(path.iter_certs(include_root=False))
        if not links:  # the certificate is a pinned anchor itself: nothing can revoke it
            detail = f"the certificate is the pinned anchor itself, valid at {at:%Y-%m-%d %H:%M:%SZ}"
            return TrustCheck(facts(TrustOutcome.TRUSTED, detail, RevocationFacts("none", "unknown")), None)
        statuses: list[LinkStatus] = []
        for index in range(len(links)):
            status = await self._link_status(probe, path, index, at=at, now=now, settings=settings)
            statuses.append(status)
            if status.revoked_by(at):
                break  # revoked at signing time: nothing below can repair that
        if any(s.status == "unknown" for s in statuses):
            self._fetchers.evict(fetchers)  # unusable answers must not block a refetch
        return _decide(statuses, links=len(links), at=at, settings=settings, where=where, build=facts)

    async def _link_status(
        self,
        probe: RevocationProbe,
        path: ValidationPath,
        index: int,
        *,
        at: datetime,
        now: datetime,
        settings: ExamSettings,
    ) -> LinkStatus:
        """``probe.link_status``, or the same link's good answer judged earlier while it is fresh."""
        certs = list(path.iter_certs(include_root=True))
        above = len(certs) - len(list(path.iter_certs(include_root=False)))  # the anchor's certificate, if any
        key = (tuple(c.sha256 for c in certs[: above + index + 1]), settings.time_tolerance)
        if self._fetchers.evictions != self._evictions:
            self._good.clear()
            self._evictions = self._fetchers.evictions
        kept = self._good.get(key)
        if kept is not None and now < kept[0]:
            self._good.move_to_end(key)
            return kept[1]
        status = await probe.link_status(path, index, at=at, now=now)
        if status.status == "good" and status.fresh_until is not None:
            until = min(status.fresh_until, now + self._fetchers.policy.max_age_without_next_update)
            if now < until:
                self._good[key] = (until, status)
                while len(self._good) > _GOOD_ANSWERS:
                    self._good.popitem(last=False)
        return status

    async def _path_at(self, leaf: Any, at: datetime, probe: RevocationProbe) -> ValidationPath | TrustCheck:
        """Step 1: the path at ``at``, revocation off; a failure is a finished ``TrustCheck``.

        A path validated before for the same certificate and the same helpers is used again
        when every certificate on it is within its validity period at ``at`` (± tolerance):
        what else step 1 checks (signatures, names, constraints, policies) does not depend on
        the time. Anything else is validated in full, failures included.
        """
        key = (leaf.sha256, tuple(sorted(c.sha256 for c in probe.extra_certs)), probe.tolerance)
        kept = self._paths.get(key)
        if kept is not None and _valid_at(kept, at, probe.tolerance):
            self._paths.move_to_end(key)
            return kept
        context = no_check_context(probe, moment=at)
        failure: cv_errors.ValidationError | cv_errors.PathError | ValueError
        try:
            validated: ValidationPath = await CertificateValidator(
                leaf, validation_context=context
            ).async_validate_path()
            self._paths[key] = validated
            while len(self._paths) > _PATHS:
                self._paths.popitem(last=False)
            return validated
        except (cv_errors.PathBuildingError, cv_errors.InvalidCertificateError) as exc:
            failure, outcome, sub, path = exc, TrustOutcome.UNTRUSTED, "NO_CERTIFICATE_CHAIN_FOUND", None
        except cv_errors.ExpiredError as exc:
            sub = "OUT_OF_BOUNDS_NO_POE" if exc.is_ee_cert else "CERTIFICATE_CHAIN_GENERAL_FAILURE"
            failure, outcome, path = exc, TrustOutcome.EXPIRED, exc.original_path
        except cv_errors.NotYetValidError as exc:
            sub = "OUT_OF_BOUNDS_NO_POE" if exc.is_ee_cert else "CERTIFICATE_CHAIN_GENERAL_FAILURE"
            failure, outcome, path = exc, TrustOutcome.NOT_YET_VALID, exc.original_path
        except cv_errors.PathValidationError as exc:  # a link's signature, names, policies
            failure, outcome, sub, path = exc, TrustOutcome.UNTRUSTED, "CERTIFICATE_CHAIN_GENERAL_FAILURE", None
        except (cv_errors.ValidationError, ValueError) as exc:  # ValueError: malformed DER inside
            failure, outcome, sub, path = exc, TrustOutcome.UNTRUSTED, "CERTIFICATE_CHAIN_GENERAL_FAILURE", None
        detail = str(failure) or type(failure).__name__
        _log.info("certificate check at %s: %s: %s", at.isoformat(), outcome.value, detail)
        facts = TrustFacts(outcome, at, detail, _anchor_facts(path), _path_facts(path), None)
        return TrustCheck(facts, sub)


def _decide(
    statuses: list[LinkStatus],
    *,
    links: int,
    at: datetime,
    settings: ExamSettings,
    where: str,
    build: Callable[[TrustOutcome, str, RevocationFacts | None], TrustFacts],
) -> TrustCheck:
    """Step 2's verdict: revoked at signing time beats no answer, which beats trusted."""
    when = f"{at:%Y-%m-%d %H:%M:%SZ}"
    for position, status in enumerate(statuses):
        if status.revoked_by(at):
            end_entity = position == links - 1
            detail = f"{status.subject} was revoked at or before {when}: {status.detail}"
            sub = "REVOKED_NO_POE" if end_entity else "REVOKED_CA_NO_POE"
            return TrustCheck(build(TrustOutcome.REVOKED, detail, status.facts()), sub, end_entity)
    leaf = statuses[-1]
    missing = [s for s in statuses if s.status == "unknown"]
    if missing and settings.revocation_mode == "hard-fail":
        first = missing[-1] if leaf.status == "unknown" else missing[0]
        detail = f"no usable revocation answer for {first.subject}: {first.detail}"
        return TrustCheck(build(TrustOutcome.REVOCATION_UNAVAILABLE, detail, first.facts()), "TRY_LATER")
    notes = "; ".join(f"{s.subject}: {s.detail}" for s in statuses)
    if missing:
        notes += " (soft-fail: no answer counts as not revoked)"
    detail = f"{where} is valid and unrevoked at {when} ({notes})"
    return TrustCheck(build(TrustOutcome.TRUSTED, detail, leaf.facts()), None)
