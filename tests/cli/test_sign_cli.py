"""``gateway sign`` and ``gateway package seal`` as an operator runs them (issue 4 CLI)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from gateway.devpki import DevPKI, fingerprint
from tests.command import gateway
from tests.external import require
from tests.pdfs import SignedPdfs, cong_van, phu_luc
from tests.sign.test_package_seal import RECIPIENT, SENDER, draft

REPO = Path(__file__).resolve().parents[2]
SEAL = REPO / "config" / "samples" / "con-dau-mau.png"


def config(pki: DevPKI, tsa_url: str | None = None) -> str:
    layout = pki.layout
    return f"""
[identity]
organ_ids = ["{SENDER}"]
organ_name = "Ủy ban nhân dân tỉnh Test"

[trust]
anchors = ["{layout.anchor("root")}"]
anchor_sha256 = ["{fingerprint(pki.certificate("root"))}"]
intermediates = ["{layout.intermediate("intermediate")}"]

[sign]
key = "pkcs12"
pkcs12 = "{layout.p12("org")}"
pkcs12_password_file = "{layout.password_file}"
tsa_url = "{tsa_url or pki.urls.tsa}"
tsa_timeout_seconds = 2.0
tsa_attempts = 2
seal_image = "{SEAL}"
"""


@pytest.fixture
def workdir(tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> Path:
    (tmp_path / "gateway.toml").write_text(config(dev_pki), encoding="utf-8")
    (tmp_path / "main.pdf").write_bytes(signed_pdfs.person_only)
    (tmp_path / "unsigned.pdf").write_bytes(cong_van())
    (tmp_path / "phu-luc.pdf").write_bytes(phu_luc())
    return tmp_path


def pdfsig_says(path: Path) -> str:
    return subprocess.run([require("pdfsig"), "-nocert", str(path)], capture_output=True, text=True, check=False).stdout


def test_sign_main_document(workdir: Path) -> None:
    result = gateway("sign", "main.pdf", "--kind", "main", "-o", "sealed.pdf", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no library noise for operators
    assert "main sealed by Ủy ban nhân dân tỉnh Test" in result.stdout
    out = pdfsig_says(workdir / "sealed.pdf")
    assert out.count("Signature is Valid.") == 2
    assert "Total document signed" in out


def test_sign_attachment_needs_the_number(workdir: Path) -> None:
    result = gateway("sign", "phu-luc.pdf", "--kind", "attachment", "-o", "x.pdf", cwd=workdir)
    assert result.returncode == 2
    assert "number" in result.stderr
    result = gateway(
        "sign", "phu-luc.pdf", "--kind", "attachment", "--doc-number", "123/UBND-VP", "-o", "x.pdf", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert "Signature is Valid." in pdfsig_says(workdir / "x.pdf")


def test_refusal_exits_1_and_writes_nothing(workdir: Path) -> None:
    result = gateway("sign", "unsigned.pdf", "--kind", "main", "-o", "sealed.pdf", cwd=workdir)
    assert result.returncode == 1
    assert "person" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "sealed.pdf").exists()


def test_tsa_down_exits_3_and_writes_nothing(workdir: Path, dev_pki: DevPKI) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # closed again when the block ends: nothing listens there
    (workdir / "gateway.toml").write_text(config(dev_pki, f"http://127.0.0.1:{closed}/tsa"), encoding="utf-8")
    result = gateway("sign", "phu-luc.pdf", "--kind", "attachment", "--doc-number", "1/X", "-o", "x.pdf", cwd=workdir)
    assert result.returncode == 3, result.stderr
    assert "TSA" in result.stderr or "timestamp" in result.stderr
    assert not (workdir / "x.pdf").exists()


def test_package_seal_then_verify_as_the_recipient(workdir: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> None:
    (workdir / "draft.edxml").write_bytes(
        draft(("cong-van.pdf", signed_pdfs.person_only, None), ("phu-luc.pdf", phu_luc(), "Phụ lục"))
    )
    result = gateway("package", "seal", "draft.edxml", "-o", "sealed.edxml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    recipient = workdir / "recipient"
    recipient.mkdir()
    (recipient / "gateway.toml").write_text(config(dev_pki).replace(SENDER, RECIPIENT, 1), encoding="utf-8")
    verdict = gateway("verify", workdir / "sealed.edxml", cwd=recipient)
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
