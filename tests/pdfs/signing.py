"""Sign PDFs with the development PKI through pyHanko's *async* API (real HTTP to the served TSA).

``sign_pdf`` appends one signature as an incremental update, so signatures stack (person, then
organisation: Decree 30 Art. 5, spec §6 A8). It never checks the signer's certificate: no
validation context reaches pyHanko's signer, so expired, not-yet-valid, revoked, CA-flagged,
wrong-key-usage, RSA-1024, SHA-1-signed and impostor certificates all sign (the *verifier* must
refuse them; the gateway's own signer refuses them before signing, G1.7 — that is not this
module's business).

Time stamps (PAdES-B-T, G1.8) come from the dev PKI's TSA over HTTP. ``timestamp=<datetime>``
sends ``FAKE_TIME_HEADER`` so the TSA back-dates its genTime, and also sets the signature's
claimed signing time to the same instant (/M; plus the CMS signingTime attribute for
``adbe.pkcs7.detached`` — pyHanko leaves it out of PAdES signatures), as if the document had
really been signed then: the only way to make a signature that predates
``dev_pki.revocation_time`` (G1.12).

The signing functions are coroutines: call them from the tests through ``run`` (there is no
pytest-asyncio; pyHanko's sync wrappers would call ``asyncio.run`` themselves).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime
from io import BytesIO
from typing import Any, Literal, TypeVar

from asn1crypto import keys, x509
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, SimpleSigner
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from gateway.clock import VN_TZ, require_aware
from gateway.devpki import FAKE_TIME_HEADER, DevPKI
from tests.pdfs.documents import ORG_SEAL_BOX, PERSON_FIELD, Box, cong_van

__all__ = [
    "LOCATION",
    "ORG_FIELD",
    "PADES",
    "PKCS7",
    "TimestampChoice",
    "run",
    "sign_pdf",
    "sign_with_local_tsa",
    "signed_main_document",
    "signer_for",
    "timestamper_for",
]

T = TypeVar("T")

TimestampChoice = Literal["now"] | datetime | None
"""``"now"``: the served TSA's current time; an aware ``datetime``: a back-dated (or
future-dated) token from the served TSA at that time; ``None``: no signature time stamp (B-B)."""

PADES = SigSeedSubFilter.PADES
"""SubFilter ``ETSI.CAdES.detached`` (PAdES baseline, G4.4), the default."""

PKCS7 = SigSeedSubFilter.ADOBE_PKCS7_DETACHED
"""SubFilter ``adbe.pkcs7.detached`` (legacy, G4.4: the verifier must accept it)."""

LOCATION = "Tinh Test"
"""The /Location every signature made here carries."""

ORG_FIELD = "DauCoQuan"
"""Name of the organisation's signature field (created by ``signed_main_document``)."""

_TSA_TIMEOUT = 10  # seconds; loopback, but the TSA signs with RSA and CI machines are slow

