"""Sample inbound packages for ``gateway demo``: what a partner agency sends us, made with the development PKI.

Three packages from the partner ``PARTNER`` (Văn phòng Chính phủ, ``000.00.00.G22``) to one of
our OrganIds, each carrying one PDF, a Công văn generated here (``sample_pdf``):

* ``valid`` — signed as Decree 30 Art. 5 wants it: first the authorised person (the development
  PKI's ``person`` key, PAdES with an RFC 3161 time stamp from the development TSA), then the
  organisation's seal over it, made by the gateway's own ``Sealer`` (``kind = main``). The
  recipient should accept it;
* ``tampered`` — a letter signed and sealed the same way, then its amount changed in place,
  inside the range both signatures cover (same length, so offsets and the xref still hold): every
  signature is *not intact* and the recipient should refuse it (``pdf-signature-invalid``);
* ``unsigned`` — the same letter without any signature: refused (``pdf-unsigned``).

Every package's envelope is signed (XMLDSig) with the organisation key handed in, over the
package as it travels: a recipient must catch the PDF, not a broken envelope.

The development PKI has one organisation certificate, so the "partner" seals and signs its
envelopes with the same key as the gateway itself: a directory that pins the partner's
certificates would (rightly) add ``sender-mismatch``. Test data only; never for production.

The module builds bytes only: the caller opens the sealer and the key (``gateway.app.open_sealing``)
and sends the mails (``gateway demo``).
"""

# pyHanko's PDF object model (generic.*Object constructors, writer helpers) is not annotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from email.parser import BytesHeaderParser
from io import BytesIO
from typing import Literal, Protocol

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter, append_signature_field
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.stamp import TextStampStyle

from gateway.clock import Clock, to_vn
from gateway.devpki.pki import DevPKI
from gateway.edxml.attachments import attachment_from_file
from gateway.edxml.build import build
from gateway.edxml.model import (
    DocumentCode,
    DocumentPackage,
    DocumentType,
    MessageHeader,
    Organization,
    PromulgationInfo,
    SignerInfo,
    TraceHeader,
    TraceHeaderList,
)
from gateway.pipeline.mails import compose
from gateway.sign.envelope import SignatureAlgorithm, sign_envelope
from gateway.sign.keys import OrganisationKey, load_pkcs12
from gateway.sign.request import SealKind, SealRequest
from gateway.sign.tsa import TsaClient

__all__ = [
    "AMOUNT",
    "FORGED_AMOUNT",
    "PARTNER",
    "PERSON_FIELD",
    "DocumentSealer",
    "Partner",
    "Sample",
    "make_samples",
    "sample_mail",
    "sample_pdf",
    "sign_as_person",
    "tamper",
]

SampleName = Literal["valid", "tampered", "unsigned"]

AMOUNT = b"Tong kinh phi: 100.000.000 dong."
"""A line of the letter's (unfiltered) page content; ``tamper`` rewrites it."""
FORGED_AMOUNT = b"Tong kinh phi: 900.000.000 dong."
"""What the tampered letter says instead (same length: no offset moves)."""
PERSON_FIELD = "NguoiKy"
"""The empty signature field where the authorised person signs (box 7c of Decree 30 Appendix I)."""

_A4 = (0, 0, 595, 842)
_PERSON_BOX = (360, 250, 520, 310)
_NOTATION = "VPCP-TTĐT"
_NUMBERS: dict[SampleName, str] = {"valid": "101", "tampered": "102", "unsigned": "103"}
_STAMP = TextStampStyle(stamp_text="Da ky so\n%(ts)s", timestamp_format="%Y-%m-%dT%H:%M:%S%z")
"""The person's visible signature. ASCII: pyHanko's standard-14 fonts cannot show Vietnamese letters."""


@dataclass(frozen=True)
class Partner:
    """The agency the samples come from, as our directory would know it."""

    organ_id: str = "000.00.00.G22"
    name: str = "Văn phòng Chính phủ"
    mail: str = "vanthu@chinhphu.vn"


