"""The organisation key on a PKCS#11 token (a real SoftHSM2 token), against the same key as PKCS#12.

What is proven, and by whom:

* the envelope signed on the token verifies with our verifier and with ``xmlsec1``;
* a PDF sealed through the token's pyHanko signer passes our examiner (trusted, timestamped)
  and ``pdfsig``, with the intermediate embedded;
* PKCS#12 and the token are equivalent: same certificate and chain, same mechanism, and, since
  RSASSA-PKCS1-v1_5 is deterministic, byte-identical signatures (raw, CMS and whole envelopes);
* the key is opened (logged in) once and shared by threads and the event loop;
* misconfiguration fails with a ConfigError that says what is there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pkcs11
import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, PSS, PKCS1v15
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import TokenFlag
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer
from pyhanko.sign.validation.status import PdfSignatureStatus

import gateway.sign.pkcs11 as token_module
from gateway.clock import FixedClock, SystemClock
from gateway.devpki import DevPKI, fingerprint
from gateway.edxml.xmlsafe import parse_untrusted
from gateway.errors import ConfigError
from gateway.settings import SignSettings
from gateway.sign.envelope import sign_envelope
from gateway.sign.keys import OrganisationKey, SigningKey, load_pkcs12
from gateway.sign.openkey import open_organisation_key
from gateway.sign.pkcs11 import Pkcs11Key, TokenError
from gateway.verify.facts import AdESIndication, PdfFacts, TrustOutcome
from gateway.verify.pdf import Examiner
from gateway.verify.trust import ExamSettings, TrustStore
from gateway.verify.xmldsig import SignatureState, verify_envelope
from tests.external import require
from tests.pdfs import SignedPdfs, cong_van, run, validate_pdf
from tests.pdfs.signing import ORG_FIELD, PADES, timestamper_for
from tests.samples import unsigned_package
from tests.sign.softhsm import EC_CERT_LABEL, EC_KEY_ID, EC_KEY_LABEL, KEY_ID, KEY_LABEL, TOKEN_LABEL, SoftHsmToken

pytestmark = [pytest.mark.needs_binary("softhsm2-util"), pytest.mark.needs_binary("pkcs11-tool")]

ENV_AT_IMPORT = os.environ.get("SOFTHSM2_CONF")
DATA = "Công văn số 123/UBND-VP".encode()
SHA2 = (hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512())  # noqa: S303  # SHA-1: legacy peers


@pytest.fixture
def token_key(softhsm_token: SoftHsmToken) -> Iterator[Pkcs11Key]:
    with softhsm_token.open() as key:
        yield key


@pytest.fixture(scope="module")
def pkcs12_key(dev_pki: DevPKI) -> SigningKey:
    return load_pkcs12(dev_pki.pkcs12("org", b"pw"), b"pw", source="org.p12")


async def seal(pdf: bytes, signer: Signer, pki: DevPKI | None) -> bytes:
    """The organisation's signature as the sealer makes it: PAdES, SHA-256, TSA time stamp (B-T)."""
    meta = PdfSignatureMetadata(field_name=ORG_FIELD, md_algorithm="sha256", subfilter=PADES)
    timestamper = None if pki is None else timestamper_for(pki)
    output = await PdfSigner(meta, signer, timestamper=timestamper).async_sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf))
    )
    return bytes(output.getvalue())


@dataclass(frozen=True)
class Sealed:
    token: bytes
    pkcs12: bytes


@pytest.fixture(scope="module")
def sealed(softhsm_token: SoftHsmToken, dev_pki: DevPKI, signed_pdfs: SignedPdfs, pkcs12_key: SigningKey) -> Sealed:
    """The person-signed main document sealed by the token, and by the PKCS#12 file."""
    with softhsm_token.open() as key:
        on_token = run(seal(signed_pdfs.person_only, key.pdf_signer(), dev_pki))
    return Sealed(on_token, run(seal(signed_pdfs.person_only, pkcs12_key.pdf_signer(), dev_pki)))


