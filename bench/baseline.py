"""The bare loop: what a user would write with pyHanko and signxml alone, doing the same checks.

Per package, with nothing kept from one package to the next (issue 7, P1 baseline):

1. parse the XML with lxml, hardened the usual way (no DTD, no entity expansion, no network;
   ``huge_tree`` for big base64 text) and refuse a DOCTYPE;
2. verify the envelope signature with signxml, the certificate taken from ``KeyInfo`` and its
   chain checked by signxml against the root (``ca_pem_file``); then the signer certificate's
   path and revocation with pyhanko-certvalidator (signxml checks no revocation), key usage
   digitalSignature or nonRepudiation;
3. base64-decode the attachments of the *signed* tree;
4. validate every signature of every PDF with ``async_validate_pdf_signature``: a FRESH
   ``ValidationContext`` per package for signers and another for time stamps (root as the only
   trust anchor, the intermediate as a helper, fetching allowed, ``hard-fail`` revocation),
   ``KeyUsageConstraints`` accepting digitalSignature or nonRepudiation, difference analysis
   on (no ``skip_diff``); both contexts closed at the end.

Every signature must come out intact, valid and trusted with a clean bottom line: a loop that
skipped work by failing early would be measured as fast for the wrong reason.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from signxml.verifier import SignatureConfiguration, XMLVerifier

__all__ = ["BareLoop", "BareLoopError"]

_EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
_DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
_KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)


class BareLoopError(AssertionError):
    """The bare loop did not reach the expected verdict: its timings would mean nothing."""


def _spki_pem(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=True
    )


@dataclass(frozen=True)
class BareLoop:
    """The baseline's only configuration: the trust anchor (as a PEM file too, for signxml) and the intermediate."""

    root: asn1_x509.Certificate
    intermediate: asn1_x509.Certificate
    root_pem: Path

    def _context(self) -> ValidationContext:
        return ValidationContext(
            trust_roots=[self.root],
            other_certs=[self.intermediate],
            allow_fetching=True,
            revocation_mode="hard-fail",
        )

    async def verify(self, raw: bytes) -> int:
        """Verify one package as described in the module docstring.

        Args:
            raw: the package.

        Returns:
            How many PDF signatures were validated.

        Raises:
            BareLoopError: the envelope, a certificate or a PDF signature did not validate.
        """
        root = etree.fromstring(raw, _parser())
        if root.getroottree().docinfo.internalDTD is not None:  # any DOCTYPE at all
            raise BareLoopError("a DOCTYPE in the package")
        config = SignatureConfiguration(expect_references=1)
        result: Any = XMLVerifier().verify(root, ca_pem_file=str(self.root_pem), parser=_parser(), expect_config=config)
        key_info = [
            x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split())))
            for node in root.iter(f"{{{_DSIG_NS}}}X509Certificate")
        ]
        # signxml reports the key it verified with; the signer is the KeyInfo certificate holding it.
        signer_cert = next((c for c in key_info if _spki_pem(c) == result.signature_key), None)
        if signer_cert is None:
            raise BareLoopError("no KeyInfo certificate holds the key the envelope was verified with")
        pdfs = [
            base64.b64decode("".join((node.text or "").split()))
            for node in result.signed_xml.iter(f"{{{_EDXML_NS}}}ContentTransferEncoded")
        ]
        signer_context, timestamp_context = self._context(), self._context()
        try:
            await self._check_certificate(signer_cert, key_info, signer_context)
            checked = 0
            for pdf in pdfs:
                checked += await self._check_pdf(pdf, signer_context, timestamp_context)
        finally:
            await signer_context.aclose()  # type: ignore[no-untyped-call]
            await timestamp_context.aclose()  # type: ignore[no-untyped-call]
        if checked == 0:
            raise BareLoopError("no PDF signature in the package")
        return checked

    @staticmethod
    async def _check_certificate(
        cert: x509.Certificate, key_info: list[x509.Certificate], context: ValidationContext
    ) -> None:
        def load(c: x509.Certificate) -> asn1_x509.Certificate:
            return asn1_x509.Certificate.load(c.public_bytes(Encoding.DER))

        validator = CertificateValidator(
            load(cert), intermediate_certs=[load(c) for c in key_info if c != cert], validation_context=context
        )
        await validator.async_validate_path()  # raises on an untrusted or revoked path
        _KEY_USAGE.validate(load(cert))

    @staticmethod
    async def _check_pdf(pdf: bytes, signer_context: ValidationContext, timestamp_context: ValidationContext) -> int:
        reader = PdfFileReader(BytesIO(pdf))
        signatures = reader.embedded_signatures
        for signature in signatures:
            status = await async_validate_pdf_signature(
                signature,
                signer_validation_context=signer_context,
                ts_validation_context=timestamp_context,
                key_usage_settings=_KEY_USAGE,
            )
            stamp = status.timestamp_validity
            if not (status.intact and status.valid and status.trusted and status.bottom_line):
                raise BareLoopError(f"{signature.field_name}: {status.summary()}")
            if stamp is None or not (stamp.intact and stamp.valid and stamp.trusted):
                raise BareLoopError(f"{signature.field_name}: time stamp missing or not trusted")
        return len(signatures)
