"""The benchmark's world: a development PKI served on loopback and realistic signed packages.

``served_pki`` generates a fresh development PKI in a temporary directory (no key cache: about
two seconds) and serves its OCSP, CRLs, certificate repository and TSA over real HTTP on a
loopback port, in a thread of this process, exactly as the test suite's ``dev_pki`` fixture does;
optionally behind a ``bench.latency.DelayingRelay`` so responders can be made to seem far away.

``make_packages`` then writes what a sending agency would send: an edXML package with

* the main document (``tests.pdfs.cong_van``) signed by the authorised person, then by the
  organisation (PAdES-B-T, time stamps from the served TSA: Decree 30 Art. 5 order);
* a separately filed appendix (``tests.pdfs.phu_luc``) signed by the organisation (B-T);
* the envelope signed with the organisation's key (enveloped XMLDSig, ``gateway.sign.envelope``).

Each PDF is padded with pages holding an uncompressed RGB image of random pixels (what a
scanned page amounts to for a verifier: an opaque stream), so that the files range from about
50 KB to 1 MB; sizes are drawn log-uniformly from a seeded generator, so ``--seed`` repeats a run.
"""

# pyHanko's PDF object model (generic.*Object constructors, writer helpers) is not annotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import contextlib
import math
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter, copy_into_new_writer

from bench.latency import DelayingRelay
from gateway.clock import SystemClock
from gateway.devpki import DevPKI, bind_listener, serve_pki, write_bundle
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
)
from gateway.sign.envelope import sign_envelope
from gateway.sign.keys import SigningKey
from tests.pdfs.documents import A4, APPENDIX_STAMP_BOX, ORG_SEAL_BOX, PERSON_FIELD, cong_van, phu_luc
from tests.pdfs.signing import ORG_FIELD, sign_pdf

__all__ = ["RECIPIENT", "SENDER", "Package", "make_packages", "org_signing_key", "served_pki"]

RECIPIENT = "000.00.01.H53"
"""The receiving agency's OrganId (the gateway under test is configured with it)."""

SENDER = "000.00.00.G22"
"""The sending agency's OrganId."""

MIN_PDF_BYTES = 50 * 1024
MAX_PDF_BYTES = 1024 * 1024
_PAGE_IMAGE_BYTES = 300 * 1024  # at most this much "scan" per padding page


@dataclass(frozen=True)
class Package:
    """One generated package and what it holds."""

    name: str
    raw: bytes
    pdf_sizes: tuple[int, ...]
    """Sizes of the PDF attachments, main document first."""
    signatures: int
    """PDF signatures in the package (the envelope signature not counted)."""


@contextmanager
def served_pki(*, relay: bool = False) -> Iterator[tuple[DevPKI, DelayingRelay | None]]:
    """A fresh development PKI, its bundle written to a temporary directory, served on loopback.

    Args:
        relay: put a ``DelayingRelay`` (no delay yet) between the URLs the certificates name
            and the PKI's server, so that the caller can add network latency later.

    Yields:
        The PKI and the relay (``None`` without ``relay``); the services answer until the block
        exits, and the directory is removed after.
    """
    with tempfile.TemporaryDirectory(prefix="bench-pki-") as tmp, contextlib.ExitStack() as stack:
        listener = bind_listener("127.0.0.1", 0)
        stack.callback(listener.close)  # serve_pki duplicates it; closing ours twice is harmless
        named = listener
        if relay:
            named = bind_listener("127.0.0.1", 0)
            stack.callback(named.close)
        port = named.getsockname()[1]
        directory = Path(tmp)
        pki = DevPKI.generate(
            directory, base_url=f"http://127.0.0.1:{port}", anchor=SystemClock().now().replace(microsecond=0)
        )
        write_bundle(pki, directory)
        upstream = listener.getsockname()[:2]
        stack.enter_context(serve_pki(pki, listener))
        relayed = stack.enter_context(DelayingRelay(named, upstream)) if relay else None
        yield pki, relayed


def org_signing_key(pki: DevPKI) -> SigningKey:
    """The organisation's key with its intermediates (what the sender's gateway signs envelopes with)."""
    chain = tuple(c for c in pki.chain("org") if c.subject != c.issuer)
    return SigningKey(pki.private_key("org"), pki.certificate("org"), chain)