def examine(pki: DevPKI, data: bytes) -> PdfFacts:
    async def go() -> PdfFacts:
        store = TrustStore.load(
            [pki.layout.anchor("root")],
            [fingerprint(pki.certificate("root"))],
            [pki.layout.intermediate("intermediate")],
        )
        examiner = Examiner(store, FixedClock(SystemClock().now()))
        try:
            return await examiner.examine_pdf(
                data, name="cong-van.pdf", content_id="cid:1", is_main=True, settings=ExamSettings()
            )
        finally:
            await examiner.aclose()

    return run(go())


def last_signature(pdf: bytes) -> Any:
    return PdfFileReader(BytesIO(pdf)).embedded_signatures[-1]


def embedded_certificates(signature: Any) -> set[bytes]:
    return {c.chosen.dump() for c in signature.signed_data["certificates"]}


def der(*certs: Any) -> set[bytes]:
    return {c.public_bytes(Encoding.DER) for c in certs}


# --------------------------------------------------------------------------- the envelope


@pytest.mark.needs_binary("xmlsec1")
def test_envelope_signed_on_the_token_verifies(token_key: Pkcs11Key, dev_pki: DevPKI, tmp_path: Path) -> None:
    signed = sign_envelope(unsigned_package(), token_key)
    result = verify_envelope(parse_untrusted(signed))
    assert result.state is SignatureState.VALID, result.reason
    assert result.signer == dev_pki.certificate("org")
    assert result.certificates == (dev_pki.certificate("org"), dev_pki.certificate("intermediate"))
    # Independently: xmlsec1 with the dev root as the only trusted certificate.
    path = tmp_path / "package.edxml"
    path.write_bytes(signed)
    command = [
        require("xmlsec1"), "--verify",
        "--trusted-pem", str(dev_pki.layout.anchor("root")),
        "--untrusted-pem", str(dev_pki.layout.intermediate("intermediate")),
        str(path),
    ]  # fmt: skip
    checked = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert "OK" in checked.stdout + checked.stderr


def test_envelopes_from_token_and_pkcs12_are_byte_identical(token_key: Pkcs11Key, pkcs12_key: SigningKey) -> None:
    for algorithm in ("rsa-sha256", "rsa-sha512", "rsa-sha1"):
        package = unsigned_package()
        assert sign_envelope(package, token_key, algorithm=algorithm) == sign_envelope(
            package, pkcs12_key, algorithm=algorithm
        )


@pytest.mark.parametrize("raw", [False, True], ids=["hash-on-token", "hash-on-host"])
def test_raw_signatures_are_byte_identical(softhsm_token: SoftHsmToken, pkcs12_key: SigningKey, raw: bool) -> None:
    """CKM_SHAxxx_RSA_PKCS and CKM_RSA_PKCS + DigestInfo give what cryptography gives."""
    with softhsm_token.open(raw_mechanism=raw or None) as key:
        assert key.raw_mechanism is raw  # SoftHSM2 has the hashed mechanisms: only forced raw
        xml_key = key.xml_key()
        assert xml_key.key_size == 2048
        assert isinstance(pkcs12_key.private_key, rsa.RSAPrivateKey)
        for algorithm in SHA2:
            assert xml_key.sign(DATA, PKCS1v15(), algorithm) == pkcs12_key.private_key.sign(DATA, PKCS1v15(), algorithm)


