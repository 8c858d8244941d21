"""The edXML envelope signature: absent, the SDK's placeholder, invalid, or valid (spec §4.1)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.findings import Finding
from gateway.verify.codes import ENVELOPE_ABSENT, ENVELOPE_INVALID, ENVELOPE_PLACEHOLDER
from gateway.verify.rules.base import Context, Rule
from gateway.verify.xmldsig import SignatureState

__all__ = ["RULE"]


def check(context: Context) -> Iterable[Finding]:
    envelope = context.envelope
    if envelope is None:
        return  # the bytes were not XML we would read: the format rule has said why
    if envelope.state is SignatureState.ABSENT:
        yield ENVELOPE_ABSENT("envelope")
    elif envelope.state is SignatureState.PLACEHOLDER:
        yield ENVELOPE_PLACEHOLDER("envelope", detail=envelope.reason)
    elif envelope.state is SignatureState.INVALID:
        yield ENVELOPE_INVALID("envelope", detail=envelope.reason)


RULE = Rule(
    name="envelope-signature",
    codes=frozenset({ENVELOPE_ABSENT.code, ENVELOPE_PLACEHOLDER.code, ENVELOPE_INVALID.code}),
    description="The envelope's XMLDSig, when real, covers the whole package exactly (its signer is "
    "checked by the certificate rules).",
    check=check,
)
