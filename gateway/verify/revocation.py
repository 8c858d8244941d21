"""Revocation status of one path link *as of the signing time* (Decree 68 Art. 31.1.c, 31.2).

``RevocationProbe.link_status`` asks, for link *i* of a validated path, "was this certificate
revoked at or before ``at``?", and answers ``good``, ``revoked`` (with the revocation time,
which may lie after ``at``) or ``unknown``. How:

* the links above *i* are asserted unrevoked (they were probed first, top down), so each
  certvalidator run below judges exactly one certificate and its answer is unambiguous;
* OCSP first, then the CRL (spec G5.2), each alone (``OCSP_REQUIRED`` / ``CRL_REQUIRED``), so
  the facts say which source answered;
* first *now*, with the freshest answers: "not revoked now" implies "not revoked at ``at``",
  and "revoked at R" is compared with ``at`` by the caller (R <= ``at``: revoked at signing
  time). Judging now also validates OCSP responder certificates now, which matters when the
  responder's certificate was issued after the signature;
* then, if no answer worked now (typically a link has expired since ``at``), at ``at`` itself
  with ``retroactive_revinfo``: answers issued after ``at`` apply to ``at``, and certvalidator
  reports only revocations at or before ``at``;
* last, answers embedded in the document (PAdES-LT DSS, adbe-revocationInfoArchival), alone
  and as of ``at``: certvalidator ignores them whenever a fetch fails, so without this step a
  B-LT document could not be verified while the responders are down. They come last because
  an embedded "good" vouches for its whole thisUpdate..nextUpdate window, while a fresh answer
  also names the revocation time.

``unknown`` carries every failure message; the caller decides what it means (hard-fail,
soft-fail). Under certvalidator's legacy checks an OCSP "revoked after ``at``" in the second
phase reads as "no answer" and falls through to the CRL; the first phase never has that gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pyhanko_certvalidator import errors as cv_errors
from pyhanko_certvalidator.context import ValidationContext
from pyhanko_certvalidator.fetchers.api import Fetchers
from pyhanko_certvalidator.ltv.poe import POEManager
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    AcceptAllAlgorithms,
    CertRevTrustPolicy,
    NonRevokedStatusAssertion,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import CertificateRegistry
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer
from pyhanko_certvalidator.revinfo.manager import RevinfoManager
from pyhanko_certvalidator.validate import async_validate_path

from gateway.verify.certs import facts_from_der
from gateway.verify.facts import RevocationFacts
from gateway.verify.trust import TrustStore

__all__ = ["LinkStatus", "RevocationProbe", "no_check_context"]

_SOURCES = (("ocsp", RevocationCheckingRule.OCSP_REQUIRED), ("crl", RevocationCheckingRule.CRL_REQUIRED))
_FOREVER = timedelta(days=365 * 1000)


@dataclass(frozen=True)
class LinkStatus:
    """The revocation answer for one certificate on the path."""

    subject: str
    status: str
    """``good``, ``revoked`` or ``unknown`` (no usable answer)."""
    source: str = "none"
    """``ocsp``, ``crl`` or ``none``."""
    produced_at: datetime | None = None
    revocation_time: datetime | None = None
    reason: str | None = None
    detail: str = ""
    fresh_until: datetime | None = None
    """Set on a ``good`` answer judged *now* with fetched answers (no embedded ones): its
    nextUpdate. Until then the same link gets the same answer, so ``TrustChecker`` reuses it."""

    def revoked_by(self, at: datetime) -> bool:
        """Revoked at or before ``at`` (a revocation after ``at`` does not count)."""
        return self.status == "revoked" and self.revocation_time is not None and self.revocation_time <= at

    def facts(self) -> RevocationFacts:
        """As the contract's ``RevocationFacts``."""
        return RevocationFacts(self.source, self.status, self.produced_at, self.revocation_time, self.reason)