PARTNER = Partner()
"""The Government Office (the partner of ``tests/service.py`` and of the documentation)."""


class DocumentSealer(Protocol):
    """What the samples need of ``gateway.sign.pdfseal.Sealer``."""

    async def seal_document(self, pdf: bytes, request: SealRequest) -> bytes:
        """Seal one PDF (see ``Sealer.seal_document``)."""
        ...


@dataclass(frozen=True)
class Sample:
    """One sample package and what a lawful recipient should conclude about it."""

    name: SampleName
    expected: Literal["accepted", "refused"]
    description: str
    """One English line: what was done to the PDF."""
    document_id: str
    pdf: bytes
    """The PDF the package carries."""
    package: bytes
    """The edXML package, envelope signed."""


def _text(x: int, y: int, size: int, text: bytes, *, bold: bool = False) -> bytes:
    escaped = text.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"BT /%s %d Tf %d %d Td (%s) Tj ET\n" % (b"F2" if bold else b"F1", size, x, y, escaped)


def _font(base: str) -> generic.DictionaryObject:
    return generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/" + base),
            pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding"),
        }
    )


def sample_pdf(number: str, day: date) -> bytes:
    """A one-page A4 Công văn of the partner, unsigned, with the person's empty signature field.

    Text is ASCII (Vietnamese without diacritics) in the standard Helvetica fonts, so nothing is
    embedded; the page content is left unfiltered, so ``AMOUNT`` appears in the file as it is.

    Args:
        number: the document number printed on the letter.
        day: the date printed on the letter (its promulgation date).

    Returns:
        The PDF bytes (one revision, classic xref table).
    """
    lines = [
        _text(60, 790, 11, b"VAN PHONG CHINH PHU", bold=True),
        _text(300, 790, 11, b"CONG HOA XA HOI CHU NGHIA VIET NAM", bold=True),
        _text(335, 776, 11, b"Doc lap - Tu do - Hanh phuc", bold=True),
        _text(60, 750, 11, b"So: " + number.encode("ascii") + b"/VPCP-TTDT"),
        _text(330, 750, 11, b"Ha Noi, ngay %d thang %d nam %d" % (day.day, day.month, day.year)),
        _text(60, 735, 11, b"V/v kiem tra chu ky so (goi tin mau)"),
        _text(160, 690, 12, b"Kinh gui: Uy ban nhan dan tinh Tay Ninh", bold=True),
        _text(72, 640, 12, b"Day la van ban mau cua lenh gateway demo, ky bang PKI thu nghiem."),
        _text(72, 620, 12, AMOUNT, bold=True),
        _text(72, 600, 12, b"Thoi han: trong 15 ngay ke tu ngay nhan."),
        _text(380, 345, 11, b"KT. BO TRUONG, CHU NHIEM", bold=True),
        _text(405, 330, 11, b"PHO CHU NHIEM", bold=True),
        _text(395, 230, 11, b"Nguyen Van Test", bold=True),
    ]
    writer = PdfFileWriter(stream_xrefs=False)
    writer.set_info(generic.DictionaryObject({pdf_name("/Title"): generic.TextStringObject("Cong van mau")}))
    fonts = generic.DictionaryObject({pdf_name("/F1"): _font("Helvetica"), pdf_name("/F2"): _font("Helvetica-Bold")})
    resources = generic.DictionaryObject({pdf_name("/Font"): writer.add_object(fonts)})
    content = writer.add_object(generic.StreamObject(stream_data=b"".join(lines)))
    writer.insert_page(PageObject(contents=content, media_box=_A4, resources=resources))
    append_signature_field(writer, SigFieldSpec(sig_field_name=PERSON_FIELD, on_page=0, box=_PERSON_BOX))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def tamper(pdf: bytes) -> bytes:
    """Rewrite ``AMOUNT`` into ``FORGED_AMOUNT`` in place, after signing.

    Args:
        pdf: a PDF made from ``sample_pdf`` (signed or not).

    Returns:
        The same bytes but for the changed digit: the signatures' digests no longer match.

    Raises:
        ValueError: ``AMOUNT`` is not in the file exactly once.
    """
    found = pdf.count(AMOUNT)
    if found != 1:
        raise ValueError(f"the amount line occurs {found} times in the PDF; expected exactly once")
    return pdf.replace(AMOUNT, FORGED_AMOUNT)


