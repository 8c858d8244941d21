"""``SignedPdfs``: every artefact of the factory, made on first use and kept for the session.

The ``signed_pdfs`` fixture (``tests/conftest.py``) hands one of these to any test: the
verification engine's tests read ``signed_pdfs.main``, ``signed_pdfs.shadow_hide``,
``signed_pdfs.signed_by("revoked")``... Each property's docstring says what the artefact is and
which checklist item (spec §6) it serves; ``ARTEFACTS`` lists the property names, ``get(name)``
fetches one by name (for parametrised tests) and ``write(directory)`` dumps them all as files
(to look at them with a PDF viewer).

Signing runs pyHanko's async API on a fresh event loop per artefact (``signing.run``), so these
properties must be read from synchronous code (tests, fixtures), never inside a running loop.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache, cached_property
from pathlib import Path

import pytest
from pyhanko.sign.fields import SigSeedSubFilter

from gateway.devpki import DevPKI
from tests.pdfs import attacks
from tests.pdfs.documents import APPENDIX_STAMP_BOX, PERSON_FIELD, cong_van, phu_luc
from tests.pdfs.signing import ORG_FIELD, PADES, PKCS7, TimestampChoice, run, sign_pdf, signed_main_document

__all__ = ["ARTEFACTS", "BACKDATE_MARGIN", "SIGNER_LABELS", "SignedPdfs", "signed_pdfs"]

BACKDATE_MARGIN = timedelta(hours=1)
"""How far from ``revocation_time`` the revoked certificate's back-dated signatures are (G1.12)."""

SIGNER_LABELS = (
    "person",
    "org",
    "ecdsa",
    "expired",
    "not-yet-valid",
    "revoked",
    "ca-flagged",
    "wrong-key-usage",
    "rsa1024",
    "sha1",
    "impostor-leaf",
)
"""Certificates ``SignedPdfs.signed_by`` is meant for (any dev PKI label works)."""

ARTEFACTS = (
    "unsigned",
    "appendix",
    "person_only",
    "org_only",
    "main",
    "main_without_timestamps",
    "signed_appendix",
    "revoked_before_revocation",
    "revoked_after_revocation",
    "sha1_digest",
    "rsassa_pss",
    "pkcs7_subfilter",
    "leaf_only_chain",
    "tampered",
    "shadow_hide",
    "shadow_replace",
    "shadow_hide_replace",
    "trailing_bytes",
    "uncovered_tail",
    "uncovered_gap",
    "comment_added",
    "form_filled",
    "lta_updates",
)
"""Names of the ``SignedPdfs`` properties that are artefacts (bytes)."""


