"""Who signed: an authorised person or the issuing organisation (Decree 30/2020 Art. 5).

An organisation certificate is one the admin's policy recognises: by a certificate-policy
OID (``[signers] organisation_policy_oids``) or by a pattern on the subject
(``organisation_subject_patterns``); a person certificate by ``person_policy_oids``. VGCA's own
OIDs are not public knowledge (spec §1.2 [U]), so when the policy names no rule at all, the
roles follow the order Decree 30 prescribes: on the main document the authorised person signs
first and the clerk applies the organisation's signature last; a separate attachment file carries
the organisation's signature only (Appendix I), so its last valid signature is the organisation's.
"""

from __future__ import annotations

import re
from typing import Literal

from gateway.verify.facts import CertificateFacts, PdfFacts, SignatureFacts
from gateway.verify.policy import SignerPolicy

__all__ = ["Role", "classify", "document_roles", "signature_holds"]

Role = Literal["person", "organisation", "unknown"]


def classify(cert: CertificateFacts | None, policy: SignerPolicy) -> Role:
    """The role a certificate plays, by the policy's recognition rules only."""
    if cert is None:
        return "unknown"
    if cert.policy_oids & set(policy.organisation_policy_oids):
        return "organisation"
    if any(re.search(pattern, cert.subject) for pattern in policy.organisation_subject_patterns):
        return "organisation"
    if cert.policy_oids & set(policy.person_policy_oids):
        return "person"
    return "unknown"


def signature_holds(signature: SignatureFacts) -> bool:
    """The signature is genuinely there: its bytes are intact and its value verifies.

    Trust, time and modification problems are reported by their own rules; the presence check
    only asks whether a real signature of each kind exists.
    """
    return signature.intact and signature.crypto_valid and signature.signer is not None


def _configured(policy: SignerPolicy) -> bool:
    return bool(policy.organisation_policy_oids or policy.person_policy_oids or policy.organisation_subject_patterns)


def document_roles(pdf: PdfFacts, policy: SignerPolicy) -> dict[int, Role]:
    """Role of each signature (by index) in one PDF.

    With recognition rules configured, each certificate is classified on its own (a
    certificate that is not recognised as an organisation's counts as a person's). Without
    any, among the signatures that hold: on the main document the first is the person's and the
    last (when made with another certificate) the organisation's; on a separate attachment the
    last is the organisation's.
    """
    if _configured(policy):
        roles: dict[int, Role] = {}
        for s in pdf.signatures:
            role = classify(s.signer, policy)
            roles[s.index] = "person" if role == "unknown" else role
        return roles
    holding = [s for s in pdf.signatures if signature_holds(s)]
    roles = {s.index: "unknown" for s in pdf.signatures}
    if not holding:
        return roles
    last = holding[-1]
    if not pdf.is_main:
        # Separate attachment files carry only the organisation's signature (Appendix I).
        roles[last.index] = "organisation"
        return roles
    roles[holding[0].index] = "person"
    if last.signer is not None and holding[0].signer is not None and last.signer.sha256 != holding[0].signer.sha256:
        roles[last.index] = "organisation"
    return roles
