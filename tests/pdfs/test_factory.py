"""The PDF factory makes what it claims: checked with poppler's ``pdfsig`` and with pyHanko.

Two independent judges look at every artefact of ``SignedPdfs``:

* ``pdfsig -nocert`` (poppler/NSS) checks the cryptography of each signature and whether it
  covers the whole file. ``-nocert`` skips the certificate check (NSS does not trust our test
  root anyway, and would go to the network for OCSP);
* pyHanko's stock validation, trusting only the dev PKI's root and fetching OCSP/CRLs from the
  served PKI, reports intact / valid / trusted, coverage and modification level.

Some assertions pin pyHanko behaviour the gateway's verifier must compensate for; they say so.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESIndeterminate
from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel
from pyhanko.sign.validation.status import DocumentTimestampStatus, PdfSignatureStatus, SignatureCoverageLevel

from gateway.devpki import DevPKI
from tests.external import require
from tests.pdfs.attacks import AMOUNT_BOX, FORGED_AMOUNT_TEXT, FORGED_LOCATION, NOTE_TEXT
from tests.pdfs.corpus import ARTEFACTS, BACKDATE_MARGIN, SIGNER_LABELS, SignedPdfs
from tests.pdfs.documents import (
    A4,
    AMOUNT_TEXT,
    APPENDIX_STAMP_BOX,
    DOCUMENT_NUMBER,
    NOTE_FIELD,
    ORG_SEAL_BOX,
    PERSON_BOX,
    PERSON_FIELD,
    cong_van,
    phu_luc,
)
from tests.pdfs.signing import ORG_FIELD, run
from tests.pdfs.validation import validate_pdf

Status = PdfSignatureStatus | DocumentTimestampStatus

VALID = "Signature is Valid."
MISMATCH = "Digest Mismatch."


# ---------------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class PdfsigSignature:
    """One ``Signature #n`` block of ``pdfsig`` output."""

    field: str
    kind: str | None
    validation: str | None
    total: bool | None


def pdfsig(pdf: bytes, tmp_path: Path) -> tuple[str, list[PdfsigSignature]]:
    """Run ``pdfsig -nocert`` on ``pdf``; its raw output and one entry per signature field."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    command = [require("pdfsig"), "-nocert", str(path)]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    blocks: list[dict[str, str | bool]] = []
    for line in result.stdout.splitlines():
        text = line.strip().removeprefix("- ")
        if line.startswith("Signature #"):
            blocks.append({})
        elif blocks and ":" in text:
            key, _, value = text.partition(": ")
            blocks[-1][key] = value
        elif blocks and text in ("Total document signed", "Not total document signed"):
            blocks[-1]["total"] = text == "Total document signed"
    signatures = [
        PdfsigSignature(
            field=str(block.get("Signature Field Name")),
            kind=str(block["Signature Type"]) if "Signature Type" in block else None,
            validation=str(block["Signature Validation"]) if "Signature Validation" in block else None,
            total=bool(block["total"]) if "total" in block else None,
        )
        for block in blocks
    ]
    return result.stdout + result.stderr, signatures


class PyHanko:
    """pyHanko's verdicts, computed once per artefact for the module."""

    def __init__(self, corpus: SignedPdfs) -> None:
        self._corpus = corpus
        self._cache: dict[str, list[Status]] = {}

    def __call__(self, name: str) -> list[Status]:
        """Every status of artefact ``name`` (``signed-by-<label>`` for ``signed_by``)."""
        if name not in self._cache:
            label = name.removeprefix("signed-by-")
            pdf = self._corpus.signed_by(label) if label != name else self._corpus.get(name)
            self._cache[name] = run(validate_pdf(pdf, self._corpus.pki))
        return self._cache[name]

    def signatures(self, name: str) -> list[PdfSignatureStatus]:
        """Only the /Sig statuses (no document time stamps)."""
        return [s for s in self(name) if isinstance(s, PdfSignatureStatus)]


