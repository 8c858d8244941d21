"""External programs the tests drive (xmlsec1, pdfsig, softhsm2-util, ...).

A test that needs one calls ``require(program)``: it returns the program's path, or skips
with a message naming the Debian package, except in CI (``CI=true``), where a missing
program fails the test so a broken install step cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["DEBIAN_PACKAGE", "require"]

DEBIAN_PACKAGE = {
    "xmlsec1": "xmlsec1",
    "pdfsig": "poppler-utils",
    "pdftoppm": "poppler-utils",
    "pdftotext": "poppler-utils",
    "softhsm2-util": "softhsm2",
    "pkcs11-tool": "opensc",
}


def require(program: str) -> str:
    """Path of ``program``; skip (locally) or fail (in CI) when it is not installed."""
    path = shutil.which(program)
    if path is not None:
        return path
    package = DEBIAN_PACKAGE.get(program, program)
    message = f"{program} is not installed (Debian package {package}; `make test` as root installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)
