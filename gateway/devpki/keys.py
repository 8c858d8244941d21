"""Fresh key pairs for the development PKI, written as unencrypted PKCS#8 PEM files (mode 0600).

Keys are never shipped: every ``gateway dev-pki`` run and every test session makes its own.
RSA generation dominates the cost of building the PKI (an RSA-4096 key takes from a tenth of a
second to several seconds), so keys are generated in a small thread pool (OpenSSL releases the
GIL) and may be reused from a *key cache* directory, which the test fixture points at pytest's
cache. Only keys are cached; certificates are always minted anew for the current anchor time.

Invariant: a cached key is reused only when its file name carries the same label *and* key
kind as requested, and it parses as that kind; anything else is regenerated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.errors import ConfigError

__all__ = [
    "PrivateKey",
    "generate_key",
    "load_key",
    "provision_keys",
    "write_private",
]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_CURVES: dict[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}


def _check_kind(kind: str) -> None:
    family, _, size = kind.partition("-")
    if not ((family == "rsa" and size.isdigit() and int(size) >= 1024) or (family == "ec" and size in _CURVES)):
        raise ConfigError(f"unknown key kind {kind!r}; use rsa-<bits> (1024 or more) or ec-p256")


def generate_key(kind: str) -> PrivateKey:
    """Generate a private key of the kind the template names.

    Args:
        kind: ``rsa-<bits>`` (1024 or more; 1024 only for the negative test certificate)
            or ``ec-p256`` / ``ec-p384``.

    Returns:
        The new private key.

    Raises:
        ConfigError: for an unknown kind.
    """
    _check_kind(kind)
    family, _, size = kind.partition("-")
    if family == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=int(size))
    return ec.generate_private_key(_CURVES[size])


def _matches(key: object, kind: str) -> bool:
    family, _, size = kind.partition("-")
    if family == "rsa":
        return isinstance(key, rsa.RSAPrivateKey) and str(key.key_size) == size
    return isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == _CURVES[size].name


def load_key(path: Path) -> PrivateKey:
    """Read an unencrypted PEM private key written by ``write_private``.

    Args:
        path: the ``.key.pem`` file.

    Returns:
        The RSA or EC private key.

    Raises:
        ConfigError: when the file is missing, unreadable or holds another kind of key.
    """
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read private key: {exc}", path=path) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(f"unsupported key type {type(key).__name__}", path=path)
    return key


def write_private(path: Path, data: bytes) -> None:
    """Write secret bytes to ``path`` readable by the owner only (0600), replacing any old file.

    The file is created with mode 0600 from the start (never world-readable, not even briefly)
    and renamed into place, so a reader never sees half a key.

    Raises:
        OSError: when the directory is not writable.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is only used for new files
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cached_or_new(label: str, kind: str, cache: Path | None) -> bytes:
    if cache is None:
        return _pem(generate_key(kind))
    cached = cache / f"{label}.{kind}.key.pem"
    if cached.is_file():
        try:
            key = load_key(cached)
        except ConfigError:
            key = None  # a damaged cache entry is simply replaced
        if key is not None and _matches(key, kind):
            return _pem(key)
    data = _pem(generate_key(kind))
    write_private(cached, data)
    return data


def provision_keys(kinds: Mapping[str, str], key_dir: Path, *, cache: Path | None = None) -> None:
    """Create ``key_dir/<label>.key.pem`` for every label.

    Args:
        kinds: label → key kind (see ``generate_key``).
        key_dir: where the keys go; created with mode 0700 when missing.
        cache: optional directory of previously generated keys to reuse (and fill).

    Raises:
        ConfigError: for an unknown key kind.
        OSError: when a directory cannot be written.
    """
    # Check every kind before creating anything or spending seconds on generation.
    for kind in kinds.values():
        _check_kind(kind)
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if cache is not None:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Biggest keys first: they take longest, so the pool finishes sooner.
    order = sorted(kinds.items(), key=lambda item: -int(item[1].partition("-")[2].lstrip("p") or 0))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        pems = pool.map(lambda item: (item[0], _cached_or_new(item[0], item[1], cache)), order)
        for label, data in pems:
            write_private(key_dir / f"{label}.key.pem", data)