# Painted in visible signatures. ASCII only: the standard-14 fonts of pyHanko's simple font engine
# cannot show Vietnamese letters, and the gateway's real appearance (red seal PNG) is not ours to make.
_STAMP = TextStampStyle(stamp_text="Da ky so\n%(ts)s", timestamp_format="%Y-%m-%dT%H:%M:%S%z")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop (the tests' bridge to the async API)."""
    return asyncio.run(coroutine)


def signer_for(
    pki: DevPKI, label: str, *, pss: bool = False, embed_chain: bool = True, embed_root: bool = True
) -> SimpleSigner:
    """A pyHanko in-memory signer holding the dev PKI's key and certificate ``label``.

    Args:
        pki: the development PKI.
        label: certificate label (``person``, ``org``, ``expired``, ``impostor-leaf``...).
        pss: sign with RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys only; G4.3).
        embed_chain: put the issuers (intermediate, root) into the CMS ``certificates``; without
            them a verifier must find the intermediate itself (AIA, trust store: G1.14).
        embed_root: with ``embed_chain``, include the self-signed root too.

    Returns:
        The signer.
    """
    der = pki.private_key(label).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    issuers = [x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in pki.chain(label)] if embed_chain else []
    return SimpleSigner(
        signing_cert=pki.certificate_asn1(label),
        signing_key=keys.PrivateKeyInfo.load(der),
        cert_registry=SimpleCertificateStore.from_certs(issuers),  # type: ignore[no-untyped-call]
        prefer_pss=pss,
        embed_roots=embed_root,
    )


def timestamper_for(pki: DevPKI, at: datetime | None = None) -> HTTPTimeStamper:
    """A client of the dev PKI's served TSA.

    Args:
        pki: the development PKI (its TSA must be served, as the ``dev_pki`` fixture does).
        at: aware time the token's genTime should carry (sent as ``FAKE_TIME_HEADER``); ``None``
            for the TSA's current time.

    Returns:
        pyHanko's aiohttp-based time stamper. It opens and closes its own HTTP session per
        request, so nothing leaks between event loops.
    """
    headers = None if at is None else {FAKE_TIME_HEADER: require_aware(at).isoformat()}
    return HTTPTimeStamper(pki.urls.tsa, timeout=_TSA_TIMEOUT, headers=headers)


async def sign_pdf(
    pdf: bytes,
    *,
    pki: DevPKI,
    signer_label: str,
    field_name: str,
    timestamp: TimestampChoice = "now",
    subfilter: SigSeedSubFilter = PADES,
    digest: str = "sha256",
    pss: bool = False,
    embed_chain: bool = True,
    visible_box: Box | None = None,
    reason: str | None = None,
) -> bytes:
    """Add one signature to ``pdf`` as a new incremental revision.

    Args:
        pdf: the document (unsigned or already signed; earlier revisions are kept byte for byte).
        pki: the development PKI, served (the TSA is called over HTTP).
        signer_label: which dev PKI certificate and key sign.
        field_name: the signature field to fill; created (invisible, or at ``visible_box`` on
            page 1) when the document has no field of that name.
        timestamp: see ``TimestampChoice``; a ``datetime`` also becomes the signing time.
        subfilter: ``PADES`` (``ETSI.CAdES.detached``) or ``PKCS7`` (``adbe.pkcs7.detached``).
        digest: message digest (``sha256``, ``sha384``, ``sha512``, ``sha1``...).
        pss: RSASSA-PSS padding (RSA signers only).
        embed_chain: embed the intermediate and root certificates in the CMS.
        visible_box: rectangle of a *new* field; ignored when ``field_name`` exists.
        reason: the signature dictionary's /Reason.

    Returns:
        The signed PDF.

    Raises:
        pyhanko.sign.timestamps.common_utils.TimestampRequestError: the TSA did not answer.
    """
    backdated = timestamp if isinstance(timestamp, datetime) else None
    timestamper = None if timestamp is None else timestamper_for(pki, backdated)
    meta = PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm=digest,
        subfilter=subfilter,
        reason=reason,
        location=LOCATION,
    )
    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    field_spec = None if visible_box is None else SigFieldSpec(sig_field_name=field_name, on_page=0, box=visible_box)
    pdf_signer = PdfSigner(
        meta,
        signer_for(pki, signer_label, pss=pss, embed_chain=embed_chain),
        timestamper=timestamper,
        stamp_style=_STAMP,
        new_field_spec=field_spec,
    )
    # PdfSigner.async_sign_pdf, step by step, to set the signing time (pyHanko takes "now").
    session = pdf_signer.init_signing_session(writer)
    session.system_time = (backdated or datetime.now(tz=VN_TZ)).astimezone(VN_TZ)
    validation_info = await session.perform_presign_validation(writer)  # None: no validation context
    bytes_reserved = await session.estimate_signature_container_size(validation_info, tight=False)
    tbs = session.prepare_tbs_document(validation_info=validation_info, bytes_reserved=bytes_reserved)
    prepared, output = tbs.digest_tbs_document()
    post_sign = await tbs.perform_signature(
        document_digest=prepared.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(signing_time=session.system_time),
    )
    await post_sign.post_signature_processing(output)
    assert isinstance(output, BytesIO)  # digest_tbs_document() without an output stream makes one
    return output.getvalue()


async def signed_main_document(
    pki: DevPKI,
    *,
    person: bool = True,
    org: bool = True,
    timestamps: bool = True,
    person_label: str = "person",
    org_label: str = "org",
) -> bytes:
    """The main document (``cong_van``) signed as Decree 30 Art. 5 wants it (spec §2.2, §6 A8).

    The authorised person signs the existing field ``PERSON_FIELD`` first; the organisation then
    signs a new visible field ``ORG_FIELD`` at ``ORG_SEAL_BOX`` (over the left third of the
    person's box). Both are PAdES (``ETSI.CAdES.detached``), SHA-256, chain embedded, and — with
    ``timestamps`` — B-T with a token from the served TSA.

    Args:
        pki: the development PKI, served.
        person: add the person's signature.
        org: add the organisation's signature.
        timestamps: time-stamp both signatures (otherwise PAdES-B-B).
        person_label: certificate for the person's signature.
        org_label: certificate for the organisation's signature.

    Returns:
        The signed PDF (two, one or no signatures).
    """
    pdf = cong_van()
    ts: TimestampChoice = "now" if timestamps else None
    if person:
        pdf = await sign_pdf(pdf, pki=pki, signer_label=person_label, field_name=PERSON_FIELD, timestamp=ts)
    if org:
        pdf = await sign_pdf(
            pdf, pki=pki, signer_label=org_label, field_name=ORG_FIELD, timestamp=ts, visible_box=ORG_SEAL_BOX
        )
    return pdf


async def sign_with_local_tsa(
    pki: DevPKI, *, signer_label: str, tsa_label: str, at: datetime | None = None, pdf: bytes | None = None
) -> bytes:
    """``signer_label``'s signature with a time stamp made locally by ``tsa_label``'s key.

    For timestamps the served TSA would never issue: by a certificate that is not a TSA's
    (``person``), by an impostor (``impostor-leaf``), or dated in the future (checklist A3).

    Args:
        pki: the development PKI.
        signer_label: who signs.
        tsa_label: whose key and certificate sign the time stamp token.
        at: the token's genTime (default: now).
        pdf: the document (default: a fresh ``cong_van()``), signed in its person field.

    Returns:
        The signed PDF.
    """
    der = pki.private_key(tsa_label).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    stamper = DummyTimeStamper(
        tsa_cert=pki.certificate_asn1(tsa_label), tsa_key=keys.PrivateKeyInfo.load(der), fixed_dt=at
    )
    meta = PdfSignatureMetadata(field_name=PERSON_FIELD, md_algorithm="sha256", subfilter=PADES)
    signer = PdfSigner(meta, signer_for(pki, signer_label), timestamper=stamper)
    output = await signer.async_sign_pdf(IncrementalPdfFileWriter(BytesIO(cong_van() if pdf is None else pdf)))
    return bytes(output.getvalue())
