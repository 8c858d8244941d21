"""A factory of signed and attacked PDFs for the verification engine's tests (spec §6 A1–A10).

Real PDFs, real PAdES signatures (pyHanko, async API) made with the development PKI and time
stamps from its served TSA, and attacked variants made from them. Nothing binary is committed:
every artefact is made at test time, for the session's PKI.

Modules:

* ``documents`` — the unsigned base documents: ``cong_van()`` (the main letter, with the
  person's empty signature field) and ``phu_luc()`` (a separately filed appendix);
* ``signing`` — ``sign_pdf`` (one more signature as an incremental update) and
  ``signed_main_document`` (person then organisation, Decree 30 order, PAdES-B-T);
* ``attacks`` — functions from signed bytes to attacked bytes (tampering, shadow attacks,
  /ByteRange coverage, trailing bytes, annotation, form filling, LTA updates);
* ``corpus`` — ``SignedPdfs``, every artefact made once per session, and the ``signed_pdfs``
  fixture that hands it to tests;
* ``validation`` — pyHanko's stock verdict on a PDF (``validate_pdf``), for the factory's own tests.

The coroutines must run on an event loop of their own: call them through ``signing.run`` from
synchronous tests and fixtures (there is no pytest-asyncio).
"""

from tests.pdfs.corpus import ARTEFACTS, SIGNER_LABELS, SignedPdfs, signed_pdfs
from tests.pdfs.documents import cong_van, phu_luc
from tests.pdfs.signing import PADES, PKCS7, TimestampChoice, run, sign_pdf, signed_main_document
from tests.pdfs.validation import validate_pdf, validation_context

__all__ = [
    "ARTEFACTS",
    "PADES",
    "PKCS7",
    "SIGNER_LABELS",
    "SignedPdfs",
    "TimestampChoice",
    "cong_van",
    "phu_luc",
    "run",
    "sign_pdf",
    "signed_main_document",
    "signed_pdfs",
    "validate_pdf",
    "validation_context",
]