async def sign_as_person(pdf: bytes, pki: DevPKI, tsa: TsaClient, clock: Clock) -> bytes:
    """Sign ``PERSON_FIELD`` as the authorised person: PAdES (B-T) with the development PKI's ``person`` key.

    Args:
        pdf: the unsigned letter (``sample_pdf``).
        pki: the development PKI (its ``person`` key and certificate chain).
        tsa: the client of the development TSA (``pki.urls.tsa``).
        clock: the signing time (written as /M in Vietnam time).

    Returns:
        The PDF with one more revision, the person's signature.

    Raises:
        TsaUnavailable: the TSA did not answer.
        ConfigError: the PKI's ``person`` key cannot be read.
    """
    person = load_pkcs12(pki.pkcs12("person", None), None, source=str(pki.layout.p12("person")))
    meta = PdfSignatureMetadata(
        field_name=PERSON_FIELD,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        location="Ha Noi",
        signer_key_usage=set(),
    )
    signer = PdfSigner(meta, person.pdf_signer(), timestamper=tsa.timestamper, stamp_style=_STAMP)
    writer = await asyncio.to_thread(IncrementalPdfFileWriter, BytesIO(pdf))
    # PdfSigner.async_sign_pdf step by step: it would take "now" in the host's time zone.
    session = signer.init_signing_session(writer)
    session.system_time = to_vn(clock.now().replace(microsecond=0))
    validation_info = await session.perform_presign_validation(writer)
    reserved = await session.estimate_signature_container_size(validation_info, tight=False)
    tbs = await asyncio.to_thread(session.prepare_tbs_document, validation_info, reserved)
    prepared, output = await asyncio.to_thread(tbs.digest_tbs_document)
    post_sign = await tbs.perform_signature(
        prepared.document_digest, PdfCMSSignedAttributes(signing_time=session.system_time)
    )
    await post_sign.post_signature_processing(output)
    if not isinstance(output, BytesIO):  # digest_tbs_document() without a stream makes a BytesIO
        raise TypeError("pyHanko returned no in-memory output")
    return output.getvalue()


def _package(name: SampleName, pdf: bytes, *, to: str, partner: Partner, at: datetime) -> tuple[str, DocumentPackage]:
    day = to_vn(at).date()
    number = _NUMBERS[name]
    document_id = f"{partner.organ_id},{day:%Y/%m/%d},{number}/{_NOTATION}"
    header = MessageHeader(
        from_=Organization(partner.organ_id, organ_name=partner.name, email=partner.mail),
        to=(Organization(to),),
        code=DocumentCode(number, _NOTATION),
        promulgation=PromulgationInfo("Hà Nội", day),
        document_type=DocumentType(2, 18, "Công văn"),
        subject=f"V/v kiểm tra chữ ký số (gói tin mẫu: {name})",
        signer=SignerInfo("KT. BỘ TRƯỞNG, CHỦ NHIỆM", "Phó Chủ nhiệm", "Nguyễn Văn Test"),
        document_id=document_id,
    )
    # The sender's own hop, as the SDK writes it: who made the package and when.
    trace = TraceHeaderList(traces=(TraceHeader(partner.organ_id, at.replace(microsecond=0)),))
    attachment = attachment_from_file(f"cong-van-{number}.pdf", pdf)
    return document_id, DocumentPackage(header=header, trace=trace, attachments=(attachment,))