@pytest.fixture(scope="module")
def pyhanko(signed_pdfs: SignedPdfs) -> PyHanko:
    return PyHanko(signed_pdfs)


def _reader(pdf: bytes) -> PdfFileReader:
    return PdfFileReader(BytesIO(pdf))


def _common_name(cert: object) -> str:
    return str(cert.subject.native["common_name"])  # type: ignore[attr-defined]


def _widget_rect(pdf: bytes, field: str) -> tuple[int, ...]:
    for ref in _reader(pdf).root["/AcroForm"]["/Fields"]:
        obj = ref.get_object()
        if obj["/T"] == field:
            return tuple(round(float(v)) for v in obj["/Rect"])
    raise AssertionError(f"no field {field}")


def _pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    result = subprocess.run([require("pdftotext"), str(path), "-"], capture_output=True, text=True, check=True)
    return result.stdout


def _darkest_pixel(pdf: bytes, box: tuple[int, int, int, int], tmp_path: Path) -> int:
    """Render ``box`` (PDF points, inset by 2 pt) of page 1 at 72 dpi in grey; its darkest pixel (0-255)."""
    path = tmp_path / "render.pdf"
    path.write_bytes(pdf)
    x1, y1, x2, y2 = box
    crop = ["-x", str(x1 + 2), "-y", str(A4[3] - y2 + 2), "-W", str(x2 - x1 - 4), "-H", str(y2 - y1 - 4)]
    out = tmp_path / "render"
    subprocess.run(
        [require("pdftoppm"), "-r", "72", "-gray", "-singlefile", *crop, str(path), str(out)], check=True, timeout=60
    )
    pgm = (tmp_path / "render.pgm").read_bytes()
    header_end = 0
    for _ in range(3):  # magic, size, maxval: three whitespace-terminated header lines
        header_end = pgm.index(b"\n", header_end) + 1
    return min(pgm[header_end:])


# ---------------------------------------------------------------------------------- base documents
@pytest.mark.needs_binary("pdftotext")
def test_cong_van_is_one_a4_page_with_the_persons_empty_field(tmp_path: Path) -> None:
    pdf = cong_van()
    reader = _reader(pdf)
    page = reader.root["/Pages"]["/Kids"][0].get_object()
    assert reader.root["/Pages"]["/Count"] == 1
    assert [round(float(v)) for v in page["/MediaBox"]] == list(A4)
    assert reader.embedded_signatures == []
    assert _widget_rect(pdf, PERSON_FIELD) == PERSON_BOX
    field = next(r.get_object() for r in reader.root["/AcroForm"]["/Fields"] if r.get_object()["/T"] == PERSON_FIELD)
    assert field["/FT"] == "/Sig"
    assert "/V" not in field
    text = _pdftotext(pdf, tmp_path)
    assert AMOUNT_TEXT.decode() in text
    assert f"So: {DOCUMENT_NUMBER}" in text


@pytest.mark.needs_binary("pdftotext")
def test_phu_luc_is_an_unsigned_appendix_without_fields(tmp_path: Path) -> None:
    pdf = phu_luc()
    reader = _reader(pdf)
    assert reader.root["/Pages"]["/Count"] == 1
    assert "/AcroForm" not in reader.root
    assert f"Kem theo Cong van so {DOCUMENT_NUMBER}" in _pdftotext(pdf, tmp_path)


