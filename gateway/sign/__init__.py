"""Sealing: the organisation's PAdES signature, RFC 3161 timestamps, the envelope XMLDSig."""

from gateway.sign.envelope import EnvelopeSigningError, sign_envelope
from gateway.sign.keys import SigningKey, load_pkcs12, read_pkcs12, read_secret

__all__ = ["EnvelopeSigningError", "SigningKey", "load_pkcs12", "read_pkcs12", "read_secret", "sign_envelope"]
