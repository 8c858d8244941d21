"""Envelope XMLDSig: we sign as the format wants, and only an untouched package verifies.

The input is real-shaped: the VNPT SDK's own ``edoc_new.edxml`` with its placeholder
signature removed. Attacks are the signature-wrapping family (a second unsigned
MessageHeader, a moved signed subtree, a reference to an Id inside an unsigned wrapper) and
small edits after signing (a comment, white space, one attachment byte, another key).
``xmlsec1`` verifies what we sign, independently of our code.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm
from signxml.exceptions import InvalidInput
from signxml.signer import XMLSigner
from signxml.util import _remove_sig
from signxml.verifier import XMLVerifier

from gateway.edxml.names import DSIG_NS, QCVN_NS
from gateway.edxml.xmlsafe import parse_untrusted
from gateway.sign.envelope import EnvelopeSigningError, sign_envelope
from gateway.verify.digest import enveloped_digest
from gateway.verify.envelope import read_package
from gateway.verify.xmldsig import SignatureState, verify_envelope
from tests.external import require
from tests.samples import sdk_sample, unsigned_package
from tests.verify.conftest import Chain

Q = f"{{{QCVN_NS}}}"
DS = f"{{{DSIG_NS}}}"


@pytest.fixture(scope="module")
def signed(chain: Chain) -> bytes:
    return sign_envelope(unsigned_package(), chain.leaf_key)


def state_of(raw: bytes) -> SignatureState:
    return verify_envelope(parse_untrusted(raw)).state


def reserialise(root: etree._Element) -> bytes:
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def header_of(root: etree._Element) -> etree._Element:
    header = root.find(f"{Q}edXMLEnvelope/{Q}edXMLHeader")
    assert header is not None
    return header


# --------------------------------------------------------------------------- what we write


def test_signature_is_last_child_of_header_in_the_xmldsig_namespace(signed: bytes) -> None:
    root = parse_untrusted(signed)
    header = header_of(root)
    children = [c for c in header if isinstance(c.tag, str)]
    assert [c.tag for c in children] == [f"{Q}MessageHeader", f"{Q}TraceHeaderList", f"{DS}Signature"]
    reference = children[-1].find(f"{DS}SignedInfo/{DS}Reference")
    assert reference is not None
    assert reference.get("URI") == ""
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{DS}Transforms/{DS}Transform")]
    assert transforms == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/2001/10/xml-exc-c14n#",
    ]


def test_signature_verifies_and_names_the_signer(signed: bytes, chain: Chain) -> None:
    result = verify_envelope(parse_untrusted(signed))
    assert result.state is SignatureState.VALID, result.reason
    assert result.signer == chain.leaf_key.certificate
    assert result.certificates == (chain.leaf_key.certificate, chain.intermediate)
    assert result.signature_method == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert result.digest_method == "http://www.w3.org/2001/04/xmlenc#sha256"


def test_signed_tree_is_the_received_tree_the_digest_covered(signed: bytes) -> None:
    """No reconstructed copy (issue 7, P4): the digest covered every node of the received tree
    but the Signature, so business fields are read from it."""
    root = parse_untrusted(signed)
    result = verify_envelope(root)
    assert result.signed_root is root
    subject = result.signed_root.find(f".//{Q}MessageHeader/{Q}Subject")
    assert subject is not None
    assert subject.text == "V/v kết nối, liên thông phần mềm quản lý văn bản"


def signxml_digest(root: etree._Element, method: CanonicalizationMethod) -> bytes:
    """The reference digest as signxml computes it: a copy, the signature removed, C14N, SHA-256."""
    verifier = XMLVerifier()
    copied = verifier._fromstring(etree.tostring(root))  # type: ignore[no-untyped-call]
    signature = next(copied.iter(f"{DS}Signature"))
    _remove_sig(signature)  # type: ignore[no-untyped-call]
    canonical = verifier._c14n(copied, algorithm=method)
    return hashlib.sha256(canonical).digest()


@pytest.mark.parametrize(
    "method",
    [
        CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        CanonicalizationMethod.CANONICAL_XML_1_0,
        CanonicalizationMethod.CANONICAL_XML_1_1,
    ],
)
@pytest.mark.parametrize("prefix", ["ds", None])
def test_streamed_digest_equals_signxmls_copy_and_canonicalise(
    chain: Chain, method: CanonicalizationMethod, prefix: str | None
) -> None:
    """The streamed digest skips exactly the Signature's run of the canonical form: signed by
    signxml (root-level Signature, either prefix, text after it, markup-like text elsewhere)."""
    root = parse_untrusted(unsigned_package())
    subject = root.find(f".//{Q}MessageHeader/{Q}Subject")
    assert subject is not None
    subject.text = 'a <ds:Signature> b </ds:Signature> & "c"'  # escaped in the canonical form
    signer = XMLSigner(c14n_algorithm=method)
    if prefix is None:
        signer.namespaces = {None: DSIG_NS}  # type: ignore[dict-item]
    pem = [c.public_bytes(Encoding.PEM).decode() for c in (chain.leaf_key.certificate, chain.intermediate)]
    signed_root = parse_untrusted(reserialise(signer.sign(root, key=chain.leaf_key.private_key, cert=pem)))
    signature = next(signed_root.iter(f"{DS}Signature"))
    assert signature.prefix == prefix
    signature.tail = "\n  "
    exclusive = method is CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
    ours = enveloped_digest(signed_root, signature, DigestAlgorithm.SHA256, exclusive=exclusive)
    assert ours == signxml_digest(signed_root, method)
    digest_value = signature.find(f"{DS}SignedInfo/{DS}Reference/{DS}DigestValue")
    assert digest_value is not None
    signature.tail = None
    assert base64.b64decode(digest_value.text or "") == enveloped_digest(
        signed_root, signature, DigestAlgorithm.SHA256, exclusive=exclusive
    )


def test_processing_instruction_inside_the_signature_is_invalid(signed: bytes) -> None:
    """A PI would be written into the canonical form and could fake the Signature's end tag."""
    tampered = signed.replace(b"<ds:SignatureValue>", b"<?x </ds:Signature>?><ds:SignatureValue>", 1)
    assert tampered != signed
    result = verify_envelope(parse_untrusted(tampered))
    assert result.state is SignatureState.INVALID
    assert "processing instruction" in result.reason


