"""``indication_for``: the ETSI EN 319 102-1 indication of one signature, as a table.

The PDF tests reach most rows with real documents; this table pins every row, including those
no document of the factory reaches (a revoked CA, no proof of existence, a missing signer).
"""

from __future__ import annotations

import pytest

from gateway.clock import SystemClock
from gateway.verify.chain import TrustCheck
from gateway.verify.facts import AdESIndication, Coverage, SigningTimeSource, TrustFacts, TrustOutcome
from gateway.verify.pdf import indication_for
from gateway.verify.pdfread import ReadSignature

PASSED, FAILED, INDETERMINATE = AdESIndication.TOTAL_PASSED, AdESIndication.TOTAL_FAILED, AdESIndication.INDETERMINATE

_GOOD = ReadSignature(
    "f", "/ETSI.CAdES.detached", signer=b"der", intact=True, crypto_valid=True, coverage=Coverage.ENTIRE_FILE
)
_TS, _NOW = SigningTimeSource.TIMESTAMP, SigningTimeSource.VERIFICATION_TIME


def _trust(outcome: TrustOutcome, sub: str | None = None, *, end_entity: bool = True) -> TrustCheck:
    return TrustCheck(TrustFacts(outcome, SystemClock().now(), ""), sub, end_entity)


@pytest.mark.parametrize(
    ("signature", "source", "check", "expected"),
    [
        (
            ReadSignature("f", "/x", problem="unsupported"),
            _TS,
            _trust(TrustOutcome.TRUSTED),
            (FAILED, "FORMAT_FAILURE"),
        ),
        (
            ReadSignature("f", "/x", signer=b"der", intact=True, crypto_valid=True, coverage=Coverage.UNCLEAR),
            _TS,
            _trust(TrustOutcome.TRUSTED),
            (FAILED, "FORMAT_FAILURE"),
        ),
        (
            ReadSignature("f", "/x", coverage=Coverage.ENTIRE_FILE),
            _TS,
            _trust(TrustOutcome.TRUSTED),
            (FAILED, "HASH_FAILURE"),
        ),
        (
            ReadSignature("f", "/x", intact=True, coverage=Coverage.ENTIRE_FILE),
            _TS,
            _trust(TrustOutcome.UNTRUSTED, "NO_SIGNING_CERTIFICATE_FOUND"),
            (INDETERMINATE, "NO_SIGNING_CERTIFICATE_FOUND"),
        ),
        (
            ReadSignature("f", "/x", signer=b"der", intact=True, coverage=Coverage.ENTIRE_FILE),
            _TS,
            _trust(TrustOutcome.TRUSTED),
            (FAILED, "SIG_CRYPTO_FAILURE"),
        ),
        (_GOOD, _NOW, _trust(TrustOutcome.TRUSTED), (PASSED, None)),
        (_GOOD, _TS, _trust(TrustOutcome.REVOKED, "REVOKED_NO_POE"), (FAILED, "REVOKED")),
        (_GOOD, _NOW, _trust(TrustOutcome.REVOKED, "REVOKED_NO_POE"), (INDETERMINATE, "REVOKED_NO_POE")),
        (
            _GOOD,
            _TS,
            _trust(TrustOutcome.REVOKED, "REVOKED_CA_NO_POE", end_entity=False),
            (INDETERMINATE, "REVOKED_CA_NO_POE"),
        ),
        (_GOOD, _TS, _trust(TrustOutcome.EXPIRED, "OUT_OF_BOUNDS_NO_POE"), (INDETERMINATE, "EXPIRED")),
        (_GOOD, _NOW, _trust(TrustOutcome.EXPIRED, "OUT_OF_BOUNDS_NO_POE"), (INDETERMINATE, "OUT_OF_BOUNDS_NO_POE")),
        (_GOOD, _TS, _trust(TrustOutcome.NOT_YET_VALID, "OUT_OF_BOUNDS_NO_POE"), (FAILED, "NOT_YET_VALID")),
        (
            _GOOD,
            _TS,
            _trust(TrustOutcome.EXPIRED, "CERTIFICATE_CHAIN_GENERAL_FAILURE"),  # an intermediate expired
            (INDETERMINATE, "CERTIFICATE_CHAIN_GENERAL_FAILURE"),
        ),
        (_GOOD, _TS, _trust(TrustOutcome.REVOCATION_UNAVAILABLE, "TRY_LATER"), (INDETERMINATE, "TRY_LATER")),
        (
            _GOOD,
            _TS,
            _trust(TrustOutcome.UNTRUSTED, "NO_CERTIFICATE_CHAIN_FOUND"),
            (INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND"),
        ),
    ],
)
def test_the_indication_follows_en_319_102_1(
    signature: ReadSignature, source: SigningTimeSource, check: TrustCheck, expected: tuple[AdESIndication, str | None]
) -> None:
    assert indication_for(signature, source, check) == expected
