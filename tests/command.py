"""Run the ``gateway`` command as an operator does: a separate ``python -m gateway`` process."""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

__all__ = ["LogFile", "gateway", "terminate"]


def gateway(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` in ``cwd`` with its output captured (``$GATEWAY_CONFIG`` removed, ``env`` added)."""
    environment = {k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gateway", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        check=False,
        timeout=timeout,
    )


def terminate(process: subprocess.Popen[bytes] | subprocess.Popen[str], wait: float = 10.0) -> None:
    """SIGTERM a daemon we started and wait ``wait`` seconds for it; SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


class LogFile(abc.ABC):
    """A throw-away daemon's log file (Dovecot, Postfix), read by tests to show what it did."""

    @property
    @abc.abstractmethod
    def log(self) -> Path:
        """The log file's path."""

    def log_mark(self) -> int:
        """A position in the log, for ``log_since``."""
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, mark: int) -> str:
        """What the daemon logged after ``mark``."""
        with contextlib.suppress(FileNotFoundError), self.log.open("rb") as log:
            log.seek(mark)
            return log.read().decode("utf-8", "replace")
        return ""
