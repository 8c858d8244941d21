"""The envelope digest over a tree whose payloads were taken out of it (issue 7, P4).

``read_package`` reads through ``gateway.edxml.lean``: the signature must verify exactly as on
the whole tree, and a changed byte in a payload that never entered the tree must still break it.
"""

from __future__ import annotations

import base64
import os

from signxml.algorithms import DigestAlgorithm

from gateway.edxml.lean import read_lean
from gateway.edxml.parse import parse_tree
from gateway.edxml.xmlsafe import DEFAULT_LIMITS, parse_untrusted
from gateway.sign.envelope import sign_envelope
from gateway.verify.digest import enveloped_digest
from gateway.verify.envelope import read_package
from gateway.verify.xmldsig import SignatureState, verify_envelope
from tests.edxml.test_lean import package_with, payload_texts
from tests.verify.conftest import Chain


def _signed(chain: Chain, *texts: str) -> bytes:
    return sign_envelope(package_with(*texts), chain.leaf_key)


def _text(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode("ascii")


def test_payloads_out_of_the_tree_verify_and_read_as_the_whole_tree(chain: Chain) -> None:
    raw = _signed(chain, _text(200_000), _text(90_000))
    lean = read_lean(lambda: (raw,), DEFAULT_LIMITS)
    assert lean.root is not None
    assert len(lean.payloads) == 2
    assert verify_envelope(lean.root, payloads=lean.payloads).state is SignatureState.VALID
    whole = parse_untrusted(raw)
    signature = next(e for e in whole.iter() if isinstance(e.tag, str) and e.tag.endswith("}Signature"))
    lean_signature = next(e for e in lean.root.iter() if isinstance(e.tag, str) and e.tag.endswith("}Signature"))
    for exclusive in (True, False):
        assert enveloped_digest(
            lean.root, lean_signature, DigestAlgorithm.SHA256, exclusive=exclusive, payloads=lean.payloads
        ) == enveloped_digest(whole, signature, DigestAlgorithm.SHA256, exclusive=exclusive)
    read = read_package(raw)
    assert read.envelope is not None
    assert read.envelope.state is SignatureState.VALID
    assert verify_envelope(whole).state is SignatureState.VALID
    assert read.parsed == parse_tree(whole)  # the same package and findings as the whole tree's


def test_one_changed_payload_byte_breaks_the_signature(chain: Chain) -> None:
    text = _text(120_000)
    raw = _signed(chain, text)
    changed = text[:5000] + ("B" if text[5000] != "B" else "C") + text[5001:]
    tampered = raw.replace(text.encode(), changed.encode())
    lean = read_lean(lambda: (tampered,), DEFAULT_LIMITS)
    assert len(lean.payloads) == 1  # the changed text left the tree too
    read = read_package(tampered)
    assert read.envelope is not None
    assert read.envelope.state is SignatureState.INVALID
    assert "Digest mismatch" in read.envelope.reason


def test_a_marker_without_its_payload_is_digested_as_written(chain: Chain) -> None:
    """The digest sees the markers' payloads only when given them: the marker alone never
    passes for the payload."""
    raw = _signed(chain, _text(50_000))
    lean = read_lean(lambda: (raw,), DEFAULT_LIMITS)
    assert lean.root is not None
    assert lean.payloads
    (element,) = payload_texts(lean.root)
    assert element.text in lean.payloads
    assert verify_envelope(lean.root).state is SignatureState.INVALID


def test_wrapped_and_canonical_payloads_mixed_still_verify(chain: Chain) -> None:
    wrapped = "\n".join(_text(30_000)[i : i + 76] for i in range(0, 40_000, 76))
    raw = _signed(chain, _text(30_000), wrapped, _text(30_000))
    lean = read_lean(lambda: (raw,), DEFAULT_LIMITS)
    assert len(lean.payloads) == 1
    read = read_package(raw)
    assert read.envelope is not None
    assert read.envelope.state is SignatureState.VALID, read.envelope.reason
