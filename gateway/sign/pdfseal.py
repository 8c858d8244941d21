"""The organisation's PAdES seal on outgoing PDFs (Decree 68 Art. 29, Decree 30 Appendix I).

``Sealer`` is built once per process from the organisation key (opened once, never reloaded per
document), the ``[sign]`` settings, the examiner, the admin's policy and the clock.
``seal_document(pdf, request)`` either returns the sealed PDF or raises — ``SealingRefused``
(permanent), ``SealingDeferred`` / ``TsaUnavailable`` (retry later) — and then has produced
nothing. In order:

1. **Art. 29 pre-check** of the organisation certificate (``gateway.sign.precheck``, cached
   briefly): valid now, chains to a pinned anchor, unrevoked (hard-fail), signing key usage,
   not a CA, algorithm floors.
2. **kind = main**: the PDF must already carry a valid signature of the authorised person
   (Decree 30 Art. 32.2, checklist B1): examined by the examiner, the person recognised by the
   policy's ``[signers]`` rules, and it must hold (intact, value verifies), be PASSED and
   TRUSTED at its signing time, and be followed by no change the policy forbids. The seal goes
   over that signature's widget (the last valid one when several persons signed).
3. **kind = attachment / copy**: no such requirement; a copy's scan must meet Appendix I's
   floor (``gateway.sign.pages.scan_problems``).
4. **The signature** (PAdES baseline, G4.4): SubFilter ``ETSI.CAdES.detached``, SHA-256,
   signing-certificate-v2 (pyHanko's CAdES signed attributes), the chain embedded, /Name the
   organisation, /M the signing time in Vietnam time (``D:YYYYMMDDHHmmSS+07'00'``), and a
   signature time stamp (B-T). With ``b_lt`` the revocation answers go into the DSS in the same
   revision (B-LT without a second revision, so the seal still covers the whole file).

The signing time is taken inside a TSA slot (``TsaClient.slot``), right before the document is
finalised and hashed: the time painted in a text appearance, /M, and the token's genTime are
then the same second or close to it, however long the queue for the TSA was.

What runs where (HOUSE.md rule 4): parsing the PDF, planning the appearance, writing and hashing
the signed revision run in worker threads; the examiner, the TSA and pyHanko's async signing run
on the loop. Concurrent ``seal_document`` calls are safe: each has its own writer and styles;
the key, the TSA client and the pre-check are shared.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from io import BytesIO

from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko_certvalidator import ValidationContext

from gateway.clock import Clock, iso_vn, to_vn
from gateway.errors import ConfigError
from gateway.settings import SignSettings
from gateway.sign.appearance import load_seal_image, mm
from gateway.sign.font import SealFont
from gateway.sign.keys import OrganisationKey
from gateway.sign.plan import SealPlan, plan_seal, plan_text
from gateway.sign.precheck import OrganisationCheck
from gateway.sign.refusals import SealingDeferred, SealingRefused
from gateway.sign.request import COPY_TYPES, SealKind, SealRequest
from gateway.sign.tsa import TsaClient
from gateway.verify.facts import AdESIndication, SignatureFacts, TrustOutcome
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Policy
from gateway.verify.signers import document_roles, signature_holds
from gateway.verify.trust import ExamSettings, TrustStore

__all__ = ["COPY_TYPES", "SealKind", "SealRequest", "Sealer"]  # the request types are re-exported

_log = logging.getLogger(__name__)


class Sealer:
    """Seals outgoing PDFs with the organisation key (one per process; see the module docstring).

    Args:
        key: the organisation key, already open.
        settings: ``[sign]``: TSA, ``b_lt``, seal image and size, font.
        examiner: the process's examiner (certificate pre-check, person signature check). It is
            not closed by ``aclose()``: its owner closes it.
        policy: the admin's policy: signer recognition, allowed modifications, algorithm floors,
            clock skew.
        clock: the time source.
        trust: the pinned trust store; required with ``b_lt`` (pyHanko's revocation collection
            trusts exactly these anchors).
        tsa: a TSA client to use instead of one built from ``settings`` (the sealer then does not
            close it).
        recheck_every: how long a positive pre-check is reused (default: the examiner cache's
            lifetime for answers without nextUpdate, 5 minutes).
        fetch_timeout: seconds one OCSP/CRL request may take.

    Raises:
        ConfigError: no ``tsa_url``, no or a bad ``seal_image``, a bad ``font``, non-positive seal
            size or TSA settings, or ``b_lt`` without ``trust``.
    """

    def __init__(
        self,
        key: OrganisationKey,
        settings: SignSettings,
        examiner: Examiner,
        policy: Policy,
        clock: Clock,
        *,
        trust: TrustStore | None = None,
        tsa: TsaClient | None = None,
        recheck_every: timedelta | None = None,
        fetch_timeout: float = 20.0,
    ) -> None:
        if settings.tsa_url is None and tsa is None:
            raise ConfigError("[sign] tsa_url is required to seal (nothing is signed without a time stamp)")
        if settings.seal_image is None:
            raise ConfigError(
                "[sign] seal_image is required to seal main documents", hint="a red PNG with transparency"
            )
        if settings.seal_width_mm <= 0 or settings.seal_height_mm <= 0:
            raise ConfigError("[sign] seal_width_mm and seal_height_mm must be positive")
        if settings.b_lt and trust is None:
            raise ConfigError("[sign] b_lt = true needs the [trust] store to collect revocation data")
        self._key = key
        self._examiner = examiner
        self._policy = policy
        self._clock = clock
        self._trust = trust
        self._b_lt = settings.b_lt
        self._seal = load_seal_image(settings.seal_image)
        self._seal_size = (mm(settings.seal_width_mm), mm(settings.seal_height_mm))
        self._font = SealFont(settings.font)
        self._owns_tsa = tsa is None
        if tsa is None:
            try:
                tsa = TsaClient(
                    str(settings.tsa_url),
                    timeout=settings.tsa_timeout_seconds,
                    attempts=settings.tsa_attempts,
                    concurrency=settings.tsa_concurrency,
                )
            except ValueError as exc:
                raise ConfigError(f"[sign] {exc}") from None
        self._tsa = tsa
        self._reserved: int | None = None
        """Bytes reserved for the CMS in every signature (estimated on the first one)."""
        self._exam = ExamSettings(
            revocation_mode="hard-fail", time_tolerance=policy.clock_skew, request_timeout=fetch_timeout
        )
        default_recheck = examiner.fetchers.policy.max_age_without_next_update
        self._precheck = OrganisationCheck(
            key,
            examiner,
            clock,
            settings=self._exam,
            floors=policy.algorithms,
            recheck_every=default_recheck if recheck_every is None else recheck_every,
        )

    @property
    def precheck(self) -> OrganisationCheck:
        """The organisation certificate's cached pre-check."""
        return self._precheck

    @property
    def tsa(self) -> TsaClient:
        """The TSA client in use."""
        return self._tsa

    async def aclose(self) -> None:
        """Close what the sealer owns (the TSA client's session); the key and examiner are the caller's."""
        if self._owns_tsa:
            await self._tsa.aclose()

    async def seal_document(self, pdf: bytes, request: SealRequest) -> bytes:
        """Seal one PDF as ``request`` says (see the module docstring for the steps).

        Args:
            pdf: the document as received.
            request: its kind and the texts the seal carries.

        Returns:
            The sealed PDF: ``pdf`` byte for byte, plus one incremental revision.

        Raises:
            SealingRefused: ``org-cert-invalid``, ``org-cert-revoked``, ``org-cert-untrusted``,
                ``person-signature-missing``, ``pdf-unreadable``, ``pdf-not-signable``,
                ``seal-text-unsupported``, ``copy-scan-quality``.
            SealingDeferred: ``org-cert-revocation-unavailable``,
                ``person-cert-revocation-unavailable``, or ``TsaUnavailable``.
        """
        await self._precheck.ensure_fit()
        person = await self._person_signature(pdf) if request.kind is SealKind.MAIN else None
        writer = await asyncio.to_thread(_open, pdf)
        try:
            if person is not None:
                plan = await asyncio.to_thread(plan_seal, writer.prev, person.field_name, self._seal, self._seal_size)
            else:
                sample = iso_vn(self._clock.now())
                plan = await asyncio.to_thread(plan_text, writer.prev, request, self._font, sample)
        except (PdfError, KeyError, TypeError, ValueError) as exc:  # malformed pages or form fields
            raise SealingRefused("pdf-unreadable", str(exc) or type(exc).__name__) from None
        output = await self._sign(writer, plan, request)
        _log.info(
            "sealed a %s document (%s) for %s: field %s on page %d%s",
            request.kind.value,
            request.document_number or request.copy_type or "-",
            request.organisation_name,
            plan.field_name,
            plan.page + 1,
            " (fallback position: the person's signature has no visible widget)" if plan.fallback else "",
        )
        return output

    async def _person_signature(self, pdf: bytes) -> SignatureFacts:
        """The last valid signature of the authorised person (Decree 30 Art. 32.2, checklist B1)."""
        facts = await self._examiner.examine_pdf(
            pdf, name="document.pdf", content_id="", is_main=True, settings=self._exam
        )
        if not facts.readable:
            raise SealingRefused("pdf-unreadable", facts.detail)
        roles = document_roles(facts, self._policy.signers)
        persons = [s for s in facts.signatures if roles.get(s.index) == "person"]
        valid = [s for s in persons if self._person_valid(s)]
        if valid:
            return valid[-1]
        if any(signature_holds(s) and s.trust.outcome is TrustOutcome.REVOCATION_UNAVAILABLE for s in persons):
            raise SealingDeferred("person-cert-revocation-unavailable", "no revocation answer for the signer now")
        if not facts.signatures:
            raise SealingRefused("person-signature-missing", "the PDF has no signature")
        reasons = "; ".join(f"signature {s.index} ({s.field_name}): {self._why_not(s)}" for s in persons)
        raise SealingRefused("person-signature-missing", reasons or "no signature is recognised as a person's")

    def _person_valid(self, signature: SignatureFacts) -> bool:
        return (
            signature_holds(signature)
            and signature.indication is AdESIndication.TOTAL_PASSED
            and signature.trust.outcome is TrustOutcome.TRUSTED
            and signature.modification in self._policy.allowed_modifications
        )

    def _why_not(self, signature: SignatureFacts) -> str:
        if not signature_holds(signature):
            return "it does not hold (altered bytes or a bad signature value)"
        if signature.trust.outcome is not TrustOutcome.TRUSTED:
            return f"its certificate is {signature.trust.outcome.value} at its signing time"
        if signature.modification not in self._policy.allowed_modifications:
            return f"changes the policy forbids follow it ({signature.modification.value})"
        return f"{signature.indication.value} {signature.subindication or ''}".strip()

    def _validation_context(self) -> ValidationContext:
        """pyHanko's context for collecting the DSS (B-LT): the pinned anchors, the examiner's fetchers."""
        if self._trust is None:  # __init__ refuses b_lt without a trust store
            raise ConfigError("[sign] b_lt = true needs the [trust] store")
        chain = [asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in self._key.chain]
        backend = self._examiner.fetchers.backend(
            request_timeout=self._exam.request_timeout, total_timeout=self._exam.total_timeout
        )
        return ValidationContext(
            trust_manager=self._trust.trust_manager,
            other_certs=[*self._trust.intermediates, *chain],
            allow_fetching=True,
            revocation_mode="hard-fail",
            fetcher_backend=backend,
        )

    async def _sign(self, writer: IncrementalPdfFileWriter, plan: SealPlan, request: SealRequest) -> bytes:
        meta = PdfSignatureMetadata(
            field_name=plan.field_name,
            md_algorithm="sha256",
            subfilter=SigSeedSubFilter.PADES,
            name=request.organisation_name,
            embed_validation_info=self._b_lt,
            validation_context=self._validation_context() if self._b_lt else None,
            # Usage is judged by the pre-check (digitalSignature or nonRepudiation); pyHanko's
            # default would demand nonRepudiation alone.
            signer_key_usage=set(),
            # One revision: B-LT data written before the signature, so the seal covers the file.
            dss_settings=DSSContentSettings(
                placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE, include_vri=False
            ),
        )
        # pyHanko annotates field boxes as ints but writes floats rounded to 1e-4 (fields.py);
        # the seal's real size needs better than whole points.
        spec = SigFieldSpec(sig_field_name=plan.field_name, on_page=plan.page, box=plan.rect.as_box())  # type: ignore[arg-type]
        signer = PdfSigner(
            meta, self._key.pdf_signer(), timestamper=self._tsa.timestamper, stamp_style=plan.style, new_field_spec=spec
        )
        # PdfSigner.async_sign_pdf, step by step: it would take "now" in the host's time zone and
        # before the queue for the TSA; /M must be Vietnam time, taken inside the TSA slot.
        try:
            session = await asyncio.to_thread(signer.init_signing_session, writer)
        except (PdfError, SigningError) as exc:  # e.g. a certification signature that forbids changes
            raise SealingRefused("pdf-not-signable", str(exc)) from None
        validation_info = await session.perform_presign_validation(writer)
        # The CMS does not depend on the document (same chain, algorithms, TSA), so pyHanko's
        # estimate (a dry-run signature with a dummy token, +50 %) is made once and reused: it
        # saves a signature per document, and pyHanko's SimpleSigner re-parses its key for each.
        reserved = self._reserved
        if reserved is None:
            reserved = await session.estimate_signature_container_size(validation_info, tight=False)
            self._reserved = reserved
        async with self._tsa.slot():
            when = to_vn(self._clock.now().replace(microsecond=0))
            session.system_time = when
            tbs = await asyncio.to_thread(session.prepare_tbs_document, validation_info, reserved, plan.params(when))
            prepared, output = await asyncio.to_thread(tbs.digest_tbs_document)
            signed_attrs = PdfCMSSignedAttributes(signing_time=when, cades_signed_attrs=meta.cades_signed_attr_spec)
            try:
                post_sign = await tbs.perform_signature(prepared.document_digest, signed_attrs)
            except SigningError:
                self._reserved = None  # e.g. a new TSA certificate made the token outgrow the margin
                raise
            await post_sign.post_signature_processing(output)
        if not isinstance(output, BytesIO):  # digest_tbs_document() without a stream makes a BytesIO
            raise TypeError("pyHanko returned no in-memory output")
        return output.getvalue()


def _open(pdf: bytes) -> IncrementalPdfFileWriter:
    """An incremental writer over the document (strict: a PDF we sign must parse cleanly).

    Raises:
        SealingRefused: ``pdf-unreadable`` (not a PDF, damaged, or encrypted).
    """
    try:
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise SealingRefused("pdf-unreadable", str(exc) or type(exc).__name__) from None
    if writer.prev.encrypted:
        raise SealingRefused("pdf-unreadable", "the PDF is encrypted")
    return writer