# ---------------------------------------------------------------------------------- pdfsig
# (validation line, "Total document signed") per signature field, in file order; (None, None) for
# an empty field. Document time stamps are left out (pdfsig 22.12 does not verify them).
PDFSIG_EXPECTED: dict[str, list[tuple[str | None, bool | None]]] = {
    "person_only": [(VALID, True)],
    "org_only": [(None, None), (VALID, True)],
    "main": [(VALID, False), (VALID, True)],
    "main_without_timestamps": [(VALID, False), (VALID, True)],
    "signed_appendix": [(VALID, True)],
    "revoked_before_revocation": [(VALID, True)],
    "revoked_after_revocation": [(VALID, True)],
    "sha1_digest": [(VALID, True)],
    "rsassa_pss": [(VALID, True)],
    "pkcs7_subfilter": [(VALID, True)],
    "leaf_only_chain": [(VALID, True)],
    "tampered": [(MISMATCH, False), (MISMATCH, True)],
    "shadow_hide": [(VALID, False), (VALID, False)],
    "shadow_replace": [(VALID, False), (VALID, False)],
    "shadow_hide_replace": [(VALID, False), (VALID, False)],
    "trailing_bytes": [(VALID, False), (VALID, False)],
    "uncovered_tail": [(VALID, False)],
    "uncovered_gap": [(VALID, False)],
    "comment_added": [(VALID, False), (VALID, False)],
    "form_filled": [(VALID, False), (VALID, False)],
    "lta_updates": [(VALID, False), (VALID, False)],
}


@pytest.mark.needs_binary("pdfsig")
@pytest.mark.parametrize("name", sorted(PDFSIG_EXPECTED))
def test_pdfsig_judges_the_signatures(name: str, signed_pdfs: SignedPdfs, tmp_path: Path) -> None:
    pdf = signed_pdfs.get(name)
    _, signatures = pdfsig(pdf, tmp_path)
    document_timestamps = {
        s.field_name for s in _reader(pdf).embedded_signatures if s.sig_object_type == "/DocTimeStamp"
    }
    regular = [s for s in signatures if s.field not in document_timestamps]
    assert [(s.validation, s.total) for s in regular] == PDFSIG_EXPECTED[name]


@pytest.mark.needs_binary("pdfsig")
@pytest.mark.parametrize("label", SIGNER_LABELS)
def test_pdfsig_finds_every_certificate_makes_a_sound_signature(
    label: str, signed_pdfs: SignedPdfs, tmp_path: Path
) -> None:
    # The certificate problems are for the verifier; the cryptography itself is sound.
    _, signatures = pdfsig(signed_pdfs.signed_by(label), tmp_path)
    assert [(s.field, s.validation, s.total) for s in signatures] == [(PERSON_FIELD, VALID, True)]


@pytest.mark.needs_binary("pdfsig")
def test_pdfsig_sees_no_signature_in_the_unsigned_documents(signed_pdfs: SignedPdfs, tmp_path: Path) -> None:
    output, signatures = pdfsig(signed_pdfs.unsigned, tmp_path)
    assert [(s.field, s.validation) for s in signatures] == [(PERSON_FIELD, None)]
    assert "The signature form field is not signed." in output
    output, signatures = pdfsig(signed_pdfs.appendix, tmp_path)
    assert signatures == []
    assert "does not contain any signatures" in output


