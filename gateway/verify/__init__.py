"""Judgement: envelope and PDF signature verification, trust, admin-tunable rules.

Entry point: ``verify_package(raw, verifier)`` with a ``Verifier`` built once per process
(``gateway.app.open_verifier``). Network access only through the examiner's fetchers; never
imports the mail edges or the store.
"""

from gateway.verify.codes import ALL_KINDS
from gateway.verify.directory import Agency, Directory, load_directory
from gateway.verify.envelope import ReadPackage, read_package
from gateway.verify.package import Verifier, verify_package
from gateway.verify.pdf import Examiner
from gateway.verify.policy import Action, Policy, load_policy
from gateway.verify.report import ReportFinding, Verdict, VerificationReport
from gateway.verify.trust import ExamSettings, TrustStore
from gateway.verify.xmldsig import EnvelopeSignature, SignatureState, verify_envelope

__all__ = [
    "ALL_KINDS",
    "Action",
    "Agency",
    "Directory",
    "EnvelopeSignature",
    "ExamSettings",
    "Examiner",
    "Policy",
    "ReadPackage",
    "ReportFinding",
    "SignatureState",
    "TrustStore",
    "Verdict",
    "VerificationReport",
    "Verifier",
    "load_directory",
    "load_policy",
    "read_package",
    "verify_envelope",
    "verify_package",
]
