"""``gateway edxml inspect | build | status`` as a user runs them: a real process, real files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.devpki import DevPKI
from gateway.edxml.parse import parse
from tests.command import gateway
from tests.external import require

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "tests" / "data" / "edxml" / "sdk"
SAMPLE_META = REPO / "config" / "sample-meta.toml"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def inspect_json(path: Path, cwd: Path) -> dict[str, Any]:
    result = gateway("edxml", "inspect", "--json", path, cwd=cwd)
    report: dict[str, Any] = json.loads(result.stdout)
    report["exit"] = result.returncode
    return report


@pytest.fixture
def built(tmp_path: Path) -> Path:
    (tmp_path / "congvan.pdf").write_bytes(PDF)
    (tmp_path / "ghi-chu.txt").write_text("ghi chú kèm theo\n", encoding="utf-8")
    out = tmp_path / "out.edxml"
    result = gateway(
        "edxml", "build", "--meta", SAMPLE_META, "--attach", "congvan.pdf", "--attach", "ghi-chu.txt", "-o", out,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "envelope not signed" in result.stdout
    return out


def test_build_writes_a_package_that_parses_cleanly(built: Path, tmp_path: Path) -> None:
    parsed = parse(built.read_bytes())
    assert parsed.ok, parsed.findings
    report = inspect_json(built, tmp_path)
    assert report["exit"] == 0
    assert report["kind"] == "edoc"
    assert report["code"] == "123/UBND-VP"
    assert report["document_id"] == "000.00.01.H53,2025/03/14,123/UBND-VP"
    names = {a["name"]: a for a in report["attachments"]}
    assert names["congvan.pdf"]["content_type"] == "application/pdf"
    assert names["congvan.pdf"]["zipped"] is False
    assert names["ghi-chu.txt"]["zipped"] is True  # the SDK's rule for other files
    assert names["ghi-chu.txt"]["content_type"] == "application/zip"
    assert report["envelope_signature"]["state"] == "absent"
    assert report["findings"] == []


def test_build_adds_our_hop_to_the_trace(built: Path) -> None:
    parsed = parse(built.read_bytes())
    package = parsed.package
    assert package is not None
    assert package.kind == "edoc"
    assert package.trace is not None
    assert [t.organ_id for t in package.trace.traces] == ["000.00.01.H53"]


def test_inspect_reports_sdk_quirks_and_the_placeholder(tmp_path: Path) -> None:
    report = inspect_json(SDK / "edoc_new.edxml", tmp_path)
    assert report["exit"] == 0
    assert report["envelope_signature"]["state"] == "placeholder"
    codes = {f["code"] for f in report["findings"]}
    assert {"edxml-signature-namespace", "edxml-bad-org-id"} <= codes
    bad = next(f for f in report["findings"] if f["code"] == "edxml-bad-org-id")
    assert bad["where"] == "MessageHeader/To[1]/OrganId"
    assert "28.22.H17" in bad["message_vi"]


def test_inspect_exits_1_on_an_unreadable_package(tmp_path: Path) -> None:
    report = inspect_json(SDK / "edoc.edxml", tmp_path)
    assert report["exit"] == 1
    assert report["parseable"] is False
    assert [f["code"] for f in report["findings"]] == ["xml-malformed"]


def test_inspect_human_output_is_bilingual(tmp_path: Path) -> None:
    result = gateway("edxml", "inspect", SDK / "status_rejection_02.edxml", cwd=tmp_path)
    assert result.returncode == 0
    assert "status package 02 (Từ chối tiếp nhận)" in result.stdout
    assert "Envelope signature: absent" in result.stdout


def test_status_02_answers_the_document_with_the_reason(tmp_path: Path) -> None:
    out = tmp_path / "refusal.edxml"
    result = gateway(
        "edxml", "status", "--for", SDK / "edoc_new.edxml", "--code", "02", "--reason", "Chứng thư số đã bị thu hồi",
        "--from", "000.00.01.H53", "--staff", "Nguyễn Thị Văn Thư", "-o", out, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = inspect_json(out, tmp_path)
    assert report["status_code"] == "02"
    assert report["description"] == "Chứng thư số đã bị thu hồi"
    assert report["document_id"] == "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
    assert report["sender"]["organ_id"] == "000.00.01.H53"
    assert report["timestamp"].endswith("+07:00")
    assert report["findings"] == []


def test_status_takes_our_identity_from_the_config(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text(
        '[identity]\norgan_ids = ["000.00.32.H53"]\norgan_name = "UBND huyện Châu Thành"\n', encoding="utf-8"
    )
    out = tmp_path / "arrived.edxml"
    result = gateway("edxml", "status", "--for", SDK / "edoc_new.edxml", "--code", "01", "-o", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = inspect_json(out, tmp_path)
    assert report["sender"] == {"organ_id": "000.00.32.H53", "name": "UBND huyện Châu Thành", "in_charge": None}
    assert report["description"] == "Đã đến"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--code", "02"], "must say why"),
        (["--code", "99", "--reason", "x"], "unknown status code"),
        (["--code", "01"], "no sender identity"),
    ],
)
def test_status_usage_errors_exit_2_with_the_fix(tmp_path: Path, args: list[str], message: str) -> None:
    sender = [] if message == "no sender identity" else ["--from", "000.00.01.H53"]
    result = gateway(
        "edxml", "status", "--for", SDK / "edoc_new.edxml", *args, *sender, "-o", tmp_path / "x.edxml", cwd=tmp_path
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "x.edxml").exists()


def test_build_refuses_a_package_that_fails_its_checks(tmp_path: Path) -> None:
    original = SAMPLE_META.read_text(encoding="utf-8")
    meta = original.replace('organ_id = "000.00.01.H53"', 'organ_id = "UBND-TAY-NINH"', 1)
    assert "UBND-TAY-NINH" in meta
    (tmp_path / "meta.toml").write_text(meta, encoding="utf-8")
    result = gateway("edxml", "build", "--meta", "meta.toml", "-o", "out.edxml", cwd=tmp_path)
    assert result.returncode == 1
    assert "edxml-bad-org-id" in result.stderr
    assert not (tmp_path / "out.edxml").exists()


def test_a_bad_config_names_file_line_and_valid_keys(tmp_path: Path) -> None:
    (tmp_path / "gateway.toml").write_text('[identity]\norgan_ids = ["000.00.01.H53"]\norgan_nme = "x"\n')
    result = gateway("edxml", "inspect", SDK / "status.edxml", cwd=tmp_path)
    assert result.returncode == 2
    assert "gateway.toml:3: unknown key 'organ_nme' in [identity]" in result.stderr
    assert "valid keys:" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_password_variable_is_a_usage_error(tmp_path: Path, built: Path) -> None:
    result = gateway(
        "edxml", "build", "--meta", SAMPLE_META, "-o", "x.edxml", "--sign-key", "org.p12",
        "--sign-pass-env", "NO_SUCH_VARIABLE_SET", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "NO_SUCH_VARIABLE_SET is not set" in result.stderr


def test_signed_build_verifies_with_us_and_with_xmlsec1(tmp_path: Path, dev_pki: DevPKI) -> None:
    """Issue acceptance: a package built with a real key verifies with ``xmlsec1 --verify``."""
    xmlsec1 = require("xmlsec1")
    (tmp_path / "congvan.pdf").write_bytes(PDF)
    out = tmp_path / "signed.edxml"
    layout = dev_pki.layout
    result = gateway(
        "edxml", "build", "--meta", SAMPLE_META, "--attach", "congvan.pdf", "-o", out,
        "--sign-key", layout.p12("org"), "--sign-pass-file", layout.password_file, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "envelope signed by" in result.stdout
    report = inspect_json(out, tmp_path)
    assert report["envelope_signature"]["state"] == "valid"
    assert "UBND TỈNH TEST" in report["envelope_signature"]["signer"]
    check = subprocess.run(
        [xmlsec1, "--verify", "--trusted-pem", str(layout.anchor("root")),
         "--untrusted-pem", str(layout.intermediate("intermediate")), str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_signed_status_package_verifies(tmp_path: Path, dev_pki: DevPKI) -> None:
    out = tmp_path / "refusal.edxml"
    password = dev_pki.layout.password_file.read_text(encoding="utf-8").strip()
    result = gateway(
        "edxml", "status", "--for", SDK / "edoc_new.edxml", "--code", "02", "--reason", "Tài liệu đã bị thay đổi",
        "--from", "000.00.01.H53", "-o", out, "--sign-key", dev_pki.layout.p12("org"), "--sign-pass-env", "P12_PASS",
        cwd=tmp_path, env={"P12_PASS": password},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert inspect_json(out, tmp_path)["envelope_signature"]["state"] == "valid"
