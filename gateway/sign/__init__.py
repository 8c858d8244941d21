"""Sealing: the organisation's PAdES signature, RFC 3161 timestamps, the envelope XMLDSig."""

__all__: list[str] = []
