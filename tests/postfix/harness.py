"""A real Postfix (Debian ``postfix``) on loopback, with a throw-away configuration.

``PostfixInstance(name, main=..., services=...)`` describes one instance; ``start()`` writes its
``main.cf`` and ``master.cf`` into a new temporary directory and runs ``postfix -c DIR start-fg``
(not PID 1, so ``postfix-script`` runs ``master -s`` in the foreground: the master stays a child of
our process, and its pid file is in the instance's own queue directory). The instance:

* has its own ``config_directory``, ``queue_directory`` (``post-install`` makes the sub-directories
  on the first start) and ``data_directory`` (owned by ``postfix``: the master's lock lives there);
  processes run as ``mail_owner = postfix``, ``setgid_group = postdrop`` (Debian's users);
* listens only where its ``master.cf`` says: one smtpd on ``127.0.0.1:port`` (the port-25
  substitute; ``smtpd_options`` adds ``-o`` overrides to it) plus whatever ``services`` adds;
* never looks up DNS (``smtp_dns_support_level = disabled``, ``smtp_host_lookup = native``, so
  ``[127.0.0.1]:PORT`` next hops work), never delivers locally (``local_transport = error``), and
  logs to ``postfix.log`` in its directory (``maillog_file`` through the ``postlog`` service) so a
  failing test can show what Postfix did (``log_text()``);
* delivers mail for ``mailboxes`` into Maildirs with its own ``virtual(8)`` agent (as ``nobody``:
  ``maildir(address)`` reads them), and retries deferred mail every second.

``stop()`` runs ``postfix -c DIR stop`` and waits for the master; if it lingers, the master's
process group (it is a session leader) is killed by the pid in ``pid/master.pid``. The pytest
fixture ``postfix_instances`` (``tests/postfix/conftest.py``) stops every instance a test started,
even when the test fails, and prints the logs of a failed test.
Missing Postfix: skipped locally, a failure in CI (``CI=true``), like ``tests.external``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import pytest

from tests.command import LogFile
from tests.smtpsink import free_port

__all__ = ["PostfixInstance", "header", "parse_main_cf", "require_postfix"]

_START_SECONDS = 30.0
_STOP_SECONDS = 15.0
_INTERNAL_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
"""Postfix's internal services (Debian's ``master.cf`` without chroot, local, pipe and the examples)."""


def require_postfix() -> str:
    """Path of ``postfix``; skip (locally) or fail (in CI) when Debian's ``postfix`` is not installed."""
    found = shutil.which("postfix") or ("/usr/sbin/postfix" if Path("/usr/sbin/postfix").is_file() else None)
    if found is not None and _has_user("postfix"):
        return found
    message = "postfix is not installed (Debian package postfix; `make test` as root installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def parse_main_cf(text: str) -> dict[str, str]:
    """``name = value`` pairs of a ``main.cf`` fragment (comments skipped, indented lines continue).

    Raises:
        ValueError: a line is neither a comment, a continuation nor ``name = value``.
    """
    values: dict[str, str] = {}
    last: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and last is not None:
            values[last] = f"{values[last]} {line.strip()}"
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"main.cf line {number} is not 'name = value': {line!r}")
        last = name.strip()
        values[last] = value.strip()
    return values


