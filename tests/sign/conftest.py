"""Fixtures of the sealing tests (import them here so pytest registers them).

Sealing runs against the real thing: the development PKI served on loopback (OCSP, CRLs, TSA),
the PKCS#12 ``SigningKey`` of a dev PKI label, the real ``Examiner`` with the pinned dev root,
and the sample seal ``config/samples/con-dau-mau.png`` and Liberation Serif.

* ``sealing(pki, ...)`` — an async context manager that builds a ``Sealer`` (and its examiner)
  on the running loop and closes both; ``seal(pki, pdf, request, ...)`` runs one sealing from
  synchronous code (there is no pytest-asyncio);
* ``sealed_docs`` — the session's sealed documents (main, attachment, copy), made once on first
  use and shared by the appearance and verifier tests;
* ``scanned_pdf(...)`` — a one-page "scan" (an RGB or grey page image at a given resolution);
* ``ARTIFACTS`` — where rendered pages and sealed files are kept for people (gitignored).
"""

# pyHanko's PDF object model (generic.*Object constructors, writer helpers) is not annotated.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from functools import cached_property
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.images import pil_image
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from gateway.clock import Clock, SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.settings import SignSettings
from gateway.sign.keys import SigningKey, load_pkcs12
from gateway.sign.pdfseal import Sealer, SealKind, SealRequest
from gateway.sign.tsa import TsaClient
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Policy, SignerPolicy
from gateway.verify.trust import TrustStore
from tests.external import require_file
from tests.pdfs import SignedPdfs, phu_luc, run
from tests.sign.softhsm import softhsm_token

__all__ = [
    "ARTIFACTS",
    "ORGANISATION",
    "SEAL_IMAGE",
    "SealedDocs",
    "font_path",
    "key_for",
    "policy_for",
    "scanned_pdf",
    "seal",
    "sealed_docs",
    "sealing",
    "sign_settings",
    "softhsm_token",
    "trust_store",
]

SEAL_IMAGE = Path(__file__).resolve().parents[2] / "config" / "samples" / "con-dau-mau.png"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "sign"
ORGANISATION = "Ủy ban nhân dân tỉnh Test"
_FONT = Path("/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf")


def font_path() -> Path:
    """Liberation Serif (skips locally, fails in CI, when fonts-liberation2 is missing)."""
    return require_file(_FONT, "fonts-liberation2")


def trust_store(pki: DevPKI) -> TrustStore:
    """The dev PKI's pinned root, and its intermediate as a helper."""
    return TrustStore.load(
        [pki.layout.anchor("root")], [fingerprint(pki.certificate("root"))], [pki.layout.intermediate("intermediate")]
    )


def key_for(pki: DevPKI, label: str = "org") -> SigningKey:
    """The PKCS#12 key of ``label``, opened as the gateway opens it."""
    return load_pkcs12(pki.pkcs12(label, b"pw"), b"pw", source=f"{label}.p12")


def policy_for(pki: DevPKI) -> Policy:
    """The default policy, recognising the dev PKI's organisation and person certificates."""
    signers = SignerPolicy(
        organisation_policy_oids=(pki.policy_oids.organisation,), person_policy_oids=(pki.policy_oids.person,)
    )
    return replace(Policy(), signers=signers)


def sign_settings(pki: DevPKI, **changes: Any) -> SignSettings:
    """``[sign]`` for the dev PKI: its TSA (short deadlines: it is on loopback), the sample seal."""
    base = SignSettings(
        tsa_url=pki.urls.tsa,
        tsa_timeout_seconds=10.0,
        tsa_attempts=2,
        tsa_concurrency=4,
        seal_image=SEAL_IMAGE,
        font=font_path(),
    )
    return replace(base, **changes)


@asynccontextmanager
async def sealing(
    pki: DevPKI,
    *,
    label: str = "org",
    settings: SignSettings | None = None,
    clock: Clock | None = None,
    tsa: TsaClient | None = None,
) -> AsyncIterator[Sealer]:
    """A ``Sealer`` for ``label``'s key on the running loop; its examiner and TSA are closed after."""
    clock = clock or SystemClock()
    store = trust_store(pki)
    examiner = Examiner(store, clock)
    sealer = Sealer(
        key_for(pki, label), settings or sign_settings(pki), examiner, policy_for(pki), clock, trust=store, tsa=tsa
    )
    try:
        yield sealer
    finally:
        await sealer.aclose()
        await examiner.aclose()


def seal(pki: DevPKI, pdf: bytes, request: SealRequest, **options: Any) -> bytes:
    """Seal one document from synchronous code (options as for ``sealing``)."""

    async def go() -> bytes:
        async with sealing(pki, **options) as sealer:
            return await sealer.seal_document(pdf, request)

    return run(go())


def scanned_pdf(*, dpi: int = 200, colour: bool = True) -> bytes:
    """A one-page A4 "scan": a page image of ``dpi`` resolution filling the page, nothing else.

    Args:
        dpi: the image's resolution on the page.
        colour: an RGB scan (else a greyscale one).

    Returns:
        The PDF bytes (PDF 1.7, the page image Flate-compressed).
    """
    width, height = round(595 / 72 * dpi), round(842 / 72 * dpi)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    scale = dpi / 72
    draw.rectangle((60 * scale, 60 * scale, 300 * scale, 100 * scale), outline=(200, 0, 0), width=3)
    for row in range(12):
        y = (200 + 40 * row) * scale
        draw.line((72 * scale, y, 520 * scale, y), fill=(20, 20, 20), width=max(1, round(scale)))
    if not colour:
        image = image.convert("L")
    writer = PdfFileWriter(stream_xrefs=False)
    image_ref = pil_image(image, writer)
    content = generic.StreamObject(stream_data=b"q 595 0 0 842 0 0 cm /Scan Do Q")
    resources = generic.DictionaryObject(
        {pdf_name("/XObject"): generic.DictionaryObject({pdf_name("/Scan"): image_ref})}
    )
    writer.insert_page(PageObject(contents=writer.add_object(content), media_box=(0, 0, 595, 842), resources=resources))
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


class SealedDocs:
    """The session's sealed documents (each made once, on first use)."""

    def __init__(self, pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
        self.pki = pki
        self.signed_pdfs = signed_pdfs

    def _keep(self, name: str, data: bytes) -> bytes:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / name).write_bytes(data)
        return data

    @cached_property
    def main(self) -> bytes:
        """``signed_pdfs.person_only`` sealed as the main document."""
        request = SealRequest(SealKind.MAIN, ORGANISATION)
        return self._keep("sealed-main.pdf", seal(self.pki, self.signed_pdfs.person_only, request))

    @cached_property
    def attachment(self) -> bytes:
        """The appendix (``phu_luc``) sealed as a separate attachment of 123/UBND-VP."""
        request = SealRequest(SealKind.ATTACHMENT, ORGANISATION, document_number="123/UBND-VP")
        return self._keep("sealed-attachment.pdf", seal(self.pki, phu_luc(), request))

    @cached_property
    def copy(self) -> bytes:
        """A 200 dpi colour scan sealed as a "SAO LỤC" copy."""
        request = SealRequest(SealKind.COPY, ORGANISATION, copy_type="SAO LỤC")
        return self._keep("sealed-copy.pdf", seal(self.pki, scanned_pdf(), request))


@pytest.fixture(scope="session")
def sealed_docs(dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> SealedDocs:
    """The session's ``SealedDocs`` (read-only bytes shared by every test)."""
    return SealedDocs(dev_pki, signed_pdfs)
