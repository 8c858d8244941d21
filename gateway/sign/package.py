"""Sealing a whole outgoing package: each PDF by its role, the envelope, then our own verdict.

A draft package from the DMS carries the documents as the authorised person signed them. We:

1. read the draft with the hardened parser and refuse one that fails its checks;
2. seal every PDF attachment by its role (Decree 30 Appendix I): the main document gets the
   organisation's visible seal over the person's signature; each separate attachment file an
   organisation signature with the main document's number and the time; a copy ("SAO Y", "SAO
   LỤC", "TRÍCH SAO") one with the copy type, our name and the time. Attachments inside the
   main document's own file are covered by its signatures and get nothing more;
3. rebuild the package around the sealed files and sign its envelope with the same key;
4. verify the result exactly as a recipient would (``verify_package`` with our policy, our
   recipients as its identity): only an accepted package is released (the self-check of the
   sealing issue). A deferral (e.g. OCSP unreachable) is a ``TransientError``: try later.

**Roles.** The DMS may start an attachment's Description with a role tag, removed on output:
``[main]``, ``[attachment]``, or ``[copy: SAO Y]`` (also ``SAO LỤC``, ``TRÍCH SAO``). Without
tags, the first PDF is the main document and every other PDF a separate attachment.
Attachments that are not PDF travel unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from gateway.edxml.attachments import sniff
from gateway.edxml.build import BuildError, build
from gateway.edxml.model import Attachment, DocumentPackage, normalise_text
from gateway.edxml.parse import parse
from gateway.errors import PermanentError, TransientError
from gateway.settings import IdentitySettings
from gateway.sign.envelope import SignatureAlgorithm, sign_envelope
from gateway.sign.keys import OrganisationKey
from gateway.sign.pdfseal import COPY_TYPES, SealKind, SealRequest
from gateway.verify.package import Verifier, verify_package
from gateway.verify.report import Verdict, VerificationReport

__all__ = ["DocumentSealer", "DraftRefused", "PackageSealer", "SelfCheckFailed", "role_of"]

_TAG = re.compile(r"^\s*\[(main|attachment|copy\s*:\s*(?P<copy>[^\]]+))\]\s*", re.IGNORECASE)


class DraftRefused(PermanentError):
    """The draft cannot be sealed as it stands (not a document package, fails its checks...)."""


class SelfCheckFailed(PermanentError):
    """The sealed package would be refused by a recipient: it is not released."""

    def __init__(self, report: VerificationReport) -> None:
        reasons = "; ".join(f"{f.code} at {f.where}" for f in report.decisive)
        super().__init__(f"the sealed package fails our own verification: {reasons}")
        self.report = report


class DocumentSealer(Protocol):
    """What the package sealer needs: ``gateway.sign.pdfseal.Sealer`` (or a test twin)."""

    async def seal_document(self, pdf: bytes, request: SealRequest) -> bytes: ...


@dataclass(frozen=True)
class _Role:
    kind: SealKind
    copy_type: str | None = None


def role_of(attachment: Attachment, *, first_pdf: bool) -> tuple[_Role, str | None]:
    """The role the draft declares for a PDF attachment, and its Description without the tag.

    Raises:
        DraftRefused: a copy tag names a copy type that Decree 30 does not know.
    """
    description = attachment.description or ""
    match = _TAG.match(description)
    rest = normalise_text(description[match.end() :] if match else description)
    if match is None:
        return _Role(SealKind.MAIN if first_pdf else SealKind.ATTACHMENT), rest
    word = match.group(1).lower()
    if word == "main":
        return _Role(SealKind.MAIN), rest
    if word == "attachment":
        return _Role(SealKind.ATTACHMENT), rest
    copy_type = " ".join((match.group("copy") or "").split()).upper()
    if copy_type not in COPY_TYPES:
        raise DraftRefused(
            f'attachment "{attachment.name}": unknown copy type {copy_type!r}; use one of {", ".join(COPY_TYPES)}'
        )
    return _Role(SealKind.COPY, copy_type), rest


class PackageSealer:
    """Seals draft packages with the organisation's key (one per process)."""

    def __init__(
        self,
        *,
        sealer: DocumentSealer,
        key: OrganisationKey,
        verifier: Verifier,
        identity: IdentitySettings,
        algorithm: SignatureAlgorithm = "rsa-sha256",
    ) -> None:
        """Args:
        sealer: seals one PDF by its role.
        key: the organisation key that also signs the envelope.
        verifier: our own verifier (policy, trust store, examiner) for the self-check.
        identity: who we are (our organisation name goes into seals and copies).
        algorithm: the envelope's XMLDSig algorithm.
        """
        self._sealer = sealer
        self._key = key
        self._verifier = verifier
        self._identity = identity
        self._algorithm = algorithm

    def _organisation_name(self, package: DocumentPackage) -> str:
        return self._identity.organ_name or package.header.from_.organ_name or package.header.from_.organ_id

    async def seal_package(self, draft: bytes) -> bytes:
        """Seal every PDF of a draft by its role, sign the envelope, and check the result.

        Returns:
            The sealed, signed package, verified as its recipients would verify it.

        Raises:
            DraftRefused: the draft is not a document package or fails its checks.
            SelfCheckFailed: the sealed package would be refused.
            TransientError: the TSA or a revocation responder is unreachable (retry later).
            PermanentError: the sealer refused (e.g. no valid person signature on the main document).
        """
        parsed = parse(draft)
        package = parsed.package
        if not isinstance(package, DocumentPackage):
            raise DraftRefused("the draft is not a readable edXML document package: " + _reasons(parsed.errors))
        if parsed.errors:
            raise DraftRefused("the draft fails its checks: " + _reasons(parsed.errors))
        sealed = await self._seal_attachments(package)
        try:
            rebuilt = build(replace(package, attachments=sealed))
        except BuildError as exc:
            raise DraftRefused(f"cannot rebuild the package: {exc}") from None
        signed = sign_envelope(rebuilt, self._key, algorithm=self._algorithm)
        await self._self_check(signed, package)
        return signed

    async def _seal_attachments(self, package: DocumentPackage) -> tuple[Attachment, ...]:
        out: list[Attachment] = []
        seen_pdf = False
        for attachment in package.attachments:
            if attachment.data is None or sniff(attachment.data) != "application/pdf":
                out.append(attachment)  # not a PDF: travels unchanged
                continue
            role, description = role_of(attachment, first_pdf=not seen_pdf)
            seen_pdf = True
            request = SealRequest(
                kind=role.kind,
                organisation_name=self._organisation_name(package),
                document_number=str(package.header.code) if role.kind is SealKind.ATTACHMENT else None,
                copy_type=role.copy_type,
            )
            data = await self._sealer.seal_document(attachment.data, request)
            out.append(replace(attachment, data=data, description=description))
        return tuple(out)

    async def _self_check(self, signed: bytes, package: DocumentPackage) -> None:
        recipients = tuple(to.organ_id for to in package.header.to if to.organ_id)
        as_recipient = replace(self._verifier, identity=replace(self._identity, organ_ids=recipients))
        report = await verify_package(signed, as_recipient)
        if report.verdict is Verdict.DEFERRED:
            reasons = "; ".join(f"{f.code} at {f.where}" for f in report.decisive)
            raise TransientError(f"the sealed package cannot be verified yet ({reasons}); try again later")
        if report.verdict is not Verdict.ACCEPTED:
            raise SelfCheckFailed(report)


def _reasons(findings: Sequence[object]) -> str:
    return "; ".join(str(f) for f in findings) or "no details"
