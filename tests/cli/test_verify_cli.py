"""``gateway verify`` and ``gateway rules`` as other tools call them: exit statuses, JSON, errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.devpki import DevPKI, fingerprint
from tests.command import gateway
from tests.pdfs import SignedPdfs
from tests.verify.test_verify_package_pki import OURS, package


@pytest.fixture
def workdir(tmp_path: Path, dev_pki: DevPKI, signed_pdfs: SignedPdfs) -> Path:
    """A gateway.toml trusting the dev PKI, and three packages: good, refused, untimestamped."""
    layout = dev_pki.layout
    (tmp_path / "gateway.toml").write_text(
        f'[identity]\norgan_ids = ["{OURS}"]\n\n'
        f'[trust]\nanchors = ["{layout.anchor("root")}"]\n'
        f'anchor_sha256 = ["{fingerprint(dev_pki.certificate("root"))}"]\n'
        f'intermediates = ["{layout.intermediate("intermediate")}"]\n',
        encoding="utf-8",
    )
    (tmp_path / "good.edxml").write_bytes(package(("cong-van.pdf", signed_pdfs.main)))
    (tmp_path / "tampered.edxml").write_bytes(package(("cong-van.pdf", signed_pdfs.tampered)))
    (tmp_path / "no-timestamp.edxml").write_bytes(package(("cong-van.pdf", signed_pdfs.main_without_timestamps)))
    return tmp_path


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_accepted_exits_0_with_the_json_contract(workdir: Path) -> None:
    result = gateway("verify", "--json", "good.edxml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (report,) = json_lines(result.stdout)
    assert report["file"] == "good.edxml"
    assert report["verdict"] == "accepted"
    assert report["indication"] == "TOTAL_PASSED"
    assert report["subindication"] is None
    assert report["policy"]["name"] == "strict-lawful"
    assert len(report["policy"]["sha256"]) == 64
    assert [s["role"] for s in report["signatures"]] == ["person", "organisation"]
    for finding in report["findings"]:
        assert set(finding) == {"code", "action", "where", "message_vi", "message_en"}


def test_refused_exits_1_and_one_json_object_per_file(workdir: Path) -> None:
    result = gateway("verify", "--json", "good.edxml", "tampered.edxml", cwd=workdir)
    assert result.returncode == 1
    reports = json_lines(result.stdout)
    assert [(r["file"], r["verdict"]) for r in reports] == [("good.edxml", "accepted"), ("tampered.edxml", "refused")]
    assert "pdf-signature-invalid" in {f["code"] for f in reports[1]["findings"]}


def test_deferred_exits_3(workdir: Path) -> None:
    (workdir / "policy.toml").write_text('[actions]\n"timestamp-absent" = "defer"\n', encoding="utf-8")
    result = gateway("verify", "--policy", "policy.toml", "good.edxml", "no-timestamp.edxml", cwd=workdir)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "TẠM HOÃN" in result.stdout


def test_refused_outranks_deferred(workdir: Path) -> None:
    (workdir / "policy.toml").write_text('[actions]\n"timestamp-absent" = "defer"\n', encoding="utf-8")
    result = gateway("verify", "--policy", "policy.toml", "no-timestamp.edxml", "tampered.edxml", cwd=workdir)
    assert result.returncode == 1


def test_human_output_is_bilingual(workdir: Path) -> None:
    result = gateway("verify", "tampered.edxml", cwd=workdir)
    assert result.returncode == 1
    assert "TỪ CHỐI TIẾP NHẬN / REFUSED" in result.stdout
    assert "Chữ ký số" in result.stdout
    assert "The signature" in result.stdout
    assert "policy strict-lawful" in result.stdout


def test_at_sets_the_verification_time(workdir: Path) -> None:
    result = gateway("verify", "--json", "--at", "2026-12-01T09:00:00+07:00", "good.edxml", cwd=workdir)
    (report,) = json_lines(result.stdout)
    assert report["verified_at"] == "2026-12-01T09:00:00+07:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "yesterday", "good.edxml"], "not an ISO 8601 time"),
        (["--at", "2026-12-01T09:00:00", "good.edxml"], "no UTC offset"),
        (["missing.edxml"], "cannot read the package"),
        (["--policy", "nope.toml", "good.edxml"], "policy file not found"),
    ],
)
def test_usage_errors_exit_2(workdir: Path, args: list[str], message: str) -> None:
    result = gateway("verify", *args, cwd=workdir)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_without_trust_anchors_nothing_is_verified(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> None:
    elsewhere = tmp_path_factory.mktemp("no-config")  # no gateway.toml here
    result = gateway("verify", workdir / "good.edxml", cwd=elsewhere)
    assert result.returncode == 2
    assert "no trust anchors configured" in result.stderr


def test_a_swapped_anchor_file_is_refused(workdir: Path, dev_pki: DevPKI) -> None:
    config = (workdir / "gateway.toml").read_text(encoding="utf-8")
    swapped = config.replace(str(dev_pki.layout.anchor("root")), str(dev_pki.layout.cert("impostor-root")))
    (workdir / "gateway.toml").write_text(swapped, encoding="utf-8")
    result = gateway("verify", "good.edxml", cwd=workdir)
    assert result.returncode == 2
    assert "impostor-root" in result.stderr


def test_rules_check_and_show(workdir: Path) -> None:
    (workdir / "policy.toml").write_text('[actions]\n"cert-revokd" = "warn"\n', encoding="utf-8")
    result = gateway("rules", "check", "policy.toml", cwd=workdir)
    assert result.returncode == 2
    assert "policy.toml:2: unknown finding code 'cert-revokd'" in result.stderr
    assert "did you mean 'cert-revoked'?" in result.stderr
    shown = gateway("rules", "show", cwd=workdir)
    assert shown.returncode == 0
    assert f"sha256: {hashlib.sha256(shown.stdout.encode()).hexdigest()}" in shown.stderr
