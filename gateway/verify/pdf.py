"""The examiner: what is true about a PDF's signatures and about any signer's certificate.

``Examiner`` is built once per process from the pinned ``TrustStore``, the ``Clock`` and one
``HttpFetchers`` (one HTTP session, one revocation cache), and reused for every package; call
``aclose()`` on shutdown. It establishes *facts* (``gateway.verify.facts``); the rules judge.

Per signature:

* ``gateway.verify.pdfread`` (off the loop) gives integrity, coverage, the modification level
  after the signature, algorithms, the declared signingTime and the time stamp's integrity;
* the time stamp's TSA is path-validated *now* to a pinned anchor with EKU timeStamping (an
  ETSI B-T check: a TSA revoked since cannot vouch for old times);
* ``signing_time`` is the token's genTime when the token is intact and its TSA trusted
  (source TIMESTAMP), else the verification time (VERIFICATION_TIME, spec G1.13);
* the signer's certificate is path-validated *at signing_time* (``gateway.verify.chain``), so
  a revocation after a trusted time stamp leaves it TRUSTED and one before makes it REVOKED.

What runs where (HOUSE.md rule 4): parsing, digests, signature values and pyHanko's diff
analysis run in a worker thread (or the ``executor`` given); path validation and OCSP/CRL
checks run on the loop: certvalidator is async, and its CPU work is a few signature checks per
certificate (a very large CRL is searched on the loop, the one sizeable piece left there).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from concurrent.futures import Executor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from pyhanko.sign.diff_analysis import DiffPolicy

from gateway.clock import Clock
from gateway.errors import TransientError
from gateway.verify.certs import AnyCertificate, cert_from_der, facts_from_der
from gateway.verify.chain import TrustCheck, TrustChecker
from gateway.verify.facts import (
    AdESIndication,
    Coverage,
    PdfFacts,
    SignatureFacts,
    SigningTimeSource,
    TimestampFacts,
    TrustFacts,
    TrustOutcome,
)
from gateway.verify.fetch import HttpFetchers
from gateway.verify.pdfread import ReadPdf, ReadSignature, read_pdf
from gateway.verify.trust import ExamSettings, Purpose, TrustStore

__all__ = ["Examiner", "indication_for"]

_FAILED, _INDETERMINATE, _PASSED = (
    AdESIndication.TOTAL_FAILED,
    AdESIndication.INDETERMINATE,
    AdESIndication.TOTAL_PASSED,
)


def indication_for(
    signature: ReadSignature, source: SigningTimeSource, check: TrustCheck
) -> tuple[AdESIndication, str | None]:
    """ETSI EN 319 102-1 indication and sub-indication of one signature, from its facts.

    Covers what EN 319 102-1 validates: format, integrity, the signature value, the signer's
    certificate at the best signature time. The PDF modification level is *not* folded in: the
    admin's policy decides which levels are acceptable (``pdf-modified-after-signing``). An
    invalid time stamp is ignored (the signature is then judged at verification time), as
    EN 319 102-1 §5.5 does; ``timestamp-invalid`` reports it.

    Args:
        signature: the signature as read.
        source: where the signing time came from.
        check: the signer certificate's check at that time.

    Returns:
        ``(indication, sub-indication)``; the sub-indication is ``None`` when passed.
    """
    if signature.problem is not None or signature.coverage in (Coverage.CONTIGUOUS_BLOCK, Coverage.UNCLEAR):
        return _FAILED, "FORMAT_FAILURE"
    if not signature.intact:
        return _FAILED, "HASH_FAILURE"
    if signature.signer is None:
        return _INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND"
    if not signature.crypto_valid:
        return _FAILED, "SIG_CRYPTO_FAILURE"
    outcome = check.facts.outcome
    proven = source is SigningTimeSource.TIMESTAMP
    if outcome is TrustOutcome.TRUSTED:
        return _PASSED, None
    # With a trusted time stamp, "revoked/not yet valid at the signing time" is proven (POE),
    # so the INDETERMINATE "no proof of existence" sub-indications become definitive.
    if outcome is TrustOutcome.REVOKED and proven and check.revoked_link_is_end_entity:
        return _FAILED, "REVOKED"
    if outcome is TrustOutcome.NOT_YET_VALID and proven and check.subindication == "OUT_OF_BOUNDS_NO_POE":
        return _FAILED, "NOT_YET_VALID"
    if outcome is TrustOutcome.EXPIRED and proven and check.subindication == "OUT_OF_BOUNDS_NO_POE":
        return _INDETERMINATE, "EXPIRED"
    return _INDETERMINATE, check.subindication or "GENERIC"


@dataclass
class _Call:
    """One ``examine_pdf`` call: the file as read, its DSS parsed once, shared TSA checks."""

    read: ReadPdf
    now: datetime
    settings: ExamSettings
    tsa_checks: dict[tuple[Any, ...], asyncio.Future[TrustFacts]] = field(default_factory=dict)
    dss_certs: list[Any] = field(init=False)
    dss_crls: list[Any] = field(init=False)
    dss_ocsps: list[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.dss_certs = [cert_from_der(der) for der in self.read.dss_certs]
        self.dss_crls = [asn1_crl.CertificateList.load(der) for der in self.read.dss_crls]
        self.dss_ocsps = [asn1_ocsp.OCSPResponse.load(der) for der in self.read.dss_ocsps]


class Examiner:
    """Long-lived examiner of PDFs and certificates (one per process)."""

    def __init__(
        self,
        store: TrustStore,
        clock: Clock,
        *,
        fetchers: HttpFetchers | None = None,
        executor: Executor | None = None,
        diff_policy: DiffPolicy | None = None,
    ) -> None:
        """Build the examiner.

        Args:
            store: the pinned trust anchors and intermediates.
            clock: the time source (verification time).
            fetchers: the process's HTTP fetchers and cache; the examiner owns them from now on
                and closes them in ``aclose()`` (default: new ones on ``clock``).
            executor: where PDF reading runs (default: the loop's default thread pool). A
                ``ProcessPoolExecutor`` works too: ``read_pdf`` and its result pickle.
            diff_policy: pyHanko difference policy (default: its standard policy; must pickle
                to go to a process pool).
        """
        self._clock = clock
        self._fetchers = fetchers or HttpFetchers(clock)
        self._checker = TrustChecker(store, self._fetchers, clock)
        self._executor = executor
        self._diff_policy = diff_policy

    @property
    def fetchers(self) -> HttpFetchers:
        """The shared fetchers (their ``stats`` count requests and cache hits)."""
        return self._fetchers

    async def aclose(self) -> None:
        """Close the HTTP session (the examiner can be used again afterwards)."""
        await self._fetchers.aclose()

    async def examine_certificate(
        self,
        cert: AnyCertificate,
        *,
        at: datetime | None = None,
        purpose: Purpose = "signing",
        settings: ExamSettings,
        extra_certs: Sequence[AnyCertificate] = (),
    ) -> TrustFacts:
        """Path-validate one certificate (e.g. the envelope signer's) to a pinned anchor.

        Args:
            cert: ``cryptography`` or ``asn1crypto`` certificate.
            at: aware time to judge at; default the clock's now (the envelope has no time stamp).
            purpose: ``signing`` or ``timestamping``.
            settings: revocation mode, tolerance, deadlines.
            extra_certs: untrusted certificates that may complete the path (e.g. from KeyInfo).

        Returns:
            The trust facts.

        Raises:
            ValueError: ``at`` is naive.
        """
        when = self._clock.now() if at is None else at
        return await self._checker.check_certificate(
            cert, at=when, purpose=purpose, settings=settings, extra_certs=extra_certs
        )

    async def examine_pdf(
        self,
        data: bytes,
        *,
        name: str,
        content_id: str,
        is_main: bool,
        settings: ExamSettings,
        at: datetime | None = None,
    ) -> PdfFacts:
        """Examine every signature of one PDF attachment.

        Args:
            data: the PDF's bytes (untrusted).
            name: the attachment's file name (for the report).
            content_id: its Content-ID in the package.
            is_main: whether it is the package's main document.
            settings: revocation mode, tolerance, deadlines.
            at: the verification time (default: the clock's now); signatures without a trusted
                timestamp are judged at it (rule replay and ``gateway verify --at`` set it).

        Returns:
            The facts; ``readable=False`` when pyHanko cannot read the file. A document without
            signatures is readable with no signatures.

        Raises:
            TransientError: the process reading it died (the package can be judged again later).
        """
        job = functools.partial(read_pdf, data, self._diff_policy)
        if self._executor is None:
            read = await asyncio.to_thread(job)
        else:
            try:
                read = await asyncio.get_running_loop().run_in_executor(self._executor, job)
            except BrokenProcessPool as exc:
                # Not the PDF's fault as far as we know (the OOM killer, a signal): judge it again later.
                raise TransientError(
                    f"the process reading {name} died ({exc}); the package will be verified again"
                ) from exc
        if not read.readable:
            return PdfFacts(name, content_id, read.sha256, False, detail=read.detail, is_main=is_main)
        call = _Call(read, self._clock.now() if at is None else at, settings)
        signatures = await asyncio.gather(
            *(self._signature(index, signature, call) for index, signature in enumerate(read.signatures, 1))
        )
        return PdfFacts(name, content_id, read.sha256, True, tuple(signatures), is_main=is_main)

    async def _signature(self, index: int, signature: ReadSignature, call: _Call) -> SignatureFacts:
        # Revocation data archived in this signature's attributes, then the document's DSS.
        crls = [*(asn1_crl.CertificateList.load(der) for der in signature.crls), *call.dss_crls]
        ocsps = [*(asn1_ocsp.OCSPResponse.load(der) for der in signature.ocsps), *call.dss_ocsps]
        timestamp = await self._timestamp(signature, call, crls=crls, ocsps=ocsps)
        if timestamp is not None and timestamp.valid and timestamp.gen_time is not None:
            signing_time, source = timestamp.gen_time, SigningTimeSource.TIMESTAMP
        else:
            signing_time, source = call.now, SigningTimeSource.VERIFICATION_TIME
        if signature.signer is not None and signature.problem is None:
            check = await self._checker.check(
                cert_from_der(signature.signer),
                at=signing_time,
                purpose="signing",
                settings=call.settings,
                extra_certs=[*(cert_from_der(der) for der in signature.certs), *call.dss_certs],
                crls=crls,
                ocsps=ocsps,
            )
        else:
            detail = signature.problem or "the signature carries no signer certificate"
            check = TrustCheck(TrustFacts(TrustOutcome.UNTRUSTED, signing_time, detail), "NO_SIGNING_CERTIFICATE_FOUND")
        indication, subindication = indication_for(signature, source, check)
        return SignatureFacts(
            index=index,
            field_name=signature.field_name,
            subfilter=signature.subfilter,
            signer=None if signature.signer is None else facts_from_der(signature.signer),
            intact=signature.intact,
            crypto_valid=signature.crypto_valid,
            coverage=signature.coverage,
            modification=signature.modification,
            modification_detail=signature.modification_detail,
            digest_algorithm=signature.digest_algorithm,
            signature_mechanism=signature.signature_mechanism,
            declared_signing_time=signature.declared_signing_time,
            timestamp=timestamp,
            signing_time=signing_time,
            signing_time_source=source,
            trust=check.facts,
            indication=indication,
            subindication=subindication,
            detail=signature.problem or signature.detail,
        )

    async def _timestamp(
        self, signature: ReadSignature, call: _Call, *, crls: list[Any], ocsps: list[Any]
    ) -> TimestampFacts | None:
        token = signature.timestamp
        if token is None:
            return None
        tsa_facts = None if token.tsa is None else facts_from_der(token.tsa)
        intact, detail = token.intact, token.detail
        if intact and token.gen_time is not None and token.gen_time > call.now + call.settings.time_tolerance:
            # A trusted TSA whose clock runs ahead cannot prove the past; never date a
            # signature after the verification itself.
            intact, detail = False, f"the time stamp's genTime {token.gen_time:%Y-%m-%d %H:%M:%SZ} is in the future"
        trust = None
        if intact and token.tsa is not None:
            # Every signature of a document usually has the same TSA: judge it once per call.
            key = (token.tsa, token.certs, signature.crls, signature.ocsps)
            if key not in call.tsa_checks:
                check = self._checker.check_certificate(
                    cert_from_der(token.tsa),
                    at=call.now,
                    purpose="timestamping",
                    settings=call.settings,
                    extra_certs=[*(cert_from_der(der) for der in token.certs), *call.dss_certs],
                    crls=crls,
                    ocsps=ocsps,
                )
                call.tsa_checks[key] = asyncio.ensure_future(check)
            trust = await call.tsa_checks[key]
            if trust.outcome is not TrustOutcome.TRUSTED:
                detail = f"the TSA certificate is {trust.outcome.value}: {trust.detail}"
        return TimestampFacts(token.gen_time, intact, tsa_facts, trust, detail)