async def make_samples(
    pki: DevPKI,
    sealer: DocumentSealer,
    key: OrganisationKey,
    *,
    to: str,
    clock: Clock,
    algorithm: SignatureAlgorithm = "rsa-sha256",
    partner: Partner = PARTNER,
    tsa_timeout: float = 30.0,
) -> tuple[Sample, Sample, Sample]:
    """Make the ``valid``, ``tampered`` and ``unsigned`` packages (see the module docstring).

    Args:
        pki: the development PKI the gateway trusts; its TSA must be served (``gateway serve``
            does it with ``[dev] pki``).
        sealer: the organisation's sealer (``Sealing.documents``), already open.
        key: the organisation key (``Sealing.key``): it signs the envelopes.
        to: the OrganId the packages are addressed to (ours).
        clock: the time source (signing times, trace, promulgation date).
        algorithm: the envelope signature algorithm.
        partner: the sending agency.
        tsa_timeout: seconds the TSA may take for the person's time stamp.

    Returns:
        The three samples, in that order.

    Raises:
        SealingRefused: the sealer refused the person-signed letter (e.g. its certificate is not
            trusted by the configured anchors: a different development PKI).
        SealingDeferred: OCSP or the TSA did not answer (``TsaUnavailable`` included).
        ConfigError: the PKI's ``person`` key cannot be read.
    """
    day = to_vn(clock.now()).date()
    request = SealRequest(kind=SealKind.MAIN, organisation_name=partner.name)
    tsa = TsaClient(pki.urls.tsa, timeout=tsa_timeout, attempts=2, concurrency=1)

    async def signed(name: SampleName) -> bytes:
        """The letter signed by the person, then sealed by the organisation (Decree 30 order)."""
        person_signed = await sign_as_person(sample_pdf(_NUMBERS[name], day), pki, tsa, clock)
        return await sealer.seal_document(person_signed, request)

    try:
        valid_pdf = await signed("valid")
        tampered_pdf = tamper(await signed("tampered"))
    finally:
        await tsa.aclose()
    at = clock.now()
    pdfs: dict[SampleName, tuple[bytes, str]] = {
        "valid": (valid_pdf, "signed by the person (PAdES, time-stamped), then sealed by the organisation"),
        "tampered": (tampered_pdf, "signed and sealed like the valid one, then its amount changed"),
        "unsigned": (sample_pdf(_NUMBERS["unsigned"], day), "the same letter without any signature"),
    }
    samples = []
    for name, (pdf, description) in pdfs.items():
        document_id, document = _package(name, pdf, to=to, partner=partner, at=at)
        package = await asyncio.to_thread(sign_envelope, build(document), key, algorithm=algorithm)
        expected: Literal["accepted", "refused"] = "accepted" if name == "valid" else "refused"
        samples.append(Sample(name, expected, description, document_id, pdf, package))
    valid, tampered, unsigned = samples
    return valid, tampered, unsigned


def sample_mail(sample: Sample, *, to: str, at: datetime, partner: Partner = PARTNER) -> tuple[bytes, str]:
    """The mail the axis would deliver for ``sample``: the package attached, a short text part.

    Args:
        sample: the package.
        to: our mailbox (the To: address).
        at: the Date.
        partner: the sending agency (its mailbox is the From: address).

    Returns:
        The mail's bytes (CRLF line ends) and its Message-ID (how the receipt log knows it).

    Raises:
        ValueError: the composed mail has no Message-ID (cannot happen with ``compose``).
    """
    mail = compose(
        sample.package,
        filename=f"goi-tin-mau-{sample.name}.edxml",
        mail_from=partner.mail,
        to=[to],
        subject=f"Gói tin mẫu ({sample.name}): {sample.document_id}",
        text=(
            f"Gói tin mẫu của lệnh gateway demo ({sample.name}).\n"
            f"A sample package of `gateway demo` ({sample.name}): {sample.description}.\n"
        ),
        at=at,
        domain=partner.mail.rpartition("@")[2] or "localhost",
    )
    message_id = BytesHeaderParser().parsebytes(mail).get("Message-ID")
    if message_id is None:
        raise ValueError("the composed mail has no Message-ID")
    return mail, str(message_id)