def _image_page(writer: PdfFileWriter, pixels: bytes, side: int) -> PageObject:
    """An A4 page drawing one ``side`` x ``side`` RGB image (8 bits, unfiltered) over most of the page."""
    image = generic.StreamObject(
        {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Image"),
            pdf_name("/Width"): generic.NumberObject(side),
            pdf_name("/Height"): generic.NumberObject(side),
            pdf_name("/ColorSpace"): pdf_name("/DeviceRGB"),
            pdf_name("/BitsPerComponent"): generic.NumberObject(8),
        },
        stream_data=pixels,
    )
    image_ref = writer.add_object(image)
    content = writer.add_object(generic.StreamObject(stream_data=b"q 500 0 0 500 47 171 cm /Scan Do Q\n"))
    resources = generic.DictionaryObject(
        {pdf_name("/XObject"): generic.DictionaryObject({pdf_name("/Scan"): image_ref})}
    )
    return PageObject(contents=content, media_box=A4, resources=resources)


def pad_pdf(pdf: bytes, target: int, rng: random.Random) -> bytes:
    """``pdf`` rewritten as one revision with extra "scanned" pages, about ``target`` bytes long.

    Args:
        pdf: an unsigned document.
        target: the size wanted, in bytes (the result is within a few KB of it).
        rng: where the pixels come from.

    Returns:
        The padded, still unsigned, document (fields and form kept).
    """
    padding = max(target - len(pdf), 3)
    pages = max(1, math.ceil(padding / _PAGE_IMAGE_BYTES))
    writer = copy_into_new_writer(PdfFileReader(BytesIO(pdf)))
    for _ in range(pages):
        side = max(1, math.isqrt(padding // pages // 3))
        writer.insert_page(_image_page(writer, rng.randbytes(side * side * 3), side))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _size(rng: random.Random) -> int:
    """A PDF size drawn log-uniformly between ``MIN_PDF_BYTES`` and ``MAX_PDF_BYTES``."""
    return int(math.exp(rng.uniform(math.log(MIN_PDF_BYTES), math.log(MAX_PDF_BYTES))))


def _package_xml(number: int, main: bytes, appendix: bytes) -> bytes:
    header = MessageHeader(
        from_=Organization(SENDER, organ_name="Văn phòng Chính phủ"),
        to=(Organization(RECIPIENT),),
        code=DocumentCode(str(100 + number), "VPCP-TTĐT"),
        promulgation=PromulgationInfo("Hà Nội", date(2026, 11, 20)),
        document_type=DocumentType(2, 18, "Công văn"),
        subject=f"V/v đo tốc độ kiểm tra chữ ký số, gói {number}",
        signer=SignerInfo("KT. BỘ TRƯỞNG", "Thứ trưởng", "Nguyễn Văn Test"),
        document_id=f"{SENDER},2026/11/20,{100 + number}/VPCP-TTĐT",
    )
    files = (attachment_from_file("cong-van.pdf", main), attachment_from_file("phu-luc.pdf", appendix))
    return build(DocumentPackage(header=header, attachments=files))


async def make_package(pki: DevPKI, number: int, rng: random.Random) -> Package:
    """One package: main document (person, then organisation), signed appendix, signed envelope.

    Args:
        pki: the served development PKI (its TSA is called for every signature).
        number: the package's number (document code and name).
        rng: sizes and pixels.

    Returns:
        The package.
    """
    main = pad_pdf(cong_van(), _size(rng), rng)
    main = await sign_pdf(main, pki=pki, signer_label="person", field_name=PERSON_FIELD)
    main = await sign_pdf(main, pki=pki, signer_label="org", field_name=ORG_FIELD, visible_box=ORG_SEAL_BOX)
    appendix = pad_pdf(phu_luc(), _size(rng), rng)
    appendix = await sign_pdf(
        appendix, pki=pki, signer_label="org", field_name=ORG_FIELD, visible_box=APPENDIX_STAMP_BOX
    )
    raw = sign_envelope(_package_xml(number, main, appendix), org_signing_key(pki))
    return Package(f"goi-{number:03d}.edxml", raw, (len(main), len(appendix)), signatures=3)


async def make_packages(pki: DevPKI, count: int, *, seed: int) -> list[Package]:
    """``count`` packages, made one after the other (the TSA is this process's own thread).

    Args:
        pki: the served development PKI.
        count: how many.
        seed: seeds sizes and pixels.

    Returns:
        The packages, in order.
    """
    rng = random.Random(seed)  # noqa: S311 - pixels and sizes, not secrets
    return [await make_package(pki, number, rng) for number in range(1, count + 1)]