def test_digest_needs_the_whole_document_holding_the_signature(signed: bytes) -> None:
    unsigned = parse_untrusted(unsigned_package())
    stray = etree.fromstring(b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>')
    with pytest.raises(InvalidInput, match="not found"):
        enveloped_digest(unsigned, stray, DigestAlgorithm.SHA256, exclusive=True)
    root = parse_untrusted(signed)
    signature = next(root.iter(f"{DS}Signature"))
    with pytest.raises(InvalidInput, match="whole document"):
        enveloped_digest(header_of(root), signature, DigestAlgorithm.SHA256, exclusive=True)


def test_legacy_sha1_is_written_only_on_request_and_still_verifies(chain: Chain) -> None:
    legacy = sign_envelope(unsigned_package(), chain.leaf_key, algorithm="rsa-sha1")
    result = verify_envelope(parse_untrusted(legacy))
    assert result.state is SignatureState.VALID
    assert result.signature_method == "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    assert result.digest_method == "http://www.w3.org/2000/09/xmldsig#sha1"


def test_signing_refuses_an_already_signed_or_foreign_document(signed: bytes, chain: Chain) -> None:
    with pytest.raises(EnvelopeSigningError, match="already carries a Signature"):
        sign_envelope(signed, chain.leaf_key)
    with pytest.raises(EnvelopeSigningError, match="not an edXML package"):
        sign_envelope(b"<Other/>", chain.leaf_key)
    with pytest.raises(EnvelopeSigningError, match="cannot sign"):
        sign_envelope(b"<edXML>", chain.leaf_key)


# --------------------------------------------------------------------------- absent / placeholder


def test_absent(chain: Chain) -> None:
    result = verify_envelope(parse_untrusted(unsigned_package()))
    assert result.state is SignatureState.ABSENT


@pytest.mark.parametrize("name", ["edoc_new.edxml", "edoc_replacement.edxml", "edoc_revocation.edxml"])
def test_sdk_samples_carry_a_placeholder(name: str) -> None:
    result = verify_envelope(parse_untrusted(sdk_sample(name)))
    assert result.state is SignatureState.PLACEHOLDER
    assert "dummy" in result.reason


def test_truncated_certificate_with_a_fresh_value_is_a_placeholder(signed: bytes) -> None:
    root = parse_untrusted(signed)
    for node in root.iter(f"{DS}X509Certificate"):
        node.text = "MIIFqTCCBJG"  # the SDK's stub
    assert state_of(reserialise(root)) is SignatureState.PLACEHOLDER


# --------------------------------------------------------------------------- wrapping attacks


def test_second_unsigned_message_header_is_invalid(signed: bytes) -> None:
    root = parse_untrusted(signed)
    header = header_of(root)
    forged = copy.deepcopy(header[0])
    subject = forged.find(f"{Q}Subject")
    assert subject is not None
    subject.text = "Quyết định giả mạo"
    header.insert(0, forged)
    assert state_of(reserialise(root)) is SignatureState.INVALID


def test_signature_moved_into_the_body_is_invalid(signed: bytes) -> None:
    root = parse_untrusted(signed)
    signature = header_of(root)[-1]
    body = root.find(f"{Q}edXMLEnvelope/{Q}edXMLBody")
    assert body is not None
    body.append(signature)
    result = verify_envelope(parse_untrusted(reserialise(root)))
    assert result.state is SignatureState.INVALID
    assert "edXMLHeader" in result.reason


def test_signed_envelope_moved_into_a_wrapper_behind_a_forged_one_is_invalid(signed: bytes) -> None:
    root = parse_untrusted(signed)
    original = root.find(f"{Q}edXMLEnvelope")
    assert original is not None
    forged = copy.deepcopy(original)
    signature = forged.find(f"{Q}edXMLHeader/{DS}Signature")
    assert signature is not None
    signature.getparent().remove(signature)  # type: ignore[union-attr]
    subject = forged.find(f".//{Q}Subject")
    assert subject is not None
    subject.text = "Nội dung giả mạo"
    wrapper = etree.SubElement(root, f"{Q}Extension")
    wrapper.append(original)
    root.insert(0, forged)
    assert state_of(reserialise(root)) is SignatureState.INVALID


def test_message_header_moved_after_signing_is_invalid(signed: bytes) -> None:
    root = parse_untrusted(signed)
    message_header = header_of(root)[0]
    body = root.find(f"{Q}edXMLEnvelope/{Q}edXMLBody")
    assert body is not None
    body.append(message_header)
    assert state_of(reserialise(root)) is SignatureState.INVALID


def test_reference_to_an_id_inside_an_unsigned_wrapper_is_invalid(chain: Chain) -> None:
    """A perfectly valid signature that covers only one subtree is not an envelope signature."""
    root = parse_untrusted(unsigned_package())
    header = header_of(root)
    header[0].set("Id", "signed-part")
    placeholder = etree.SubElement(header, f"{DS}Signature", nsmap={"ds": DSIG_NS})
    placeholder.set("Id", "placeholder")
    signer = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    pem = [c.public_bytes(Encoding.PEM).decode() for c in (chain.leaf_key.certificate, chain.intermediate)]
    signed = signer.sign(root, key=chain.leaf_key.private_key, cert=pem, reference_uri="#signed-part")
    result = verify_envelope(parse_untrusted(reserialise(signed)))
    assert result.state is SignatureState.INVALID
    assert 'URI=""' in result.reason


def test_two_signatures_are_invalid(signed: bytes) -> None:
    root = parse_untrusted(signed)
    header = header_of(root)
    header.append(copy.deepcopy(header[-1]))
    result = verify_envelope(parse_untrusted(reserialise(root)))
    assert result.state is SignatureState.INVALID
    assert "2 Signature elements" in result.reason


def test_real_signature_in_the_wrong_namespace_is_invalid(signed: bytes) -> None:
    root = parse_untrusted(signed)
    for node in header_of(root)[-1].iter():
        if isinstance(node.tag, str):
            node.tag = node.tag.replace(DS, Q)
    result = verify_envelope(parse_untrusted(reserialise(root)))
    assert result.state is SignatureState.INVALID
    assert "namespace" in result.reason


def test_extra_transform_is_invalid(signed: bytes) -> None:
    root = parse_untrusted(signed)
    transforms = root.find(f".//{DS}Transforms")
    assert transforms is not None
    xpath = etree.SubElement(transforms, f"{DS}Transform", Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116")
    etree.SubElement(xpath, f"{DS}XPath").text = "not(ancestor-or-self::*[local-name()='MessageHeader'])"
    assert state_of(reserialise(root)) is SignatureState.INVALID


# --------------------------------------------------------------------------- edits after signing


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("comment in the header", b"</edXML:MessageHeader>", b"<!-- sau khi ky --></edXML:MessageHeader>"),
        ("comment after the root", b"</edXML>", b"</edXML><!-- trailer -->"),
        ("processing instruction", b"<edXML:edXMLBody>", b"<?note x?><edXML:edXMLBody>"),
        ("white space between elements", b"</edXML:Subject>", b"</edXML:Subject>\n"),
        ("white space inside text", b"V/v k", b"V/v  k"),
        ("one attachment byte", b"AAAAAA", b"AAAAAB"),
        ("subject text", "liên thông".encode(), "liên thông giả".encode()),
    ],
)
def test_any_edit_after_signing_is_invalid(signed: bytes, what: str, old: bytes, new: bytes) -> None:
    assert old in signed, what
    tampered = signed.replace(old, new, 1)
    assert state_of(tampered) is SignatureState.INVALID, what


