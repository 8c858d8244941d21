"""``gateway dev-pki DIR`` and ``gateway dev-pki serve DIR``, in process and as real processes."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import tomllib
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from typer.testing import CliRunner

from gateway.cli import app
from gateway.devpki import BundleLayout, DevPKI, fingerprint
from gateway.errors import ConfigError

_GATEWAY = [sys.executable, "-c", "from gateway.cli import main; main()"]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_GATEWAY, *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One bundle written by the CLI (key generation takes seconds: do it once)."""
    directory = tmp_path_factory.mktemp("cli") / "pki"
    result = CliRunner().invoke(app, ["dev-pki", str(directory), "--url", "http://127.0.0.1:8799/"])
    assert result.exit_code == 0, result.output
    return directory, result.output


def test_create_writes_the_documented_layout(written: tuple[Path, str]) -> None:
    directory, output = written
    layout = BundleLayout(directory)
    root = x509.load_pem_x509_certificate(layout.anchor("root").read_bytes())
    assert fingerprint(root) in output
    assert "p12/PASSWORD" in output
    assert f"gateway dev-pki serve {directory}" in output
    for entry in ("pki.toml", "certomancer.yml", "trust", "certs", "keys", "p12", "crl"):
        assert (directory / entry).exists(), entry
    assert stat.S_IMODE(layout.key("org").stat().st_mode) == 0o600
    assert stat.S_IMODE(layout.password_file.stat().st_mode) == 0o600
    loaded = pkcs12.load_pkcs12(layout.p12("org").read_bytes(), layout.password_file.read_bytes())
    assert loaded.cert is not None
    assert loaded.cert.certificate.subject.rfc4514_string().startswith("CN=UBND TỈNH TEST,")
    cdp = loaded.cert.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in cdp for n in p.full_name or ()] == [
        "http://127.0.0.1:8799/vgca-test/crls/intermediate/latest.crl"
    ]


def test_create_refuses_to_overwrite_a_bundle(written: tuple[Path, str]) -> None:
    directory, _ = written
    key_before = BundleLayout(directory).key("root").read_bytes()
    result = _run("dev-pki", str(directory))
    assert result.returncode == 2
    assert "already holds a development PKI" in result.stderr
    assert "--force" in result.stderr
    assert result.stderr.startswith(f"gateway: {directory}: ")
    assert BundleLayout(directory).key("root").read_bytes() == key_before


def test_force_replaces_only_the_bundle(written: tuple[Path, str], tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    shutil.copytree(written[0], directory)
    layout = BundleLayout(directory)
    old_key = layout.key("org").read_bytes()
    stale = directory / "certs" / "stale.pem"
    stale.write_text("left over", encoding="ascii")
    mine = directory / "notes.txt"
    mine.write_text("the user's own file", encoding="utf-8")
    result = CliRunner().invoke(app, ["dev-pki", "create", str(directory), "--force"])
    assert result.exit_code == 0, result.output
    assert layout.key("org").read_bytes() != old_key
    assert not stale.exists()
    assert mine.read_text(encoding="utf-8") == "the user's own file"
    manifest = tomllib.loads(layout.manifest.read_text(encoding="utf-8"))
    assert manifest["pki"]["base_url"] == "http://127.0.0.1:8790"  # the default, not the old bundle's


def test_create_refuses_a_foreign_directory_and_a_bad_url(tmp_path: Path) -> None:
    runner = CliRunner()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.odt").write_bytes(b"precious")
    result = runner.invoke(app, ["dev-pki", str(tmp_path / "busy"), "--force"])
    assert isinstance(result.exception, ConfigError)
    assert "not empty" in str(result.exception)
    result = runner.invoke(app, ["dev-pki", str(tmp_path / "new"), "--url", "ftp://example.invalid"])
    assert isinstance(result.exception, ConfigError)
    assert "bad PKI base URL" in str(result.exception)
    assert not (tmp_path / "new").exists()


def test_help_documents_both_commands() -> None:
    result = CliRunner().invoke(app, ["dev-pki", "--help"])
    assert result.exit_code == 0
    assert "create" in result.output
    assert "serve" in result.output
    serve_help = CliRunner().invoke(app, ["dev-pki", "serve", "--help"])
    assert "--port" in serve_help.output
    assert "--host" in serve_help.output


def test_serve_answers_until_sigterm(dev_pki: DevPKI) -> None:
    command = [*_GATEWAY, "dev-pki", "serve", str(dev_pki.directory), "--port", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        watchdog = threading.Timer(120, proc.kill)  # never hang the suite on a broken server
        watchdog.start()
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("Serving the development PKI"), first
            url = first.split(" at ")[1].split("/ ")[0]
            with urllib.request.urlopen(dev_pki.urls.crl.replace(dev_pki.base_url, url), timeout=30) as response:
                crl = x509.load_der_x509_crl(response.read())
            assert [entry.serial_number for entry in crl] == [dev_pki.certificate("revoked").serial_number]
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        finally:
            watchdog.cancel()
    assert proc.returncode == 0, err
    assert out.rstrip().endswith("stopped")
    assert "not at" in err  # warned: the certificates name another port than the one served
