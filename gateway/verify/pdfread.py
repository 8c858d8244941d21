"""The synchronous, CPU-bound half of examining a PDF: parse once, read every signature.

``read_pdf(data)`` runs off the event loop (the examiner sends it to a worker thread, or to a
process pool it was given; HOUSE.md rule 4). It parses the file once and, per signature field,
computes everything that needs no network: the /ByteRange digest and the signature value
(PKCS#1 v1.5, PSS, ECDSA: whatever the CMS says), the coverage, pyHanko's difference analysis
of every later revision (never skipped: the shadow attacks live there), the algorithms, the
self-declared signing time, and each RFC 3161 signature time stamp's own integrity (its message
imprint over the signature value, its signature). Trust is the async half's business.

The result holds plain values and DER bytes only, so it pickles (process pools) and no pyHanko
object outlives the parse. Hostile bytes must not escape as exceptions: whatever pyHanko raises
while reading *the document* makes it ``readable=False`` (or one signature broken, with the
reason), because a verdict is a value (HOUSE.md rule 5).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffPolicy, DiffResult, ModificationLevel
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.general import extract_signer_info, find_unique_cms_attribute
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko.sign.validation.generic_cms import (
    extract_certs_for_validation,
    extract_tst_data_iter,
    message_imprint_checker,
    validate_sig_integrity,
)
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.sign.validation.utils import extract_message_digest

from gateway.verify.certs import sha256_hex
from gateway.verify.facts import Coverage, Modification

__all__ = ["ReadPdf", "ReadSignature", "ReadTimestamp", "read_pdf"]

_SUBFILTERS = frozenset({"/adbe.pkcs7.detached", "/ETSI.CAdES.detached"})
_COVERAGE = {
    SignatureCoverageLevel.ENTIRE_FILE: Coverage.ENTIRE_FILE,
    SignatureCoverageLevel.ENTIRE_REVISION: Coverage.ENTIRE_REVISION,
    SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: Coverage.CONTIGUOUS_BLOCK,
    SignatureCoverageLevel.UNCLEAR: Coverage.UNCLEAR,
}
_MODIFICATION = {
    ModificationLevel.NONE: Modification.NONE,
    ModificationLevel.LTA_UPDATES: Modification.LTA_UPDATES,
    ModificationLevel.FORM_FILLING: Modification.FORM_FILLING,
    ModificationLevel.ANNOTATIONS: Modification.ANNOTATIONS,
    ModificationLevel.OTHER: Modification.OTHER,
}


@dataclass(frozen=True)
class ReadTimestamp:
    """A signature time stamp token as read (its TSA's trust is judged later)."""

    gen_time: datetime | None
    intact: bool
    """The imprint matches the signature value and the token's signature verifies."""
    tsa: bytes | None
    """DER of the TSA certificate, when the token carries it."""
    certs: tuple[bytes, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class ReadSignature:
    """One signature field as read; ``problem`` set means it could not be read at all."""

    field_name: str
    subfilter: str
    signer: bytes | None = None
    certs: tuple[bytes, ...] = ()
    intact: bool = False
    crypto_valid: bool = False
    coverage: Coverage = Coverage.UNCLEAR
    modification: Modification = Modification.OTHER
    modification_detail: str | None = None
    digest_algorithm: str = ""
    signature_mechanism: str = ""
    declared_signing_time: datetime | None = None
    timestamp: ReadTimestamp | None = None
    crls: tuple[bytes, ...] = ()
    """Revocation data archived in the signed attributes (adbe-revocationInfoArchival)."""
    ocsps: tuple[bytes, ...] = ()
    problem: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class ReadPdf:
    """A PDF as read: its signatures in signing order and its DSS (PAdES-LT) material."""

    sha256: str
    readable: bool
    detail: str = ""
    signatures: tuple[ReadSignature, ...] = ()
    dss_certs: tuple[bytes, ...] = ()
    dss_crls: tuple[bytes, ...] = ()
    dss_ocsps: tuple[bytes, ...] = ()


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _utc(value: datetime | None) -> datetime | None:
    """Facts hold aware UTC times; a PDF date without a zone (display only) is read as UTC."""
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _modification(emb: EmbeddedPdfSignature) -> tuple[Modification, str | None]:
    result: Any = emb.diff_result  # pyHanko annotates it as None (its initial value)
    if isinstance(result, DiffResult):
        level = _MODIFICATION[result.modification_level]
        fields = ", ".join(sorted(result.changed_form_fields))
        return level, (f"{level.value}; changed form fields: {fields}" if fields else None)
    if result is None:  # coverage ENTIRE_FILE never reaches the diff
        return Modification.NONE, None
    return Modification.OTHER, str(result) or "suspicious modification"


def _timestamp(signer_info: Any) -> ReadTimestamp | None:
    tokens = [_token(token, signer_info) for token in extract_tst_data_iter(signer_info, signed=False)]
    if not tokens:
        return None
    return next((token for token in tokens if token.intact), tokens[0])


def _token(token: Any, signer_info: Any) -> ReadTimestamp:
    gen_time: datetime | None = None
    tsa: bytes | None = None
    try:
        tst_info = token["encap_content_info"]["content"].parsed
        gen_time = tst_info["gen_time"].native
        imprint = tst_info["message_imprint"]
        expected = message_imprint_checker(signer_info)(imprint["hash_algorithm"]["algorithm"].native)
        cert_info = extract_certs_for_validation(token)
        tsa = cert_info.signer_cert.dump()
        token_signer = extract_signer_info(token)
        digest_name = token_signer["digest_algorithm"]["algorithm"].native
        content = bytes(token["encap_content_info"]["content"])
        token_digest = hashlib.new(digest_name, content).digest()
        digest_ok, signature_ok = validate_sig_integrity(token_signer, cert_info.signer_cert, "tst_info", token_digest)
    except Exception as exc:  # hostile token bytes: any parse failure means "not intact"
        return ReadTimestamp(gen_time, False, tsa, detail=f"the time stamp token cannot be checked ({_why(exc)})")
    certs = tuple(c.dump() for c in cert_info.other_certs)
    if expected != imprint["hashed_message"].native:
        return ReadTimestamp(gen_time, False, tsa, certs, "the time stamp's imprint does not match the signature")
    if not (digest_ok and signature_ok):
        return ReadTimestamp(gen_time, False, tsa, certs, "the time stamp token's own signature does not verify")
    return ReadTimestamp(gen_time, True, tsa, certs, "")


def _archival(signer_info: Any) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    try:
        archival = find_unique_cms_attribute(signer_info["signed_attrs"], "adobe_revocation_info_archival")
    except Exception:  # absent, duplicated or malformed: no archived revocation data
        return (), ()
    return tuple(c.dump() for c in archival["crl"]), tuple(o.dump() for o in archival["ocsp"])


_LAST = 1 << 30
"""Sort position of a signature whose revision is unknown: after every readable one."""


def _signature(
    reader: PdfFileReader, fq_name: str, field: Any, diff_policy: DiffPolicy
) -> tuple[int, ReadSignature] | None:
    """The signature in field ``fq_name`` and the revision that added it (``None``: not a signature)."""
    subfilter = ""
    revision = _LAST
    try:
        emb = EmbeddedPdfSignature(reader, field, fq_name)
        if emb.sig_object_type != "/Sig":
            return None  # a document time stamp (PAdES-LTA material), not a signature
        revision = emb.signed_revision
        subfilter = str(emb.sig_object.get("/SubFilter", ""))
        if subfilter not in _SUBFILTERS:
            problem = f"the SubFilter {subfilter or '(none)'} is not supported"
            return revision, ReadSignature(fq_name, subfilter, problem=problem)
        emb.compute_integrity_info(diff_policy=diff_policy)  # type: ignore[no-untyped-call]
        digest = emb.compute_digest()
        modification, modification_detail = _modification(emb)
        signer_info = emb.signer_info
        mechanism = signer_info["signature_algorithm"]["algorithm"].native
        with contextlib.suppress(ValueError):  # an OID asn1crypto does not map: keep its dotted name
            mechanism = signer_info["signature_algorithm"].signature_algo
        try:
            declared = _utc(emb.self_reported_timestamp)
        except Exception:  # a malformed /M date is only a display problem
            declared = None
    except Exception as exc:  # hostile bytes: pyHanko may raise anything
        return revision, ReadSignature(fq_name, subfilter, problem=f"the signature cannot be read ({_why(exc)})")
    detail = ""
    try:
        signer = emb.signer_cert
    except Exception as exc:  # absent, or not the one the signing-certificate attribute names
        signer = None
        detail = f"the signature carries no usable signer certificate ({_why(exc)})"
    if signer is None:
        valid = False  # nothing to check the value with; the digest can still be compared
        try:
            intact = extract_message_digest(signer_info) == digest
        except Exception:  # a malformed messageDigest attribute
            intact = False
    else:
        try:
            content_type = emb.signed_data["encap_content_info"]["content_type"].native
            intact, valid = validate_sig_integrity(signer_info, signer, content_type, digest)
        except Exception as exc:  # CMS structure errors, signing-certificate mismatch
            intact = valid = False
            detail = f"the CMS signature is malformed ({_why(exc)})"
    coverage: Any = emb.coverage  # set by compute_integrity_info (annotated as None)
    crls, ocsps = _archival(signer_info)
    try:
        timestamp = _timestamp(signer_info)
    except Exception as exc:  # malformed unsigned attributes
        timestamp = ReadTimestamp(None, False, None, detail=f"the time stamp cannot be read ({_why(exc)})")
    return revision, ReadSignature(
        field_name=fq_name,
        subfilter=subfilter,
        signer=None if signer is None else signer.dump(),
        certs=tuple(c.dump() for c in emb.other_embedded_certs) if signer is not None else (),
        intact=intact,
        crypto_valid=valid,
        coverage=_COVERAGE[coverage],
        modification=modification,
        modification_detail=modification_detail,
        digest_algorithm=emb.md_algorithm,
        signature_mechanism=str(mechanism),
        declared_signing_time=declared,
        timestamp=timestamp,
        crls=crls,
        ocsps=ocsps,
        detail=detail,
    )


def _dss(reader: PdfFileReader) -> tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return (), (), ()
    certs = tuple(c.dump() for c in dss.load_certs())
    crls = tuple(ref.get_object().read_data(DecodePurpose.CRL) for ref in dss.crls)
    ocsps = tuple(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE) for ref in dss.ocsps)
    return certs, crls, ocsps


def _fields(reader: PdfFileReader) -> Iterator[tuple[str, Any]]:
    for fq_name, _, field in enumerate_sig_fields(reader, filled_status=True):
        yield fq_name, field


def read_pdf(data: bytes, diff_policy: DiffPolicy | None = None) -> ReadPdf:
    """Parse a PDF once and read all its signatures (synchronous; run it off the loop).

    Args:
        data: the file's bytes (untrusted).
        diff_policy: pyHanko's difference policy (default: its standard policy).

    Returns:
        The file as read; ``readable=False`` with the reason when pyHanko cannot read it
        (garbage, encrypted, broken cross-references).
    """
    digest = sha256_hex(data)
    policy = diff_policy or DEFAULT_DIFF_POLICY
    try:
        # strict (pyHanko's default): hybrid-reference files and sloppy syntax are refused,
        # since every leniency in the parser is room for a shadow attack.
        reader = PdfFileReader(BytesIO(data), strict=True)
        if reader.encrypted:
            return ReadPdf(digest, False, "the PDF is encrypted, so its signatures cannot be checked")
        fields = list(_fields(reader))
        certs, crls, ocsps = _dss(reader)
    except Exception as exc:  # hostile bytes: pyHanko may raise anything
        return ReadPdf(digest, False, f"not a PDF that can be read ({_why(exc)})")
    read = [found for name, field in fields if (found := _signature(reader, name, field, policy)) is not None]
    # Signing order = the revision that added each signature (pyHanko's order too).
    signatures = tuple(signature for _, signature in sorted(read, key=lambda r: (r[0], r[1].field_name)))
    return ReadPdf(digest, True, "", signatures, certs, crls, ocsps)