class PostfixInstance(LogFile):
    """One throw-away Postfix; see the module docstring.

    Args:
        name: a short name (its ``myhostname`` is ``<name>.test``; shown in logs).
        main: ``main.cf`` parameters on top of the harness's (later ones win).
        services: ``master.cf`` lines added after the internal services.
        smtpd_options: ``-o name=value`` overrides of the port-25 substitute.
        mailboxes: addresses delivered into Maildirs by ``virtual(8)``.
        port: the port-25 substitute (default: a free loopback port).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        name: str,
        *,
        main: Mapping[str, str] | None = None,
        services: str = "",
        smtpd_options: Mapping[str, str] | None = None,
        mailboxes: tuple[str, ...] = (),
        port: int | None = None,
    ) -> None:
        self.name = name
        self.main = dict(main or {})
        self.services = services
        self.smtpd_options = dict(smtpd_options or {})
        self.mailboxes = mailboxes
        self.port = port if port is not None else free_port()
        self.root: Path | None = None
        self._postfix: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ paths
    def _path(self, *parts: str) -> Path:
        if self.root is None:
            raise RuntimeError(f"postfix instance {self.name} was never started")
        return self.root.joinpath(*parts)

    @property
    def config_dir(self) -> Path:
        """Its ``config_directory`` (``main.cf``, ``master.cf``)."""
        return self._path("etc")

    @property
    def log(self) -> Path:
        """Its ``maillog_file``."""
        return self._path("postfix.log")

    # ------------------------------------------------------------------ configuration
    def main_cf(self) -> dict[str, str]:
        """The whole ``main.cf``: the harness's parameters, then ``main``."""
        root = self._path()
        values = {
            "compatibility_level": "3.6",
            "queue_directory": str(root / "queue"),
            "data_directory": str(root / "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_interfaces": self.host,
            "inet_protocols": "ipv4",
            "myhostname": f"{self.name}.test",
            "mydomain": "test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "mynetworks": "127.0.0.0/8",
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "local_transport": "error:local delivery is disabled on this test instance",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "maillog_file": str(self._path("postfix.log")),
            "maillog_file_prefixes": str(root),
            "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "delay_warning_time": "0",
        }
        if self.mailboxes:
            domains = sorted({address.rpartition("@")[2] for address in self.mailboxes})
            entries = ", ".join(f"{a}={a.rpartition('@')[2]}/{a.partition('@')[0]}/" for a in self.mailboxes)
            nobody = pwd.getpwnam("nobody")
            values |= {
                "virtual_mailbox_domains": ", ".join(domains),
                "virtual_mailbox_base": str(root / "mail"),
                "virtual_mailbox_maps": f"inline:{{ {entries} }}",
                "virtual_uid_maps": f"static:{nobody.pw_uid}",
                "virtual_gid_maps": f"static:{nobody.pw_gid}",
            }
        values |= self.main
        return values

    def master_cf(self) -> str:
        """The whole ``master.cf``: the port-25 substitute, the internal services, then ``services``."""
        options = "".join(f"\n    -o {name}={value}" for name, value in self.smtpd_options.items())
        return f"{self.host}:{self.port} inet n - n - - smtpd{options}\n{_INTERNAL_SERVICES}{self.services}\n"

    # ------------------------------------------------------------------ life
    def start(self) -> None:
        """Write the configuration and start the master; return once the port-25 substitute greets.

        Raises:
            RuntimeError: Postfix exited or did not greet within 30 s (its log is in the message).
        """
        self._postfix = require_postfix()
        self.root = Path(tempfile.mkdtemp(prefix=f"gateway-postfix-{self.name}-"))
        self.root.chmod(0o755)  # virtual(8) runs as nobody and must reach mail/
        for directory in ("etc", "queue", "data", "mail"):
            self._path(directory).mkdir()
        postfix_user = pwd.getpwnam("postfix")
        os.chown(self._path("data"), postfix_user.pw_uid, postfix_user.pw_gid)
        nobody = pwd.getpwnam("nobody")
        os.chown(self._path("mail"), nobody.pw_uid, nobody.pw_gid)
        text = "".join(f"{name} = {value}\n" for name, value in self.main_cf().items())
        self._path("etc", "main.cf").write_text(f"# Throw-away test instance (tests/postfix.py).\n{text}")
        self._path("etc", "master.cf").write_text(self.master_cf())
        output = self._path("master.out").open("wb")
        self._process = subprocess.Popen(
            [self._postfix, "-c", str(self.config_dir), "start-fg"], stdout=output, stderr=subprocess.STDOUT
        )
        output.close()
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"postfix {self.name} exited at start ({self._process.returncode})\n{self.log_text()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=2) as probe:
                if probe.recv(100).startswith(b"220"):
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postfix {self.name} did not greet within {_START_SECONDS:g} s\n{self.log_text()}")

    def stop(self) -> None:
        """``postfix stop``; wait for the master; kill its process group by the pid file if it lingers."""
        process, self._process = self._process, None
        if process is None or self.root is None:
            return
        if process.poll() is None:
            subprocess.run(
                [self._postfix or "postfix", "-c", str(self.config_dir), "stop"],
                capture_output=True,
                timeout=_STOP_SECONDS,
                check=False,
            )
            try:
                process.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._kill_master()
                process.kill()
                process.wait(_STOP_SECONDS)
        else:
            self._kill_master()  # the script may be gone while a master it forked still runs

    def _kill_master(self) -> None:
        """SIGKILL the master's process group (``master -s`` made itself a session leader)."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(self._path("queue", "pid", "master.pid").read_text().strip())
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Delete the instance's directory (after ``stop``)."""
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ queue, mail and log
    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(self._postfix or "/usr/sbin/postfix").with_name(program)), "-c", str(self.config_dir)]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30, check=False)

    def queue(self) -> list[dict[str, Any]]:
        """The queue as ``postqueue -j`` lists it (one dict per message; ``[]`` when empty)."""
        done = self._run("postqueue", "-j")
        if done.returncode != 0:
            raise RuntimeError(f"postqueue -j failed ({done.returncode}): {done.stderr}")
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def wait_until_queue_empty(self, within: float = 60.0) -> None:
        """Poll the queue until it is empty.

        Raises:
            AssertionError: still not empty after ``within`` seconds (lists what is left).
        """
        deadline = time.monotonic() + within
        while left := self.queue():
            if time.monotonic() > deadline:
                raise AssertionError(f"postfix {self.name}: queue not empty after {within:g} s: {left}")
            time.sleep(0.2)

    def delete_queue(self, queue: str = "ALL") -> None:
        """``postsuper -d ALL [queue]``: drop queued mail (the benchmark empties its hold queue)."""
        self._run("postsuper", "-d", "ALL", *([] if queue == "ALL" else [queue]))

    def maildir(self, address: str) -> list[bytes]:
        """The messages ``virtual(8)`` delivered for ``address`` (``new/``, oldest first)."""
        local, _, domain = address.partition("@")
        new = self._path("mail", domain, local, "new")
        if not new.is_dir():
            return []
        return [path.read_bytes() for path in sorted(new.iterdir(), key=lambda p: p.stat().st_mtime_ns)]

    def log_text(self) -> str:
        """The whole log (and what the master printed, if anything)."""
        if self.root is None:
            return ""
        out = self._path("master.out")
        printed = out.read_text("utf-8", "replace") if out.exists() else ""
        return self.log_since(0) + (f"\n[master output]\n{printed}" if printed.strip() else "")


def header(mail: bytes, name: str) -> str | None:
    """One header of a raw mail (decoded as text), or None."""
    value = BytesHeaderParser().parsebytes(mail).get(name)
    return None if value is None else str(value)
