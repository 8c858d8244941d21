"""The organisation that signed is the agency the package says it comes from (agency directory)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.edxml.model import DocumentPackage, StatusPackage
from gateway.verify.codes import SENDER_MISMATCH
from gateway.verify.rules.base import Context, Rule, signature_where
from gateway.verify.signers import document_roles, signature_holds

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    package = context.package
    if isinstance(package, DocumentPackage):
        organ_id = package.header.from_.organ_id
    elif isinstance(package, StatusPackage):
        organ_id = package.from_.organ_id
    else:
        return
    agency = context.directory.get(organ_id)
    if agency is None or not agency.knows_its_certificates():
        return  # the directory says nothing about this sender's certificates
    for pdf in context.pdfs:
        roles = document_roles(pdf, context.policy.signers)
        for signature in pdf.signatures:
            signer = signature.signer
            if signer is None or not signature_holds(signature) or roles.get(signature.index) != "organisation":
                continue
            if not agency.owns(signer.subject, signer.sha256):
                yield SENDER_MISMATCH(signature_where(pdf, signature), subject=signer.subject, organ_id=organ_id)
    signer = context.envelope_signer
    if signer is not None and not agency.owns(signer.subject, signer.sha256):
        yield SENDER_MISMATCH("envelope", subject=signer.subject, organ_id=organ_id)


RULE = Rule(
    name="sender-identity",
    codes=frozenset({SENDER_MISMATCH.code}),
    description="Organisation signatures (and the envelope signer) belong to the From agency when the agency "
    "directory lists its certificates.",
    check=check,
)
