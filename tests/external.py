"""External programs and files the tests drive (xmlsec1, pdfsig, softhsm2-util, system fonts...).

A test that needs one calls ``require(program)`` (or ``require_file(path, package)`` for a file
a Debian package installs): it returns the path, or skips with a message naming the Debian
package, except in CI (``CI=true``), where a missing one fails the test so a broken install
step cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["DEBIAN_PACKAGE", "require", "require_file"]

DEBIAN_PACKAGE = {
    "xmlsec1": "xmlsec1",
    "pdfsig": "poppler-utils",
    "pdftoppm": "poppler-utils",
    "pdftotext": "poppler-utils",
    "pdffonts": "poppler-utils",
    "softhsm2-util": "softhsm2",
    "pkcs11-tool": "opensc",
}


def _missing(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


def require(program: str) -> str:
    """Path of ``program``; skip (locally) or fail (in CI) when it is not installed."""
    path = shutil.which(program)
    if path is not None:
        return path
    package = DEBIAN_PACKAGE.get(program, program)
    _missing(f"{program} is not installed (Debian package {package}; `make test` as root installs it)")


def require_file(path: Path, package: str) -> Path:
    """``path`` when it exists; skip (locally) or fail (in CI) naming the Debian ``package`` otherwise."""
    if path.is_file():
        return path
    _missing(f"{path} is missing (Debian package {package}; `make test` as root installs it)")