def test_token_key_refuses_what_it_does_not_implement(token_key: Pkcs11Key) -> None:
    xml_key = token_key.xml_key()
    with pytest.raises(UnsupportedAlgorithm, match=r"PKCS#1 v1\.5 padding only"):
        xml_key.sign(DATA, PSS(mgf=MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    with pytest.raises(UnsupportedAlgorithm, match="SHA-1 or SHA-2 only"):
        xml_key.sign(DATA, PKCS1v15(), hashes.MD5())  # noqa: S303  # refused, which is the point


# --------------------------------------------------------------------------- PDFs


def test_pdf_sealed_on_the_token_passes_our_examiner(sealed: Sealed, dev_pki: DevPKI) -> None:
    person, org = examine(dev_pki, sealed.token).signatures
    assert org.signer is not None
    assert org.signer.subject == dev_pki.certificate("org").subject.rfc4514_string()
    assert (org.digest_algorithm, org.signature_mechanism, org.subfilter) == (
        "sha256",
        "rsassa_pkcs1v15",
        "/ETSI.CAdES.detached",
    )
    assert org.timestamp is not None
    assert org.timestamp.valid
    assert org.trust.outcome is TrustOutcome.TRUSTED
    for signature in (person, org):
        assert signature.intact
        assert signature.crypto_valid
        assert (signature.indication, signature.subindication) == (AdESIndication.TOTAL_PASSED, None)


@pytest.mark.needs_binary("pdfsig")
def test_pdfsig_finds_the_token_seal_valid_and_total(sealed: Sealed, dev_pki: DevPKI, tmp_path: Path) -> None:
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed.token)
    # -nocert: NSS does not trust the test root (and would go to the network); the chain is
    # checked by our examiner above and its presence here below.
    result = subprocess.run(
        [require("pdfsig"), "-nocert", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    blocks = result.stdout.split("Signature #")[1:]
    assert len(blocks) == 2, result.stdout + result.stderr
    assert all("Signature is Valid." in block for block in blocks), result.stdout
    assert "Total document signed" in blocks[-1]
    assert embedded_certificates(last_signature(sealed.token)) == der(
        dev_pki.certificate("org"), dev_pki.certificate("intermediate")
    )


def test_token_and_pkcs12_seals_are_equivalent(sealed: Sealed, token_key: Pkcs11Key, pkcs12_key: SigningKey) -> None:
    assert token_key.certificate == pkcs12_key.certificate
    assert token_key.chain == pkcs12_key.chain
    on_token, in_file = last_signature(sealed.token), last_signature(sealed.pkcs12)
    assert embedded_certificates(on_token) == embedded_certificates(in_file)
    for name in ("digest_algorithm", "signature_algorithm"):
        assert on_token.signer_info[name].dump() == in_file.signer_info[name].dump()
    assert [a["type"].native for a in on_token.signer_info["signed_attrs"]] == [
        a["type"].native for a in in_file.signer_info["signed_attrs"]
    ]


def test_cms_signer_infos_are_byte_identical(token_key: Pkcs11Key, pkcs12_key: SigningKey) -> None:
    """Same signed attributes, same signature value: the token's pyHanko signer = the PKCS#12 one."""
    digest = hashlib.sha256(DATA).digest()

    async def both() -> list[Any]:
        return [
            await signer.async_sign(digest, "sha256", use_pades=True)
            for signer in (token_key.pdf_signer(), pkcs12_key.pdf_signer())
        ]

    on_token, in_file = (ci["content"] for ci in run(both()))
    assert on_token["signer_infos"].dump() == in_file["signer_infos"].dump()
    assert {c.dump() for c in on_token["certificates"]} == {c.dump() for c in in_file["certificates"]}


# --------------------------------------------------------------------------- once per process


def test_one_login_shared_by_threads_and_the_event_loop(
    softhsm_token: SoftHsmToken, pkcs12_key: SigningKey, dev_pki: DevPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions: list[object] = []
    opener = token_module._open_session

    def counting(token: pkcs11.Token, pin: str) -> pkcs11.Session:
        sessions.append(token)
        return opener(token, pin)

    monkeypatch.setattr(token_module, "_open_session", counting)
    assert isinstance(pkcs12_key.private_key, rsa.RSAPrivateKey)
    messages = [DATA + str(i).encode() for i in range(24)]
    with softhsm_token.open() as key:
        assert key.pdf_signer() is key.pdf_signer()
        assert key.xml_key() is key.xml_key()

        async def four_seals() -> list[bytes]:
            # B-B (no time stamp): this test is about the token, not the TSA.
            return list(await asyncio.gather(*(seal(cong_van(), key.pdf_signer(), None) for _ in range(4))))

        with ThreadPoolExecutor(max_workers=8) as pool:
            # Envelope signatures in worker threads while the event loop seals PDFs (pyHanko
            # signs in its executor threads): every token call goes through one lock.
            futures = [pool.submit(key.xml_key().sign, m, PKCS1v15(), hashes.SHA256()) for m in messages]
            pdfs = run(four_seals())
            signatures = [f.result() for f in futures]
    assert len(sessions) == 1
    assert signatures == [pkcs12_key.private_key.sign(m, PKCS1v15(), hashes.SHA256()) for m in messages]
    for pdf in pdfs:
        (status,) = run(validate_pdf(pdf, dev_pki))
        assert isinstance(status, PdfSignatureStatus)
        assert status.intact
        assert status.valid


def test_one_open_key_per_token_and_process(softhsm_token: SoftHsmToken) -> None:
    with softhsm_token.open() as key:
        with pytest.raises(ConfigError, match="already has an open key in this process"):
            softhsm_token.open()
        assert key.xml_key().sign(DATA, PKCS1v15(), hashes.SHA256())
    with softhsm_token.open() as again:  # closing released the token
        assert again.certificate == key.certificate


def test_a_closed_key_signs_nothing(softhsm_token: SoftHsmToken) -> None:
    key = softhsm_token.open()
    key.close()
    key.close()  # idempotent
    assert key.closed
    with pytest.raises(TokenError, match="closed"):
        key.xml_key().sign(DATA, PKCS1v15(), hashes.SHA256())


def test_softhsm_configuration_never_leaks_into_the_environment(softhsm_token: SoftHsmToken) -> None:
    with softhsm_token.open() as key:
        assert os.environ.get("SOFTHSM2_CONF") == ENV_AT_IMPORT != str(softhsm_token.config)
        # Opened under the private configuration, the key keeps working without it.
        assert key.xml_key().sign(DATA, PKCS1v15(), hashes.SHA256())
    assert os.environ.get("SOFTHSM2_CONF") == ENV_AT_IMPORT
    assert any(softhsm_token.tokendir.iterdir())  # the token lives in the private tokendir


# --------------------------------------------------------------------------- ECDSA, CKA_ID


def test_ecdsa_key_found_through_its_certificates_id(softhsm_token: SoftHsmToken, dev_pki: DevPKI) -> None:
    """bit4id style: the certificate's label differs from the key's; CKA_ID pairs them."""
    with softhsm_token.open(key_label=EC_CERT_LABEL) as key:
        assert (key.key_label, key.key_id) == (EC_KEY_LABEL, EC_KEY_ID)
        assert key.certificate == dev_pki.certificate("ecdsa")
        assert key.chain == (dev_pki.certificate("intermediate"),)
        assert key.raw_mechanism  # SoftHSM2 has CKM_ECDSA only: we hash, the token signs
        xml_key = key.xml_key()
        assert isinstance(xml_key, token_module.TokenEcKey)
        assert xml_key.key_size == 256
        signature = xml_key.sign(DATA, ec.ECDSA(hashes.SHA256()))
        public = key.certificate.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, DATA, ec.ECDSA(hashes.SHA256()))  # DER, as cryptography's
        (status,) = run(validate_pdf(run(seal(cong_van(), key.pdf_signer(), None)), dev_pki))
    assert isinstance(status, PdfSignatureStatus)
    assert (status.intact, status.valid, status.md_algorithm) == (True, True, "sha256")
    assert status.pkcs7_signature_mechanism == "sha256_ecdsa"
    with softhsm_token.open(key_id=KEY_ID) as by_id:
        assert by_id.key_label == KEY_LABEL
        assert by_id.certificate == dev_pki.certificate("org")


# --------------------------------------------------------------------------- misconfiguration


def test_wrong_pin(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(ConfigError, match=f"wrong PIN for token '{TOKEN_LABEL}'.*lock after a few wrong PINs"):
        softhsm_token.open(pin="9999")
    softhsm_token.open().close()  # the failure released the token


def test_unknown_token_lists_the_labels_present(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(ConfigError, match=f"no token labelled 'nope'; tokens present: '{TOKEN_LABEL}' "):
        softhsm_token.open(token_label="nope")
    softhsm_token.open().close()


def test_unknown_key_lists_the_objects_present(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(ConfigError) as caught:
        softhsm_token.open(key_label="nope")
    message = str(caught.value)
    assert f"no private key with label 'nope' on token '{TOKEN_LABEL}'" in message
    assert (
        "private keys: 'org' (id 01), 'ecdsa-key' (id 02); certificates: 'org' (id 01), 'ecdsa' (id 02), "
        "'intermediate' (id 10), 'root' (id 11), 'person' (id 12)"
    ) in message
    softhsm_token.open().close()


def test_module_not_found_or_not_a_module(softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.so: PKCS#11 module not found"):
        Pkcs11Key.open(tmp_path / "missing.so", token_label=TOKEN_LABEL, pin="0", key_label=KEY_LABEL)
    bogus = tmp_path / "bogus.so"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(ConfigError, match=r"bogus\.so: cannot load the PKCS#11 module"):
        Pkcs11Key.open(bogus, token_label=TOKEN_LABEL, pin="0", key_label=KEY_LABEL)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (TokenFlag.USER_PIN_FINAL_TRY, "one more wrong PIN locks token 't'"),
        (TokenFlag.USER_PIN_LOCKED, "the user PIN of token 't' is locked"),
    ],
)
def test_no_pin_is_tried_when_a_wrong_one_would_lock_the_token(flags: TokenFlag, message: str) -> None:
    """Real tokens lock after a few wrong PINs; a restart loop must not burn the last try."""
    token = cast(pkcs11.Token, SimpleNamespace(label="t", flags=flags | TokenFlag.TOKEN_INITIALIZED))
    with pytest.raises(ConfigError, match=message):
        token_module._login(token, "0246")


# --------------------------------------------------------------------------- from settings


def test_open_organisation_key_from_a_pkcs12_file(dev_pki: DevPKI) -> None:
    settings = SignSettings(
        key="pkcs12", pkcs12=dev_pki.layout.p12("org"), pkcs12_password_file=dev_pki.layout.password_file
    )
    key = open_organisation_key(settings)
    assert isinstance(key, SigningKey)
    assert (key.certificate, key.chain) == (dev_pki.certificate("org"), (dev_pki.certificate("intermediate"),))


def test_open_organisation_key_from_a_token(softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TEST_TOKEN_PIN", softhsm_token.pin)
    common = {
        "key": "pkcs11",
        "pkcs11_module": softhsm_token.module,
        "pkcs11_token_label": TOKEN_LABEL,
        "pkcs11_key_label": KEY_LABEL,
    }
    for pin in ({"pkcs11_pin_env": "GATEWAY_TEST_TOKEN_PIN"}, {"pkcs11_pin_file": softhsm_token.pin_file}):
        with softhsm_token.environment():
            key = open_organisation_key(SignSettings(**common, **pin))  # type: ignore[arg-type]
        assert isinstance(key, Pkcs11Key)
        assert isinstance(key, OrganisationKey)
        with key:
            assert key.xml_key().sign(DATA, PKCS1v15(), hashes.SHA256())
            assert "gateway-test" in key.source


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (SignSettings(key="pkcs12"), r'\[sign\] key = "pkcs12" needs pkcs12$'),
        (SignSettings(key="pkcs12", pkcs12=Path("org.p12")), "needs exactly one of pkcs12_password_env and"),
        (SignSettings(key="pkcs11"), r'\[sign\] key = "pkcs11" needs pkcs11_module$'),
        (SignSettings(key="pkcs11", pkcs11_module=Path("m.so")), "needs pkcs11_token_label$"),
        (SignSettings(key="pkcs11", pkcs11_module=Path("m.so"), pkcs11_token_label="t"), "needs pkcs11_key_label$"),
        (
            SignSettings(key="pkcs11", pkcs11_module=Path("m.so"), pkcs11_token_label="t", pkcs11_key_label="k"),
            "needs exactly one of pkcs11_pin_env and pkcs11_pin_file",
        ),
    ],
)
def test_open_organisation_key_names_the_missing_setting(settings: SignSettings, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_organisation_key(settings)