def test_certificate_swapped_for_another_key_is_invalid(signed: bytes, chain: Chain) -> None:
    root = parse_untrusted(signed)
    other = chain.other_key.certificate.public_bytes(Encoding.DER)
    for node in root.iter(f"{DS}X509Certificate"):
        node.text = base64.b64encode(other).decode()
    assert state_of(reserialise(root)) is SignatureState.INVALID


# --------------------------------------------------------------------------- independent verifier


def xmlsec1_verify(package: bytes, chain: Chain, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    xmlsec1 = require("xmlsec1")
    path = tmp_path / "package.edxml"
    path.write_bytes(package)
    command = [xmlsec1, "--verify", "--trusted-pem", str(chain.root), "--untrusted-pem", str(chain.intermediate_pem)]
    return subprocess.run([*command, str(path)], capture_output=True, text=True, check=False)


def test_xmlsec1_verifies_our_signature(signed: bytes, chain: Chain, tmp_path: Path) -> None:
    result = xmlsec1_verify(signed, chain, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout + result.stderr


def test_xmlsec1_rejects_a_tampered_package(signed: bytes, chain: Chain, tmp_path: Path) -> None:
    """The same independent check fails when one byte of an attachment changes."""
    result = xmlsec1_verify(signed.replace(b"AAAAAA", b"AAAAAB", 1), chain, tmp_path)
    assert result.returncode != 0


def test_package_with_an_attachment_over_libxml2s_default_limit_signs_and_verifies(chain: Chain) -> None:
    """Base64 text nodes over 10 MB need huge_tree in signxml's internal re-parses too."""
    root = parse_untrusted(unsigned_package())
    payload = root.find(f"{Q}AttachmentEncoded/{Q}Attachment/{Q}ContentTransferEncoded")
    assert payload is not None
    payload.text = base64.b64encode(bytes(range(256)) * (12 * 4096)).decode()  # 12 MiB decoded
    big = reserialise(root)
    assert len(big) > 16 * 1024 * 1024
    signed = sign_envelope(big, chain.leaf_key)
    assert state_of(signed) is SignatureState.VALID


def test_read_package_takes_the_bytes_once_from_a_function(signed: bytes) -> None:
    """Issue 7, P4: the pipeline hands its only reference over; the result is the same."""
    handed = [signed]
    read = read_package(handed.pop)
    assert handed == []
    direct = read_package(signed)
    assert (read.sha256, read.size) == (hashlib.sha256(signed).hexdigest(), len(signed))
    assert (direct.sha256, direct.size) == (read.sha256, read.size)
    assert read.envelope is not None
    assert read.envelope.state is SignatureState.VALID
    assert read.envelope.signed_root is None  # the tree is let go once read
    assert read.parsed.package == direct.parsed.package
