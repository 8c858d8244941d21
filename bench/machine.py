"""What a benchmark's JSON says about the machine it ran on (shared by the sealing benchmark).

Milliseconds mean little without the machine: the CPU count (the process's usable CPUs, which a
container may cap below the host's), Python, the libraries doing the work, and the load average
(someone else's test run on a 2-core box moves every column). ``bench.verify_bench`` records
the same facts with its own copy of this code.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

__all__ = ["LIBRARIES", "load_average", "machine_info"]

LIBRARIES = ("pyHanko", "pyhanko-certvalidator", "signxml", "lxml", "cryptography", "aiohttp")
"""The distributions whose versions are recorded by default."""


def load_average() -> float | None:
    """The 1-minute load average (``None`` where the platform has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info(libraries: Sequence[str] = LIBRARIES) -> dict[str, Any]:
    """CPUs, Python, platform and the versions of ``libraries``."""
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "versions": {name: _version(name) for name in libraries},
    }
