"""A throw-away SoftHSM2 token holding the development PKI's organisation key (fixture ``softhsm_token``).

What is on the token (``TOKEN_LABEL``, user PIN ``PIN``), imported with ``pkcs11-tool`` as a
token vendor would:

* the ``org`` private key (label ``org``, CKA_ID 01) and its certificate (same label and id);
* the ``ecdsa`` key (P-256) labelled ``ecdsa-key`` and its certificate labelled ``ecdsa``, paired
  only by CKA_ID 02, as bit4id tokens pair them;
* the ``intermediate`` and ``root`` certificates, and the unrelated ``person`` certificate (the
  chain must take the intermediate, stop before the root and ignore ``person``).

Isolation, and why it holds:

* The token lives in the session's temporary directory with its own ``softhsm2.conf`` (its own
  ``directories.tokendir``); the system's tokens under /var/lib/softhsm are never opened.
* ``softhsm2-util`` and ``pkcs11-tool`` get ``SOFTHSM2_CONF`` in their own environment only.
* The test process itself never exports it. SoftHSM reads ``SOFTHSM2_CONF`` in ``C_Initialize``,
  which happens when a key opens the module (``Pkcs11Key.open``; again after the last key
  closed and finalised it). So ``SoftHsmToken.open`` sets the variable around the opening and
  restores the previous environment straight after; an open key needs nothing more from it,
  and once the last key is closed the module is finalised, so no later test inherits the
  configuration.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from gateway.devpki import DevPKI
from gateway.sign.pkcs11 import Pkcs11Key
from tests.external import require, require_file

__all__ = [
    "EC_CERT_LABEL",
    "EC_KEY_ID",
    "EC_KEY_LABEL",
    "KEY_ID",
    "KEY_LABEL",
    "PIN",
    "TOKEN_LABEL",
    "SoftHsmToken",
    "make_token",
    "softhsm_module",
    "softhsm_token",
]

TOKEN_LABEL = "gateway-test"
PIN = "0246"
SO_PIN = "13579135"
KEY_LABEL = "org"
KEY_ID = b"\x01"
EC_KEY_LABEL = "ecdsa-key"
EC_CERT_LABEL = "ecdsa"
EC_KEY_ID = b"\x02"

_MODULE_CANDIDATES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/*/softhsm/libsofthsm2.so")
ENV = "SOFTHSM2_CONF"


def softhsm_module() -> Path:
    """The SoftHSM2 PKCS#11 module; skip (locally) or fail (in CI) when it is not installed."""
    require("softhsm2-util")  # same Debian package as the module
    for pattern in _MODULE_CANDIDATES:
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[0]
    return require_file(Path(_MODULE_CANDIDATES[0]), "softhsm2")


@dataclass(frozen=True)
class SoftHsmToken:
    """The session's token and how to reach it."""

    module: Path
    config: Path
    """The private ``softhsm2.conf`` (``SOFTHSM2_CONF``)."""
    tokendir: Path
    token_label: str
    pin: str
    pin_file: Path
    """The user PIN in a 0600 file (for ``read_secret`` / ``pkcs11_pin_file``)."""

    @contextmanager
    def environment(self) -> Iterator[None]:
        """``SOFTHSM2_CONF`` for this token during the block; the previous value restored after."""
        previous = os.environ.get(ENV)
        os.environ[ENV] = str(self.config)
        try:
            yield
        finally:
            if previous is None:
                del os.environ[ENV]
            else:
                os.environ[ENV] = previous

    def open(
        self,
        *,
        key_label: str | None = KEY_LABEL,
        key_id: bytes | None = None,
        pin: str | None = None,
        token_label: str | None = None,
        raw_mechanism: bool | None = None,
    ) -> Pkcs11Key:
        """``Pkcs11Key.open`` on this token (defaults: the ``org`` key, the right PIN)."""
        with self.environment():
            return Pkcs11Key.open(
                self.module,
                token_label=self.token_label if token_label is None else token_label,
                pin=self.pin if pin is None else pin,
                key_label=None if key_id is not None else key_label,
                key_id=key_id,
                raw_mechanism=raw_mechanism,
            )

    def tool(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``softhsm2-util`` / ``pkcs11-tool`` against this token's configuration only."""
        command = [require(program), *args]
        env = {**os.environ, ENV: str(self.config)}
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=60)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed: {result.stdout}{result.stderr}", pytrace=False)
        return result


def _write_private(path: Path, data: bytes) -> Path:
    path.touch(mode=0o600)
    path.write_bytes(data)
    return path


def make_token(directory: Path, pki: DevPKI) -> SoftHsmToken:
    """Create the token in ``directory`` and import the dev PKI objects (see the module docstring).

    Args:
        directory: an empty directory that outlives the token's users.
        pki: the development PKI.

    Returns:
        The token.
    """
    module = softhsm_module()
    require("pkcs11-tool")
    tokendir = directory / "tokens"
    tokendir.mkdir()
    config = directory / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
    )
    token = SoftHsmToken(
        module=module,
        config=config,
        tokendir=tokendir,
        token_label=TOKEN_LABEL,
        pin=PIN,
        pin_file=_write_private(directory / "pin", PIN.encode()),
    )
    token.tool("softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", PIN, "--so-pin", SO_PIN)
    login = ["--module", str(module), "--token-label", TOKEN_LABEL, "--login", "--pin", PIN]

    def write(kind: str, der: bytes, label: str, object_id: bytes) -> None:
        path = _write_private(directory / f"{label}.{kind}.der", der)
        try:
            extra = ["--usage-sign"] if kind == "privkey" else []
            token.tool(
                "pkcs11-tool", *login, "--write-object", str(path), "--type", kind,
                "--label", label, "--id", object_id.hex(), *extra,
            )  # fmt: skip
        finally:
            path.unlink()  # the token has it now; no key file lingers

    def key_der(label: str) -> bytes:
        return pki.private_key(label).private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())

    def cert_der(label: str) -> bytes:
        return pki.certificate(label).public_bytes(Encoding.DER)

    write("privkey", key_der("org"), KEY_LABEL, KEY_ID)
    write("cert", cert_der("org"), KEY_LABEL, KEY_ID)
    write("privkey", key_der("ecdsa"), EC_KEY_LABEL, EC_KEY_ID)
    write("cert", cert_der("ecdsa"), EC_CERT_LABEL, EC_KEY_ID)
    for number, label in enumerate(("intermediate", "root", "person"), start=0x10):
        write("cert", cert_der(label), label, bytes([number]))
    return token


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPKI) -> SoftHsmToken:
    """A SoftHSM2 token with the dev PKI's ``org`` key, made once per test session."""
    return make_token(tmp_path_factory.mktemp("softhsm"), dev_pki)
