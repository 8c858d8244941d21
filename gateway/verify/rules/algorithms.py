"""Algorithms: RSA >= 2048, ECDSA >= 256, SHA-256 or stronger; SHA-1 only as dated legacy (A7).

Checked for every PDF signature (its digest, the signer's key, the hash of the signer
certificate's own signature) and for a real envelope signature. A SHA-1 signature is
``algorithm-legacy`` (a warning) only when the policy sets ``sha1_cutoff`` and a trusted
timestamp dates the signature before it; otherwise it is ``algorithm-weak``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date

from gateway.clock import to_vn
from gateway.edxml.findings import Finding
from gateway.verify.codes import ALGORITHM_LEGACY, ALGORITHM_WEAK
from gateway.verify.facts import CertificateFacts
from gateway.verify.policy import AlgorithmPolicy
from gateway.verify.rules.base import Context, Rule, signature_where
from gateway.verify.xmldsig import SignatureState

__all__ = ["RULE"]


def _key_problems(cert: CertificateFacts, floors: AlgorithmPolicy) -> Iterator[str]:
    if cert.key_algorithm == "rsa" and cert.key_bits < floors.rsa_min_bits:
        yield f"RSA key of {cert.key_bits} bits (< {floors.rsa_min_bits})"
    elif cert.key_algorithm == "ec" and cert.key_bits < floors.ecdsa_min_bits:
        yield f"ECDSA key of {cert.key_bits} bits (< {floors.ecdsa_min_bits})"
    elif cert.key_algorithm not in {"rsa", "ec"}:
        yield f"{cert.key_algorithm} keys are not among the permitted algorithms (RSA, ECDSA)"


def _uri_hash(uri: str | None) -> str | None:
    if not uri:
        return None
    found = re.search(r"sha3?-?(1|224|256|384|512)\b", uri.lower())
    if found is None:
        return uri.rsplit("#", 1)[-1]
    return ("sha3_" if "sha3" in found.group(0) else "sha") + found.group(1)


def _judge_hashes(hashes: dict[str, str], floors: AlgorithmPolicy, dated: date | None) -> tuple[list[str], list[str]]:
    """Split hash uses into (weak, legacy) descriptions."""
    weak, legacy = [], []
    for use, name in hashes.items():
        if name in floors.hashes:
            continue
        if name == "sha1" and floors.sha1_cutoff is not None and dated is not None and dated < floors.sha1_cutoff:
            legacy.append(f"SHA-1 {use}")
        else:
            weak.append(f"{name.upper().replace('_', '-')} {use}")
    return weak, legacy


def check(context: Context) -> Iterable[Finding]:
    floors = context.policy.algorithms
    for pdf, signature in context.signatures():
        where = signature_where(pdf, signature)
        stamp = signature.timestamp
        dated = to_vn(stamp.gen_time).date() if stamp is not None and stamp.valid and stamp.gen_time else None
        hashes = {"message digest": signature.digest_algorithm}
        weak: list[str] = []
        if signature.signer is not None:
            hashes["in the signer certificate"] = signature.signer.signature_hash
            weak += _key_problems(signature.signer, floors)
        hash_weak, legacy = _judge_hashes(hashes, floors, dated)
        weak += hash_weak
        if weak:
            yield ALGORITHM_WEAK(where, field=where, detail="; ".join(weak))
        elif legacy:
            yield ALGORITHM_LEGACY(where, field=where, detail="; ".join(legacy), cutoff=str(floors.sha1_cutoff))
    envelope = context.envelope
    if envelope is not None and envelope.state is SignatureState.VALID:
        envelope_hashes = {
            name_use: name
            for name_use, name in (
                ("signature method", _uri_hash(envelope.signature_method)),
                ("digest method", _uri_hash(envelope.digest_method)),
            )
            if name is not None
        }
        weak, _ = _judge_hashes(envelope_hashes, floors, None)  # no timestamp: SHA-1 cannot be dated
        if context.envelope_signer is not None:
            weak += _key_problems(context.envelope_signer, floors)
        if weak:
            yield ALGORITHM_WEAK("envelope", field="envelope", detail="; ".join(weak))


RULE = Rule(
    name="algorithms",
    codes=frozenset({ALGORITHM_WEAK.code, ALGORITHM_LEGACY.code}),
    description="Key sizes and hashes meet [algorithms]; SHA-1 passes only as timestamped legacy (checklist A7).",
    check=check,
)
