"""pyHanko's own verdict on a PDF, as an independent check of what the factory made.

Not the gateway's verifier (that is ``gateway.verify``): this runs pyHanko's stock validation
against the dev PKI's root, fetching OCSP and CRLs from the served PKI, with pyHanko's default
policies (difference analysis, algorithm policy, key usage ``non_repudiation``), so the factory's
tests can state what pyHanko makes of each artefact.
"""

from __future__ import annotations

from io import BytesIO

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.status import DocumentTimestampStatus, PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext

from gateway.devpki import DevPKI

__all__ = ["validate_pdf", "validation_context"]


def validation_context(pki: DevPKI, **kwargs: object) -> ValidationContext:
    """A pyHanko validation context trusting only the dev PKI's root, fetching OCSP/CRL over HTTP.

    Args:
        pki: the development PKI (served).
        **kwargs: more ``ValidationContext`` arguments (``moment``, ``retroactive_revinfo``...).

    Returns:
        The context. The caller owns it: ``await context.aclose()`` when done (it holds an
        aiohttp session, which must not outlive the event loop).
    """
    return ValidationContext(
        trust_roots=[pki.certificate_asn1("root")],
        allow_fetching=True,
        **kwargs,  # type: ignore[arg-type]  # forwarded as is; ValidationContext checks them
    )


async def validate_pdf(pdf: bytes, pki: DevPKI, **kwargs: object) -> list[PdfSignatureStatus | DocumentTimestampStatus]:
    """Validate every signature and document time stamp of ``pdf`` with pyHanko, in file order.

    Args:
        pdf: the document.
        pki: the development PKI (served; its root is the only trust anchor).
        **kwargs: more ``ValidationContext`` arguments, e.g. ``moment`` for point-in-time
            validation.

    Returns:
        One status per signature field that holds a signature (``/Sig`` → ``PdfSignatureStatus``,
        ``/DocTimeStamp`` → ``DocumentTimestampStatus``).
    """
    reader = PdfFileReader(BytesIO(pdf))
    context = validation_context(pki, **kwargs)
    statuses: list[PdfSignatureStatus | DocumentTimestampStatus] = []
    try:
        for signature in reader.embedded_signatures:
            if signature.sig_object_type == "/DocTimeStamp":
                statuses.append(await async_validate_pdf_timestamp(signature, context))
            else:
                statuses.append(await async_validate_pdf_signature(signature, context))
    finally:
        await context.aclose()  # type: ignore[no-untyped-call]
    return statuses