class SignedPdfs:
    """The factory's artefacts for one development PKI (lazily made, then cached).

    Args:
        pki: the development PKI, served (signing calls its TSA; LTA updates its OCSP and CRLs).
    """

    def __init__(self, pki: DevPKI) -> None:
        self.pki = pki

    # ------------------------------------------------------------------ access by name
    def get(self, name: str) -> bytes:
        """The artefact called ``name`` (one of ``ARTEFACTS``; raises ``KeyError`` otherwise)."""
        if name not in ARTEFACTS:
            raise KeyError(f"no artefact {name!r}; artefacts: {', '.join(ARTEFACTS)}")
        data = getattr(self, name)
        assert isinstance(data, bytes)
        return data

    def write(self, directory: Path) -> list[Path]:
        """Write every artefact (``<name>.pdf``) and every ``signed_by`` label (``signed-by-<label>.pdf``).

        Returns:
            The paths written, in ``ARTEFACTS`` then ``SIGNER_LABELS`` order.
        """
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name in ARTEFACTS:
            path = directory / f"{name}.pdf"
            path.write_bytes(self.get(name))
            written.append(path)
        for label in SIGNER_LABELS:
            path = directory / f"signed-by-{label}.pdf"
            path.write_bytes(self.signed_by(label))
            written.append(path)
        return written

    # ------------------------------------------------------------------ base documents
    @cached_property
    def unsigned(self) -> bytes:
        """The main document without any signature (A8: person and organisation both missing)."""
        return attacks.unsigned()

    @cached_property
    def appendix(self) -> bytes:
        """The separately filed appendix, unsigned (G2.7)."""
        return phu_luc()

    # ------------------------------------------------------------------ good signatures
    @cached_property
    def main(self) -> bytes:
        """The main document as Decree 30 wants it: person, then organisation, both PAdES-B-T (A2–A8)."""
        return run(signed_main_document(self.pki))

    @cached_property
    def person_only(self) -> bytes:
        """Only the authorised person signed (A8: organisation signature missing)."""
        return run(signed_main_document(self.pki, org=False))

    @cached_property
    def org_only(self) -> bytes:
        """Only the organisation signed (A8: person missing; B1: a seal without a person's signature)."""
        return run(signed_main_document(self.pki, person=False))

    @cached_property
    def main_without_timestamps(self) -> bytes:
        """Person and organisation, PAdES-B-B: no time stamp (A3: signing time = verification time)."""
        return run(signed_main_document(self.pki, timestamps=False))

    @cached_property
    def signed_appendix(self) -> bytes:
        """The appendix with a visible organisation signature at the top right (G2.7), B-T."""
        return self._sign(phu_luc(), "org", field_name=ORG_FIELD, visible=True)

    @cache  # noqa: B019 - one SignedPdfs per session; the cache dies with it
    def signed_by(self, label: str, timestamp: TimestampChoice = "now") -> bytes:
        """The main document signed once, in the person's field, by the certificate ``label``.

        PAdES-B-T from the served TSA by default. With the negative certificates this gives A4
        (expired, not-yet-valid, ca-flagged, wrong-key-usage), A5 (revoked), A6 (impostor-leaf)
        and A7 (rsa1024, sha1) artefacts; ``ecdsa`` is a good P-256 signature.
        """
        return self._sign(cong_van(), label, timestamp=timestamp)

    # ------------------------------------------------------------------ time and algorithms
    @cached_property
    def revoked_before_revocation(self) -> bytes:
        """``revoked`` signed with a token back-dated to ``revocation_time - 1 h`` (G1.12: VALID)."""
        return self.signed_by("revoked", self.pki.revocation_time - BACKDATE_MARGIN)

    @cached_property
    def revoked_after_revocation(self) -> bytes:
        """``revoked`` signed with a token dated ``revocation_time + 1 h`` (G1.12: INVALID)."""
        return self.signed_by("revoked", self.pki.revocation_time + BACKDATE_MARGIN)

    @cached_property
    def sha1_digest(self) -> bytes:
        """``person`` signing with SHA-1 as the message digest (A7 / G4.1: legacy, flagged)."""
        return self._sign(cong_van(), "person", digest="sha1")

    @cached_property
    def rsassa_pss(self) -> bytes:
        """``person`` signing with RSASSA-PSS (G4.3: the verifier must accept it)."""
        return self._sign(cong_van(), "person", pss=True)

    @cached_property
    def pkcs7_subfilter(self) -> bytes:
        """``person`` with SubFilter ``adbe.pkcs7.detached`` (G4.4: the verifier must accept it)."""
        return self._sign(cong_van(), "person", subfilter=PKCS7)

    @cached_property
    def leaf_only_chain(self) -> bytes:
        """``person`` with only the leaf certificate in the CMS (G1.14: intermediate via AIA / store)."""
        return self._sign(cong_van(), "person", embed_chain=False)

    # ------------------------------------------------------------------ attacks on ``main``
    @cached_property
    def tampered(self) -> bytes:
        """``main`` with the amount edited inside the signed bytes (A2: digest mismatch)."""
        return attacks.tamper_signed_bytes(self.main)

    @cached_property
    def shadow_hide(self) -> bytes:
        """``main`` plus a revision that paints over the amount (A2, shadow *hide*)."""
        return attacks.shadow_hide(self.main)

    @cached_property
    def shadow_replace(self) -> bytes:
        """``main`` plus a revision overriding the body XObject (A2, shadow *replace*)."""
        return attacks.shadow_replace(self.main)

    @cached_property
    def shadow_hide_replace(self) -> bytes:
        """``main`` plus a revision swapping the page's content stream (A2, shadow *hide-and-replace*)."""
        return attacks.shadow_hide_replace(self.main)

    @cached_property
    def trailing_bytes(self) -> bytes:
        """``main`` plus bytes after %%EOF that are no revision (A2 / G1.10a)."""
        return attacks.append_after_eof(self.main)

    @cached_property
    def uncovered_tail(self) -> bytes:
        """``person_only`` re-signed with a /ByteRange that stops before ``startxref`` (A2 / G1.10)."""
        return run(attacks.uncovered_tail(self.person_only, pki=self.pki, signer_label="person"))

    @cached_property
    def uncovered_gap(self) -> bytes:
        """``person_only`` re-signed with a /ByteRange that skips the signature dictionary (A2 / G1.10)."""
        return run(attacks.uncovered_gap(self.person_only, pki=self.pki, signer_label="person"))

    @cached_property
    def comment_added(self) -> bytes:
        """``main`` plus a revision that only adds a comment annotation (A2: policy decides)."""
        return attacks.add_comment(self.main)

    @cached_property
    def form_filled(self) -> bytes:
        """``main`` plus a revision that only fills the text field ``GhiChu`` (A2: policy decides)."""
        return attacks.fill_note_field(self.main)

    @cached_property
    def lta_updates(self) -> bytes:
        """``main`` plus DSS revisions and a document time stamp (B-LTA; A2: benign)."""
        return run(attacks.add_validation_data(self.main, self.pki))

    # ------------------------------------------------------------------ helpers
    def _sign(
        self,
        pdf: bytes,
        label: str,
        *,
        field_name: str = PERSON_FIELD,
        timestamp: TimestampChoice = "now",
        digest: str = "sha256",
        pss: bool = False,
        subfilter: SigSeedSubFilter = PADES,
        embed_chain: bool = True,
        visible: bool = False,
    ) -> bytes:
        coroutine = sign_pdf(
            pdf,
            pki=self.pki,
            signer_label=label,
            field_name=field_name,
            timestamp=timestamp,
            digest=digest,
            pss=pss,
            embed_chain=embed_chain,
            subfilter=subfilter,
            visible_box=APPENDIX_STAMP_BOX if visible else None,
        )
        return run(coroutine)


@pytest.fixture(scope="session")
def signed_pdfs(dev_pki: DevPKI) -> SignedPdfs:
    """The session's ``SignedPdfs`` for ``dev_pki``: artefacts are made on first use, then shared.

    Treat the bytes as read-only evidence: they are shared by every test of the session.
    """
    return SignedPdfs(dev_pki)
