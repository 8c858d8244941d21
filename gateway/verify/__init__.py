"""Judgement: envelope and PDF signature verification, trust, admin-tunable rules.

Network access only through injected fetcher objects; never imports the mail edges or the store.
"""

from gateway.verify.envelope import ReadPackage, read_package
from gateway.verify.xmldsig import EnvelopeSignature, SignatureState, verify_envelope

__all__ = ["EnvelopeSignature", "ReadPackage", "SignatureState", "read_package", "verify_envelope"]