@dataclass
class RevocationProbe:
    """Everything one certificate check needs to build validation contexts."""

    store: TrustStore
    fetchers: Fetchers
    extra_certs: Sequence[Any] = ()
    crls: Sequence[CRLContainer] = ()
    ocsps: Sequence[OCSPContainer] = ()
    tolerance: timedelta = timedelta(0)
    registry: CertificateRegistry = field(init=False)

    def __post_init__(self) -> None:
        # One registry per check: untrusted certificates (store intermediates, CMS, DSS, AIA).
        self.registry = CertificateRegistry.build(
            [*self.store.intermediates, *self.extra_certs], cert_fetcher=self.fetchers.cert_fetcher
        )

    def context(
        self,
        *,
        moment: datetime,
        rule: RevocationCheckingRule,
        retroactive: bool = False,
        fetch: bool = True,
        assertions: Sequence[NonRevokedStatusAssertion] = (),
    ) -> ValidationContext:
        """A validation context at ``moment`` checking revocation by ``rule`` (all links alike);
        ``fetch=False`` limits it to the embedded answers."""
        manager = RevinfoManager(
            certificate_registry=self.registry,
            poe_manager=POEManager(),
            crls=self.crls,
            ocsps=self.ocsps,
            assertions=assertions,
            fetchers=self.fetchers if fetch else None,
        )
        return ValidationContext(
            trust_manager=self.store.trust_manager,
            certificate_registry=self.registry,
            revinfo_manager=manager,
            revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(rule, rule), retroactive_revinfo=retroactive),
            moment=moment,
            best_signature_time=moment,
            time_tolerance=self.tolerance,
            # Algorithms are judged by the admin's policy from the facts, never here.
            algorithm_usage_policy=AcceptAllAlgorithms(),
        )

    async def link_status(self, path: ValidationPath, index: int, *, at: datetime, now: datetime) -> LinkStatus:
        """The revocation answer for the ``index``-th certificate below the anchor (0-based).

        Args:
            path: a path validated at ``at``.
            index: which link; links above it must have been probed already.
            at: the signing time.
            now: the verification time.

        Returns:
            ``good``, ``revoked`` (any revocation time) or ``unknown`` with every failure.
        """
        links = list(path.iter_certs(include_root=False))
        link = links[index]
        prefix = ValidationPath(path.trust_anchor, links[:index], link)
        asserted = [NonRevokedStatusAssertion(c.sha256, max(now, at) + _FOREVER) for c in links[:index]]
        subject = facts_from_der(link.dump()).subject
        failures: list[str] = []
        for label, moment, retroactive, fetch in self._attempts(at, now):
            for source, rule in _SOURCES:
                context = self.context(
                    moment=moment, rule=rule, retroactive=retroactive, fetch=fetch, assertions=asserted
                )
                try:
                    await async_validate_path(context, prefix)
                except cv_errors.RevokedError as exc:
                    if exc.is_side_validation:  # e.g. an indirect CRL issuer was revoked
                        failures.append(f"{source.upper()} ({label}): {exc}")
                        continue
                    reason = str(exc.reason.native or "unspecified")
                    said = f"{source.upper()} says revoked at {exc.revocation_dt:%Y-%m-%d %H:%M:%SZ} ({reason})"
                    produced, _ = self._freshest(source, link)
                    return LinkStatus(subject, "revoked", source, produced, exc.revocation_dt, reason, said)
                except (cv_errors.PathValidationError, ValueError) as exc:
                    failures.append(f"{source.upper()} ({label}): {exc}")
                    continue
                produced, next_update = self._freshest(source, link)
                shown = f", produced {produced:%Y-%m-%d %H:%M:%SZ}" if produced else ""
                reusable = label == "now" and not (self.crls or self.ocsps)  # fetched, not retroactive
                return LinkStatus(
                    subject,
                    "good",
                    source,
                    produced,
                    detail=f"{source.upper()} ({label}) good{shown}",
                    fresh_until=next_update if reusable else None,
                )
        return LinkStatus(subject, "unknown", detail="; ".join(failures))

    def _attempts(self, at: datetime, now: datetime) -> list[tuple[str, datetime, bool, bool]]:
        """(label, moment, retroactive, fetch) in the order they are tried (module docstring)."""
        attempts = [("now", now, False, True)]
        if abs(now - at) > self.tolerance:
            attempts.append((f"as of {at:%Y-%m-%d %H:%M:%SZ}", at, True, True))
        if self.crls or self.ocsps:
            # certvalidator consults embedded answers only when fetching is off or succeeds,
            # so when the network failed, try them alone, as of the signing time.
            attempts.append(("embedded", at, True, False))
        return attempts

    def _freshest(self, source: str, link: Any) -> tuple[datetime | None, datetime | None]:
        """The freshest answer about ``link``: when it was made (OCSP producedAt, CRL thisUpdate)
        and its nextUpdate (``None`` when it has none: such an answer is never reused)."""
        if source == "ocsp":
            fetched = list(self.fetchers.ocsp_fetcher.fetched_responses_for_cert(link))
            candidates = [*fetched, *(c.ocsp_response_data for c in self.ocsps)]
            answers = [
                (
                    single["this_update"].native,
                    response.basic_ocsp_response["tbs_response_data"]["produced_at"].native,
                    single["next_update"].native,
                )
                for response in candidates
                for single in response.basic_ocsp_response["tbs_response_data"]["responses"]
                if single["cert_id"]["serial_number"].native == link.serial_number
            ]
            if not answers:
                return None, None
            _, produced, next_update = max(answers, key=lambda answer: answer[0])
            return produced, next_update
        try:
            fetched_crls = list(self.fetchers.crl_fetcher.fetched_crls_for_cert(link))
        except KeyError:
            fetched_crls = []
        lists = [*fetched_crls, *(c.crl_data for c in self.crls)]
        times = [
            (c["tbs_cert_list"]["this_update"].native, c["tbs_cert_list"]["next_update"].native)
            for c in lists
            if c.issuer == link.issuer
        ]
        return max(times, key=lambda pair: pair[0]) if times else (None, None)


def no_check_context(probe: RevocationProbe, *, moment: datetime) -> ValidationContext:
    """A context for step 1 of a check: the path at ``moment``, revocation not consulted."""
    return probe.context(moment=moment, rule=RevocationCheckingRule.NO_CHECK)
