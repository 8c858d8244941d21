"""``gateway serve`` as an operator runs it: its banner, and Ctrl-C after real work.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group: the gateway and the
processes of its PDF reading pool (``gateway.app.compose.pdf_readers``). The gateway stops
gracefully and shuts the pool down itself; the pool's workers must not die of the signal on
their own (each used to print ``Process ForkServerProcess-1:`` and a KeyboardInterrupt
traceback into the log). The child here gets a process group of its own, so the test can send
the group the signal a terminal would, and see that no process of the group outlives the stop.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.devpki import DevPKI
from tests.command import gateway
from tests.service import write_config
from tests.smtpsink import free_port


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            body = json.loads(answer.read())
            return answer.status == 200 and isinstance(body, dict) and body.get("status") == "ok"
    except (OSError, ValueError):
        return False


def _group(pgid: int) -> set[int]:
    """The live processes of process group ``pgid`` (Linux ``/proc``; zombies left out)."""
    members = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(stat.parent.name))
    return members


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "(gone)"


@pytest.fixture
def served(tmp_path: Path, dev_pki: DevPKI) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path, int]]:
    """``gateway serve`` in a process group of its own, with a pool of two PDF readers."""
    smtp, http = free_port(), free_port()
    config = write_config(tmp_path, dev_pki, smtp_listen=f"127.0.0.1:{smtp}", http_listen=f"127.0.0.1:{http}")
    text = config.read_text(encoding="utf-8").replace("[verify]\n", "[verify]\nworkers = 2\n", 1)
    config.write_text(text, encoding="utf-8")
    stderr = tmp_path / "serve.stderr"
    with stderr.open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--grace", "10"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={k: v for k, v in os.environ.items() if k != "GATEWAY_CONFIG"},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(http):
            assert child.poll() is None, f"gateway serve exited with {child.returncode}:\n{stderr.read_text()}"
            assert time.monotonic() < deadline, f"gateway serve not ready in 60 s:\n{stderr.read_text()}"
            time.sleep(0.2)
        yield child, config, stderr, smtp
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        for pid in _group(child.pid):  # a pool worker that outlived a failed test
            os.kill(pid, signal.SIGKILL)


def test_the_banner_names_the_pid_and_what_sighup_reloads(
    served: tuple[subprocess.Popen[bytes], Path, Path, int],
) -> None:
    child, _, stderr, _ = served
    banner = stderr.read_text(encoding="utf-8")
    assert f"gateway: serving as pid {child.pid} " in banner, banner
    assert "SIGHUP reloads the policy, the submission users file and the HTTP tokens file" in banner, banner
    assert f"kill -HUP {child.pid}" in banner, banner


def test_ctrl_c_after_real_work_stops_cleanly(
    served: tuple[subprocess.Popen[bytes], Path, Path, int], dev_pki: DevPKI
) -> None:
    """The demo's three packages put the PDF pool to work; then SIGINT to the whole group, as Ctrl-C."""
    child, config, stderr, smtp = served
    demo = gateway("demo", "--config", config, "--pki", dev_pki.directory, "--smtp", f"127.0.0.1:{smtp}", timeout=300)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    workers = _group(child.pid) - {child.pid}
    assert len(workers) >= 2, f"no PDF pool at work (the forkserver and a reader): {workers}"

    os.killpg(child.pid, signal.SIGINT)
    status = child.wait(60)
    log = stderr.read_text(encoding="utf-8")
    assert status == 0, log
    assert "gateway stopped" in log, log
    assert "Traceback" not in log, log
    assert "KeyboardInterrupt" not in log, log
    deadline = time.monotonic() + 10
    while _group(child.pid) and time.monotonic() < deadline:  # the forkserver sees its parent's end
        time.sleep(0.1)
    left = {pid: _command(pid) for pid in _group(child.pid)}
    assert not left, f"processes of the gateway outlived it: {left}"
