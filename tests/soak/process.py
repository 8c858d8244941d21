"""``gateway serve`` as a child process that a test can start, ``kill -9``, restart and stop.

The child runs ``python -m gateway serve --config X`` with the test's own interpreter: the same
entry point as the ``gateway`` console script (``[project.scripts] gateway = "gateway.cli:main"``;
``gateway/__main__.py`` calls that ``main``), and it works whichever venv runs the tests.

Every start appends to one log file (``log``), each run introduced by a line
``=== start N (pid P) ===`` and closed by how it ended, so a failing test can name one file that
tells the whole story. A start is complete when ``/healthz`` on ``[http] listen`` answers 200
``"status": "ok"`` (the service binds it last, after the SMTP listeners: see
``gateway.app.service``). The ports must be fixed in the configuration (``tests.smtpsink.free_port``):
a restarted child has to come back where the clients expect it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from tests.command import gateway

__all__ = ["GatewayDied", "GatewayProcess", "run_cli"]


class GatewayDied(AssertionError):
    """The child exited when it should have been serving (its log says why)."""


def _healthz(url: str) -> tuple[int, dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except (OSError, ValueError):  # not listening yet, reset, half-written answer
        return None


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``gateway ARGS`` (a one-shot command, e.g. ``log verify-chain``) and capture its output."""
    return gateway(*args, timeout=timeout)


class GatewayProcess:
    """One gateway child at a time on a fixed configuration.

    Args:
        config: the ``gateway.toml`` (its ``[http] listen`` must name a fixed port).
        http: ``(host, port)`` of ``[http] listen``.
        log: the file every run's stderr and stdout are appended to.
        grace: ``--grace`` for a graceful stop.
    """

    def __init__(self, config: Path, *, http: tuple[str, int], log: Path, grace: float = 30.0) -> None:
        self.config = config
        self.log = log
        self.grace = grace
        self._url = f"http://{http[0]}:{http[1]}/healthz"
        self._child: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self.starts = 0
        self.kills = 0

    @property
    def pid(self) -> int | None:
        """The running child's pid, or None."""
        return None if self._child is None else self._child.pid

    def _note(self, text: str) -> None:
        with self.log.open("ab") as out:
            out.write(f"=== {text} at {time.strftime('%H:%M:%S')} ===\n".encode())

    async def start(self, within: float = 60.0) -> None:
        """Start the child and return once ``/healthz`` answers 200 ``ok``.

        Raises:
            RuntimeError: a child is already running.
            GatewayDied: it exited, or was not ready within ``within`` seconds (then it is killed).
        """
        if self._child is not None:
            raise RuntimeError("the gateway is already running")
        self.starts += 1
        self._output = self.log.open("ab")
        # fork + exec blocks for a moment: off the event loop, which serves the clients meanwhile.
        self._child = await asyncio.to_thread(
            subprocess.Popen,
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config), "--grace", str(self.grace)],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=self._output,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._note(f"start {self.starts} (pid {self._child.pid})")
        deadline = time.monotonic() + within
        while True:
            if self._child.poll() is not None:
                code = self._reap()
                raise GatewayDied(f"the gateway exited with status {code} while starting; see {self.log}")
            answer = await asyncio.to_thread(_healthz, self._url)
            if answer is not None and answer[0] == 200 and answer[1].get("status") == "ok":
                return
            if time.monotonic() > deadline:
                self.kill()
                raise GatewayDied(f"the gateway was not ready within {within:g} s; see {self.log}")
            await asyncio.sleep(0.1)

    def alive(self) -> bool:
        """True while the child runs."""
        return self._child is not None and self._child.poll() is None

    def _reap(self, timeout: float | None = None) -> int:
        assert self._child is not None
        try:
            code = self._child.wait(timeout)
        finally:
            if self._child.returncode is not None:
                self._child = None
                if self._output is not None:
                    self._output.close()
                    self._output = None
        self._note(f"exited with status {code}")
        return code

    def kill(self) -> int:
        """``kill -9`` the child (no warning, no cleanup: a power cut) and reap it.

        Returns:
            Its exit status (``-9``; something else means it had died before the signal).

        Raises:
            RuntimeError: no child is running.
        """
        if self._child is None:
            raise RuntimeError("no gateway to kill")
        self.kills += 1
        if self._child.poll() is None:
            self._note(f"kill -9 {self._child.pid} (kill {self.kills})")
            self._child.send_signal(signal.SIGKILL)
        return self._reap()

    async def stop(self, within: float = 90.0) -> int:
        """SIGTERM (a graceful stop) and wait for the exit.

        Returns:
            The exit status (0 is a clean stop).

        Raises:
            RuntimeError: no child is running.
            GatewayDied: it did not exit within ``within`` seconds (then it is killed).
        """
        if self._child is None:
            raise RuntimeError("no gateway to stop")
        self._note(f"SIGTERM {self._child.pid}")
        self._child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + within
        while self._child.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                raise GatewayDied(f"the gateway did not stop within {within:g} s of SIGTERM; see {self.log}")
            await asyncio.sleep(0.1)
        return self._reap()

    def close(self) -> None:
        """Kill the child if it still runs (test teardown; never leaves a process behind)."""
        if self._child is not None:
            if self._child.poll() is None:
                self._child.send_signal(signal.SIGKILL)
            self._reap(timeout=30)
