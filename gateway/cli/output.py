"""How commands show results and write files.

Human output goes through one ``rich`` console (colour only on a terminal); machine output is
JSON on stdout, one object per input. Files are written atomically (temporary file, fsync,
rename) so a crash never leaves half a package where a whole one was expected.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from gateway.clock import iso_vn_or_none
from gateway.errors import ConfigError

__all__ = ["console", "err_console", "host_port", "print_json", "shown_time", "write_atomically"]

# Off a terminal (pipes, logs, tests) rich would assume 80 columns and fold ids and hashes;
# a wide fixed width keeps each table row on one line there.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


def host_port(address: tuple[str, int]) -> str:
    """``host:port``, with an IPv6 host in brackets (``[::1]:25``)."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


shown_time = iso_vn_or_none
"""A stored time as shown to people: ISO 8601 in Vietnam time (``+07:00``), or None."""


def print_json(value: Any) -> None:
    """Print one JSON document on stdout (UTF-8, Vietnamese kept readable)."""
    print(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False))


def write_atomically(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    Raises:
        ConfigError: the directory does not exist or is not writable.
    """
    directory = path.resolve().parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise ConfigError(f"cannot write the output file ({exc.strerror})", path=path) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