# ---------------------------------------------------------------------------------- pyHanko: good signatures
def test_main_document_is_person_then_organisation_both_b_t(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    person, org = pyhanko.signatures("main")
    assert (_common_name(person.signing_cert), _common_name(org.signing_cert)) == ("Nguyễn Văn Test", "UBND TỈNH TEST")
    for status in (person, org):
        assert (status.intact, status.valid, status.trusted, status.bottom_line) == (True, True, True, True)
        assert status.timestamp_validity is not None
        assert status.timestamp_validity.trusted
        assert status.md_algorithm == "sha256"
    # The organisation's signature is a form filling for the person's (a new signature field).
    assert (person.coverage, person.modification_level) == (
        SignatureCoverageLevel.ENTIRE_REVISION,
        ModificationLevel.FORM_FILLING,
    )
    assert (org.coverage, org.modification_level) == (SignatureCoverageLevel.ENTIRE_FILE, ModificationLevel.NONE)
    reader = _reader(signed_pdfs.main)
    assert [s.field_name for s in reader.embedded_signatures] == [PERSON_FIELD, ORG_FIELD]
    assert [s.signed_revision for s in reader.embedded_signatures] == [1, 2]
    assert {s.sig_object["/SubFilter"] for s in reader.embedded_signatures} == {"/ETSI.CAdES.detached"}
    # Decree 30 App. I / G2.10: /M in Vietnam time.
    assert all(str(s.sig_object.raw_get("/M")).endswith("+07'00'") for s in reader.embedded_signatures)
    assert _widget_rect(signed_pdfs.main, PERSON_FIELD) == PERSON_BOX
    assert _widget_rect(signed_pdfs.main, ORG_FIELD) == ORG_SEAL_BOX


@pytest.mark.parametrize(("name", "signer"), [("person_only", "Nguyễn Văn Test"), ("org_only", "UBND TỈNH TEST")])
def test_one_signature_documents(name: str, signer: str, pyhanko: PyHanko) -> None:
    (status,) = pyhanko.signatures(name)
    assert _common_name(status.signing_cert) == signer
    assert status.bottom_line
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE


def test_without_timestamps_there_is_no_token(pyhanko: PyHanko) -> None:
    statuses = pyhanko.signatures("main_without_timestamps")
    assert [s.timestamp_validity for s in statuses] == [None, None]
    assert all(s.bottom_line for s in statuses)


def test_signed_appendix_has_the_organisation_stamp_top_right(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    (status,) = pyhanko.signatures("signed_appendix")
    assert _common_name(status.signing_cert) == "UBND TỈNH TEST"
    assert status.bottom_line
    assert _widget_rect(signed_pdfs.signed_appendix, ORG_FIELD) == APPENDIX_STAMP_BOX


@pytest.mark.parametrize(
    ("name", "mechanism", "subfilter"),
    [
        ("rsassa_pss", "rsassa_pss", "/ETSI.CAdES.detached"),
        ("pkcs7_subfilter", "sha256_rsa", "/adbe.pkcs7.detached"),
        ("leaf_only_chain", "sha256_rsa", "/ETSI.CAdES.detached"),
        ("signed-by-ecdsa", "sha256_ecdsa", "/ETSI.CAdES.detached"),
    ],
)
def test_accepted_variants_validate(
    name: str, mechanism: str, subfilter: str, pyhanko: PyHanko, signed_pdfs: SignedPdfs
) -> None:
    (status,) = pyhanko.signatures(name)
    assert status.pkcs7_signature_mechanism == mechanism
    assert status.bottom_line
    pdf = signed_pdfs.signed_by("ecdsa") if name == "signed-by-ecdsa" else signed_pdfs.get(name)
    (signature,) = _reader(pdf).embedded_signatures
    assert signature.sig_object["/SubFilter"] == subfilter


def test_leaf_only_chain_embeds_one_certificate(signed_pdfs: SignedPdfs) -> None:
    def others(pdf: bytes) -> list[str]:
        (signature,) = _reader(pdf).embedded_signatures
        assert _common_name(signature.signer_cert) == "Nguyễn Văn Test"
        return sorted(_common_name(c) for c in signature.other_embedded_certs)

    assert others(signed_pdfs.leaf_only_chain) == []
    assert others(signed_pdfs.signed_by("person")) == [
        "Test CA phục vụ các cơ quan Nhà nước G2",
        "Test RootCA chuyên dùng Chính phủ G2",
    ]


# ---------------------------------------------------------------------------------- pyHanko: certificates
@pytest.mark.parametrize(
    ("label", "indication"),
    [
        ("expired", AdESIndeterminate.OUT_OF_BOUNDS_NO_POE),
        ("not-yet-valid", AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE),
        ("revoked", AdESIndeterminate.REVOKED_NO_POE),
        ("wrong-key-usage", AdESIndeterminate.CHAIN_CONSTRAINTS_FAILURE),
        ("rsa1024", AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE),
        ("sha1", AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE),
        ("impostor-leaf", AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND),
    ],
)
def test_bad_certificates_are_intact_but_not_trusted(label: str, indication: object, pyhanko: PyHanko) -> None:
    (status,) = pyhanko.signatures(f"signed-by-{label}")
    assert (status.intact, status.valid, status.trusted) == (True, True, False)
    assert status.trust_problem_indic == indication
    assert not status.bottom_line


def test_pyhanko_trusts_a_ca_flagged_signer(pyhanko: PyHanko, dev_pki: DevPKI) -> None:
    # Pinned pyHanko behaviour: it does not look at basicConstraints of the *signer*, so a CA
    # certificate with digitalSignature signs "valid". The gateway's rules must refuse it (A4).
    assert dev_pki.certificate("ca-flagged").extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    (status,) = pyhanko.signatures("signed-by-ca-flagged")
    assert status.trusted
    assert status.bottom_line


def test_sha1_digest_is_refused_by_pyhankos_algorithm_policy(pyhanko: PyHanko) -> None:
    (status,) = pyhanko.signatures("sha1_digest")
    assert status.md_algorithm == "sha1"
    assert status.intact
    assert status.trust_problem_indic == AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE
    assert not status.bottom_line


# ---------------------------------------------------------------------------------- pyHanko: time
@pytest.mark.parametrize(("name", "offset"), [("revoked_before_revocation", -1), ("revoked_after_revocation", 1)])
def test_back_dated_tokens_carry_the_requested_time(name: str, offset: int, pyhanko: PyHanko, dev_pki: DevPKI) -> None:
    (status,) = pyhanko.signatures(name)
    wanted = dev_pki.revocation_time + offset * BACKDATE_MARGIN
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.timestamp == wanted
    assert status.timestamp_validity.trusted
    assert status.signer_reported_dt == wanted  # /M was back-dated with it (PAdES has no CMS signingTime)
    # Validated "now", both are simply revoked: pyHanko's basic validation ignores the token's time.
    assert status.revoked


@pytest.mark.parametrize(
    ("name", "trusted"), [("revoked_before_revocation", True), ("revoked_after_revocation", False)]
)
def test_revocation_judged_at_the_token_time(
    name: str, trusted: bool, signed_pdfs: SignedPdfs, dev_pki: DevPKI
) -> None:
    # G1.12: point-in-time validation at genTime. retroactive_revinfo lets today's OCSP answer
    # ("revoked at T") speak for the earlier moment; without it pyHanko finds the answer "too recent".
    moment = dev_pki.revocation_time + (-1 if trusted else 1) * BACKDATE_MARGIN
    statuses = run(validate_pdf(signed_pdfs.get(name), dev_pki, moment=moment, retroactive_revinfo=True))
    (status,) = [s for s in statuses if isinstance(s, PdfSignatureStatus)]
    assert (status.trusted, status.revoked) == (trusted, not trusted)


# ---------------------------------------------------------------------------------- pyHanko: attacks
def test_tampered_bytes_break_every_signature(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    assert signed_pdfs.tampered != signed_pdfs.main
    assert len(signed_pdfs.tampered) == len(signed_pdfs.main)
    statuses = pyhanko.signatures("tampered")
    assert [s.intact for s in statuses] == [False, False]
    assert not any(s.bottom_line for s in statuses)


@pytest.mark.parametrize("name", ["shadow_hide", "shadow_replace", "shadow_hide_replace"])
def test_shadow_attacks_are_intact_but_modified(name: str, pyhanko: PyHanko, signed_pdfs: SignedPdfs) -> None:
    statuses = pyhanko.signatures(name)
    assert len(statuses) == 2
    for status in statuses:
        assert (status.intact, status.valid, status.trusted) == (True, True, True)
        assert status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
        assert status.modification_level == ModificationLevel.OTHER
        assert status.docmdp_ok is False
        assert not status.bottom_line
    # The attack is one proper revision on top of ``main``, which is kept byte for byte.
    assert signed_pdfs.get(name).startswith(signed_pdfs.main)
    assert _reader(signed_pdfs.get(name)).xrefs.total_revisions == _reader(signed_pdfs.main).xrefs.total_revisions + 1


@pytest.mark.needs_binary("pdftoppm")
def test_shadow_hide_hides_the_amount(signed_pdfs: SignedPdfs, tmp_path: Path) -> None:
    assert _darkest_pixel(signed_pdfs.main, AMOUNT_BOX, tmp_path) < 128  # the amount is printed there
    assert _darkest_pixel(signed_pdfs.shadow_hide, AMOUNT_BOX, tmp_path) == 255  # blank now


@pytest.mark.needs_binary("pdftotext")
@pytest.mark.parametrize("name", ["shadow_replace", "shadow_hide_replace"])
def test_shadow_replacements_change_the_displayed_amount(name: str, signed_pdfs: SignedPdfs, tmp_path: Path) -> None:
    assert AMOUNT_TEXT.decode() in _pdftotext(signed_pdfs.main, tmp_path)
    text = _pdftotext(signed_pdfs.get(name), tmp_path)
    assert FORGED_AMOUNT_TEXT.decode() in text
    assert AMOUNT_TEXT.decode() not in text


def test_trailing_bytes_are_invisible_to_pyhankos_diff(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    # Pinned pyHanko behaviour (G1.10a): bytes after %%EOF that form no revision only lower the
    # last signature's coverage from ENTIRE_FILE to ENTIRE_REVISION; there is no modification and
    # bottom_line stays True. The verifier must check the last signature covers the ENTIRE_FILE.
    assert signed_pdfs.trailing_bytes.startswith(signed_pdfs.main)
    person, org = pyhanko.signatures("trailing_bytes")
    assert pyhanko.signatures("main")[1].coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert (org.coverage, org.modification_level) == (SignatureCoverageLevel.ENTIRE_REVISION, ModificationLevel.NONE)
    assert org.bottom_line
    assert person.modification_level == ModificationLevel.FORM_FILLING


@pytest.mark.parametrize(
    ("name", "coverage"),
    [
        ("uncovered_tail", SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START),
        ("uncovered_gap", SignatureCoverageLevel.UNCLEAR),
    ],
)
def test_partial_byte_ranges_are_valid_signatures_with_poor_coverage(
    name: str, coverage: SignatureCoverageLevel, pyhanko: PyHanko, signed_pdfs: SignedPdfs
) -> None:
    (status,) = pyhanko.signatures(name)
    assert (status.intact, status.valid, status.trusted) == (True, True, True)
    assert status.coverage == coverage
    assert status.coverage < SignatureCoverageLevel.ENTIRE_REVISION
    assert status.modification_level == ModificationLevel.OTHER
    assert not status.bottom_line


def _byte_range(pdf: bytes) -> tuple[int, int, int, int]:
    (signature,) = _reader(pdf).embedded_signatures
    start1, len1, start2, len2 = (int(v) for v in signature.byte_range)
    return start1, len1, start2, len2


def test_uncovered_tail_leaves_the_trailer_pointer_unsigned(signed_pdfs: SignedPdfs) -> None:
    pdf = signed_pdfs.uncovered_tail
    _, _, start2, len2 = _byte_range(pdf)
    assert pdf[start2 + len2 :].startswith(b"startxref")
    assert pdf.endswith(b"%%EOF\n")


def test_uncovered_gap_skips_the_signature_dictionary(signed_pdfs: SignedPdfs) -> None:
    pdf = signed_pdfs.uncovered_gap
    _, len1, start2, len2 = _byte_range(pdf)
    assert start2 + len2 == len(pdf)
    assert pdf[len1 : len1 + 1] == b"<"  # the first range ends at /Contents, as usual ...
    hole = pdf[len1:start2]
    assert b"/ByteRange" in hole  # ... but the hole also spans the rest of the dictionary
    assert b"/Location" in hole


def test_the_gap_is_really_unsigned(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    # /Location was edited after re-signing, inside the gap, and the signature still holds.
    (signature,) = _reader(signed_pdfs.uncovered_gap).embedded_signatures
    assert signature.sig_object["/Location"] == FORGED_LOCATION
    assert pyhanko.signatures("uncovered_gap")[0].intact


def test_comment_revision_only_adds_an_annotation(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    reader = _reader(signed_pdfs.comment_added)
    last = reader.xrefs.total_revisions - 1
    refs = reader.xrefs.explicit_refs_in_revision(last)
    changed = {ref: reader.get_object(ref) for ref in refs}  # type: ignore[no-untyped-call]
    pages = [ref for ref, obj in changed.items() if obj.get("/Type") == "/Page"]
    notes = [ref for ref, obj in changed.items() if obj.get("/Subtype") == "/Text"]
    info = reader.trailer.raw_get("/Info").reference  # pyHanko's writer refreshes /ModDate on every update
    assert (len(pages), len(notes)) == (1, 1)
    assert set(changed) == {pages[0], notes[0], info}
    old_page = reader.get_historical_resolver(last - 1)(pages[0])
    new_page = changed[pages[0]]
    assert isinstance(old_page, generic.DictionaryObject)
    assert {k: v for k, v in new_page.items() if k != "/Annots"} == {
        k: v for k, v in old_page.items() if k != "/Annots"
    }
    assert [a.idnum for a in new_page["/Annots"]] == [*(a.idnum for a in old_page["/Annots"]), notes[0].idnum]
    # Pinned pyHanko 0.38 behaviour: no diff rule emits ANNOTATIONS, so a comment is OTHER.
    assert [s.modification_level for s in pyhanko.signatures("comment_added")] == [ModificationLevel.OTHER] * 2


def test_form_filling_is_form_filling(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    statuses = pyhanko.signatures("form_filled")
    assert [s.modification_level for s in statuses] == [ModificationLevel.FORM_FILLING] * 2
    assert all(s.bottom_line for s in statuses)
    org = statuses[1]
    assert isinstance(org.diff_result, DiffResult)
    assert NOTE_FIELD in org.diff_result.changed_form_fields
    fields = [r.get_object() for r in _reader(signed_pdfs.form_filled).root["/AcroForm"]["/Fields"]]
    assert [f["/V"] for f in fields if f["/T"] == NOTE_FIELD] == [NOTE_TEXT]


def test_lta_updates_are_benign(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    person, org, document_timestamp = pyhanko("lta_updates")
    assert isinstance(person, PdfSignatureStatus)
    assert isinstance(org, PdfSignatureStatus)
    assert person.modification_level == ModificationLevel.FORM_FILLING  # the org signature came later
    assert org.modification_level == ModificationLevel.LTA_UPDATES
    assert person.bottom_line
    assert org.bottom_line
    assert isinstance(document_timestamp, DocumentTimestampStatus)
    assert (document_timestamp.intact, document_timestamp.valid, document_timestamp.trusted) == (True, True, True)
    reader = _reader(signed_pdfs.lta_updates)
    assert [s.sig_object_type for s in reader.embedded_signatures] == ["/Sig", "/Sig", "/DocTimeStamp"]
    assert reader.embedded_signatures[2].sig_object["/SubFilter"] == "/ETSI.RFC3161"
    dss = reader.root["/DSS"]
    assert len(dss["/Certs"]) > 0
    assert len(dss.get("/OCSPs", [])) + len(dss.get("/CRLs", [])) > 0


def test_unsigned_has_no_signature(signed_pdfs: SignedPdfs, pyhanko: PyHanko) -> None:
    assert pyhanko("unsigned") == []
    assert pyhanko("appendix") == []


# ---------------------------------------------------------------------------------- the corpus itself
def test_corpus_names_and_files(signed_pdfs: SignedPdfs, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="no artefact"):
        signed_pdfs.get("nope")
    written = signed_pdfs.write(tmp_path / "corpus")
    assert len(written) == len(ARTEFACTS) + len(SIGNER_LABELS)
    assert all(path.read_bytes().startswith(b"%PDF-") for path in written)
    assert signed_pdfs.signed_by("person") is signed_pdfs.signed_by("person")  # made once
